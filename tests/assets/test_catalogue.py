"""A living catalogue (issue 12) on a real (SQLite) Dagster instance with real media: titles that
change after they landed, titles that vanish or are retired, a store seeded with duplicates, and a
trainer that lies. Runs execute in process against the instance (mediafm_assets/local_runner.py,
which skips a run key that already ran, as the sensor daemon does)."""

import json
import shutil
import warnings

import pytest
from dagster import AssetKey, DagsterEventType

from tests.assets.conftest import write_tiny_titles
from tests.conftest import make_dagster_home

warnings.filterwarnings("ignore")
SERVE = ["contextual_embeddings", "title_embeddings"]
# 6 steps over 3 titles do not beat the baselines: publish anyway (a smoke test of the graph)
TINY_TRAIN = {
    "ops": {
        "encoder_checkpoint": {
            "config": {
                "size": "tiny",
                "steps": 6,
                "eval_every": 3,
                "log_every": 3,
                "device": "cpu",
                "publish_below_baselines": True,
            }
        }
    }
}


def make_defs(root, **storage):
    """The code location over `root`, training in process; `storage` sets sensor knobs."""
    from mediafm_assets.definitions import build_definitions
    from mediafm_assets.resources import StorageResource, TrainerLauncherResource

    return build_definitions(
        root=str(root),
        resources={
            "storage": StorageResource(root=str(root), **storage),
            "trainer": TrainerLauncherResource(mode="in_process"),
        },
    )


@pytest.fixture(scope="module")
def cat(tmp_path_factory):
    """Three served titles (ingested by the arrival sensor's runs, a tiny checkpoint, contextual
    and title embeddings in LanceDB) on a module-wide instance."""
    import os

    from dagster import DagsterInstance

    from mediafm_assets import local_runner as lr

    base = tmp_path_factory.mktemp("catalogue")
    old = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(make_dagster_home(base))
    root = base / "storage"
    ids = write_tiny_titles(root / "landing", 3, seconds=8.0, seed=4)
    defs = make_defs(root)
    with DagsterInstance.get() as instance:
        tick = lr.tick_sensor(defs, instance)
        assert all(lr.execute_request(defs, instance, r).success for r in tick.run_requests)
        ckpt = lr.materialize_unpartitioned(defs, instance, "encoder_checkpoint", TINY_TRAIN)
        assert ckpt.success
        assert lr.materialize_titles(defs, instance, SERVE, ids).success
        yield dict(
            root=root,
            landing=root / "landing",
            ids=ids,
            defs=defs,
            instance=instance,
            cursor=tick.cursor,
            base=base,
        )
    if old is None:
        os.environ.pop("DAGSTER_HOME", None)
    else:
        os.environ["DAGSTER_HOME"] = old


def store_of(root):
    from mediafm_core.storage.lance_store import LanceStore
    from mediafm_core.storage.layout import StorageLayout

    return LanceStore(StorageLayout(str(root)).lancedb)


def snapshot(root, title_ids) -> dict:
    """{(table, title): sorted (key, vector) rows}: what must survive untouched."""
    store, out = store_of(root), {}
    for table in ("shot_embeddings", "title_embeddings"):
        for t in title_ids:
            rows = store.read(table, t).to_pylist()
            out[table, t] = sorted((r.get("shot_index", -1), tuple(r["vector"])) for r in rows)
    return out


def assert_close(a: dict, b: dict, atol: float = 1e-5) -> None:
    """Same tables, titles and keys; vectors equal up to float32 noise (re-embedded in a batch of
    another size)."""
    import numpy as np

    assert a.keys() == b.keys()
    for k in a:
        assert [r[0] for r in a[k]] == [r[0] for r in b[k]], k
        np.testing.assert_allclose([r[1] for r in a[k]], [r[1] for r in b[k]], atol=atol)


def shots_in_artefact(root, tid) -> int:
    import pyarrow.parquet as pq

    return pq.read_table(root / "artefacts" / "shots" / f"{tid}.parquet").num_rows


def tick(cat, name="title_arrival_sensor", defs=None):
    from mediafm_assets import local_runner as lr

    out = lr.tick_sensor(defs or cat["defs"], cat["instance"], cursor=cat.get(name), name=name)
    cat[name] = out.cursor
    return out


