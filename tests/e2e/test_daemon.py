"""The daemon drives the sensor: `dagster-daemon run` on a real SQLite instance notices a landed
title, adds its partition and launches exactly one cold-start run through the run queue, which
succeeds in its own process."""

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
    from dagster import AssetKey, DagsterInstance, DagsterRunStatus

    home = make_dagster_home(tmp_path)
    root = tmp_path / "storage"
    (tid,) = write_tiny_titles(root / "landing", 1, seconds=4.0, seed=3)
    env = {"DAGSTER_HOME": str(home), "MEDIAFM_ROOT": str(root), "OMP_NUM_THREADS": "1"}
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    log = tmp_path / "daemon.log"
    with DagsterInstance.get() as instance:  # create the SQLite storages before the daemon does
        proc = start([str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")],
                     env, log)  # fmt: skip
        try:
            runs = wait_for_runs(instance, 1, proc, log, timeout=300)
            time.sleep(12)  # one more sensor tick: it must not launch a second run
            runs = wait_for_runs(instance, 1, proc, log, timeout=60)
        finally:
            stop(proc)
        assert len(runs) == 1
        run = runs[0]
        assert run.status == DagsterRunStatus.SUCCESS, log.read_text()[-2000:]
        assert run.tags["dagster/partition"] == tid
        assert run.tags.get("dagster/sensor_name") == "title_arrival_sensor"
        assert instance.get_dynamic_partitions("titles") == [tid]
        assert instance.get_materialized_partitions(AssetKey("fused_shots")) == {tid}
