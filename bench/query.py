"""Vector search and SQL over a large shot_embeddings table: LanceDB (ANN) and DuckDB's
lance_vector_search against an exact numpy scan, with recall@10, plus one aggregate SQL query,
the index build time and the time to bring the index current after 10 % of the rows changed.

Data: N synthetic shots of N/700 titles (each title a random centre; shots = centre + noise,
unit-normed, cosine ~0.8 to their centre: shots of a title cluster like real ones), dim D, float32.
Queries, two kinds:
- held-out titles (what users do): shots of titles that are NOT in the table, drawn by the same
  generator with other seeds; far from every stored row, so the true top-10 is spread thin;
- near-duplicates: a stored shot plus noise of norm ~0.5.
Index: planned from the table's size by `LanceStore` (`index_plan`, `nprobes_for`), never hand-set
here; `--index` picks the type only (IVF_SQ default).

    .venv/bin/python bench/query.py                 # 1,000,000 rows x 256 dims (~1 GB vectors)
    .venv/bin/python bench/query.py --rows 100000   # quick
"""

import argparse
import os
import shutil
import tempfile
import time

import numpy as np
import pyarrow as pa

from mediafm_core.storage.lance_store import LanceStore, LanceStoreConfig, nprobes_for
from mediafm_core.storage.sql import connect, literal
from mediafm_core.tables import vector_array

SHOTS_PER_TITLE = 700


def centres(n_titles: int, dim: int, rng) -> np.ndarray:
    return rng.normal(size=(n_titles, dim)).astype(np.float32)


def shots_of(centre_rows: np.ndarray, rng) -> np.ndarray:
    """Unit shot vectors around the given title centres (one row per shot)."""
    v = centre_rows + 0.8 * rng.normal(size=centre_rows.shape).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def table_of(idx: np.ndarray, v: np.ndarray, version: str = "bench") -> pa.Table:
    title = idx // SHOTS_PER_TITLE
    return pa.table(
        {
            "title_id": pa.array([f"title_{t:05d}" for t in title]),
            "shot_index": pa.array(idx % SHOTS_PER_TITLE, pa.int64()),
            "start_s": pa.array((idx % SHOTS_PER_TITLE) * 3.0),
            "end_s": pa.array((idx % SHOTS_PER_TITLE) * 3.0 + 3.0),
            "vector": vector_array(v),
            "model_version": pa.array([version] * len(idx)),
        }
    )


