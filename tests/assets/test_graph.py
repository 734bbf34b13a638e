"""The whole asset graph on tiny synthetic titles through a real (SQLite) Dagster instance:
arrival sensor -> one cold-start run per title (a corrupt title fails alone) -> encoder_checkpoint
out of process through Dagster Pipes -> contextual + title embeddings in LanceDB (several titles
in one run) -> linear probes. Then idempotence and automation after a new checkpoint."""

import os
import warnings

import pytest
from dagster import AssetKey, DagsterEventType, evaluate_automation_conditions

from tests.assets.conftest import write_corrupt_title, write_tiny_titles
from tests.conftest import make_dagster_home

warnings.filterwarnings("ignore")
TINY_TRAIN = {
    "ops": {
        "encoder_checkpoint": {
            "config": {
                "size": "tiny",
                "steps": 10,
                "eval_every": 5,
                "log_every": 5,
                "device": "cpu",
            }
        }
    }
}
CORRUPT = "zz_corrupt"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from dagster import DagsterInstance

    from mediafm_assets import local_runner as lr
    from mediafm_assets.definitions import build_definitions

    base = tmp_path_factory.mktemp("graph")
    home = make_dagster_home(base)
    old = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    landing = base / "storage" / "landing"
    good = write_tiny_titles(landing, 4, seconds=6.0)
    write_corrupt_title(landing, CORRUPT)
    defs = build_definitions(root=str(base / "storage"))
    with DagsterInstance.get() as instance:
        tick = lr.tick_sensor(defs, instance)
        runs = {r.partition_key: lr.execute_request(defs, instance, r) for r in tick.run_requests}
        ckpt = lr.materialize_unpartitioned(defs, instance, "encoder_checkpoint", TINY_TRAIN)
        serve = lr.materialize_titles(
            defs, instance, ["contextual_embeddings", "title_embeddings"], good
        )
        probes = lr.materialize_unpartitioned(defs, instance, "linear_probes")
        yield dict(
            defs=defs,
            instance=instance,
            good=good,
            runs=runs,
            ckpt=ckpt,
            serve=serve,
            probes=probes,
            root=base / "storage",
            tick=tick,
            landing=landing,
        )
    if old is None:
        os.environ.pop("DAGSTER_HOME", None)
    else:
        os.environ["DAGSTER_HOME"] = old


def latest(instance, asset):
    ev = instance.get_latest_materialization_event(AssetKey(asset))
    return ev.asset_materialization.metadata


def lance_store(world):
    from mediafm_core.storage.lance_store import LanceStore
    from mediafm_core.storage.layout import StorageLayout

    return LanceStore(StorageLayout(str(world["root"])).lancedb)


def test_one_run_per_title_and_the_corrupt_title_fails_alone(world):
    runs = world["runs"]
    assert sorted(runs) == sorted(world["good"] + [CORRUPT])
    assert all(runs[t].success for t in world["good"])
    assert not runs[CORRUPT].success
    assert CORRUPT in runs[CORRUPT].error
    assert "max_retries" not in runs[CORRUPT].error  # bad input fails at once, never retried
    restarts = world["instance"].all_logs(
        runs[CORRUPT].run_id, of_type=DagsterEventType.STEP_RESTARTED
    )
    assert restarts == []
    assert world["ckpt"].success and world["serve"].success and world["probes"].success
    shots_done = world["instance"].get_materialized_partitions(AssetKey("fused_shots"))
    assert shots_done == set(world["good"])


def test_shot_counts_agree_from_shots_to_lancedb(world):
    from mediafm_core.storage.sql import open_session

    con, missing = open_session(str(world["root"]))
    assert missing == []
    rows = dict(con.sql("SELECT title_id, count(*) FROM shots GROUP BY 1").fetchall())
    assert set(rows) == set(world["good"])
    got = dict(con.sql("SELECT title_id, count(*) FROM shot_embeddings GROUP BY 1").fetchall())
    assert got == rows
    for asset in ("video_embeddings", "audio_embeddings", "text_embeddings", "fused_shots"):
        path = world["root"] / "artefacts" / asset
        got = dict(
            con.sql(f"SELECT title_id, count(*) FROM '{path}/*.parquet' GROUP BY 1").fetchall()
        )
        assert got == rows, asset
    versions = con.sql("SELECT count(DISTINCT model_version) FROM shot_embeddings").fetchone()
    assert versions == (1,)
    assert con.sql("SELECT count(*) FROM title_embeddings").fetchone() == (4,)


