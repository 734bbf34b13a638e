"""A retried training run resumes (issue 18), on a real (SQLite) Dagster instance: the first run
of `encoder_checkpoint` loses its trainer (killed with SIGKILL right after the trainer saved its
first resumable state); the re-executed run (Dagster re-execution: a new run, same root run)
trains in the same folder, keyed on the ROOT run id, and continues from that step instead of
starting over."""

import os
import re
import sys
import warnings

from dagster import DagsterEventType

from tests.assets.serving_world import titles, write_title

warnings.filterwarnings("ignore")
TRAIN = {
    "size": "tiny",
    "steps": 30,
    "eval_every": 5,
    "log_every": 5,
    "device": "cpu",
    "batch_size": 4,
    "window": 32,
    "publish_below_baselines": True,
}
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}
# Runs the real trainer; the first time, kills it (SIGKILL, as an OOM killer or a lost node
# would) as soon as it has written its first resumable state; later attempts run healthy.
KILLER = """#!/bin/sh
[ -f "$0.killed" ] && exec {py} "$@"
touch "$0.killed"
OUT=$({py} -c 'import json, os; print(json.loads(os.environ["MEDIAFM_TRAIN_SPEC"])["out_dir"])')
{py} "$@" &
pid=$!
while [ ! -f "$OUT/trainer_state.pt" ]; do
  kill -0 $pid 2>/dev/null || {{ wait $pid; exit $?; }}
  sleep 0.05
done
kill -9 $pid
exit 137
"""


def training_job():
    """The `retrain_encoder` job over the test's root, training through Pipes with the
    interpreter named by $MEDIAFM_TEST_PYTHON (reconstructable: Dagster re-executes it)."""
    from mediafm_assets.definitions import build_definitions
    from mediafm_assets.resources import TrainerLauncherResource

    root = os.environ["MEDIAFM_TEST_ROOT"]
    trainer = TrainerLauncherResource(
        mode="pipes", python=os.environ["MEDIAFM_TEST_PYTHON"], nproc_per_node=1
    )
    defs = build_definitions(root=root, resources={"trainer": trainer})
    return defs.resolve_job_def("retrain_encoder")


def logged_steps(instance, run_id) -> list[int]:
    """Training steps the trainer reported over Pipes in a run's logs ("step N train_loss")."""
    steps = []
    for e in instance.all_logs(run_id):
        m = re.search(r"\bstep (\d+) train_loss", e.user_message or "")
        if m:
            steps.append(int(m.group(1)))
    return steps


def test_a_retried_training_run_resumes_from_its_last_saved_step(tmp_path, instance, monkeypatch):
    from dagster import ReexecutionOptions, execute_job, reconstructable

    root = tmp_path / "storage"
    ids = titles(6)
    for i, t in enumerate(ids):
        write_title(root, t, 30 + 3 * i, seed=i)
    instance.add_dynamic_partitions("titles", ids)
    killer = tmp_path / "killer.sh"
    killer.write_text(KILLER.format(py=sys.executable))
    killer.chmod(0o755)
    monkeypatch.setenv("MEDIAFM_TEST_ROOT", str(root))
    monkeypatch.setenv("MEDIAFM_TEST_PYTHON", str(killer))
    config = {"ops": {"encoder_checkpoint": {"config": TRAIN}}, **IN_PROCESS}
    job = reconstructable(training_job)
    with execute_job(job, instance, run_config=config) as first:
        assert not first.success
        first_id = first.run_id
    folders = sorted(p.name for p in (root / "checkpoints").iterdir() if p.name.startswith("run-"))
    assert folders == [f"run-{first_id[:8]}"]  # keyed on the (root) run id
    assert max(logged_steps(instance, first_id), default=0) < TRAIN["steps"]  # killed part-way
    with execute_job(
        job, instance, reexecution_options=ReexecutionOptions.from_failure(first_id, instance)
    ) as retry:
        assert retry.success
        assert retry.dagster_run.root_run_id == first_id
        retry_id = retry.run_id
    steps = logged_steps(instance, retry_id)
    assert steps[-1] == TRAIN["steps"]
    assert min(steps) > TRAIN["eval_every"]  # continued after the saved step: no step 5 again
    assert (
        sorted(p.name for p in (root / "checkpoints").iterdir() if p.name.startswith("run-"))
        == folders
    )
    events = instance.all_logs(retry_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
    assert len(events) == 1
