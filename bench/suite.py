"""The benchmark suite (issue 9): the ablation over families, seeds and settings.

Each cell is one synthetic benchmark (synthetic/families.py): a family, a seed, a title count, a
range of title lengths and a per-shot noise. Cells marked `tune` are the only ones any recipe
default was chosen on; `confirm` cells were never looked at while choosing. Per cell: generate,
pre-train Muon and AdamW (same recipe, same steps, two processes of one thread each, best
validation checkpoint), embed in context, and probe video-only, fused and both encoders'
contextual features with the same title folds. Printed: per task, contextual minus fused paired
over folds (mean, t, folds won); each optimiser's best validation MSM, its step, and the best
each reached within the faster run's wall clock (equal time).

Used by `bench/ablation.py --suite`; see its --help.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

log = logging.getLogger("bench.suite")


@dataclass(frozen=True)
class Cell:
    family: str
    seed: int
    titles: int
    min_shots: int
    max_shots: int
    noise: float  # FamilyConfig.view_noise
    role: str  # "tune": used to choose the recipe; "confirm": never used for choosing

    @property
    def name(self) -> str:
        return (
            f"{self.family}/s{self.seed}/{self.titles}t/{self.min_shots}-{self.max_shots}"
            f"/n{self.noise:g}"
        )


SUITE = (
    Cell("narrative", 11, 240, 80, 320, 1.5, "tune"),
    Cell("drift", 11, 240, 80, 320, 1.5, "tune"),
    Cell("narrative", 21, 400, 60, 700, 2.5, "confirm"),
    Cell("drift", 21, 150, 60, 200, 0.8, "confirm"),
    Cell("recurring", 21, 240, 80, 320, 1.5, "confirm"),
    Cell("recurring", 22, 1000, 60, 160, 2.5, "confirm"),
)


def _train(job: dict) -> dict:
    """Child process: one pre-training run with the recipe's defaults plus `job['train']`."""
    import torch

    from mediafm_core.training import TrainConfig, pretrain

    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    cfg = TrainConfig(**{"device": "cpu", "checkpoint_every": 0, "log_every": 500, **job["train"]})
    t0 = time.perf_counter()
    out = pretrain(cfg, job["fused"], job["globals"], job["out"])
    m = json.loads((Path(out) / "metrics.json").read_text())
    m["wall_s"] = time.perf_counter() - t0
    return m


def _data(cell: Cell, work: Path) -> Path:
    from mediafm_core.synthetic.families import FamilyConfig, generate
    from mediafm_core.synthetic.narrative import write

    d = work / cell.name.replace("/", "_")
    if not (d / "clips_retrieval.parquet").exists():
        cfg = FamilyConfig(
            family=cell.family,
            n_titles=cell.titles,
            seed=cell.seed,
            min_shots=cell.min_shots,
            max_shots=cell.max_shots,
            view_noise=cell.noise,
        )
        write(generate(cfg), d)
    return d


def best_within(curve: list[dict], seconds: float) -> float | None:
    """Lowest validation loss reached within `seconds` of training (equal wall clock)."""
    vals = [
        p["val_loss"]
        for p in curve
        if p.get("val_loss") is not None and p.get("elapsed_s", 0.0) <= seconds
    ]
    return min(vals) if vals else None


def run_cell(
    cell: Cell,
    work: Path,
    train: dict,
    folds: int,
    representation: str | None,
    optimizers=("muon", "adamw"),
    compare: tuple[str, ...] = (),
    reuse: bool = False,
    baselines: tuple[str, ...] = (),
) -> dict:
    """Pre-train, embed and probe one cell; returns the probe results and the training metrics.

    `compare`: more representations probed on the same checkpoints, as rows
    "contextual [<optimiser>, <representation>]"; `reuse`: keep a checkpoint already trained in
    `work` with the same settings; `baselines`: extra uncontextualised rows
    (evaluation.EXTRA_ROWS, e.g. fused_title), printed in the summary too."""
    from mediafm_core.evaluation import load_benchmark, run_ablation
    from mediafm_core.training.checkpoint import load_checkpoint

    data = _data(cell, work)
    tag = "_".join(f"{k}{v}" for k, v in sorted(train.items()))[:80]
    jobs = {
        o: {
            "train": {**train, "optimizer": o, "seed": cell.seed},
            "fused": str(data / "fused.parquet"),
            "globals": str(data / "globals.parquet"),
            "out": str(work / "ckpt" / f"{cell.name.replace('/', '_')}_{tag}_{o}"),
        }
        for o in optimizers
    }
    metrics = {o: _reused(j["out"], j["train"]) for o, j in jobs.items()} if reuse else {}
    todo = {o: j for o, j in jobs.items() if metrics.get(o) is None}
    if todo:
        with ProcessPoolExecutor(max_workers=len(todo), mp_context=get_context("spawn")) as pool:
            futures = {o: pool.submit(_train, j) for o, j in todo.items()}
            metrics.update({o: f.result() for o, f in futures.items()})
    bench = load_benchmark(data)
    table = run_ablation(bench, None, folds, rows=("video_only", "fused", *baselines))
    for o in optimizers:
        model, _ = load_checkpoint(jobs[o]["out"])
        rows = run_ablation(bench, model, folds, representation, rows=("contextual",))
        table[f"contextual [{o}]"] = rows["contextual"]
        for rep in compare:
            rows = run_ablation(bench, model, folds, rep, rows=("contextual",))
            table[f"contextual [{o}, {rep}]"] = rows["contextual"]
    return {"cell": cell, "table": table, "metrics": {o: metrics[o] for o in optimizers}}