def test_asset_checks_passed_and_metadata_is_useful(world):
    instance = world["instance"]
    graph = world["defs"].resolve_asset_graph()
    run_ids = [world["runs"][t].run_id for t in world["good"]] + [
        world["serve"].run_id,
        world["ckpt"].run_id,
    ]
    evaluated = {}
    for run_id in run_ids:
        for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
            data = entry.dagster_event.event_specific_data
            evaluated.setdefault(data.asset_check_key, []).append(data.passed)
    assert set(evaluated) == set(graph.asset_check_keys)
    assert all(all(v) for v in evaluated.values())
    video = latest(instance, "video_embeddings")
    assert video["width"].value > 0 and "encoder" in video and "random_init" in video
    ckpt = latest(instance, "encoder_checkpoint")
    assert ckpt["launcher"].value == "pipes"
    assert "| step | train_loss | val_loss |" in ckpt["loss_curve"].value
    assert ckpt["model_version"].value.startswith("mediafm-")
    ctx = latest(instance, "contextual_embeddings")
    assert ctx["model_version"].value == ckpt["model_version"].value
    probes = latest(instance, "linear_probes")
    table = probes["ablation"].value
    for row in ("video_only", "fused", "contextual", "clip_alone"):
        assert f"| {row} |" in table
    assert (world["root"] / "probes" / "probe_scores.parquet").exists()
    assert len(list((world["root"] / "probes" / "weights").glob("*.npz"))) == 5


def test_several_titles_in_one_run(world):
    from dagster import EventRecordsFilter

    instance = world["instance"]

    records = instance.get_event_records(
        EventRecordsFilter(
            DagsterEventType.ASSET_MATERIALIZATION, asset_key=AssetKey("contextual_embeddings")
        )
    )
    run_ids = {r.event_log_entry.run_id for r in records}
    assert run_ids == {world["serve"].run_id}  # four titles, one run (one model load)
    assert len(records) == 4


def test_rematerialising_a_title_keeps_lancedb_row_counts(world):
    from mediafm_assets import local_runner as lr

    store = lance_store(world)
    before = store.count_rows("shot_embeddings"), store.count_rows("title_embeddings")
    again = lr.materialize_titles(
        world["defs"],
        world["instance"],
        ["contextual_embeddings", "title_embeddings"],
        world["good"][:1],
    )
    assert again.success
    assert (store.count_rows("shot_embeddings"), store.count_rows("title_embeddings")) == before


def test_an_identical_checkpoint_changes_nothing_downstream(world):
    """Issue 18: encoder_checkpoint publishes its model_version (a hash of the weights) as its
    data version, so retraining to the same weights re-embeds nothing and leaves titles fresh."""
    from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
    from dagster._core.loader import LoadingContextForTest

    from mediafm_assets import local_runner as lr

    defs, instance = world["defs"], world["instance"]
    selection = defs.get_sensor_def("reembed_on_new_checkpoint").asset_selection
    quiet = evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=selection)
    before = latest(instance, "encoder_checkpoint")["model_version"].value
    assert lr.materialize_unpartitioned(defs, instance, "encoder_checkpoint", TINY_TRAIN).success
    assert latest(instance, "encoder_checkpoint")["model_version"].value == before
    again = evaluate_automation_conditions(
        defs=defs, instance=instance, asset_selection=selection, cursor=quiet.cursor
    )
    assert again.total_requested == 0
    resolver = CachingStaleStatusResolver(
        instance, defs.resolve_asset_graph(), LoadingContextForTest(instance)
    )
    status = resolver.get_status(AssetKey("contextual_embeddings"), world["good"][0])
    assert status == StaleStatus.FRESH


def test_new_checkpoint_makes_contextual_embeddings_stale(world):
    from mediafm_assets import local_runner as lr

    defs, instance = world["defs"], world["instance"]
    selection = defs.get_sensor_def("reembed_on_new_checkpoint").asset_selection
    quiet = evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=selection)
    assert quiet.get_num_requested(AssetKey("contextual_embeddings")) == 0
    cfg = {
        "ops": {
            "encoder_checkpoint": {
                "config": {**TINY_TRAIN["ops"]["encoder_checkpoint"]["config"], "seed": 1}
            }
        }
    }
    assert lr.materialize_unpartitioned(defs, instance, "encoder_checkpoint", cfg).success
    stale = evaluate_automation_conditions(
        defs=defs, instance=instance, asset_selection=selection, cursor=quiet.cursor
    )
    assert stale.get_num_requested(AssetKey("contextual_embeddings")) == 4


