"""The ablation on media: scene titles through the real encoders, every step a `mediafm` command.

`mediafm synth-media --family scenes` (titles whose labels live beyond the clip; see
`mediafm_core/synthetic/scenes.py`) -> `mediafm shots` per title -> `mediafm encode` (default
`offline` profile: EfficientNet-Lite0, Whisper tiny.en, MiniLM; all titles in one process, one
model load) -> the per-title tables gathered into one benchmark folder (fused, video_only,
globals, clips mapped onto the detected shots by time) -> `mediafm pretrain` (CLI defaults) ->
`mediafm embed` -> `mediafm probe` per task on the embedded file, and `mediafm evaluate` for the
four rows (video-only, fused, contextual, clip-alone) on the same folds. Prints the table with
contextual minus fused paired over folds (mean, relative, t, folds won) and what each stage cost.

    OMP_NUM_THREADS=1 .venv/bin/python bench/media_ablation.py                # 80 titles
    OMP_NUM_THREADS=1 .venv/bin/python bench/media_ablation.py --titles 4 --seconds 12 --folds 2

Never part of the test gate (tests/bench_scripts/test_media_ablation.py runs a tiny set).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROWS = ("video_only", "fused", "contextual", "clip_alone")
TASKS = ("tone", "popularity", "retrieval", "genre", "ad_relevancy")


IN_PROCESS = False  # --in-process: call the CLI's main() here instead of a new process


def mediafm(*args: str, timings: dict | None = None, stage: str = "") -> str:
    """Run `python -m mediafm_core ARGS` as a user would; its stdout; raises on failure.
    With IN_PROCESS the same argument list goes to `mediafm_core.cli.main` in this process
    (the tiny test run, which would otherwise spend its time importing torch 12 times)."""
    t0 = time.perf_counter()
    rc, out, err = _in_process(args) if IN_PROCESS else _subprocess(args)
    if timings is not None:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - t0
    if rc:
        raise RuntimeError(f"mediafm {args[0]} exited {rc}: {err[-2000:]}")
    return out


def _subprocess(args) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        "MKL_NUM_THREADS": os.environ.get("MKL_NUM_THREADS", "1"),
        "MEDIAFM_PROGRESS": "0",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "mediafm_core", *args], env=env, text=True, capture_output=True
    )
    return proc.returncode, proc.stdout, proc.stderr


def _in_process(args) -> tuple[int, str, str]:
    import contextlib
    import io

    from mediafm_core.cli import main as cli_main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli_main(list(args))
    return rc, out.getvalue(), err.getvalue()


def make_titles(work: Path, a: argparse.Namespace, timings: dict) -> list[Path]:
    landing = work / "landing"
    mediafm(
        "synth-media",
        str(landing),
        "--family",
        "scenes",
        "--titles",
        str(a.titles),
        "--seconds",
        str(a.seconds),
        "--seed",
        str(a.seed),
        "--size",
        a.size,
        "--speech",
        a.speech,
        timings=timings,
        stage="synth-media",
    )
    return sorted(p for p in landing.iterdir() if (p / "metadata.json").exists())


def shots_and_encode(titles: list[Path], work: Path, a: argparse.Namespace, timings: dict):
    for t in titles:
        mediafm(
            "shots",
            str(t),
            "--out",
            str(work / "shots" / f"{t.name}.parquet"),
            timings=timings,
            stage="shots",
        )
    extra = ["--profile", a.profile]
    extra += ["--frames-per-shot", str(a.frames_per_shot)] if a.frames_per_shot else []
    mediafm(
        "encode",
        *map(str, titles),
        "--shots",
        *(str(work / "shots" / f"{t.name}.parquet") for t in titles),
        "--out",
        *(str(work / "encoded" / t.name) for t in titles),
        *extra,
        timings=timings,
        stage="encode",
    )


def gather(titles: list[Path], work: Path) -> Path:
    """One benchmark folder in the `mediafm synth` layout from the per-title outputs; clips are
    re-expressed in the detected shots (`map_clips_to_shots`). Returns the folder."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mediafm_core.probes.tasks import map_clips_to_shots

    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    parts = {
        "fused.parquet": ("fused.parquet", ["title_id", "shot_index", "fused", "has_text"]),
        "video_only.parquet": ("video.parquet", ["title_id", "shot_index", "vector"]),
        "globals.parquet": ("globals.parquet", ["title_id", "vector"]),
    }
    for name, (src, cols) in parts.items():
        tables = [pq.read_table(work / "encoded" / t.name / src, columns=cols) for t in titles]
        pq.write_table(
            pa.concat_tables([x.replace_schema_metadata(None) for x in tables]), data / name
        )
    shots = {t.name: pq.read_table(work / "shots" / f"{t.name}.parquet") for t in titles}
    for task in TASKS:
        table = pq.read_table(work / "landing" / "labels" / f"clips_{task}.parquet")
        pq.write_table(map_clips_to_shots(table, shots), data / f"clips_{task}.parquet")
    return data


