"""LanceDB store and DuckDB session on temp folders: one-commit per-title replace, ANN index,
search, SQL views with the lance extension, and the `mediafm sql|similar|similar-titles` CLI."""

import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from mediafm_core.errors import InputError
from mediafm_core.storage.lance_store import LanceStore, LanceStoreConfig
from mediafm_core.storage.layout import StorageLayout
from mediafm_core.tables import vector_array
from tests.store_rows import shot_rows, unit_rows


def title_rows(title_id, vector, genres=("Drama",)):
    return pa.table(
        {
            "title_id": [title_id],
            "vector": vector_array(vector[None, :]),
            "model_version": ["m1"],
            "name": [title_id.upper()],
            "genres": [list(genres)],
            "tags": [[]],
            "n_shots": [3],
        }
    )


def test_replacing_a_title_is_one_commit_and_never_duplicates(tmp_path):
    store = LanceStore(str(tmp_path / "lancedb"))
    store.replace_titles("shot_embeddings", shot_rows("a", 10))
    store.replace_titles("shot_embeddings", shot_rows("b", 7, seed=1))
    before = store.open("shot_embeddings").version
    counts = store.replace_titles("shot_embeddings", shot_rows("a", 10, seed=2))
    assert store.open("shot_embeddings").version == before + 1  # one commit
    assert counts["updated"] == 10 and counts["inserted"] == 0
    assert store.count_rows("shot_embeddings") == 17
    new = np.stack(store.read("shot_embeddings", "a")["vector"].to_numpy(zero_copy_only=False))
    np.testing.assert_allclose(new, unit_rows(10, 16, 2))
    # A re-detected title with fewer shots loses its stale rows in the same commit.
    counts = store.replace_titles("shot_embeddings", shot_rows("a", 6, seed=3))
    assert counts["deleted"] == 4
    assert store.count_rows("shot_embeddings", ["a"]) == 6
    assert store.count_rows("shot_embeddings", ["b"]) == 7


def test_a_wrong_vector_width_is_refused_with_the_table_named(tmp_path):
    store = LanceStore(str(tmp_path / "lancedb"))
    store.replace_titles("shot_embeddings__m1_d16", shot_rows("a", 4, d=16))
    with pytest.raises(InputError, match="vector width 8"):  # a physical table has one width
        store.replace_titles("shot_embeddings__m1_d16", shot_rows("b", 4, d=8))
    assert store.count_rows("shot_embeddings__m1_d16") == 4
    # through the logical table, another width is another embedding space, written beside
    store.replace_titles("shot_embeddings", shot_rows("a", 4, d=16))
    store.replace_titles("shot_embeddings", shot_rows("b", 4, d=8))
    assert store.count_rows("shot_embeddings") == 4
    assert store.count_rows("shot_embeddings__m1_d8") == 4


def test_ann_index_is_built_when_large_and_keeps_recall(tmp_path):
    cfg = LanceStoreConfig(
        str(tmp_path / "lancedb"), index_min_rows=2000, nprobes=16, refine_factor=20
    )
    store = LanceStore(cfg)
    vecs = unit_rows(3000, 32, 7)
    rows = pa.table(
        {
            "title_id": [f"t{i // 100}" for i in range(3000)],
            "shot_index": np.arange(3000) % 100,
            "start_s": np.zeros(3000),
            "end_s": np.ones(3000),
            "vector": vector_array(vecs),
            "model_version": ["m"] * 3000,
        }
    )
    store.replace_titles("shot_embeddings", rows.slice(0, 1000))
    assert not store.has_index("shot_embeddings")  # small: exact search
    store.replace_titles("shot_embeddings", rows.slice(1000))
    assert store.has_index("shot_embeddings")
    queries = unit_rows(20, 32, 8)
    hits = 0
    for q in queries:
        exact = set(np.argsort(-(vecs @ q))[:10])
        got = store.search("shot_embeddings", q, k=10)
        ids = {
            int(t[1:]) * 100 + int(s)
            for t, s in zip(got["title_id"].to_pylist(), got["shot_index"].to_pylist())
        }
        hits += len(exact & ids)
    assert hits / 200 >= 0.9


def _fill_store(root):
    layout = StorageLayout(str(root))
    store = LanceStore(layout.lancedb)
    store.replace_titles("shot_embeddings", shot_rows("a", 5, seed=0))
    store.replace_titles("shot_embeddings", shot_rows("b", 5, seed=1))
    va, vb, vc = unit_rows(3, 16, 5)
    store.replace_titles(
        "title_embeddings",
        pa.concat_tables(
            [
                title_rows("a", va, ("Drama",)),
                title_rows("b", vb, ("Comedy", "Drama")),
                title_rows("c", vc, ("Horror",)),
            ]
        ),
    )
    return store


