#!/usr/bin/env python
"""Where `mediafm evaluate` spends its CPU seconds (issue 20, "probes in seconds").

    OMP_NUM_THREADS=1 bench/evaluate_split.py B --checkpoint CK

runs the steps of `mediafm evaluate B --checkpoint CK` one after another and prints a Markdown
table of process CPU seconds (`time.process_time`, so a shared machine inflates them less than
wall time): imports, opening the benchmark and the checkpoint, the clip features of each row
(video_only + fused pooling, contextual, clip_alone, each a scan of the titles) and the probes
of every row and task. Prints the evaluate table too, so a run can be checked against the CLI's.
"""

from __future__ import annotations

import argparse
import sys
import time


def split(data_dir: str, checkpoint: str | None, folds: int = 10, representation: str = "auto"):
    """(step -> CPU seconds, results of `run_ablation`) for `mediafm evaluate`'s steps."""
    t0 = time.process_time()
    import torch

    from mediafm_core import evaluation
    from mediafm_core.cli.model_commands import _load_model

    torch.set_num_threads(1)
    steps = {"import": time.process_time() - t0}
    t = time.process_time()
    bench = evaluation.open_benchmark(data_dir)
    model = _load_model(checkpoint, "cpu")[0] if checkpoint else None
    steps["open benchmark + checkpoint"] = time.process_time() - t
    feats: dict = {}
    groups = [("video_only", "fused")] + ([("contextual",), ("clip_alone",)] if model else [])
    for rows in groups:
        t = time.process_time()
        feats.update(
            evaluation.streamed_features(
                bench.fused,
                bench.video,
                bench.globals_,
                bench.clips,
                model,
                representation,
                rows=rows,
            )
        )
        steps["features: " + " + ".join(r for r in rows if r in feats)] = time.process_time() - t
    t = time.process_time()
    results = evaluation.run_ablation(bench.as_data(), model, folds=folds, features=feats)
    steps[f"probes: {len(results)} rows x {len(bench.clips)} tasks, {folds} folds"] = (
        time.process_time() - t
    )
    return steps, results


def format_split(steps: dict[str, float]) -> str:
    lines = ["| step | CPU s |", "|---|---:|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in steps.items()]
    lines.append(f"| total | {sum(steps.values()):.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data_dir", help="folder in the `mediafm synth` layout")
    p.add_argument("--checkpoint", help="checkpoint folder; without it only the baselines run")
    p.add_argument("--folds", type=int, default=10)
    p.add_argument("--representation", default="auto")
    args = p.parse_args(argv)
    from mediafm_core.evaluation import format_table

    steps, results = split(args.data_dir, args.checkpoint, args.folds, args.representation)
    print(format_split(steps))
    print()
    print(format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
