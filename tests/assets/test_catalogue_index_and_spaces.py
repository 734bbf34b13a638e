"""Issue 12 parts 5 and 6 through a real (SQLite) Dagster instance and real LanceDB tables:
- `ann_index` builds the index once the serving table is large enough and folds rows written
  since into it, with the state before/after and the seconds in its metadata; its on_cron
  condition requests it after embeddings changed;
- `encoder_checkpoint` over titles of two fused widths fails with one error naming the titles and
  widths, before anything is trained or moved (LATEST untouched)."""

import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mediafm_core.storage.lance_store import LanceStore, LanceStoreConfig
from mediafm_core.storage.layout import StorageLayout
from mediafm_core.tables import vector_array

warnings.filterwarnings("ignore")


def unit_rows(n, d, seed):
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def shot_rows(first, n, seed, per_title=50):
    idx = np.arange(n)
    return pa.table(
        {
            "title_id": [f"t{first + i // per_title:03d}" for i in idx],
            "shot_index": (idx % per_title).astype(np.int64),
            "start_s": idx * 1.0,
            "end_s": idx * 1.0 + 1.0,
            "vector": vector_array(unit_rows(n, 16, seed)),
            "model_version": ["m1"] * n,
        }
    )


def test_ann_index_asset_builds_then_keeps_the_index_current(tmp_path, instance):
    from dagster import AssetKey, materialize

    from mediafm_assets.resources import LanceDBResource
    from mediafm_assets.serving.assets import ann_index

    uri = StorageLayout(str(tmp_path)).lancedb
    lancedb = LanceDBResource(uri=uri, index_min_rows=1000)
    writer = LanceStore(LanceStoreConfig(uri, index_min_rows=10**9))  # writes never index
    writer.replace_titles("shot_embeddings", shot_rows(0, 1500, seed=0))

    def run():
        assert materialize([ann_index], resources={"lancedb": lancedb}, instance=instance).success
        ev = instance.get_latest_materialization_event(AssetKey("ann_index"))
        return {k: v.value for k, v in ev.asset_materialization.metadata.items()}

    first = run()["index"]["shot_embeddings"]
    assert first["action"] == "built"
    assert (first["before"]["indexed"], first["after"]["unindexed"]) == (0, 0)
    writer.replace_titles("shot_embeddings", shot_rows(0, 50, seed=1))  # a title re-embedded
    second = run()
    shots = second["index"]["shot_embeddings"]
    assert shots["action"] == "optimized"  # 3 % of the rows: folded into the partitions
    assert shots["before"]["unindexed"] == 50 and shots["after"]["unindexed"] == 0
    assert second["unindexed_rows_after"] == 0 and second["seconds"]["shot_embeddings"] >= 0
    writer.replace_titles("shot_embeddings", shot_rows(10, 150, seed=2))  # 3 more: 13 %
    third = run()["index"]["shot_embeddings"]
    assert third["action"] == "retrained" and third["after"]["unindexed"] == 0
    assert LanceStore(uri).count_rows("shot_embeddings") == 1500  # nothing lost


def test_ann_index_is_requested_on_its_cron_after_embeddings_changed(tmp_path, instance):
    import datetime

    from dagster import AssetKey, evaluate_automation_conditions

    from mediafm_assets.definitions import build_definitions

    defs = build_definitions(root=str(tmp_path))
    target = defs.get_sensor_def("ann_index_on_schedule").asset_selection
    start = datetime.datetime(2026, 1, 1, 5, 0)
    quiet = evaluate_automation_conditions(
        defs=defs, instance=instance, asset_selection=target, evaluation_time=start
    )
    assert quiet.get_num_requested(AssetKey("ann_index")) == 0
    instance.add_dynamic_partitions("titles", ["t000"])
    from dagster import AssetMaterialization

    for asset in ("contextual_embeddings", "title_embeddings"):
        instance.report_runless_asset_event(AssetMaterialization(asset, partition="t000"))
    later = evaluate_automation_conditions(
        defs=defs,
        instance=instance,
        asset_selection=target,
        cursor=quiet.cursor,
        evaluation_time=start + datetime.timedelta(hours=1, minutes=5),
    )
    assert later.get_num_requested(AssetKey("ann_index")) == 1


def fused_table(tid, n, d):
    return pa.table(
        {
            "title_id": [tid] * n,
            "shot_index": np.arange(n, dtype=np.int64),
            "fused": vector_array(unit_rows(n, d, 0)),
            "has_text": [True] * n,
        }
    )


def test_encoder_checkpoint_over_mixed_widths_names_the_titles_and_widths(tmp_path, instance):
    from mediafm_assets import local_runner as lr
    from mediafm_assets.definitions import build_definitions

    layout = StorageLayout(str(tmp_path))
    folder = tmp_path / "artefacts" / "fused_shots"
    folder.mkdir(parents=True)
    for tid, d in (("ep_01", 896), ("ep_02", 1920), ("ep_03", 896)):
        pq.write_table(fused_table(tid, 6, d), layout.artefact("fused_shots", tid))
    instance.add_dynamic_partitions("titles", ["ep_01", "ep_02", "ep_03"])
    defs = build_definitions(root=str(tmp_path))
    out = lr.materialize_unpartitioned(
        defs,
        instance,
        "encoder_checkpoint",
        {"ops": {"encoder_checkpoint": {"config": {"size": "tiny", "steps": 2, "device": "cpu"}}}},
    )
    assert not out.success
    assert "titles have mixed fused widths: 896 (ep_01, ep_03); 1920 (ep_02)" in out.error
    assert "fused_shots" in out.error  # the dataset is named: the step failed before a launch
    assert not (tmp_path / "checkpoints" / "LATEST").exists()
