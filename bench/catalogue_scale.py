"""A catalogue of real size (issue 17): how memory and time grow with the number of titles.

Synthetic fused vectors (unit Gaussian rows, 150-350 shots per title, mean 250) are written as
the graph stores them: one Parquet file per title under <work>/<n>/artefacts/fused_shots and
title_metadata_embedding. Every figure is a whole process (`mediafm pretrain`, or this script
re-run as a child for the embedding and index parts), its peak RSS from the kernel (wait4).

Parts (`--parts`):
- pretrain: `mediafm pretrain` (20 steps, --size small, batch 8, 1 thread) streamed from the folder,
  against the pre-streaming in-memory path (`--in-memory` on one concatenated Parquet file) at
  the sizes where it still fits (`--in-memory-max`). Peak RSS, training shots/s.
- embed: the re-embed storm after a new checkpoint: every title read from the dataset, embedded
  ("output" representation) in chunks of 8 and written to LanceDB `shot_embeddings` with
  `replace_titles`; titles/s and peak RSS.
- writes: the storm's LanceDB side alone (random unit vectors of --output-width, 8 titles a
  commit into a new space beside an old one, then the switch): titles/s, peak RSS and the RSS
  growth per 1,000 titles over the storm's second half. Needs no fused catalogue, so it runs
  at 50k titles where the embed part's catalogue and model would take hours on this machine.
- ann: the IVF index on that table (`LanceStore.maybe_index`, the serving plan), build seconds,
  then 100 queries (held-out noisy copies of stored shots): p50 ms and recall@10 against an exact
  scan.
- dagster: the arrival sensor, automation and UI rows of bench/dagster_scale.py, when present.

Run (one heavy job at a time on this machine):
    OMP_NUM_THREADS=1 .venv/bin/python bench/catalogue_scale.py --titles 1000 10000 50000 \\
        --width 256 --work /tmp/catalogue
    OMP_NUM_THREADS=1 .venv/bin/python bench/catalogue_scale.py --titles 100 400 1000 \\
        --width 2128 --parts pretrain --work /tmp/catalogue-2128
The default profile's width is 2128 (8.5 kB a shot): 50,000 titles of it are 106 GB, more than
this machine's free disk, so the 10k and 50k rows use --width 256 and the same rows are measured
at 1k for the growth ratio; the 2128-d rows show the in-memory path's cost at the real width.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
UPKEEP_EVERY = 250  # storm commits between `LanceStore.upkeep` runs (old versions removed)
GLOBAL_DIM = 64  # [GLOBAL] metadata width of the synthetic titles (the text encoder's is 384)


def build_catalogue(folder: Path, n_titles: int, width: int, seed: int = 0) -> dict:
    """Write n_titles per-title Parquet files (fused + globals) once; returns their totals."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mediafm_core.tables import vector_array

    done = folder / "DONE.json"
    if done.exists():
        return json.loads(done.read_text())
    fused_dir = folder / "artefacts" / "fused_shots"
    glob_dir = folder / "artefacts" / "title_metadata_embedding"
    fused_dir.mkdir(parents=True, exist_ok=True)
    glob_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shots = 0
    for i in range(n_titles):
        tid = f"t{i:06d}"
        n = int(rng.integers(150, 351))
        x = rng.standard_normal((n, width), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        pq.write_table(
            pa.table(
                {
                    "title_id": pa.array([tid] * n),
                    "shot_index": np.arange(n),
                    "fused": vector_array(x),
                }
            ),
            fused_dir / f"{tid}.parquet",
        )
        g = rng.standard_normal((1, GLOBAL_DIM), dtype=np.float32)
        pq.write_table(
            pa.table({"title_id": [tid], "vector": vector_array(g)}), glob_dir / f"{tid}.parquet"
        )
        shots += n
    info = {
        "titles": n_titles,
        "shots": shots,
        "width": width,
        "fused_bytes": sum(p.stat().st_size for p in fused_dir.iterdir()),
    }
    done.write_text(json.dumps(info))
    return info


def single_file(folder: Path) -> Path:
    """The same catalogue as ONE Parquet file (the pre-streaming trainer input), written
    title by title."""
    import pyarrow.parquet as pq

    out = folder / "fused_all.parquet"
    if out.exists():
        return out
    files = sorted((folder / "artefacts" / "fused_shots").glob("*.parquet"))
    writer = None
    for f in files:
        t = pq.read_table(f)
        writer = writer or pq.ParquetWriter(str(out) + ".tmp", t.schema)
        writer.write_table(t)
    writer.close()
    os.replace(str(out) + ".tmp", out)
    return out


def run_child(cmd: list[str]) -> tuple[float, str]:
    """(wall s, stdout) of one child process; raises with its stderr tail when it fails."""
    t0 = time.perf_counter()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} failed: {proc.stderr[-3000:]}")
    return time.perf_counter() - t0, proc.stdout