def train_embed_probe(data: Path, work: Path, a: argparse.Namespace, timings: dict) -> dict:
    """pretrain -> embed -> probe per task (the contextual row as served) -> evaluate (all rows).
    Returns {"evaluate": row -> task -> result, "probe": task -> result, "pretrain": metrics}."""
    ckpt = work / "ckpt"
    steps = ["--steps", str(a.steps)] if a.steps else []
    mediafm(
        "pretrain",
        "--fused",
        str(data / "fused.parquet"),
        "--globals",
        str(data / "globals.parquet"),
        "--out",
        str(ckpt),
        "--seed",
        str(a.seed),
        *steps,
        timings=timings,
        stage="pretrain",
    )
    emb = work / "contextual.parquet"
    mediafm(
        "embed",
        "--checkpoint",
        str(ckpt),
        "--fused",
        str(data / "fused.parquet"),
        "--globals",
        str(data / "globals.parquet"),
        "--out",
        str(emb),
        timings=timings,
        stage="embed",
    )
    probed = {}
    for task in TASKS:
        out = mediafm(
            "probe",
            "--embeddings",
            str(emb),
            "--clips",
            str(data / f"clips_{task}.parquet"),
            "--task",
            task,
            "--folds",
            str(a.folds),
            timings=timings,
            stage="probe",
        )
        probed[task] = json.loads(out.strip().splitlines()[-1])
    mediafm(
        "evaluate",
        str(data),
        "--checkpoint",
        str(ckpt),
        "--folds",
        str(a.folds),
        "--json",
        str(work / "evaluate.json"),
        timings=timings,
        stage="evaluate",
    )
    return {
        "evaluate": json.loads((work / "evaluate.json").read_text()),
        "probe": probed,
        "pretrain": json.loads((ckpt / "metrics.json").read_text()),
    }


def paired(a: list[float], b: list[float]) -> dict:
    """a - b over the same folds: mean, t (mean / (sd / sqrt(k))), folds won."""
    import numpy as np

    d = np.asarray(a) - np.asarray(b)
    sd = d.std(ddof=1) if len(d) > 1 else 0.0
    if sd > 0:
        t = float(d.mean() / (sd / np.sqrt(len(d))))
    else:  # every fold moved by the same amount
        t = 0.0 if d.mean() == 0 else float(np.copysign(np.inf, d.mean()))
    return {"diff": float(d.mean()), "t": t, "wins": int((d > 0).sum()), "folds": len(d)}


def summary(results: dict) -> dict:
    """task -> {row: mean, "vs_fused": paired, "relative": contextual / fused - 1}."""
    ev, out = results["evaluate"], {}
    for task in TASKS:
        row = {r: ev[r][task]["mean"] for r in ROWS if r in ev}
        row["n_clips"] = ev["fused"][task]["n_clips"]
        row["vs_fused"] = paired(ev["contextual"][task]["folds"], ev["fused"][task]["folds"])
        base = ev["fused"][task]["mean"]
        row["relative"] = ev["contextual"][task]["mean"] / base - 1 if base else float("nan")
        row["probe_cli"] = results["probe"][task]["mean"]
        out[task] = row
    return out


