"""The whole graph with the storage root on S3, end to end, through a real Dagster instance:
landing zone `s3://<bucket>/landing`, storage root `s3://<bucket>/root`; arrival sensor ->
cold-start runs -> encoder_checkpoint -> contextual + title embeddings (LanceDB on S3) ->
linear probes, then queries reading the stored vectors back.

The S3 server is moto's server mode (`moto.server.ThreadedMotoServer(ip_address="127.0.0.1",
port=0)`, see conftest.py), the S3-compatible emulator available here: real HTTP on loopback, so
s3fs (UPath IO manager, sensor listing), boto3 (dagster-aws `S3Resource`) and LanceDB's Rust
object store all go over the wire as against S3 or MinIO. The media of a title is uploaded with
`S3Resource`'s client, `metadata.json` last. Media decoding needs local files, so the ingest
steps copy a title's folder once into a local cache ($MEDIAFM_CACHE; here a temp folder) —
documented in infra/README.md. Bad configurations (missing bucket, wrong credentials,
unreachable endpoint) each give one clear error before anything is written.
"""

import os
from pathlib import Path

import pytest
from dagster import AssetKey

from tests.e2e.servers import free_port
from tests.infra.conftest import write_tiny_titles

TINY_TRAIN = {
    "ops": {
        "encoder_checkpoint": {
            "config": {
                "size": "tiny",
                "steps": 6,
                "eval_every": 3,
                "log_every": 3,
                "device": "cpu",
                "batch_size": 2,
                "publish_below_baselines": True,
            }
        }
    }
}
SERVING = ["contextual_embeddings", "title_embeddings"]


def upload_title(client, local_dir: Path, bucket: str, prefix: str, ready: bool = True) -> None:
    """Upload one title folder like a real ingest would: media first, metadata.json last."""
    files = sorted(p for p in local_dir.rglob("*") if p.is_file() and p.name != "metadata.json")
    if ready:
        files.append(local_dir / "metadata.json")
    for path in files:
        key = f"{prefix}/{local_dir.name}/{path.relative_to(local_dir).as_posix()}"
        client.upload_file(str(path), bucket, key)


def keys(client, bucket: str, prefix: str) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


@pytest.fixture
def local_instance(instance, tmp_path, monkeypatch):
    """The SQLite instance of tests/conftest.py (the repo's dagster.yaml): this test is about
    the storage root."""
    monkeypatch.setenv("MEDIAFM_CACHE", str(tmp_path / "cache"))
    return instance