def peak_of(cmd: list[str]) -> tuple[float, float, str]:
    """run_child, with the peak RSS of exactly this child (a fresh wrapper process, since
    RUSAGE_CHILDREN keeps the largest child so far)."""
    wrapper = [sys.executable, "-c", WRAPPER, json.dumps(cmd)]
    wall, out = run_child(wrapper)
    line = json.loads(out.strip().splitlines()[-1])
    return wall, line["peak_gb"], line["stdout"]


WRAPPER = """
import json, resource, subprocess, sys
cmd = json.loads(sys.argv[1])
p = subprocess.run(cmd, capture_output=True, text=True)
if p.returncode != 0:
    sys.stderr.write(p.stderr[-3000:]); sys.exit(p.returncode)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
print(json.dumps({"peak_gb": peak, "stdout": p.stdout}))
"""


def pretrain_row(folder: Path, in_memory: bool, steps: int) -> dict:
    art = folder / "artefacts"
    fused = str(single_file(folder)) if in_memory else str(art / "fused_shots")
    out = folder / ("ck-memory" if in_memory else "ck-stream")
    cmd = [
        str(Path(sys.executable).with_name("mediafm")),
        "pretrain",
        "--fused",
        fused,
        "--globals",
        str(art / "title_metadata_embedding"),
        "--out",
        str(out),
        "--size",
        "small",
        "--steps",
        str(steps),
        "--eval-every",
        str(steps),
        "--checkpoint-every",
        "0",
        "--log-every",
        str(steps),
        "--device",
        "cpu",
        "--patience",
        "0",
    ] + (["--in-memory"] if in_memory else [])
    wall, peak, _ = peak_of(cmd)
    metrics = json.loads((out / "metrics.json").read_text())
    return {
        "peak_gb": peak,
        "wall_s": wall,
        "shots_per_s": metrics["train_shots_per_s"],
        "checkpoint": str(out),
    }


EMBED_CHILD = """
import json, sys, time
sys.path.insert(0, {root!r})
from bench.catalogue_scale import reembed, rss_mb, status_kb
from mediafm_core.storage.lance_store import LanceStore, LanceStoreConfig
from mediafm_core.training import load_checkpoint
model, meta = load_checkpoint({ckpt!r})
store = LanceStore(LanceStoreConfig({lance!r}, index_min_rows=10**12))
t0 = time.perf_counter()
reembed(None, "v0", {art!r}, store, chunk=256)  # the catalogue as the old checkpoint served it
open("/proc/self/clear_refs", "w").write("5")  # the storm's own peak from here (VmHWM reset)
t1 = time.perf_counter()
samples = []  # (titles written, RSS MB) through the storm
n = reembed(model, meta.get("model_version", "bench"), {art!r}, store,
            progress=lambda k: samples.append((k, rss_mb())))  # the storm
t2 = time.perf_counter()
space = store.serving_space()
print(json.dumps({{"titles": n, "seconds": t2 - t1, "load_s": t1 - t0,
                  "storm_peak_gb": status_kb("VmHWM") / 2**20, "samples": samples,
                  "switched": space.model_version == meta.get("model_version", "bench")}}))
"""