def format_tables(s: dict, timings: dict, n_titles: int, n_shots: int) -> str:
    head = [
        "| task (metric) | clips | video-only | fused | contextual | clip-alone | "
        "contextual - fused, paired (t, folds won) | relative |",
        "|---|" + "---:|" * 7,
    ]
    for task, r in s.items():
        p = r["vs_fused"]
        head.append(
            f"| {task} | {r['n_clips']} | {r['video_only']:.3f} | {r['fused']:.3f} | "
            f"{r['contextual']:.3f} | {r['clip_alone']:.3f} | {p['diff']:+.3f} "
            f"(t {p['t']:+.1f}, {p['wins']}/{p['folds']}) | {100 * r['relative']:+.1f} % |"
        )
    won = sum(r["vs_fused"]["diff"] > 0 and r["vs_fused"]["t"] >= 2 for r in s.values())
    head.append(f"\ncontextual beats fused with t >= 2 on {won} of {len(s)} tasks")
    gap = max(abs(r["probe_cli"] - r["contextual"]) for r in s.values())
    head.append(
        f"`mediafm embed` + `mediafm probe` vs `mediafm evaluate` contextual: max "
        f"difference {gap:.4f}"
    )
    head += [
        "",
        f"| stage ({n_titles} titles, {n_shots} detected shots) | seconds | per title |",
        "|---|---:|---:|",
    ]
    for stage, sec in timings.items():
        head.append(f"| {stage} | {sec:.1f} | {sec / n_titles:.2f} |")
    total = sum(timings.values())
    head.append(f"| total | {total:.1f} | {total / n_titles:.2f} |")
    return "\n".join(head)


def run(a: argparse.Namespace, work: Path) -> dict:
    """The whole bench in `work`; returns {"summary", "timings", "titles", "shots", "results"}."""
    timings: dict[str, float] = {}
    titles = make_titles(work, a, timings)
    shots_and_encode(titles, work, a, timings)
    t0 = time.perf_counter()
    data = gather(titles, work)
    timings["gather"] = time.perf_counter() - t0
    results = train_embed_probe(data, work, a, timings)
    import pyarrow.parquet as pq

    n_shots = pq.read_metadata(data / "fused.parquet").num_rows
    return {
        "summary": summary(results),
        "timings": timings,
        "titles": len(titles),
        "shots": n_shots,
        "results": results,
    }


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--titles", type=int, default=80, help="scene titles (default 80)")
    p.add_argument("--seconds", type=float, default=40.0, help="length of each title")
    p.add_argument("--size", default="128x72", help="picture size WxH")
    p.add_argument("--seed", type=int, default=0, help="catalogue, title and training seed")
    p.add_argument(
        "--frames-per-shot",
        type=int,
        default=2,
        help="frames the video encoder sees per shot (0: the profile's default, 8)",
    )
    p.add_argument("--profile", default="offline", help="encoder profile (default offline)")
    p.add_argument("--steps", type=int, default=0, help="pretrain steps (0: the CLI default)")
    p.add_argument("--folds", type=int, default=5, help="probe folds, grouped by title")
    p.add_argument("--speech", choices=("auto", "espeak", "bursts"), default="auto")
    p.add_argument("--work", help="keep everything in this folder (default: a temp folder)")
    p.add_argument("--json", help="also write the summary and timings here")
    p.add_argument(
        "--in-process",
        action="store_true",
        help="run each command's main() in this process (tests; timings then leave "
        "out process start-up)",
    )
    return p.parse_args(argv)


def main(argv=None) -> int:
    global IN_PROCESS
    a = parse_args(argv)
    IN_PROCESS = a.in_process
    with tempfile.TemporaryDirectory(prefix="media_ablation_") as tmp:
        work = Path(a.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        out = run(a, work)
    print(format_tables(out["summary"], out["timings"], out["titles"], out["shots"]))
    print(
        f"\npretrain: best validation MSM {out['results']['pretrain'].get('best_val_loss')}"
        f" at step {out['results']['pretrain'].get('best_step')}"
    )
    if a.json:
        Path(a.json).write_text(
            json.dumps({k: out[k] for k in ("summary", "timings", "titles", "shots")}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