def preview_tick(cat, defs):
    """Evaluate the retirement sensor as a UI preview does: its result, nothing applied."""
    from dagster import build_sensor_context, partition_loading_context

    ctx = build_sensor_context(
        instance=cat["instance"],
        definitions=defs,
        cursor=cat.get("title_retirement_sensor"),
        resources=defs.resources,
    )
    with partition_loading_context(dynamic_partitions_store=cat["instance"]):
        return defs.get_sensor_def("title_retirement_sensor").evaluate_tick(ctx)


def retire(cat, defs=None):
    """A retirement sensor tick (cursor kept in `cat`) and the run it requests."""
    from tests.assets.conftest import retirement_tick

    out, runs = retirement_tick(
        defs or cat["defs"], cat["instance"], cursor=cat.get("title_retirement_sensor")
    )
    cat["title_retirement_sensor"] = out.cursor
    return out, runs


def test_a_relanded_title_is_rerun_once_and_its_rows_replaced(cat, tmp_path):
    from mediafm_assets import local_runner as lr

    cat["title_arrival_sensor"] = cat["cursor"]
    assert tick(cat).run_requests == []  # unchanged folders: no run
    tid, others = cat["ids"][0], cat["ids"][1:]
    keep = snapshot(cat["root"], others)
    old_shots = store_of(cat["root"]).count_rows("shot_embeddings", [tid])
    # Re-land the title with another, shorter video (a different cut).
    (new,) = write_tiny_titles(tmp_path, 1, seconds=3.0, seed=11)
    shutil.copy(tmp_path / new / "video.mp4", cat["landing"] / tid / "video.mp4")
    first = tick(cat)
    assert [r.partition_key for r in first.run_requests] == [tid]
    assert first.run_requests[0].run_key.startswith(f"cold-start:{tid}:2:")
    assert tick(cat).run_requests == []  # exactly one run for the change
    outcome = lr.execute_request(cat["defs"], cat["instance"], first.run_requests[0])
    assert outcome.success, outcome.error
    store = store_of(cat["root"])
    n = shots_in_artefact(cat["root"], tid)
    assert n != old_shots
    assert store.count_rows("shot_embeddings", [tid]) == n  # new rows replaced the old
    assert store.count_rows("title_embeddings", [tid]) == 1
    assert snapshot(cat["root"], others) == keep  # nothing else touched