# recorded per checkpoint but not part of what it learned
_RUN_ONLY = {"device", "checkpoint_every", "log_every", "compile", "prefetch", "cache_mb"}


def _reused(out: str, train: dict | None = None) -> dict | None:
    """The metrics of a finished checkpoint in `out` (wall_s as recorded), else None. With
    `train`, only a checkpoint trained with the recipe's current defaults plus `train` counts:
    a checkpoint tag names the overrides alone, so a changed default would otherwise reuse a
    checkpoint of the old recipe."""
    path = Path(out) / "metrics.json"
    if not (Path(out) / "model.safetensors").exists() or not path.exists():
        return None
    if train is not None:
        from mediafm_core.training import TrainConfig

        saved = json.loads((Path(out) / "config.json").read_text()).get("train", {})
        want = TrainConfig(**train).to_dict()
        missing = object()  # a setting newer than the checkpoint: another recipe
        if any(saved.get(k, missing) != v for k, v in want.items() if k not in _RUN_ONLY):
            log.info("%s: trained with another recipe, training again", out)
            return None
    m = json.loads(path.read_text())
    m.setdefault("wall_s", m["curve"][-1].get("elapsed_s", 0.0) if m.get("curve") else 0.0)
    return m


def format_cell(res: dict) -> str:
    from mediafm_core.evaluation import format_paired, format_table

    cell, m = res["cell"], res["metrics"]
    lines = [
        f"### {cell.name} ({cell.role})",
        "",
        format_table(res["table"]),
        "",
        format_paired(res["table"], prefix="contextual"),
        "",
    ]
    if len(m) == 2:
        t_eq = min(x["wall_s"] for x in m.values())
        lines.append(
            "| optimiser | best val MSM (step) | final val | best within equal time | "
            "wall s | baselines mean-shot / neighbour |"
        )
        lines.append("|---|---|---|---|---|---|")
        for o, x in m.items():
            eq = best_within(x["curve"], t_eq)
            base = f"{x['baseline_mean_shot']:.4f} / {x['baseline_neighbour']:.4f}"
            lines.append(
                f"| {o} | {x['best_val_loss']:.4f} ({x['best_step']}) | "
                f"{x['val_loss']:.4f} | {eq:.4f} | {x['wall_s']:.0f} | {base} |"
            )
    return "\n".join(lines)


def summary(results: list[dict], row: str = "contextual [muon]") -> str:
    """One line per cell (and per compared representation): contextual minus fused per task,
    relative to fused, with t; and Muon vs AdamW best val."""
    from mediafm_core.evaluation import EXTRA_ROWS, paired_differences

    tasks = list(results[0]["table"]["fused"])
    lines = [
        "| cell | role | row | " + " | ".join(tasks) + " | best val Muon / AdamW |",
        "|---|---|---|" + "---|" * (len(tasks) + 1),
    ]
    for r in results:
        names = [k for k in r["table"] if k == row or k.startswith(row[:-1] + ", ")]
        for name in names + [k for k in r["table"] if k in EXTRA_ROWS]:
            lines.append(_summary_line(r, name, tasks, paired_differences(r["table"])[name]))
    return "\n".join(lines)


def _summary_line(r: dict, row: str, tasks: list[str], d: dict) -> str:
    fused = r["table"]["fused"]
    cells = [
        f"{d[t]['diff']:+.3f} ({100 * d[t]['diff'] / abs(fused[t].mean):+.1f} %, "
        f"t {d[t]['t']:+.1f})"
        for t in tasks
    ]
    m = r["metrics"]
    val = (
        f"{m['muon']['best_val_loss']:.4f} / {m['adamw']['best_val_loss']:.4f}"
        if len(m) == 2
        else "-"
    )
    return f"| {r['cell'].name} | {r['cell'].role} | {row} | " + " | ".join(cells) + f" | {val} |"


def to_json(results: list[dict]) -> list[dict]:
    from mediafm_core.evaluation import paired_differences, results_json

    return [
        {
            "cell": r["cell"].__dict__,
            "probes": results_json(r["table"]),
            "paired": paired_differences(r["table"]),
            "pretrain": r["metrics"],
        }
        for r in results
    ]
