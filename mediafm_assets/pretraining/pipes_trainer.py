"""The trainer as Dagster Pipes sees it: `python -m mediafm_assets.pretraining.pipes_trainer`.

Launched by `encoder_checkpoint` through `PipesSubprocessClient` (under `torchrun` for several
GPUs). The environment variable MEDIAFM_TRAIN_SPEC carries the inputs as JSON, so every rank sees
them: {"fused": path, "globals": path|None, "out_dir": path, "train": TrainConfig dict}; the
paths are the training dataset's folders (or Parquet files), read window by window (issue 17).
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
        lines.append(
            f"| {p['step']} | {p['train_loss']:.4f} | {'' if val is None else f'{val:.4f}'} |"
        )
    return "\n".join(lines)


def curve_picture(curve: list[dict], metrics: dict) -> str:
    """The loss curve drawn with matplotlib (train and validation MSM, the mean-shot and
    neighbour baselines as flat lines) as a Markdown image with a base64 PNG data URL."""
    from mediafm_core.pictures import loss_curve, markdown_image

    baselines = {k: metrics.get(f"baseline_{k}") for k in ("mean_shot", "neighbour")}
    return markdown_image(loss_curve(curve, baselines), "MSM loss curve")


def train(extras: dict, report=None, summary: dict | None = None) -> tuple[str, list[dict]]:
    """Run pre-training; `report(step, metrics)` gets each progress point. Returns (dir, curve):
    the LOCAL checkpoint folder. With an s3:// storage root the inputs are copied to local files
    first and rank 0 uploads the finished checkpoint folder to `out_dir` (mediafm_core/storage/s3).
    Under torchrun, `summary["rank_weights"]` receives every rank's weights_version (rank order):
    DDP promises identical weights, and the run reports whether they are.
    """
    from mediafm_core.storage.s3 import is_s3, local_work_dir, upload_folder
    from mediafm_core.training import TrainConfig
    from mediafm_core.training.checkpoint import weights_version
    from mediafm_core.training.trainer import Trainer

    curve: list[dict] = []

    def callback(step: int, metrics: dict) -> None:
        point = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
        curve.append(point | {"step": step})
        if report is not None:
            report(step, metrics)

    cfg = TrainConfig.from_dict(extras["train"])
    fused, globals_ = extras["fused"], extras.get("globals")  # streamed (local or s3://)
    remote = is_s3(extras["out_dir"])
    out_dir = local_work_dir(extras["out_dir"], "train-out") if remote else extras["out_dir"]
    group = _join_process_group(cfg.device)  # kept open after fit() for the weights check
    try:
        trainer = Trainer(cfg, fused, globals_, out_dir, callback)
        out = trainer.fit()
        versions = _gather(weights_version(trainer.model.state_dict()), group)
    finally:
        if group:
            import torch.distributed as dist

            dist.destroy_process_group()
    if summary is not None:
        summary["rank_weights"] = versions
    if remote and int(os.environ.get("RANK", "0")) == 0:
        upload_folder(str(out), extras["out_dir"])
    return str(out), curve


def _join_process_group(device: str) -> bool:
    """Under torchrun (WORLD_SIZE > 1) join the process group here, so it outlives the Trainer
    (which then does not own it); nccl for CUDA, gloo on CPU. False outside torchrun."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    import torch
    import torch.distributed as dist

    cuda = device != "cpu" and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    return True


def _gather(value: str, group: bool) -> list[str]:
    """Every rank's `value`, in rank order (just this one outside torchrun)."""
    if not group:
        return [value]
    import torch.distributed as dist

    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return [str(v) for v in out]


def main() -> None:
    from dagster_pipes import open_dagster_pipes

    extras = json.loads(os.environ[SPEC_ENV])
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun worker: train, report nothing
        train(extras)
        return
    with open_dagster_pipes() as pipes:

        def report(step: int, m: dict) -> None:
            pipes.log.info(
                f"step {step} train_loss {m.get('train_loss'):.4f}"
                + (f" val_loss {m['val_loss']:.4f}" if m.get("val_loss") else "")
            )

        summary: dict = {}
        out_dir, curve = train(extras, report, summary)
        with open(os.path.join(out_dir, "metrics.json")) as f:
            metrics = json.load(f)
        scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}
        ranks = summary.get("rank_weights", [])
        # No picture in the message: Pipes' temp-file reader can read a long line while it is
        # still being written (JSONDecodeError seen once in CI); the orchestrator draws the
        # curve from the checkpoint's metrics.json instead (assets.encoder_checkpoint).
        pipes.report_asset_materialization(
            metadata={
                "loss_curve": {"raw_value": curve_markdown(curve), "type": "md"},
                "checkpoint_dir": {"raw_value": extras["out_dir"], "type": "path"},
                "world_size": int(os.environ.get("WORLD_SIZE", "1")),
                "rank_weights": {"raw_value": ranks, "type": "json"},
                "ranks_agree": len(set(ranks)) == 1,
                **scalars,
            }
        )


if __name__ == "__main__":
    main()
