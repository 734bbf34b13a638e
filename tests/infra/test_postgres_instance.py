"""The production instance (infra/dagster.yaml: Postgres runs/events/schedules, S3 compute logs,
queued runs with pools, run retries) built for real: DAGSTER_HOME holds the file unchanged and the
environment fills it in, pointing at a real PostgreSQL server on 127.0.0.1 and at moto's S3 server
(see conftest.py). A sensor tick and a title's `titles` + `shots` materialisation run against it;
the records are then read back with plain SQL from Postgres itself.
"""

import pytest
from dagster import AssetKey, DagsterInstance, RunRequest

from tests.conftest import make_dagster_home
from tests.infra.conftest import ROOT, write_tiny_titles

SELECTION = [AssetKey("titles"), AssetKey("shots")]


@pytest.fixture
def pg_instance(tmp_path, monkeypatch, pg_database, bucket):
    """DagsterInstance from infra/dagster.yaml, env pointing at the test Postgres database."""
    home = make_dagster_home(tmp_path, ROOT / "infra" / "dagster.yaml")
    env = {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": pg_database["host"],
        "DAGSTER_PG_PORT": pg_database["port"],
        "DAGSTER_PG_USERNAME": pg_database["user"],
        "DAGSTER_PG_PASSWORD": pg_database["password"],
        "DAGSTER_PG_DB": pg_database["db"],
        "MEDIAFM_LOG_BUCKET": bucket,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with DagsterInstance.get() as instance:
        yield instance


def sql(url: str, query: str, *args) -> list[tuple]:
    import psycopg2

    with psycopg2.connect(url) as con, con.cursor() as cur:
        cur.execute(query, args)
        return cur.fetchall()


def test_instance_uses_postgres_storage_and_s3_compute_logs(pg_instance):
    from dagster_aws.s3.compute_log_manager import S3ComputeLogManager
    from dagster_postgres import (
        PostgresEventLogStorage,
        PostgresRunStorage,
        PostgresScheduleStorage,
    )

    assert isinstance(pg_instance.run_storage, PostgresRunStorage)
    assert isinstance(pg_instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(pg_instance.schedule_storage, PostgresScheduleStorage)
    assert isinstance(pg_instance.compute_log_manager, S3ComputeLogManager)
    assert pg_instance.run_coordinator.__class__.__name__ == "QueuedRunCoordinator"
    assert pg_instance.run_retries_enabled and pg_instance.run_retries_max_retries == 2
    limits = pg_instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
    assert {"key": "mediafm/job", "value": "pretrain", "limit": 1} in limits


def test_sensor_tick_and_title_materialisation_are_recorded_in_postgres(
    pg_instance, pg_database, bucket, tmp_path
):
    from mediafm_assets import local_runner as lr
    from mediafm_assets.definitions import build_definitions

    root = tmp_path / "storage"
    (title,) = write_tiny_titles(root / "landing", 1, seconds=4.0, seed=3)
    defs = build_definitions(root=str(root))

    tick = lr.tick_sensor(defs, pg_instance)  # build_sensor_context(instance=pg_instance)
    assert [r.partition_key for r in tick.run_requests] == [title]
    assert tick.added_partitions == [title]
    request = tick.run_requests[0]
    run = lr.execute_request(
        defs,
        pg_instance,
        RunRequest(
            run_key=request.run_key,
            partition_key=title,
            asset_selection=SELECTION,
            tags=request.tags,
        ),
    )
    assert run.success, run.error

    url = pg_database["url"]
    assert sql(
        url, "SELECT partition FROM dynamic_partitions WHERE partitions_def_name = %s", "titles"
    ) == [(title,)]
    assert sql(url, "SELECT status FROM runs WHERE run_id = %s", run.run_id) == [("SUCCESS",)]
    materialised = sql(
        url,
        "SELECT asset_key, partition FROM event_logs WHERE run_id = %s "
        "AND dagster_event_type = 'ASSET_MATERIALIZATION' ORDER BY asset_key",
        run.run_id,
    )
    assert materialised == [('["shots"]', title), ('["titles"]', title)]
    shots = pg_instance.get_latest_materialization_event(AssetKey("shots"))
    assert shots.asset_materialization.metadata["shots"].value > 0

    from mediafm_core.storage.s3 import boto3_client

    logs = boto3_client().list_objects_v2(Bucket=bucket, Prefix="dagster-compute-logs/")
    keys = [o["Key"] for o in logs.get("Contents", [])]  # S3ComputeLogManager captured the run
    assert any(run.run_id in k and k.endswith(".out") for k in keys), keys

    again = lr.tick_sensor(defs, pg_instance)  # the partition set in Postgres is the memory
    assert again.run_requests == [] and again.skip_reason