def test_graph_runs_end_to_end_on_s3(local_instance, bucket, tmp_path, monkeypatch):
    from dagster_aws.s3 import S3Resource

    from mediafm_assets import local_runner as lr
    from mediafm_assets.definitions import build_definitions
    from mediafm_core.storage.lance_store import LanceStore
    from mediafm_core.storage.queries import similar_shots

    s3 = S3Resource().get_client()  # endpoint + credentials from the environment
    staging = tmp_path / "staging"
    titles = write_tiny_titles(staging, 4, seconds=4.0, seed=5)
    ready = titles[:3]
    for tid in ready:
        upload_title(s3, staging / tid, bucket, "landing")
    upload_title(s3, staging / titles[3], bucket, "landing", ready=False)  # still copying
    for labels in sorted((staging / "labels").glob("clips_*.parquet")):  # probe labels
        s3.upload_file(str(labels), bucket, f"landing/labels/{labels.name}")
    root, landing = f"s3://{bucket}/root", f"s3://{bucket}/landing"
    monkeypatch.setenv("MEDIAFM_LANDING", landing)
    monkeypatch.setenv("MEDIAFM_TRAINER", "in_process")  # Pipes + torchrun: test_pipes_torchrun
    monkeypatch.chdir(tmp_path)  # any stray local write would land here, named "s3:"
    defs = build_definitions(root=root)
    instance = local_instance

    tick = lr.tick_sensor(defs, instance)  # lists the S3 landing prefix
    assert sorted(r.partition_key for r in tick.run_requests) == ready
    for request in tick.run_requests:
        outcome = lr.execute_request(defs, instance, request)
        assert outcome.success, outcome.error
    ckpt = lr.materialize_unpartitioned(defs, instance, "encoder_checkpoint", TINY_TRAIN)
    assert ckpt.success, ckpt.error
    serve = lr.materialize_titles(defs, instance, SERVING, ready)
    assert serve.success, serve.error
    probes = lr.materialize_unpartitioned(defs, instance, "linear_probes")
    assert probes.success, probes.error

    stored = keys(s3, bucket, "root/")
    for asset in (
        "titles",
        "shots",
        "video_embeddings",
        "audio_embeddings",
        "text_embeddings",
        "fused_shots",
        "contextual_embeddings",
    ):
        for tid in ready:
            assert f"root/artefacts/{asset}/{tid}.parquet" in stored, (asset, tid)
    version = s3.get_object(Bucket=bucket, Key="root/checkpoints/LATEST")["Body"].read().decode()
    assert any(
        k.startswith(f"root/checkpoints/{version}/") and k.endswith(".safetensors") for k in stored
    )
    assert any(k.startswith("root/lancedb/shot_embeddings.lance/_versions/") for k in stored)
    assert "root/probes/probe_scores.parquet" in stored
    assert len([k for k in stored if k.startswith("root/probes/weights/")]) == 5
    assert not (tmp_path / "s3:").exists() and not Path("s3:").exists()

    shots = instance.get_latest_materialization_events([AssetKey("shots")])
    assert shots  # recorded
    store = LanceStore(f"{root}/lancedb")  # LanceDB on S3 via storage_options from the env
    n_shots = {t: store.count_rows("shot_embeddings", [t]) for t in ready}
    artefact = {t: _parquet_rows(f"{bucket}/root/artefacts/shots/{t}.parquet") for t in ready}
    assert n_shots == artefact and min(n_shots.values()) > 0
    assert store.count_rows("title_embeddings") == 3
    hits = similar_shots(store, titles[0], k=3)  # whole title 0 as the clip: its shots left out
    assert hits.num_rows == min(3, n_shots[titles[1]] + n_shots[titles[2]])
    assert titles[0] not in set(hits["title_id"].to_pylist())
    assert set(hits["model_version"].to_pylist()) == {_model_version(store)}

    from mediafm_core.storage.sql import open_session

    monkeypatch.delenv("AWS_ALLOW_HTTP", raising=False)  # open_session sets it; undone after
    con, missing = open_session(root)  # the analyst's DuckDB session on the S3 root
    assert missing == []
    for view in ("shots", "shot_embeddings"):
        assert (
            dict(con.sql(f"SELECT title_id, count(*) FROM {view} GROUP BY 1").fetchall()) == n_shots
        ), view
    assert con.sql("SELECT count(*) FROM titles").fetchone() == (3,)
    assert con.sql("SELECT count(*) FROM probe_scores").fetchone()[0] > 0
    # thumbnails live in the Lance rows on S3 as they do locally (issue 13)
    assert con.sql(
        "SELECT count(*) FILTER (thumbnail IS NOT NULL), "
        "min(octet_length(thumbnail)) > 0 FROM shot_embeddings"
    ).fetchone() == (sum(n_shots.values()), True)
    from mediafm_core.similarity_page import similar_shots_page

    page = similar_shots_page(store, titles[0], None, None, hits)
    assert page.count("data:image/webp;base64,") == n_shots[titles[0]] + hits.num_rows

    again = lr.tick_sensor(defs, instance)  # the half-copied title is still not picked up
    assert again.run_requests == []


def _parquet_rows(path: str) -> int:
    """Row count read with pyarrow's own S3 filesystem (the analyst path)."""
    import pyarrow.parquet as pq

    from mediafm_core.storage.s3 import arrow_filesystem

    return pq.read_metadata(path, filesystem=arrow_filesystem()).num_rows


def _model_version(store) -> str:
    versions = set(store.read("shot_embeddings")["model_version"].to_pylist())
    assert len(versions) == 1
    return versions.pop()


