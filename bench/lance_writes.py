"""What a title's LanceDB write costs with the per-table write lock and the row-count check
(issue 12), against the bare `merge_insert` the store used before, and 3 racing writers.

Each write replaces one title of --shots rows x --dim dims in a table of --titles titles.

    .venv/bin/python bench/lance_writes.py            # 60 titles x 200 shots x 896 dims
"""

import argparse
import multiprocessing as mp
import statistics
import tempfile
import time

import numpy as np
import pyarrow as pa

from mediafm_core.storage.lance_store import LanceStore, title_filter
from mediafm_core.storage.schemas import TABLE_KEYS, conform
from mediafm_core.tables import vector_array


def rows(tid: str, n: int, dim: int, seed: int) -> pa.Table:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return pa.table(
        {
            "title_id": [tid] * n,
            "shot_index": np.arange(n),
            "start_s": np.arange(n, dtype=np.float64),
            "end_s": np.arange(n, dtype=np.float64) + 1,
            "vector": vector_array(v),
            "model_version": ["m"] * n,
        }
    )


def bare_merge(store: LanceStore, table: pa.Table) -> None:
    """The write before issue 12: one merge_insert, no lock, no check."""
    t = store.open("shot_embeddings")
    titles = table["title_id"].to_pylist()
    (
        t.merge_insert(TABLE_KEYS["shot_embeddings"])
        .when_matched_update_all()
        .when_not_matched_insert_all()
        .when_not_matched_by_source_delete(title_filter(titles))
        .execute(conform(table, "shot_embeddings"))
    )


def racer(uri, rounds, barrier, args, out):
    store, times = LanceStore(uri), []
    for r in range(rounds):
        barrier.wait()
        t0 = time.perf_counter()
        store.replace_titles("shot_embeddings", rows(f"race_{r}", args.shots, args.dim, r))
        times.append(time.perf_counter() - t0)
    out.put(times)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--titles", type=int, default=60)
    p.add_argument("--shots", type=int, default=200)
    p.add_argument("--dim", type=int, default=896)
    p.add_argument("--writes", type=int, default=40)
    args = p.parse_args()
    uri = tempfile.mkdtemp() + "/lancedb"
    store = LanceStore(uri)
    for i in range(args.titles):
        store.replace_titles("shot_embeddings", rows(f"t{i}", args.shots, args.dim, i))
    ms = {"bare merge_insert (before)": [], "lock + check (now)": []}
    for w in range(args.writes):
        for label, write in (
            ("bare merge_insert (before)", lambda t: bare_merge(store, t)),
            ("lock + check (now)", lambda t: store.replace_titles("shot_embeddings", t)),
        ):
            table = rows(f"t{w % args.titles}", args.shots, args.dim, 1000 + w)
            t0 = time.perf_counter()
            write(table)
            ms[label].append(1000 * (time.perf_counter() - t0))
    print(
        f"| write of one title ({args.shots} x {args.dim}), table of {args.titles} titles "
        "| median ms | p90 ms |\n|---|---:|---:|"
    )
    for label, v in ms.items():
        print(f"| {label} | {statistics.median(v):.1f} | {np.percentile(v, 90):.1f} |")
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(3), ctx.Queue()
    procs = [ctx.Process(target=racer, args=(uri, 6, barrier, args, out)) for _ in range(3)]
    [p.start() for p in procs]
    times = [t for _ in procs for t in out.get()]
    [p.join() for p in procs]
    dup = sum(store.count_rows("shot_embeddings", [f"race_{r}"]) - args.shots for r in range(6))
    print(
        f"\n3 racing writers x 6 rounds: surplus rows {dup}; per write median "
        f"{1000 * statistics.median(times):.1f} ms, max {1000 * max(times):.1f} ms"
    )


if __name__ == "__main__":
    main()
