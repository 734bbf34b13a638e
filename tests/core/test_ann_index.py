"""The ANN index follows the data (issue 12, part 6), on real LanceDB tables and DuckDB: no index
a type cannot train on the table's size (IVF_PQ on 111 rows left an empty index that DuckDB's
lance_vector_search could not open), settings planned from the size, rows written after the build
folded in by `refresh_index`, partitions retrained once the table has doubled. Every row stays
searchable throughout (counts and exact hits checked after each step)."""

import numpy as np
import pyarrow as pa

from mediafm_core.storage.lance_store import (
    LanceStore,
    LanceStoreConfig,
    index_plan,
    nprobes_for,
)
from mediafm_core.tables import vector_array


def unit_rows(n, d, seed):
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def rows(n, d=16, seed=0, first_title=0, per_title=37):
    idx = np.arange(n)
    return pa.table(
        {
            "title_id": [f"t{first_title + i // per_title:04d}" for i in idx],
            "shot_index": (idx % per_title).astype(np.int64),
            "start_s": idx * 1.0,
            "end_s": idx * 1.0 + 1.0,
            "vector": vector_array(unit_rows(n, d, seed)),
            "model_version": ["m"] * n,
        }
    )


def test_ivf_pq_is_not_built_on_111_rows_and_duckdb_still_searches(tmp_path):
    from mediafm_core.storage.sql import connect, literal

    store = LanceStore(
        LanceStoreConfig(str(tmp_path / "lancedb"), index_min_rows=50, index_type="IVF_PQ")
    )
    table = rows(111)
    store.replace_titles("shot_embeddings", table)
    assert not store.maybe_index("shot_embeddings", force=True)
    assert not store.has_index("shot_embeddings")
    assert not (tmp_path / "lancedb" / "shot_embeddings.lance" / "_indices").exists()
    q = unit_rows(111, 16, 0)[7].tolist()
    path = literal(str(tmp_path / "lancedb" / "shot_embeddings.lance"))
    top = (
        connect()
        .sql(
            f"SELECT title_id, shot_index FROM lance_vector_search({path}, 'vector', "
            f"{q}::FLOAT[], k := 3)"
        )
        .fetchall()
    )
    assert top[0] == ("t0000", 7) and len(top) == 3


def test_index_settings_are_planned_from_the_table_size():
    assert index_plan(111, 16, "IVF_PQ") is None  # PQ codebooks need 256 rows
    assert index_plan(255, 16, "IVF_SQ") is None  # exact search below 256 rows
    assert index_plan(50_000, 256, "IVF_SQ", min_rows=100_000) is None
    small, big = index_plan(10_000, 256, "IVF_SQ"), index_plan(1_000_000, 256, "IVF_SQ")
    assert small.num_partitions < big.num_partitions  # more rows, more partitions
    assert 10_000 / small.num_partitions >= 256 and 1_000_000 / big.num_partitions >= 256
    pq = index_plan(300, 16, "IVF_PQ")
    assert pq.num_partitions == 1 and pq.num_sub_vectors == 4
    assert nprobes_for(20) == 20 and nprobes_for(4000) < 4000  # a share, at least the minimum
    assert nprobes_for(4000) > nprobes_for(1000)


def test_refresh_index_folds_new_rows_in_and_retrains_after_growth(tmp_path):
    store = LanceStore(LanceStoreConfig(str(tmp_path / "lancedb"), index_min_rows=1000))
    base = rows(1200, seed=1)
    store.replace_titles("shot_embeddings", base)
    assert store.has_index("shot_embeddings")
    state = store.index_state("shot_embeddings")
    assert (state["indexed"], state["unindexed"]) == (1200, 0)
    store.replace_titles("shot_embeddings", rows(37, seed=2))  # one title re-embedded (3 %)
    assert store.index_state("shot_embeddings")["unindexed"] == 37
    done = store.refresh_index("shot_embeddings")
    assert done["action"] == "optimized" and done["after"]["unindexed"] == 0
    assert done["after"]["rows"] == 1200
    hit = store.search("shot_embeddings", unit_rows(37, 16, 2)[5], k=1)
    assert (hit["title_id"][0].as_py(), hit["shot_index"][0].as_py()) == ("t0000", 5)
    store.replace_titles("shot_embeddings", rows(111, seed=6))  # 3 titles: 3 + 9 % since training
    done = store.refresh_index("shot_embeddings")
    assert done["action"] == "retrained" and done["after"]["unindexed"] == 0
    hit = store.search("shot_embeddings", unit_rows(111, 16, 6)[40], k=1)
    assert (hit["title_id"][0].as_py(), hit["shot_index"][0].as_py()) == ("t0001", 3)
    store.replace_titles("shot_embeddings", rows(1500, seed=3, first_title=100))
    done = store.refresh_index("shot_embeddings")
    assert done["action"] == "retrained" and done["after"]["unindexed"] == 0
    assert done["after"]["rows"] == 2700


def test_search_probes_a_planned_share_of_the_partitions(tmp_path):
    store = LanceStore(LanceStoreConfig(str(tmp_path / "lancedb"), index_min_rows=1000))
    store.replace_titles("shot_embeddings", rows(3000, seed=4))
    table = store.open("shot_embeddings")
    partitions = store._partitions_of(table)
    assert partitions == min(82, 3000 // 256)  # titles, at most rows/256 (k-means merges)
    exact = unit_rows(3000, 16, 4)
    hits = 0
    for q in unit_rows(30, 16, 5):
        truth = set(np.argsort(-(exact @ q))[:10])
        got = store.search("shot_embeddings", q, k=10)
        found = {
            int(t[1:]) * 37 + s
            for t, s in zip(got["title_id"].to_pylist(), got["shot_index"].to_pylist())
        }
        hits += len(truth & found)
    assert hits / 300 >= 0.95
