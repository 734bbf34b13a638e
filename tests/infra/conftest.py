"""Fixtures of the production-path tests: a real PostgreSQL server and an S3-compatible server,
both on 127.0.0.1.

PostgreSQL: `$MEDIAFM_TEST_PG_URL` (what .ci/run exports after starting one), else a throwaway
server started here with infra/ci/test-postgres.sh (Debian's `postgresql` binaries); tests that
need it skip, saying why, only when neither works.

S3: moto's server mode (`moto.server.ThreadedMotoServer(ip_address="127.0.0.1", port=0)`), the
S3-compatible emulator available here; real HTTP on loopback, so s3fs, pyarrow, boto3 and
LanceDB's Rust object store all talk to it exactly as they would to S3 or MinIO.
"""

import logging
import os
import shutil
import subprocess
import tempfile
import uuid
import warnings
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.assets.conftest import write_tiny_titles  # noqa: F401  (re-exported for tests/infra)
from tests.conftest import ROOT

PG_SCRIPT = ROOT / "infra" / "ci" / "test-postgres.sh"
warnings.filterwarnings("ignore", message=".*is currently in beta.*")
S3_CREDS = {
    "AWS_ACCESS_KEY_ID": "mediafm-test",
    "AWS_SECRET_ACCESS_KEY": "mediafm-test-secret",
    "AWS_REGION": "us-east-1",
}


# ------------------------------------------------------------------------------ PostgreSQL
def _start_throwaway_postgres() -> tuple[str | None, str | None, str]:
    """(url, data dir, why-not). Starts a server with infra/ci/test-postgres.sh."""
    if not shutil.which("bash"):
        return None, None, "no bash"
    folder = tempfile.mkdtemp(prefix="mediafm-pg-")  # not under pytest's 0700 root-owned tmp
    proc = subprocess.run(
        ["bash", str(PG_SCRIPT), folder], capture_output=True, text=True, timeout=120
    )
    if proc.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        return None, None, proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"
    return proc.stdout.strip().splitlines()[-1], folder, ""


def _stop_throwaway_postgres(folder: str) -> None:
    pg_ctl = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))[-1]
    cmd = [str(pg_ctl), "-D", f"{folder}/data", "-m", "immediate", "stop"]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    subprocess.run(cmd, capture_output=True, timeout=60)
    shutil.rmtree(folder, ignore_errors=True)


def _reachable(url: str) -> str:
    """'' when a connection works, else why not."""
    import psycopg2

    try:
        psycopg2.connect(url, connect_timeout=5).close()
        return ""
    except psycopg2.Error as exc:
        return str(exc).strip().splitlines()[0]


@pytest.fixture(scope="session")
def pg_server_url():
    """URL of a reachable PostgreSQL server (maintenance database `postgres`)."""
    url = os.environ.get("MEDIAFM_TEST_PG_URL")
    folder = None
    if url:
        why = _reachable(url)
        if why:
            msg = f"MEDIAFM_TEST_PG_URL={url} is not reachable: {why}"
            print(f"\nSKIP postgres: {msg}")
            pytest.skip(msg)
    else:
        url, folder, why = _start_throwaway_postgres()
        if url is None:
            msg = f"no MEDIAFM_TEST_PG_URL and no local server could be started: {why}"
            print(f"\nSKIP postgres: {msg}")
            pytest.skip(msg)
    yield url
    if folder:
        _stop_throwaway_postgres(folder)


@pytest.fixture
def pg_database(pg_server_url):
    """A fresh database on the server: dict(url, host, port, user, password, db)."""
    import psycopg2

    name = f"mediafm_test_{uuid.uuid4().hex[:12]}"
    con = psycopg2.connect(pg_server_url, connect_timeout=5)
    con.autocommit = True
    with con.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    con.close()
    u = urlparse(pg_server_url)
    yield {
        "url": u._replace(path=f"/{name}").geturl(),
        "host": u.hostname,
        "port": str(u.port or 5432),
        "user": u.username or "postgres",
        "password": u.password or "",
        "db": name,
    }


# ------------------------------------------------------------------------------ S3 (moto)
@pytest.fixture(scope="session")
def s3_endpoint():
    """http://127.0.0.1:<port> of a moto S3 server running for the whole session."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_env(s3_endpoint, monkeypatch):
    """The AWS_* environment pointing at the loopback server (what a deployment sets)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    for key, value in S3_CREDS.items():
        monkeypatch.setenv(key, value)
    for key in (
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL_S3",
        "MEDIAFM_LANDING",
        "MEDIAFM_ROOT",
    ):
        monkeypatch.delenv(key, raising=False)
    return s3_endpoint


@pytest.fixture
def bucket(s3_env):
    """A new, empty bucket on the loopback server; returns its name."""
    from mediafm_core.storage.s3 import boto3_client

    name = f"mediafm-{uuid.uuid4().hex[:10]}"
    boto3_client().create_bucket(Bucket=name)
    return name