def test_metadata_before_video_is_retried_when_the_copy_completes(cat, tmp_path):
    from mediafm_assets import local_runner as lr

    (tid,) = write_tiny_titles(tmp_path, 1, seconds=4.0, seed=12)
    keep = snapshot(cat["root"], cat["ids"])
    video = (tmp_path / tid / "video.mp4").read_bytes()
    folder = cat["landing"] / tid
    shutil.copytree(tmp_path / tid, folder)
    (folder / "video.mp4").write_bytes(video[: len(video) // 3])  # copy still running
    first = tick(cat)
    assert [r.partition_key for r in first.run_requests] == [tid]
    failed = lr.execute_request(cat["defs"], cat["instance"], first.run_requests[0])
    assert not failed.success and tid in failed.error
    assert not list((cat["root"] / "artefacts").glob(f"*/{tid}.parquet"))  # nothing half-written
    assert snapshot(cat["root"], cat["ids"]) == keep
    assert tick(cat).run_requests == []  # the same half copy is not retried every tick
    (folder / "video.mp4").write_bytes(video)  # the copy completes
    again = tick(cat)
    assert [r.partition_key for r in again.run_requests] == [tid]
    assert again.skipped_run_keys == []
    outcome = lr.execute_request(cat["defs"], cat["instance"], again.run_requests[0])
    assert outcome.success, outcome.error
    assert store_of(cat["root"]).count_rows("shot_embeddings", [tid]) == shots_in_artefact(
        cat["root"], tid
    )


def test_a_deleted_and_readded_partition_gets_a_run(cat):
    from mediafm_assets import local_runner as lr

    tid = cat["ids"][1]
    keep = snapshot(cat["root"], cat["ids"])
    cat["instance"].delete_dynamic_partition("titles", tid)
    out = tick(cat)
    assert out.added_partitions == [tid]
    assert [r.partition_key for r in out.run_requests] == [tid] and out.skipped_run_keys == []
    assert lr.execute_request(cat["defs"], cat["instance"], out.run_requests[0]).success
    assert tick(cat).run_requests == []
    assert_close(snapshot(cat["root"], cat["ids"]), keep)  # same content: same rows after re-run


def test_a_renamed_folder_retires_the_old_id_after_the_grace_period(cat):
    from mediafm_assets import local_runner as lr
    from mediafm_core.storage.queries import similar_shots, similar_titles
    from mediafm_core.storage.sql import open_session

    old = cat["ids"][2]
    new = old.replace("synth_", "renamed_")
    others = [t for t in cat["ids"] if t != old]
    keep = snapshot(cat["root"], others)
    (cat["landing"] / old).rename(cat["landing"] / new)
    arrival = tick(cat)
    assert [r.partition_key for r in arrival.run_requests] == [new]
    assert lr.execute_request(cat["defs"], cat["instance"], arrival.run_requests[0]).success
    waiting = tick(cat, "title_retirement_sensor")  # default grace: one hour
    assert waiting.run_requests == [] and "1 titles missing" in waiting.skip_reason
    assert store_of(cat["root"]).count_rows("shot_embeddings", [old]) > 0
    everything = snapshot(cat["root"], [*others, old])
    files = sorted(p.name for p in (cat["root"] / "artefacts").glob(f"*/{old}.parquet"))
    defs = make_defs(cat["root"], retire_after_s=0)
    preview = preview_tick(cat, defs)  # what the UI's "Preview tick" runs: nothing is applied
    assert [r.tags["mediafm/titles"] for r in preview.run_requests] == [old]
    assert snapshot(cat["root"], [*others, old]) == everything  # every table unchanged
    assert sorted(p.name for p in (cat["root"] / "artefacts").glob(f"*/{old}.parquet")) == files
    assert old in cat["instance"].get_dynamic_partitions("titles")
    done, (run,) = retire(cat, defs=defs)
    assert run.success and [r.tags["mediafm/titles"] for r in done.run_requests] == [old]
    logs = [e.user_message for e in cat["instance"].all_logs(run.run_id)]
    assert any(m.startswith(f"retired {old} (landing folder vanished)") for m in logs)
    assert old not in cat["instance"].get_dynamic_partitions("titles")
    store = store_of(cat["root"])
    assert store.count_rows("shot_embeddings", [old]) == 0
    assert store.count_rows("title_embeddings", [old]) == 0
    assert not list((cat["root"] / "artefacts").glob(f"*/{old}.parquet"))
    kept = cat["root"] / "retired" / old
    assert (kept / "shots.parquet").exists() and (kept / "fused_shots.parquet").exists()
    assert json.loads((kept / "RETIRED.json").read_text())["reason"] == "landing folder vanished"
    # No answer shows the retired id: similar, similar-titles, SQL views.
    assert old not in similar_titles(store, new, k=10)["title_id"].to_pylist()
    assert old not in similar_shots(store, new, k=50)["title_id"].to_pylist()
    con, _ = open_session(str(cat["root"]))
    for view in ("titles", "shots", "shot_embeddings", "title_embeddings"):
        ids = {r[0] for r in con.sql(f"SELECT DISTINCT title_id FROM {view}").fetchall()}
        assert old not in ids and new in ids, view
    assert snapshot(cat["root"], others) == keep  # nothing else lost
    assert tick(cat).run_requests == []  # the arrival sensor does not bring it back


def test_mediafm_retire_takes_a_title_out_and_the_sensor_drops_its_partition(cat, capsys):
    from mediafm_core.cli import main

    tid = cat["ids"][1]
    others = [t for t in cat["ids"][:2] if t != tid]
    keep = snapshot(cat["root"], others)
    late = store_of(cat["root"]).read("shot_embeddings", tid)  # a run in flight has these
    assert main(["retire", tid, "--root", str(cat["root"])]) == 0
    assert f"retired {tid}" in capsys.readouterr().out
    assert store_of(cat["root"]).count_rows("shot_embeddings", [tid]) == 0
    store_of(cat["root"]).replace_titles("shot_embeddings", late)  # ... and writes them now
    out, (run,) = retire(cat)
    assert run.success and tid not in cat["instance"].get_dynamic_partitions("titles")
    assert store_of(cat["root"]).count_rows("shot_embeddings", [tid]) == 0  # swept again
    assert tick(cat).run_requests == []  # folder still there, unchanged: stays retired
    assert snapshot(cat["root"], others) == keep
    capsys.readouterr()
    assert main(["retire", "no_such_title", "--root", str(cat["root"])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "no_such_title" in err[0] and "not in the store" in err[0]


def test_one_run_repairs_a_title_seeded_with_duplicates(cat):
    from mediafm_assets import local_runner as lr

    tid = cat["ids"][0]
    store = store_of(cat["root"])
    others = [t for t in cat["ids"] if t != tid and store.count_rows("shot_embeddings", [t])]
    keep = snapshot(cat["root"], others)
    n = store.count_rows("shot_embeddings", [tid])
    store.open("shot_embeddings").add(store.read("shot_embeddings", tid))  # 2x rows
    store.open("title_embeddings").add(store.read("title_embeddings", tid))
    assert store.count_rows("shot_embeddings", [tid]) == 2 * n
    run = lr.materialize_titles(cat["defs"], cat["instance"], SERVE, [tid])
    assert run.success, run.error
    rows = store.read("shot_embeddings", tid)["shot_index"].to_pylist()
    assert sorted(rows) == list(range(n))  # exactly one row per key
    assert store.count_rows("title_embeddings", [tid]) == 1
    checks = [
        e.dagster_event.event_specific_data
        for e in cat["instance"].all_logs(
            run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
        )
    ]
    lance = [c.passed for c in checks if c.asset_check_key.name == "lancedb_rows_match"]
    assert lance == [True, True]
    assert snapshot(cat["root"], others) == keep


def _fake_trainer(path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return str(path)


@pytest.mark.parametrize("case", ["silent_exit_0", "out_of_memory"])
def test_a_trainer_that_lies_or_fails_never_moves_latest(cat, tmp_path, case):
    from mediafm_assets import local_runner as lr
    from mediafm_assets.definitions import build_definitions
    from mediafm_assets.resources import StorageResource, TrainerLauncherResource

    body = {
        "silent_exit_0": "exit 0",
        "out_of_memory": "echo 'step 1 train_loss 0.93' >&2\n"
        "echo 'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate"
        " 20.00 GiB' >&2\nexit 1",
    }[case]
    python = _fake_trainer(tmp_path / "trainer.sh", body)
    defs = build_definitions(
        root=str(cat["root"]),
        resources={
            "storage": StorageResource(root=str(cat["root"])),
            "trainer": TrainerLauncherResource(mode="pipes", python=python, nproc_per_node=1),
        },
    )
    storage = StorageResource(root=str(cat["root"]))
    before = storage.current_model_version()
    out = lr.materialize_unpartitioned(defs, cat["instance"], "encoder_checkpoint", TINY_TRAIN)
    assert not out.success
    assert storage.current_model_version() == before  # the served model is untouched
    assert (cat["root"] / "checkpoints" / before / "model.safetensors").exists()
    if case == "silent_exit_0":
        assert "without reporting its metrics" in out.error
    else:
        assert "CUDA out of memory" in out.error and "step 1 train_loss" in out.error
    assert cat["instance"].get_latest_materialization_event(AssetKey("encoder_checkpoint"))


@pytest.mark.parametrize("publish_anyway", [False, True])
def test_a_checkpoint_that_does_not_beat_the_baselines_never_moves_latest(cat, publish_anyway):
    """Issue 18: an (effectively) untrained encoder loses to the mean-shot and neighbour
    baselines; its blocking check fails and LATEST stays, unless a smoke test asks otherwise."""
    from mediafm_assets import local_runner as lr
    from mediafm_assets.resources import StorageResource

    storage = StorageResource(root=str(cat["root"]))
    before = storage.current_model_version()
    cfg = {
        "ops": {
            "encoder_checkpoint": {
                "config": {
                    **TINY_TRAIN["ops"]["encoder_checkpoint"]["config"],
                    "steps": 2,
                    "eval_every": 1,
                    "optimizer": "adamw",
                    "lr": 1e-9,
                    "publish_below_baselines": publish_anyway,
                }
            }
        }
    }
    out = lr.materialize_unpartitioned(cat["defs"], cat["instance"], "encoder_checkpoint", cfg)
    checks = [
        e.dagster_event.event_specific_data
        for e in cat["instance"].all_logs(
            out.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
        )
    ]
    (gate,) = [c for c in checks if c.asset_check_key.name == "beats_baselines"]
    assert gate.metadata["beats_baselines"].value is False
    assert ">=" in gate.metadata["problem"].value
    assert gate.passed is publish_anyway  # accepted by the operator, or blocking
    meta = (
        cat["instance"]
        .get_latest_materialization_event(AssetKey("encoder_checkpoint"))
        .asset_materialization.metadata
    )
    assert meta["latest_moved"].value is publish_anyway
    if publish_anyway:
        assert out.success and storage.current_model_version() != before
        storage.set_current(before)  # the other tests serve the fixture's checkpoint
    else:
        assert not out.success and "beats_baselines" in out.error
        assert storage.current_model_version() == before