# ------------------------------------------------------------------ bad configuration
def test_missing_bucket_is_one_clear_error(s3_env):
    from mediafm_core.errors import InputError
    from mediafm_core.storage.s3 import check_storage_root

    with pytest.raises(InputError) as err:
        check_storage_root("s3://no-such-bucket-here/root")
    assert "bucket 'no-such-bucket-here' does not exist" in str(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_wrong_credentials_are_one_clear_error(bucket, monkeypatch):
    from moto.core.authorization import enable_iam_authentication

    from mediafm_core.errors import InputError
    from mediafm_core.storage.s3 import check_storage_root

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
    with enable_iam_authentication(), pytest.raises(InputError) as err:
        check_storage_root(f"s3://{bucket}/root")
    message = str(err.value)
    assert "rejected the credentials" in message and "InvalidAccessKeyId" in message
    assert "wrong-secret" not in message  # secrets never reach errors


def test_unreachable_endpoint_is_one_clear_error(s3_env, monkeypatch):
    from mediafm_core.errors import InputError
    from mediafm_core.storage.s3 import check_storage_root

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(InputError) as err:
        check_storage_root("s3://any-bucket/root", timeout_s=2)
    assert "cannot reach the S3 endpoint http://127.0.0.1:" in str(err.value)


def test_a_run_with_a_missing_bucket_fails_at_its_first_step_and_writes_nothing(
    local_instance, s3_env, tmp_path, monkeypatch
):
    from mediafm_assets import local_runner as lr
    from mediafm_assets.definitions import build_definitions

    landing = tmp_path / "landing"
    (title,) = write_tiny_titles(landing, 1, seconds=3.0, seed=7)
    monkeypatch.setenv("MEDIAFM_LANDING", str(landing))
    monkeypatch.chdir(tmp_path)
    defs = build_definitions(root="s3://missing-bucket-xyz/root")
    local_instance.add_dynamic_partitions("titles", [title])
    outcome = lr.materialize_titles(defs, local_instance, ["titles"], [title])
    assert not outcome.success
    failures = [
        e.dagster_event
        for e in local_instance.all_logs(outcome.run_id)
        if e.dagster_event and e.dagster_event.event_type_value == "RESOURCE_INIT_FAILURE"
    ]
    assert len(failures) == 1  # resource set-up: before the step runs or writes
    err = failures[0].event_specific_data.error
    while err.cause is not None:
        err = err.cause
    assert err.message.strip() == (  # the whole message: one line, no stack trace inside
        "mediafm_core.errors.InputError: s3://missing-bucket-xyz/root: bucket "
        f"'missing-bucket-xyz' does not exist at {s3_env}; create it or fix MEDIAFM_ROOT"
    )
    assert not (tmp_path / "s3:").exists()


def test_s3_settings_come_from_the_environment_without_leaking_secrets(s3_env):
    from mediafm_core.storage.s3 import S3Settings, split_uri, storage_options_for

    settings = S3Settings.from_env()
    assert settings.endpoint_url == os.environ["AWS_ENDPOINT_URL"]
    assert "mediafm-test-secret" not in repr(settings)
    opts = storage_options_for("s3://b/p")
    assert opts["allow_http"] == "true" and opts["aws_endpoint"] == settings.endpoint_url
    assert opts["aws_secret_access_key"] == "mediafm-test-secret"
    assert storage_options_for("/some/folder") == {}
    assert split_uri("s3://bucket/a/b/") == ("bucket", "a/b")
    aws = S3Settings.from_env({"AWS_DEFAULT_REGION": "eu-west-1"})
    assert aws.endpoint_url is None and not aws.allow_http and aws.region == "eu-west-1"
    assert "aws_endpoint" not in aws.lance_storage_options()


def test_a_title_id_cannot_escape_the_local_landing_copy(s3_env, tmp_path, monkeypatch):
    from mediafm_core.errors import InputError
    from mediafm_core.storage.s3 import local_landing_root

    monkeypatch.setenv("MEDIAFM_CACHE", str(tmp_path / "cache"))
    assert local_landing_root("/data/landing", ["t1"]) == "/data/landing"  # local: as is
    for bad in ("../outside", "a/b", ".hidden"):
        with pytest.raises(InputError, match="not a valid title id"):
            local_landing_root("s3://bucket/landing", [bad])
    assert not (tmp_path / "outside").exists()


def test_arrival_sensor_keeps_its_fingerprints_under_an_s3_root(
    local_instance, bucket, monkeypatch
):
    """The sensor's snapshot lives under s3://<bucket>/root/sensors/ (one PUT per change); the
    cursor names it, an unchanged tick writes nothing, a re-landed title runs once."""
    import json

    from dagster_aws.s3 import S3Resource

    from mediafm_assets import local_runner as lr
    from mediafm_assets.definitions import build_definitions

    s3 = S3Resource().get_client()
    for tid in ("t_a", "t_b"):
        s3.put_object(Bucket=bucket, Key=f"landing/{tid}/video.mp4", Body=b"v1")
        s3.put_object(Bucket=bucket, Key=f"landing/{tid}/metadata.json", Body=b"{}")
    monkeypatch.setenv("MEDIAFM_LANDING", f"s3://{bucket}/landing")
    defs = build_definitions(root=f"s3://{bucket}/root")
    first = lr.tick_sensor(defs, local_instance)
    token = json.loads(first.cursor)["fingerprints"]
    assert keys(s3, bucket, "root/sensors/") == [f"root/sensors/title_arrival/{token}.parquet"]
    again = lr.tick_sensor(defs, local_instance, cursor=first.cursor)
    assert again.run_requests == [] and again.cursor == first.cursor
    s3.put_object(Bucket=bucket, Key="landing/t_b/video.mp4", Body=b"v2, re-landed")
    changed = lr.tick_sensor(defs, local_instance, cursor=again.cursor)
    assert [r.run_key.rsplit(":", 1)[0] for r in changed.run_requests] == ["cold-start:t_b:2"]
    assert len(keys(s3, bucket, "root/sensors/")) == 2  # the one read stays (a retried tick)
    assert lr.tick_sensor(defs, local_instance, cursor=changed.cursor).run_requests == []
