"""infra/preflight.py, the container's start-up check: a deployment with Postgres down (or a
missing bucket) gets one clear line and exit code 2 before anything runs; a healthy one exit 0."""

import subprocess
import sys

from tests.conftest import make_dagster_home
from tests.e2e.servers import free_port as closed_port  # a port nobody listens on
from tests.infra.conftest import ROOT


def run_preflight(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "infra" / "preflight.py")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def deployment_env(tmp_path, s3_env, bucket, pg: dict) -> dict:
    """The environment of a deployment using infra/dagster.yaml (as in .env.example)."""
    import os

    home = make_dagster_home(tmp_path, ROOT / "infra" / "dagster.yaml")
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": pg["host"],
        "DAGSTER_PG_PORT": pg["port"],
        "DAGSTER_PG_USERNAME": pg["user"],
        "DAGSTER_PG_PASSWORD": pg["password"],
        "DAGSTER_PG_DB": pg["db"],
        "MEDIAFM_LOG_BUCKET": bucket,
        "MEDIAFM_ROOT": f"s3://{bucket}/root",
        "MEDIAFM_LANDING": f"s3://{bucket}/landing",
    }


def test_postgres_down_and_a_missing_bucket_are_one_line_each(tmp_path, s3_env, bucket):
    pg = {
        "host": "127.0.0.1",
        "port": str(closed_port()),
        "user": "dagster",
        "password": "s3cret-pw",
        "db": "dagster",
    }
    env = deployment_env(tmp_path, s3_env, bucket, pg)
    env["MEDIAFM_ROOT"] = "s3://no-such-root-bucket/root"
    proc = run_preflight(env)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2, proc.stderr
    assert lines[0].startswith(
        f"preflight: PostgreSQL at 127.0.0.1:{pg['port']}/dagster is unreachable"
    )
    assert "bucket 'no-such-root-bucket' does not exist" in lines[1]
    assert "s3cret-pw" not in proc.stderr and "Traceback" not in proc.stderr


def test_a_healthy_deployment_passes(tmp_path, s3_env, bucket, pg_database):
    proc = run_preflight(deployment_env(tmp_path, s3_env, bucket, pg_database))
    assert proc.returncode == 0, proc.stderr
    assert "Postgres and storage reachable" in proc.stdout
