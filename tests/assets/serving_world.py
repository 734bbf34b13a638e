"""A served catalogue without media, for the serving-graph tests (issue 18): 8 titles' upstream
artefacts (shots, fused shots, metadata vectors, video vectors) written as the Parquet files the
IO manager reads, their partitions on a real (SQLite) Dagster instance, and a tiny checkpoint
trained on them by the real trainer and named by checkpoints/LATEST."""

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mediafm_core.tables import vector_array

D, G = 12, 6  # fused and metadata widths


def titles(n: int = 8) -> list[str]:
    return [f"t{i}" for i in range(n)]


def fused_rows(tid: str, n: int, seed: int) -> np.ndarray:
    """(n, D) unit rows drifting along the title, seeded."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=D) + np.cumsum(0.3 * rng.normal(size=(n, D)), axis=0)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def write_title(
    root: Path, tid: str, n: int, seed: int, fused: np.ndarray | None = None, extra_shots: int = 0
) -> None:
    """The title's `titles` row, `shots` (n + extra_shots), `fused_shots`,
    `title_metadata_embedding` and `video_embeddings` (n rows each)."""
    art = root / "artefacts"
    fused = fused_rows(tid, n, seed) if fused is None else fused
    idx = np.arange(n, dtype=np.int64)
    s = np.arange(n + extra_shots, dtype=np.int64)
    tables = {
        "shots": pa.table(
            {
                "title_id": [tid] * len(s),
                "shot_index": s,
                "start_frame": s * 50,
                "end_frame": s * 50 + 50,
                "start_s": s * 2.0,
                "end_s": s * 2.0 + 2.0,
            }
        ),
        "fused_shots": pa.table(
            {
                "title_id": [tid] * n,
                "shot_index": idx,
                "fused": vector_array(fused),
                "has_text": [True] * n,
            }
        ),
        "title_metadata_embedding": pa.table(
            {
                "title_id": [tid],
                "vector": vector_array(
                    np.random.default_rng(seed + 100).normal(size=(1, G)).astype(np.float32)
                ),
            }
        ),
        "titles": pa.table(
            {"title_id": [tid], "name": [f"Title {tid}"], "genres": [["Drama"]], "tags": [["calm"]]}
        ),
        "video_embeddings": pa.table(
            {"title_id": [tid] * n, "shot_index": idx, "vector": vector_array(fused[:, :4].copy())}
        ),
    }
    for asset, table in tables.items():
        (art / asset).mkdir(parents=True, exist_ok=True)
        pq.write_table(table, art / asset / f"{tid}.parquet")


def train_checkpoint(root: Path, ids: list[str], name: str = "ckpt-a", seed: int = 0) -> str:
    """A tiny checkpoint trained on the titles' fused shots; LATEST names it. Returns its
    model_version."""
    from mediafm_assets.resources import StorageResource
    from mediafm_core.tables import VectorTable
    from mediafm_core.training import TrainConfig
    from mediafm_core.training.checkpoint import load_checkpoint
    from mediafm_core.training.trainer import Trainer

    art = root / "artefacts"
    fused = [pq.read_table(art / "fused_shots" / f"{t}.parquet") for t in ids]
    vec = np.concatenate([np.stack(f["fused"].to_pylist()) for f in fused]).astype(np.float32)
    tids = np.array([t for t, f in zip(ids, fused) for _ in range(f.num_rows)], dtype=object)
    shot = np.concatenate([np.arange(f.num_rows) for f in fused])
    glob = np.stack(
        [
            pq.read_table(art / "title_metadata_embedding" / f"{t}.parquet")["vector"].to_pylist()[
                0
            ]
            for t in ids
        ]
    ).astype(np.float32)
    cfg = TrainConfig(
        size="tiny",
        steps=4,
        batch_size=4,
        window=32,
        warmup=1,
        eval_every=2,
        checkpoint_every=0,
        log_every=2,
        val_fraction=0.25,
        seed=seed,
    )
    out = root / "checkpoints" / name
    Trainer(
        cfg,
        VectorTable(tids, shot, vec, {}),
        VectorTable(np.array(ids, dtype=object), np.zeros(len(ids), np.int64), glob, {}),
        out,
    ).fit()
    StorageResource(root=str(root)).set_current(name)
    return load_checkpoint(out)[1]["model_version"]
