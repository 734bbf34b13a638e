"""Storage upkeep (issue 18): index upkeep compacts every LanceDB table and removes old versions,
so a store re-embedded many times stays near the size of a fresh one with the same rows, and
answers do not change. Real LanceDB tables in temp folders; `ann_index` on a real instance."""

import warnings

import numpy as np
import pyarrow as pa

from tests.store_rows import shot_rows

warnings.filterwarnings("ignore")
TITLES, SHOTS, DIM = [f"t{i}" for i in range(6)], 30, 32


def title_rows(tid: str, seed: int) -> tuple[pa.Table, pa.Table]:
    """(shot rows, title row) of one title, vectors seeded."""
    from mediafm_core.tables import vector_array

    shots = shot_rows(tid, SHOTS, d=DIM, seed=seed)
    mean = np.mean(np.stack(shots["vector"].to_pylist()), axis=0, keepdims=True)
    title = pa.table(
        {
            "title_id": [tid],
            "vector": vector_array(mean / np.linalg.norm(mean)),
            "model_version": ["m1"],
            "name": [tid],
            "genres": [["Drama"]],
            "tags": [[]],
            "n_shots": [SHOTS],
        }
    )
    return shots, title


def fill(store, rounds: int) -> None:
    """Write every title `rounds` times (re-embeddings); the last round's vectors stay."""
    for r in range(rounds):
        for i, t in enumerate(TITLES):
            shots, title = title_rows(t, seed=1000 * (rounds - 1 - r) + i)  # last: seed i
            store.replace_titles("shot_embeddings", shots)
            store.replace_titles("title_embeddings", title)


def answers(store) -> list:
    from mediafm_core.storage.queries import similar_shots, similar_titles

    shots = similar_shots(store, TITLES[0], k=10).select(["title_id", "shot_index"]).to_pylist()
    titles = similar_titles(store, TITLES[1], k=3)["title_id"].to_pylist()
    return [shots, titles]


def total_bytes(store) -> int:
    return sum(store.disk_bytes(t) for t in store.db.table_names())


def test_ten_re_embeddings_then_upkeep_stay_within_2x_of_a_fresh_store(tmp_path):
    from mediafm_core.storage.lance_store import LanceStore, LanceStoreConfig

    store = LanceStore(LanceStoreConfig(str(tmp_path / "old"), retain_versions_s=0))
    fill(store, 10)
    fresh = LanceStore(str(tmp_path / "fresh"))
    fill(fresh, 1)
    grown, want = total_bytes(store), total_bytes(fresh)
    assert grown > 4 * want  # every re-embedding left its fragments and manifests behind
    before = answers(store)
    assert before == answers(fresh)
    report = store.upkeep()
    assert set(report) == {"shot_embeddings", "title_embeddings"}  # neither is indexed
    assert report["shot_embeddings"]["before"]["versions"] > 60
    assert report["shot_embeddings"]["after"]["versions"] == 1
    assert total_bytes(store) <= 2 * want
    assert answers(store) == before
    assert store.count_rows("shot_embeddings") == len(TITLES) * SHOTS


def test_a_retention_period_keeps_recent_versions(tmp_path):
    from mediafm_core.storage.lance_store import LanceStore

    store = LanceStore(str(tmp_path / "db"))  # default retention: one hour
    fill(store, 3)
    report = store.upkeep()
    shots = report["shot_embeddings"]
    assert shots["after"]["versions"] >= shots["before"]["versions"]  # all younger: kept
    assert store.open("shot_embeddings").version > 1
    assert store.count_rows("shot_embeddings") == len(TITLES) * SHOTS


def test_ann_index_runs_upkeep_on_every_table_and_reports_the_disk_saved(tmp_path, instance):
    """Also an old space's table (not serving, never indexed) is compacted; the materialisation
    says what it cost and saved."""
    from dagster import AssetKey, materialize

    from mediafm_assets.resources import LanceDBResource
    from mediafm_assets.serving.assets import ann_index
    from mediafm_core.storage.lance_store import LanceStore

    uri = str(tmp_path / "lancedb")
    store = LanceStore(uri)
    fill(store, 4)
    old = store.db.create_table("shot_embeddings__old_d32", shot_rows("t0", SHOTS, d=DIM))
    for seed in range(3):
        old.add(shot_rows("t1", 5, d=DIM, seed=seed))
    result = materialize(
        [ann_index],
        instance=instance,
        resources={"lancedb": LanceDBResource(uri=uri, retain_versions_s=0)},
    )
    assert result.success
    meta = instance.get_latest_materialization_event(
        AssetKey("ann_index")
    ).asset_materialization.metadata
    upkeep = meta["upkeep"].value
    assert set(upkeep) == {"shot_embeddings", "title_embeddings", "shot_embeddings__old_d32"}
    assert all(u["after"]["versions"] == 1 for u in upkeep.values())
    assert (
        meta["disk_saved_bytes"].value
        == (meta["disk_bytes_before"].value - meta["disk_bytes_after"].value)
        > 0
    )
    assert meta["versions_removed"].value > 0 and meta["upkeep_seconds"].value >= 0