def make_rows(n: int, dim: int, seed: int, chunk: int = 100_000):
    """Yield (table, vectors) chunks of the synthetic shot_embeddings table."""
    rng = np.random.default_rng(seed)  # one stream: the centres, then the shots' noise
    c = centres(max(1, n // SHOTS_PER_TITLE), dim, rng)
    for a in range(0, n, chunk):
        idx = np.arange(a, min(n, a + chunk))
        v = shots_of(c[(idx // SHOTS_PER_TITLE) % len(c)], rng)
        yield table_of(idx, v), v


def held_out_queries(n: int, dim: int, seed: int) -> np.ndarray:
    """One shot from each of n titles that are not in the table (same generator, other seed)."""
    rng = np.random.default_rng(seed)
    return shots_of(centres(n, dim, rng), rng)


def near_duplicate_queries(vectors: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(vectors), n, replace=False)
    noise = rng.normal(size=(n, vectors.shape[1])).astype(np.float32)
    q = vectors[picks] + 0.5 * noise / np.sqrt(vectors.shape[1])  # noise norm ~0.5
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def pct(xs, q):
    return float(np.percentile(np.asarray(xs) * 1000, q))


def row(name: str, times: list[float], rec: str) -> None:
    print(f"| {name} | {pct(times, 50):.1f} | {pct(times, 95):.1f} | {rec} |")


def recall(found: list[set], truth: list[set]) -> float:
    return float(np.mean([len(f & t) / len(t) for f, t in zip(found, truth)]))


def key(t: str, s: int) -> int:
    return int(t[6:]) * SHOTS_PER_TITLE + int(s)


def exact(vectors: np.ndarray, queries: np.ndarray):
    times, truth = [], []
    for q in queries:
        t1 = time.perf_counter()
        top = np.argpartition(-(vectors @ q), 10)[:10]
        times.append(time.perf_counter() - t1)
        truth.append(set(top.tolist()))
    return times, truth


def lance_search(store: LanceStore, queries: np.ndarray):
    times, found = [], []
    for q in queries:
        t1 = time.perf_counter()
        res = store.search("shot_embeddings", q, k=10)
        times.append(time.perf_counter() - t1)
        found.append(
            {key(t, s) for t, s in zip(res["title_id"].to_pylist(), res["shot_index"].to_pylist())}
        )
    return times, found


def duck_search(path: str, queries: np.ndarray, nprobes: int, refine: int):
    con = connect()
    times, found = [], []
    for q in queries:
        sql = (
            f"SELECT title_id, shot_index FROM lance_vector_search({literal(path)}, 'vector', "
            f"{q.tolist()}::FLOAT[], k := 10, nprobs := {nprobes}, "
            f"refine_factor := {refine})"
        )
        t1 = time.perf_counter()
        rows = con.sql(sql).fetchall()
        times.append(time.perf_counter() - t1)
        found.append({key(t, s) for t, s in rows})
    return times, found, con


def change_rows(store: LanceStore, vectors: np.ndarray, share: float, dim: int, seed: int):
    """Re-embed `share` of the titles (new vectors, same keys) through `replace_titles`;
    returns the seconds of the writes. `vectors` is updated in place."""
    n_titles = len(vectors) // SHOTS_PER_TITLE
    rng = np.random.default_rng(seed)
    picked = rng.choice(n_titles, max(1, int(share * n_titles)), replace=False)
    c = centres(n_titles, dim, rng)
    t0 = time.perf_counter()
    for start in range(0, len(picked), 36):  # 36 titles per commit (batched runs)
        titles = picked[start : start + 36]
        idx = np.concatenate(
            [np.arange(t * SHOTS_PER_TITLE, (t + 1) * SHOTS_PER_TITLE) for t in titles]
        )
        v = shots_of(c[idx // SHOTS_PER_TITLE], rng)
        vectors[idx] = v
        store.replace_titles("shot_embeddings", table_of(idx, v))
    return time.perf_counter() - t0, len(picked) * SHOTS_PER_TITLE


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--refine", type=int, default=LanceStoreConfig.refine_factor)
    ap.add_argument("--index", default="IVF_SQ", help="IVF_SQ | IVF_PQ | IVF_HNSW_SQ")
    ap.add_argument("--change", type=float, default=0.1, help="share of rows re-embedded")
    ap.add_argument("--dir", default=None, help="work folder (default: a temp folder, removed)")
    args = ap.parse_args()
    work = args.dir or tempfile.mkdtemp(prefix="mediafm-bench-query-")
    uri = os.path.join(work, "lancedb")
    shutil.rmtree(uri, ignore_errors=True)
    cfg = LanceStoreConfig(
        uri, index_min_rows=10 * args.rows, index_type=args.index, refine_factor=args.refine
    )
    store = LanceStore(cfg)
    t0 = time.perf_counter()
    parts = []
    for i, (table, v) in enumerate(make_rows(args.rows, args.dim, seed=0)):
        if i == 0:
            store.replace_titles("shot_embeddings", table)  # records the serving space
        else:
            store.open("shot_embeddings").add(table)
        parts.append(v)
    vectors = np.concatenate(parts)  # (N, D)
    write_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    store.maybe_index("shot_embeddings", force=True)  # settings planned from the size
    index_s = time.perf_counter() - t0
    table = store.open("shot_embeddings")
    partitions = store._partitions_of(table)
    nprobes = nprobes_for(partitions)
    path = os.path.join(uri, "shot_embeddings.lance")

    held = held_out_queries(args.queries, args.dim, seed=10_000)
    near = near_duplicate_queries(vectors, args.queries, seed=1)
    results = {}
    for name, queries in (("held-out titles", held), ("near-duplicates", near)):
        ex_t, truth = exact(vectors, queries)
        la_t, la_f = lance_search(store, queries)
        du_t, du_f, con = duck_search(path, queries, nprobes, args.refine)
        results[name] = (ex_t, truth, la_t, la_f, du_t, du_f)

    agg = (
        f"SELECT title_id, count(*) AS shots, avg(end_s - start_s) AS mean_len "
        f"FROM {literal(path)} GROUP BY title_id ORDER BY shots DESC, title_id LIMIT 10"
    )
    agg_t = []
    for _ in range(3):
        t1 = time.perf_counter()
        con.sql(agg).fetchall()
        agg_t.append(time.perf_counter() - t1)

    change_s, changed = change_rows(store, vectors, args.change, args.dim, seed=20_000)
    state = store.index_state("shot_embeddings")
    t0 = time.perf_counter()
    refreshed = store.refresh_index("shot_embeddings")
    refresh_s = time.perf_counter() - t0
    ex_t, truth = exact(vectors, held)
    la_t2, la_f2 = lance_search(store, held)
    partitions_after = store._partitions_of(store.open("shot_embeddings"))

    print(
        f"\n{args.rows:,} rows x {args.dim} dims, {args.queries} queries per kind, top-10, "
        f"{args.index} with {partitions} partitions (planned from the size), "
        f"nprobes={nprobes} (planned), refine_factor={args.refine}; write {write_s:.1f} s, "
        f"index build {index_s:.1f} s\n"
    )
    print("| queries | method | p50 ms | p95 ms | recall@10 |")
    print("|---|---|---:|---:|---:|")
    for name, (ex_t0, truth0, la_t, la_f, du_t, du_f) in results.items():
        row(f"{name} | exact numpy scan (in RAM)", ex_t0, "1.000")
        row(f"{name} | LanceDB ANN ({args.index} + refine)", la_t, f"{recall(la_f, truth0):.3f}")
        row(f"{name} | DuckDB lance_vector_search", du_t, f"{recall(du_f, truth0):.3f}")
    row("- | DuckDB aggregate (GROUP BY title, all rows; 3 runs)", agg_t, "-")
    print(
        f"\nAfter re-embedding {changed:,} rows ({args.change:.0%}; {change_s:.1f} s of "
        f"replace_titles commits): unindexed rows {state['unindexed']:,}; "
        f"refresh_index ({refreshed['action']}) {refresh_s:.1f} s -> unindexed "
        f"{refreshed['after']['unindexed']:,}, {partitions_after} partitions; held-out recall@10 "
        f"{recall(la_f2, truth):.3f}, p50 {pct(la_t2, 50):.1f} ms\n"
    )
    if args.dir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
