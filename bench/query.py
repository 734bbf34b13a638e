"""Vector search and SQL over a large shot_embeddings table: LanceDB (ANN) and DuckDB's
lance_vector_search against an exact numpy scan, with recall@10, plus one aggregate SQL query.

Data: N synthetic shots of N/700 titles (each title a random centre; shots = centre + noise,
unit-normed, cosine ~0.8 to their centre: shots of a title cluster like real ones), dim D, float32.
Queries: existing shots plus noise of norm ~0.5 (a near-duplicate of a stored shot). Index: IVF_SQ
(cosine; --index IVF_PQ to compare) as `LanceStore.maybe_index` builds it; search with nprobes and
refine_factor as given.

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

from mediafm_core.storage.lance_store import LanceStore, LanceStoreConfig
from mediafm_core.storage.sql import connect
from mediafm_core.tables import vector_array


def make_rows(n: int, dim: int, seed: int, chunk: int = 100_000):
    """Yield (table, vectors) chunks of the synthetic shot_embeddings table."""
    rng = np.random.default_rng(seed)
    n_titles = max(1, n // 700)
    centres = rng.normal(size=(n_titles, dim)).astype(np.float32)
    for a in range(0, n, chunk):
        idx = np.arange(a, min(n, a + chunk))
        title = idx // 700
        v = centres[title % n_titles] + 0.8 * rng.normal(size=(len(idx), dim)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        table = pa.table({
            "title_id": pa.array([f"title_{t:05d}" for t in title]),
            "shot_index": pa.array(idx % 700, pa.int64()),
            "start_s": pa.array((idx % 700) * 3.0), "end_s": pa.array((idx % 700) * 3.0 + 3.0),
            "vector": vector_array(v), "model_version": pa.array(["bench"] * len(idx)),
        })  # fmt: skip
        yield table, v


def pct(xs, q):
    return float(np.percentile(np.asarray(xs) * 1000, q))


def row(name: str, times: list[float], rec: str) -> None:
    print(f"| {name} | {pct(times, 50):.1f} | {pct(times, 95):.1f} | {rec} |")


def recall(found: list[set], truth: list[set]) -> float:
    return float(np.mean([len(f & t) / len(t) for f, t in zip(found, truth)]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--nprobes", type=int, default=32)
    ap.add_argument("--refine", type=int, default=20)
    ap.add_argument("--index", default="IVF_SQ", help="IVF_SQ | IVF_PQ | IVF_HNSW_SQ")
    ap.add_argument("--dir", default=None, help="work folder (default: a temp folder, removed)")
    args = ap.parse_args()
    work = args.dir or tempfile.mkdtemp(prefix="mediafm-bench-query-")
    uri = os.path.join(work, "lancedb")
    cfg = LanceStoreConfig(uri, index_min_rows=args.rows, index_type=args.index,
                           nprobes=args.nprobes, refine_factor=args.refine)  # fmt: skip
    store = LanceStore(cfg)
    t0 = time.perf_counter()
    parts = []
    for i, (table, v) in enumerate(make_rows(args.rows, args.dim, seed=0)):
        if i == 0:
            store.db.create_table("shot_embeddings", table, mode="overwrite")
        else:
            store.open("shot_embeddings").add(table)
        parts.append(v)
    vectors = np.concatenate(parts)  # (N, D)
    write_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    store.maybe_index("shot_embeddings", force=True)
    index_s = time.perf_counter() - t0

    rng = np.random.default_rng(1)
    picks = rng.choice(args.rows, args.queries, replace=False)
    noise = rng.normal(size=(args.queries, args.dim)).astype(np.float32)
    queries = vectors[picks] + 0.5 * noise / np.sqrt(args.dim)  # noise norm ~0.5 of a unit shot
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)

    def key(t, s):
        return int(t[6:]) * 700 + int(s)

    exact_t, truth = [], []
    for q in queries:
        t1 = time.perf_counter()
        scores = vectors @ q
        top = np.argpartition(-scores, 10)[:10]
        exact_t.append(time.perf_counter() - t1)
        truth.append(set(top.tolist()))

    lance_t, lance_found = [], []
    for q in queries:
        t1 = time.perf_counter()
        res = store.search("shot_embeddings", q, k=10)
        lance_t.append(time.perf_counter() - t1)
        lance_found.append({key(t, s) for t, s in zip(res["title_id"].to_pylist(),
                                                     res["shot_index"].to_pylist())})

    con = connect()
    path = os.path.join(uri, "shot_embeddings.lance")
    duck_t, duck_found = [], []
    for q in queries:
        sql = (f"SELECT title_id, shot_index FROM lance_vector_search('{path}', 'vector', "
               f"{q.tolist()}::FLOAT[], k := 10, nprobs := {args.nprobes}, "
               f"refine_factor := {args.refine})")  # fmt: skip
        t1 = time.perf_counter()
        rows = con.sql(sql).fetchall()
        duck_t.append(time.perf_counter() - t1)
        duck_found.append({key(t, s) for t, s in rows})

    agg = (f"SELECT title_id, count(*) AS shots, avg(end_s - start_s) AS mean_len "
           f"FROM '{path}' GROUP BY title_id ORDER BY shots DESC, title_id LIMIT 10")
    agg_t = []
    for _ in range(3):
        t1 = time.perf_counter()
        con.sql(agg).fetchall()
        agg_t.append(time.perf_counter() - t1)

    print(f"\n{args.rows:,} rows x {args.dim} dims, {args.queries} queries, top-10, "
          f"{args.index} nprobes={args.nprobes} refine_factor={args.refine}; "
          f"write {write_s:.1f} s, index build {index_s:.1f} s\n")
    print("| method | p50 ms | p95 ms | recall@10 |")
    print("|---|---:|---:|---:|")
    row("exact numpy scan (in RAM)", exact_t, "1.000")
    row(f"LanceDB ANN ({args.index} + refine)", lance_t, f"{recall(lance_found, truth):.3f}")
    row("DuckDB lance_vector_search", duck_t, f"{recall(duck_found, truth):.3f}")
    row("DuckDB aggregate (GROUP BY title, all rows; 3 runs)", agg_t, "-")
    if args.dir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
