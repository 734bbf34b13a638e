"""The trainer as Dagster Pipes sees it: `python -m mediafm_assets.pretraining.pipes_trainer`.

Launched by `encoder_checkpoint` through `PipesSubprocessClient` (under `torchrun` for several
GPUs). The environment variable MEDIAFM_TRAIN_SPEC carries the inputs as JSON, so every rank sees
them: {"fused": path, "globals": path|None, "out_dir": path, "train": TrainConfig dict}.
Only rank 0 talks to Dagster: it streams progress lines to the run log and, at the end, reports
the materialisation with the loss curve (Markdown) and final metrics.
Other ranks train silently. `mediafm_core` stays free of dagster; this file is the adapter.
"""

from __future__ import annotations

import json
import os

SPEC_ENV = "MEDIAFM_TRAIN_SPEC"  # JSON inputs of the training run, read by every rank


def curve_markdown(curve: list[dict]) -> str:
    """The loss curve as a Markdown table (step, train, val)."""
    lines = ["| step | train_loss | val_loss |", "|---:|---:|---:|"]
    for p in curve:
        val = p.get("val_loss")
        lines.append(f"| {p['step']} | {p['train_loss']:.4f} | "
                     f"{'' if val is None else f'{val:.4f}'} |")  # fmt: skip
    return "\n".join(lines)


def train(extras: dict, report=None) -> tuple[str, list[dict]]:
    """Run pre-training; `report(step, metrics)` gets each progress point. Returns (dir, curve)."""
    from mediafm_core.training import TrainConfig, pretrain

    curve: list[dict] = []

    def callback(step: int, metrics: dict) -> None:
        point = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
        curve.append(point | {"step": step})
        if report is not None:
            report(step, metrics)

    cfg = TrainConfig.from_dict(extras["train"])
    out = pretrain(cfg, extras["fused"], extras.get("globals"), extras["out_dir"], callback)
    return str(out), curve


def main() -> None:
    from dagster_pipes import open_dagster_pipes

    extras = json.loads(os.environ[SPEC_ENV])
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun worker: train, report nothing
        train(extras)
        return
    with open_dagster_pipes() as pipes:

        def report(step: int, m: dict) -> None:
            pipes.log.info(f"step {step} train_loss {m.get('train_loss'):.4f}"
                           + (f" val_loss {m['val_loss']:.4f}" if m.get("val_loss") else ""))

        out_dir, curve = train(extras, report)
        with open(os.path.join(out_dir, "metrics.json")) as f:
            metrics = json.load(f)
        scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}
        pipes.report_asset_materialization(
            metadata={
                "loss_curve": {"raw_value": curve_markdown(curve), "type": "md"},
                "checkpoint_dir": {"raw_value": out_dir, "type": "path"},
                "world_size": int(os.environ.get("WORLD_SIZE", "1")),
                **scalars,
            }
        )


if __name__ == "__main__":
    main()
