"""What LanceDB upkeep saves (issue 18): a store whose titles were re-embedded several times,
before and after `LanceStore.upkeep` (compaction + removal of versions past the retention), against
a fresh store holding the same rows. Prints a Markdown table.

    # defaults: 40 titles x 100 shots x 512 dims, 5 re-embeddings
    OMP_NUM_THREADS=1 .venv/bin/python bench/lance_upkeep.py
"""

import argparse
import tempfile
import time

import numpy as np
import pyarrow as pa

from mediafm_core.storage.lance_store import LanceStore, LanceStoreConfig
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


def write(store: LanceStore, args, rounds: int) -> None:
    """Every title written `rounds` times, one commit per title; the last round's rows stay."""
    for r in range(rounds):
        for t in range(args.titles):
            seed = t if r == rounds - 1 else 10_000 * (r + 1) + t
            store.replace_titles("shot_embeddings", rows(f"t{t:03d}", args.shots, args.dim, seed))


def state(store: LanceStore) -> tuple[int, int]:
    """(versions, bytes on disk) of the shot table."""
    return len(store.open("shot_embeddings").list_versions()), store.disk_bytes("shot_embeddings")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--titles", type=int, default=40)
    ap.add_argument("--shots", type=int, default=100)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--reembeds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = LanceStore(
            LanceStoreConfig(f"{tmp}/old", index_min_rows=10**9, retain_versions_s=0)
        )
        write(store, args, 1 + args.reembeds)
        versions, grown = state(store)
        t0 = time.perf_counter()
        store.upkeep()
        seconds = time.perf_counter() - t0
        after_versions, after = state(store)
        fresh = LanceStore(LanceStoreConfig(f"{tmp}/fresh", index_min_rows=10**9))
        write(fresh, args, 1)
        _, fresh_bytes = state(fresh)
    mb = 1e6
    print(
        f"{args.titles} titles x {args.shots} shots x {args.dim} dims, written "
        f"{1 + args.reembeds} times (one commit per title)\n"
    )
    print("| store | versions | disk MB | x fresh |\n|---|---:|---:|---:|")
    ratio = grown / fresh_bytes
    print(f"| re-embedded, before upkeep | {versions} | {grown / mb:.1f} | {ratio:.1f} |")
    print(
        f"| after upkeep (retention 0 s) | {after_versions} | {after / mb:.1f} | "
        f"{after / fresh_bytes:.2f} |"
    )
    print(f"| fresh store, same rows | - | {fresh_bytes / mb:.1f} | 1.0 |")
    print(f"\nupkeep took {seconds:.2f} s")


if __name__ == "__main__":
    main()