def test_similar_queries_use_the_clip_in_context_and_skip_the_query(tmp_path):
    from mediafm_core.storage.queries import clip_vector, similar_shots, similar_titles

    store = _fill_store(tmp_path)
    vec, span = clip_vector(store, "a", 2.5, 6.0)  # overlaps shots 1 and 2
    assert list(span) == [1, 2]
    shots = store.read("shot_embeddings", "a")
    manual = np.stack(shots["vector"].to_numpy(zero_copy_only=False)[1:3]).mean(0)
    np.testing.assert_allclose(vec, manual / np.linalg.norm(manual), atol=1e-6)
    hits = similar_shots(store, "a", 2.5, 6.0, k=4)
    assert hits.num_rows == 4
    assert not any(
        t == "a" and s in (1, 2)
        for t, s in zip(hits["title_id"].to_pylist(), hits["shot_index"].to_pylist())
    )
    titles = similar_titles(store, "a", k=5)
    assert sorted(titles["title_id"].to_pylist()) == ["b", "c"]
    with pytest.raises(InputError, match="no shots overlap"):
        clip_vector(store, "a", 100.0, 200.0)


def test_sql_session_views_and_lance_vector_search(tmp_path):
    from mediafm_core.storage.sql import open_session

    _fill_store(tmp_path)
    con, missing = open_session(str(tmp_path))
    assert set(missing) == {"titles", "shots", "probe_scores"}
    counts = con.sql("SELECT title_id, count(*) FROM shot_embeddings GROUP BY 1 ORDER BY 1")
    assert counts.fetchall() == [("a", 5), ("b", 5)]
    q = unit_rows(5, 16, 0)[3].tolist()  # shot 3 of title a
    lance = f"{tmp_path}/lancedb/shot_embeddings.lance"
    top = con.sql(
        f"SELECT title_id, shot_index FROM lance_vector_search('{lance}', 'vector', "
        f"{q}::FLOAT[], k := 3)"
    ).fetchall()
    assert top[0] == ("a", 3) and len(top) == 3
    genres = con.sql(
        "SELECT g, count(*) FROM (SELECT unnest(genres) g FROM title_embeddings) "
        "GROUP BY g ORDER BY 2 DESC, 1"
    ).fetchall()
    assert genres[0] == ("Drama", 2)


def test_mediafm_sql_and_similar_cli(tmp_path):
    _fill_store(tmp_path)
    run = [sys.executable, "-m", "mediafm_core"]
    out = subprocess.run(
        [*run, "sql", "--root", str(tmp_path), "SELECT count(*) AS n FROM shot_embeddings"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["n", "10"]
    out = subprocess.run(
        [*run, "similar-titles", "--root", str(tmp_path), "--title", "b", "-k", "1"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.splitlines()[1].split()[0] in {"a", "c"}
    piped = subprocess.run(
        [*run, "sql", "--root", str(tmp_path)],
        input="SELECT 40 +\n2 AS x;\n",
        capture_output=True,
        text=True,
        check=True,
    )
    assert piped.stdout.split() == ["x", "42"]
    bad = subprocess.run(
        [*run, "similar", "--root", str(tmp_path), "--title", "zzz"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "zzz" in bad.stderr


def _race_writer(uri: str, rounds: int, barrier, results) -> None:
    """One of several processes: each round, wait for the others, then write the round's title."""
    store = LanceStore(uri)
    for r in range(rounds):
        barrier.wait(timeout=60)
        results.put(store.replace_titles("shot_embeddings", shot_rows(f"new_{r}", 10, seed=r)))


def test_three_synchronised_writers_of_a_new_title_leave_one_row_per_key(tmp_path):
    """Issue 12: merge_insert alone let 3 racing writers of the same NEW keys commit 3x rows
    (lance-format/lance#4585); the per-table write lock makes each write a true replace."""
    import multiprocessing as mp

    uri = str(tmp_path / "lancedb")
    store = LanceStore(uri)
    store.replace_titles("shot_embeddings", shot_rows("kept", 5, seed=99))
    kept = store.read("shot_embeddings", "kept")
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(3), ctx.Queue()
    procs = [ctx.Process(target=_race_writer, args=(uri, 6, barrier, results)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=180)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    writes = [results.get(timeout=5) for _ in range(18)]
    assert sum(w["inserted"] for w in writes) == 60  # each round's 10 keys inserted once
    for r in range(6):
        rows = store.read("shot_embeddings", f"new_{r}")["shot_index"].to_pylist()
        assert sorted(rows) == list(range(10)), r
    assert store.read("shot_embeddings", "kept").equals(kept)  # nothing else touched


def test_one_write_repairs_a_title_the_table_holds_twice(tmp_path):
    store = LanceStore(str(tmp_path / "lancedb"))
    store.replace_titles("shot_embeddings", shot_rows("a", 6))
    store.replace_titles("shot_embeddings", shot_rows("b", 4, seed=1))
    store.open("shot_embeddings").add(shot_rows("a", 6))  # what racing writers left behind
    assert store.count_rows("shot_embeddings", ["a"]) == 12
    new = shot_rows("a", 6, seed=5)  # same space (model version, width), new vectors
    out = store.replace_titles("shot_embeddings", new)
    assert out["repaired_rows"] == 6
    a = store.read("shot_embeddings", "a")
    assert a["shot_index"].to_pylist() == list(range(6))
    assert a["vector"].to_pylist() == new["vector"].to_pylist()
    assert store.count_rows("shot_embeddings", ["b"]) == 4
