"""The daemon drives the sensor: `dagster-daemon run` on a real SQLite instance notices a landed
title, adds its partition and launches exactly one cold-start run through the run queue, which
succeeds in its own process. Then the catalogue changes under it (issue 12): the title is
re-landed with another video (exactly one new run), and its partition is deleted while the folder
stays (re-added, and exactly one new run, not skipped as "already completed")."""

import time
import warnings

from tests.assets.conftest import write_tiny_titles
from tests.conftest import make_dagster_home
from tests.e2e.servers import BIN, REPO, start, stop

warnings.filterwarnings("ignore")


def wait_for_runs(instance, n: int, proc, log, timeout: float):
    from dagster import DagsterRunStatus, RunsFilter

    done = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = instance.get_runs(RunsFilter(tags={"mediafm/trigger": "title_arrival"}))
        if len(runs) >= n and all(r.status in done for r in runs):
            return runs
        assert proc.poll() is None, log.read_text()[-3000:]
        time.sleep(2)
    raise AssertionError(f"runs not finished in {timeout} s:\n{log.read_text()[-3000:]}")


def test_daemon_ticks_the_sensor_and_runs_one_cold_start_per_title(tmp_path, monkeypatch):
    import pyarrow.parquet as pq
    from dagster import AssetKey, DagsterInstance, DagsterRunStatus

    home = make_dagster_home(tmp_path)
    root = tmp_path / "storage"
    (tid,) = write_tiny_titles(root / "landing", 1, seconds=4.0, seed=3)
    (other,) = write_tiny_titles(tmp_path / "other", 1, seconds=8.0, seed=5)
    shots = root / "artefacts" / "shots" / f"{tid}.parquet"
    env = {"DAGSTER_HOME": str(home), "MEDIAFM_ROOT": str(root), "OMP_NUM_THREADS": "1"}
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    log = tmp_path / "daemon.log"
    with DagsterInstance.get() as instance:  # create the SQLite storages before the daemon does
        proc = start(
            [str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")], env, log
        )
        try:
            runs = wait_for_runs(instance, 1, proc, log, timeout=300)
            time.sleep(12)  # one more sensor tick: it must not launch a second run
            runs = wait_for_runs(instance, 1, proc, log, timeout=60)
            assert len(runs) == 1
            first_shots = pq.read_table(shots).num_rows
            # Re-landed with another video: exactly one new run, which replaces the artefacts.
            (root / "landing" / tid / "video.mp4").write_bytes(
                (tmp_path / "other" / other / "video.mp4").read_bytes()
            )
            relanded = wait_for_runs(instance, 2, proc, log, timeout=240)
            new_shots = pq.read_table(shots).num_rows
            # Partition deleted, folder still there: re-added, and one run that is not skipped.
            instance.delete_dynamic_partition("titles", tid)
            readded = wait_for_runs(instance, 3, proc, log, timeout=240)
            time.sleep(12)  # one more tick: nothing changed, nothing launched
            final = wait_for_runs(instance, 3, proc, log, timeout=60)
        finally:
            stop(proc)
        run = runs[0]
        assert run.status == DagsterRunStatus.SUCCESS, log.read_text()[-2000:]
        assert run.tags["dagster/partition"] == tid
        assert run.tags.get("dagster/sensor_name") == "title_arrival_sensor"
        assert len(relanded) == 2 and len(readded) == 3 and len(final) == 3
        assert all(r.status == DagsterRunStatus.SUCCESS for r in final), log.read_text()[-2000:]
        assert all(r.tags["dagster/partition"] == tid for r in final)
        assert len({r.tags["dagster/run_key"] for r in final}) == 3
        assert new_shots != first_shots  # the re-landed cut was ingested, not the old one
        assert pq.read_table(shots).num_rows == new_shots  # the third run kept it
        assert instance.get_dynamic_partitions("titles") == [tid]
        assert instance.get_materialized_partitions(AssetKey("fused_shots")) == {tid}


def test_daemon_retires_a_title_whose_folder_vanished(tmp_path, monkeypatch):
    """A `titles` partition with rows in both LanceDB tables and Parquet artefacts, whose landing
    folder is gone: the daemon's retirement sensor (grace 0 s here) removes the rows, moves the
    artefacts to retired/ and deletes the partition; the other title keeps everything."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from dagster import DagsterInstance

    from mediafm_core.storage.lance_store import LanceStore
    from mediafm_core.tables import vector_array

    home = make_dagster_home(tmp_path)
    root = tmp_path / "storage"
    (root / "landing" / "kept").mkdir(parents=True)
    (root / "landing" / "kept" / "metadata.json").write_text('{"name": "Kept"}')
    store = LanceStore(str(root / "lancedb"))
    vec = np.eye(4, 8, dtype=np.float32)
    for tid in ("gone", "kept"):
        store.replace_titles(
            "shot_embeddings",
            pa.table(
                {
                    "title_id": [tid] * 4,
                    "shot_index": np.arange(4),
                    "start_s": np.arange(4.0),
                    "end_s": np.arange(4.0) + 1,
                    "vector": vector_array(vec),
                    "model_version": ["m"] * 4,
                }
            ),
        )
        store.replace_titles(
            "title_embeddings",
            pa.table(
                {
                    "title_id": [tid],
                    "vector": vector_array(vec[:1]),
                    "model_version": ["m"],
                    "name": [tid],
                    "genres": [[]],
                    "tags": [[]],
                    "n_shots": [4],
                }
            ),
        )
        (root / "artefacts" / "shots").mkdir(parents=True, exist_ok=True)
        shots = root / "artefacts" / "shots" / f"{tid}.parquet"
        pq.write_table(pa.table({"title_id": [tid]}), shots)
    env = {
        "DAGSTER_HOME": str(home),
        "MEDIAFM_ROOT": str(root),
        "OMP_NUM_THREADS": "1",
        "MEDIAFM_RETIRE_AFTER_S": "0",
    }
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    log = tmp_path / "daemon.log"
    with DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("titles", ["gone", "kept"])
        proc = start(
            [str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")], env, log
        )
        try:
            deadline = time.monotonic() + 180
            while instance.get_dynamic_partitions("titles") != ["kept"]:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(2)
        finally:
            stop(proc)
    assert (
        store.count_rows("shot_embeddings", ["gone"]),
        store.count_rows("title_embeddings", ["gone"]),
    ) == (0, 0)
    assert (
        store.count_rows("shot_embeddings", ["kept"]),
        store.count_rows("title_embeddings", ["kept"]),
    ) == (4, 1)
    assert not (root / "artefacts" / "shots" / "gone.parquet").exists()
    assert (root / "retired" / "gone" / "shots.parquet").exists()
    assert (root / "artefacts" / "shots" / "kept.parquet").exists()