def test_a_title_landing_after_training_reaches_lancedb_in_its_cold_start_run(world):
    from mediafm_assets import local_runner as lr

    write_tiny_titles(world["landing"], 1, seconds=5.0, seed=9)
    tick = lr.tick_sensor(world["defs"], world["instance"])
    assert [r.partition_key for r in tick.run_requests] == ["synth_9_000"]
    outcome = lr.execute_request(world["defs"], world["instance"], tick.run_requests[0])
    assert outcome.success, outcome.error
    assert lance_store(world).count_rows("shot_embeddings", ["synth_9_000"]) > 0
    assert lance_store(world).count_rows("title_embeddings", ["synth_9_000"]) == 1


def md_picture(value: str) -> bytes:
    """The image bytes of a Markdown data-URL picture (what the Dagster UI shows)."""
    import base64
    import re

    match = re.fullmatch(r"!\[[^\]]*\]\(data:image/(png|webp);base64,([A-Za-z0-9+/=]+)\)", value)
    assert match, value[:80]
    return base64.b64decode(match.group(2))


def test_every_stored_shot_has_its_thumbnail_and_the_ui_gets_pictures(world):
    """Issue 13: thumbnails reach LanceDB with the vectors; `shots` gets a contact sheet per title
    (an observation: the thumbnails exist once the encoders ran); the training, probe and
    contextual pages carry their plots as Markdown images of tens of kB at most."""
    import io

    from PIL import Image

    instance, store = world["instance"], lance_store(world)
    for tid in world["good"]:
        rows = store.read("shot_embeddings", tid)
        thumbs = rows["thumbnail"].to_pylist()
        assert thumbs and all(t and t[8:12] == b"WEBP" for t in thumbs), tid
        assert Image.open(io.BytesIO(thumbs[0])).size == (32, 32)  # test-tiny: 32 px frames
    seen = {}
    for rec in instance.fetch_observations(AssetKey("shots"), limit=50).records:
        obs = rec.event_log_entry.dagster_event.asset_observation_data.asset_observation
        seen[obs.partition] = obs.metadata
    assert set(world["good"]) <= set(seen)
    sheet = md_picture(seen[world["good"][0]]["contact_sheet"].value)
    assert len(sheet) == seen[world["good"][0]]["contact_sheet_bytes"].value < 60_000
    ckpt, probes = latest(instance, "encoder_checkpoint"), latest(instance, "linear_probes")
    ctx = latest(instance, "contextual_embeddings")
    for value in (
        ckpt["loss_curve_plot"].value,
        probes["ablation_chart"].value,
        ctx["shot_map"].value,
    ):
        img = Image.open(io.BytesIO(md_picture(value)))
        assert img.width > 300 and len(md_picture(value)) < 60_000
    assert "minus fused, paired over folds" in probes["ablation_paired"].value


def test_a_full_re_embed_with_the_new_checkpoint_switches_the_serving_space(world):
    """Issue 12 part 5: the new checkpoint's space is built beside the serving one (which
    answered the cold start above) and switched in one step once every title is re-embedded."""
    from mediafm_assets import local_runner as lr
    from mediafm_assets.resources import StorageResource
    from mediafm_assets.serving.assets import load_current_model
    from mediafm_core.storage.queries import similar_titles

    before = lance_store(world).serving_space()
    old_rows = lance_store(world).count_rows("shot_embeddings")
    _, _, latest = load_current_model(StorageResource(root=str(world["root"])))
    assert before.model_version != latest  # the retrain above made a new space
    titles = sorted([*world["good"], "synth_9_000"])
    for batch in (world["good"], ["synth_9_000"]):  # the corrupt title sits between them
        out = lr.materialize_titles(
            world["defs"], world["instance"], ["contextual_embeddings", "title_embeddings"], batch
        )
        assert out.success, out.error
    store = lance_store(world)
    after = store.serving_space()
    assert after.model_version == latest and after.tables["shot_embeddings"] != "shot_embeddings"
    assert store.count_rows("shot_embeddings") == old_rows  # same shots, new space
    assert set(store.read("shot_embeddings")["model_version"].to_pylist()) == {latest}
    assert set(similar_titles(store, titles[0], k=5)["model_version"].to_pylist()) == {latest}
    # the previous space is kept whole (a rollback is one write of spaces.json)
    assert store.count_rows(before.table("shot_embeddings")) == old_rows