def upkeep(uri: str) -> None:
    """`LanceStore.upkeep` (compaction, old versions removed) in its own process, as the graph
    runs it (the `ann_index` asset, on cron, is its own run): the storm's writer pays its time
    (it waits) but not its memory."""
    code = (
        f"from mediafm_core.storage.lance_store import LanceStore; "
        f"LanceStore({uri!r}).upkeep(retain_s=0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, capture_output=True)


def status_kb(field: str) -> int:
    """A /proc/self/status field in kB (VmRSS, VmHWM)."""
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def rss_mb() -> float:
    return status_kb("VmRSS") / 1024


def growth_per_1k(samples: list) -> float:
    """RSS growth, MB per 1,000 titles, over the second half of the storm (least squares): 0
    when memory is flat in the catalogue; the first half holds the caches filling to their caps."""
    pts = np.array(samples[len(samples) // 2 :], dtype=float)
    if len(pts) < 2:
        return float("nan")
    return float(np.polyfit(pts[:, 0], pts[:, 1], 1)[0] * 1000)


def reembed(model, version: str, artefacts: str, store, chunk: int = 8, progress=None) -> int:
    """Embed every title of the dataset into LanceDB `shot_embeddings` and `title_embeddings`,
    `chunk` titles at a time (read, embed, write, drop), as `contextual_embeddings` and
    `title_embeddings` do per run. A new version writes a new embedding space beside the
    serving one, switched when it holds every title: the storm that follows a new checkpoint.
    `model` None writes random unit vectors instead (a fast stand-in for the old space);
    `progress(titles_done)` is called every 10 writes."""
    from mediafm_core.training.dataset import open_titles

    fused = open_titles(f"{artefacts}/fused_shots", "fused")
    glob = open_titles(f"{artefacts}/title_metadata_embedding", "vector", per_shot=False)
    ids = fused.title_ids
    rng = np.random.default_rng(0)
    for i in range(0, len(ids), chunk):
        part = ids[i : i + chunk]
        if model is None:
            out = {t: rng.standard_normal((fused.n_rows(t), 32), dtype=np.float32) for t in part}
        else:
            from mediafm_core.inference import embed_titles

            out = embed_titles(
                model,
                {t: fused.read(t) for t in part},
                {t: glob.read(t)[0] for t in part},
                "output",
            )
        shots, titles = _rows(out, version)
        store.replace_titles("shot_embeddings", shots)
        store.replace_titles("title_embeddings", titles)
        if progress is not None and (i // chunk) % 10 == 9:
            progress(i + len(part))
        if (i // chunk) % UPKEEP_EVERY == UPKEEP_EVERY - 1:
            upkeep(store.config.uri)
    return len(ids)


def _rows(out: dict, version: str):
    """(shot rows, title rows) of the embedded titles, in the serving schemas."""
    import pyarrow as pa

    from mediafm_core.tables import vector_array

    tids, idx, vecs, means = [], [], [], []
    for t, v in out.items():
        v = v / np.linalg.norm(v, axis=1, keepdims=True)
        tids += [t] * len(v)
        idx.append(np.arange(len(v)))
        vecs.append(v)
        m = v.mean(axis=0)
        means.append(m / np.linalg.norm(m))
    n = len(tids)
    shots = pa.table(
        {
            "title_id": tids,
            "shot_index": np.concatenate(idx),
            "start_s": np.zeros(n),
            "end_s": np.zeros(n),
            "vector": vector_array(np.concatenate(vecs)),
            "model_version": [version] * n,
        }
    )
    titles = pa.table(
        {
            "title_id": list(out),
            "vector": vector_array(np.stack(means)),
            "model_version": [version] * len(out),
            "n_shots": [len(v) for v in out.values()],
        }
    )
    return shots, titles


WRITES_CHILD = """
import json, sys, time
import numpy as np
sys.path.insert(0, {root!r})
from bench.catalogue_scale import UPKEEP_EVERY, _rows, rss_mb, status_kb, upkeep
from mediafm_core.storage.lance_store import LanceStore, LanceStoreConfig
store = LanceStore(LanceStoreConfig({lance!r}, index_min_rows=10**12))
rng = np.random.default_rng(0)
sizes = {{f"t{{i:06d}}": int(rng.integers(150, 351)) for i in range({n})}}
ids = list(sizes)
def storm(version, width, chunk, progress=None):
    for i in range(0, len(ids), chunk):
        part = ids[i:i + chunk]
        out = {{t: rng.standard_normal((sizes[t], width), dtype=np.float32) for t in part}}
        shots, titles = _rows(out, version)
        store.replace_titles("shot_embeddings", shots)
        store.replace_titles("title_embeddings", titles)
        if progress is not None and (i // chunk) % 10 == 9:
            progress(i + chunk)
        if (i // chunk) % UPKEEP_EVERY == UPKEEP_EVERY - 1:
            upkeep({lance!r})
storm("v0", 32, 256)  # the old space, written in large chunks
open("/proc/self/clear_refs", "w").write("5")
samples = []
t0 = time.perf_counter()
storm("v1", {width}, 8, lambda k: samples.append((k, rss_mb())))
seconds = time.perf_counter() - t0
print(json.dumps({{"titles": len(ids), "seconds": seconds, "samples": samples,
                  "storm_peak_gb": status_kb("VmHWM") / 2**20,
                  "switched": store.serving_space().model_version == "v1"}}))
"""


def writes_row(folder: Path, n: int, width: int) -> dict:
    """The storm's LanceDB side alone: `n` titles of random unit vectors of `width` (the
    model's output width) written 8 titles a commit into a new space beside an old one of `n`
    titles, switched at the end. The part of the storm that grows with the catalogue; the
    embedding's own cost per title does not."""
    import shutil

    lance = folder / "lancedb-writes"
    shutil.rmtree(lance, ignore_errors=True)
    shutil.rmtree(f"{lance}.locks", ignore_errors=True)
    code = WRITES_CHILD.format(root=str(ROOT), lance=str(lance), n=n, width=width)
    wall, peak, out = peak_of([sys.executable, "-c", code])
    res = json.loads(out.strip().splitlines()[-1])
    row = {
        "titles_per_s": res["titles"] / res["seconds"],
        "peak_gb": res["storm_peak_gb"],
        "growth": growth_per_1k(res["samples"]),
        "switched": res["switched"],
        "lance_mb": _du(lance) / 2**20,
    }
    shutil.rmtree(lance, ignore_errors=True)
    return row


def embed_row(folder: Path, checkpoint: str) -> dict:
    lance = folder / "lancedb"
    code = EMBED_CHILD.format(
        root=str(ROOT), ckpt=checkpoint, lance=str(lance), art=str(folder / "artefacts")
    )
    wall, peak, out = peak_of([sys.executable, "-c", code])
    res = json.loads(out.strip().splitlines()[-1])
    return {
        "titles_per_s": res["titles"] / res["seconds"],
        "peak_gb": peak,
        "storm_peak_gb": res["storm_peak_gb"],
        "growth": growth_per_1k(res["samples"]),
        "lance_mb": _du(lance) / 2**20,
        "switched": res["switched"],
    }


ANN_CHILD = """
import json, time
import numpy as np
from mediafm_core.storage.lance_store import LanceStore, LanceStoreConfig
store = LanceStore(LanceStoreConfig({lance!r}, index_min_rows=0))
name = store.physical("shot_embeddings")
t0 = time.perf_counter()
store.maybe_index(name, force=True)
build = time.perf_counter() - t0
ds = store.open(name).to_lance()
n = ds.count_rows()
rng = np.random.default_rng(0)
sample = ds.take(sorted(rng.choice(n, 100, replace=False).tolist()), columns=["vector"])
q = np.stack(sample["vector"].to_numpy(zero_copy_only=False)).astype(np.float32)
q += 0.05 * rng.standard_normal(q.shape, dtype=np.float32)
q /= np.linalg.norm(q, axis=1, keepdims=True)
top_s = np.full((100, 10), -np.inf, np.float32)
top_k = np.full((100, 10), "", dtype=object)
for batch in ds.to_batches(columns=["title_id", "shot_index", "vector"], batch_size=65536):
    v = batch.column("vector").flatten().to_numpy().reshape(batch.num_rows, -1)
    keys = np.array([f"{{t}}:{{i}}" for t, i in zip(batch.column("title_id").to_pylist(),
                                                  batch.column("shot_index").to_pylist())], object)
    s = q @ v.T
    cand_s = np.concatenate([top_s, s], 1)
    cand_k = np.concatenate([top_k, np.broadcast_to(keys, s.shape)], 1)
    keep = np.argsort(-cand_s, 1)[:, :10]
    top_s, top_k = np.take_along_axis(cand_s, keep, 1), np.take_along_axis(cand_k, keep, 1)
times, hits = [], 0
for i in range(100):
    t = time.perf_counter()
    res = store.search(name, q[i], k=10)
    times.append((time.perf_counter() - t) * 1000)
    pairs = zip(res["title_id"].to_pylist(), res["shot_index"].to_pylist())
    got = {{f"{{a}}:{{b}}" for a, b in pairs}}
    hits += len(got & set(top_k[i]))
print(json.dumps({{"build_s": build, "p50_ms": float(np.median(times)), "recall": hits / 1000,
                  "rows": n}}))
"""


def ann_row(folder: Path) -> dict:
    code = ANN_CHILD.format(lance=str(folder / "lancedb"))
    wall, peak, out = peak_of([sys.executable, "-c", code])
    return {**json.loads(out.strip().splitlines()[-1]), "peak_gb": peak}


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--titles", type=int, nargs="+", default=[1000, 10000, 50000])
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--work", default="/tmp/mediafm-catalogue")
    ap.add_argument("--parts", default="pretrain,embed,ann,dagster")
    ap.add_argument(
        "--in-memory-max",
        type=int,
        default=1000,
        help="largest catalogue to run the in-memory path on (it needs ~30 kB/shot at 2128 dims)",
    )
    ap.add_argument(
        "--embed-max",
        type=int,
        default=10**9,
        help="largest catalogue to run the re-embed storm and ANN parts on",
    )
    ap.add_argument(
        "--output-width",
        type=int,
        default=256,
        help="width of the vectors the writes part stores (the small model's)",
    )
    a = ap.parse_args()
    parts = set(a.parts.split(","))
    table: dict[str, dict[int, str]] = {}

    def put(row: str, n: int, value: str) -> None:
        table.setdefault(row, {})[n] = value
        print(f"[{n} titles] {row}: {value}", file=sys.stderr, flush=True)

    for n in a.titles:
        folder = Path(a.work) / f"{n}x{a.width}"
        t0 = time.perf_counter()
        if parts <= {"writes", "dagster"}:  # neither needs the fused catalogue
            info = None
        else:
            info = build_catalogue(folder, n, a.width)
            put("shots", n, f"{info['shots']:,}")
            put("fused dataset on disk, GB", n, f"{info['fused_bytes'] / 1e9:.2f}")
            print(f"[{n}] catalogue ready in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        folder.mkdir(parents=True, exist_ok=True)
        ckpt = None
        if "pretrain" in parts:
            s = pretrain_row(folder, False, a.steps)
            ckpt = s["checkpoint"]
            put("pretrain streamed: peak RSS GB", n, f"{s['peak_gb']:.2f}")
            put("pretrain streamed: shots/s", n, f"{s['shots_per_s']:.0f}")
            put("pretrain streamed: wall s (whole process)", n, f"{s['wall_s']:.0f}")
            if n <= a.in_memory_max:
                m = pretrain_row(folder, True, a.steps)
                put("pretrain in memory: peak RSS GB", n, f"{m['peak_gb']:.2f}")
                put("pretrain in memory: shots/s", n, f"{m['shots_per_s']:.0f}")
                put("streamed / in-memory shots/s", n, f"{s['shots_per_s'] / m['shots_per_s']:.2f}")
        if "embed" in parts and ckpt and n <= a.embed_max:
            e = embed_row(folder, ckpt)
            put("re-embed + LanceDB write: titles/s", n, f"{e['titles_per_s']:.1f}")
            put("re-embed + LanceDB write: peak RSS GB", n, f"{e['peak_gb']:.2f}")
            put("re-embed storm alone: peak RSS GB", n, f"{e['storm_peak_gb']:.2f}")
            put("re-embed storm: RSS growth MB per 1k titles (2nd half)", n, f"{e['growth']:.1f}")
            put("LanceDB on disk (both spaces), MB", n, f"{e['lance_mb']:.0f}")
            put("new space switched in after the storm", n, str(e["switched"]))
        if "writes" in parts:
            w = writes_row(folder, n, a.output_width)
            put("storm writes alone (LanceDB): titles/s", n, f"{w['titles_per_s']:.1f}")
            put("storm writes alone: peak RSS GB", n, f"{w['peak_gb']:.2f}")
            put(
                "storm writes alone: RSS growth MB per 1k titles (2nd half)",
                n,
                f"{w['growth']:.1f}",
            )
            put(
                "storm writes alone: LanceDB MB at the end (both spaces)", n, f"{w['lance_mb']:.0f}"
            )
        if "ann" in parts and (folder / "lancedb").exists() and n <= a.embed_max:
            r = ann_row(folder)
            put("ANN index build s", n, f"{r['build_s']:.1f}")
            put("ANN query p50 ms", n, f"{r['p50_ms']:.1f}")
            put("ANN recall@10", n, f"{r['recall']:.3f}")
        if "dagster" in parts:
            try:
                from bench.dagster_scale import dagster_rows
            except ImportError:
                dagster_rows = None
            for row in dagster_rows(n) if dagster_rows else []:
                for k, v in row.items():
                    put(k, n, v if isinstance(v, str) else f"{v:.3g}")
    sizes = list(a.titles)
    print(f"\n| width {a.width} | " + " | ".join(f"{n:,} titles" for n in sizes) + " |")
    print("|---|" + "---:|" * len(sizes))
    for row, vals in table.items():
        print(f"| {row} | " + " | ".join(vals.get(n, "") for n in sizes) + " |")


if __name__ == "__main__":
    main()
