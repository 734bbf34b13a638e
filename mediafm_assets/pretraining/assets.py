"""Pre-training: `encoder_checkpoint`, the MediaFM encoder trained with Masked Shot Modelling on
every title's fused shots. A GPU op run out of process through Dagster Pipes (or in process for
tests and tiny runs: `TrainerLauncherResource.mode`). The checkpoint folder is written atomically
under <root>/checkpoints/<run id>; `checkpoints/LATEST` then points at it, which makes every
title's contextual embeddings stale (automation re-embeds them).

LATEST moves only after the new folder is verified (`verify_checkpoint`: the trainer reported its
metrics, and the safetensors weights load into the model its config.json describes): a trainer
that exits 0 without a checkpoint fails the step and the current model keeps serving. A trainer
that fails puts its last stderr lines into the step's failure message (stderr_tail.py; issue 12).
"""

import json
import os
import sys
import time
from pathlib import Path

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    DataVersion,
    Failure,
    MaterializeResult,
    MetadataValue,
    PipesSubprocessClient,
    asset,
)
from pydantic import Field

from mediafm_assets.partitions import GPU_POOL, OWNERS
from mediafm_assets.pretraining.pipes_trainer import SPEC_ENV, curve_markdown, curve_picture
from mediafm_assets.resources import StorageResource, TrainerLauncherResource


class PretrainConfig(Config):
    """Launch-time knobs; converted into `mediafm_core.training.TrainConfig` in `train_config`."""

    size: str = Field(
        default="auto",
        description="Model size: auto (by catalogue shots) | tiny | small | medium | base | large",
    )
    steps: int = Field(default=300, description="Optimiser steps")
    optimizer: str = Field(default="muon", description="muon | adamw")
    device: str = Field(default="auto", description="auto | cpu | cuda")
    batch_size: int = Field(default=8, description="Windows per step per process")
    lr: float = Field(default=1e-3, description="AdamW peak learning rate")
    window: int = Field(default=512, description="Training window in shots")
    seed: int = Field(default=0, description="Seed of init, windows and masks")
    eval_every: int = Field(default=50, description="Validate every N steps")
    patience: int = Field(
        default=5, description="Stop after N validations without a better MSM (0 = never)"
    )
    log_every: int = Field(default=10, description="Report progress every N steps")
    checkpoint_every: int = Field(
        default=0,
        description="Save resumable trainer state every N "
        "steps (0 = at every validation); a retried run resumes there",
    )
    publish_below_baselines: bool = Field(
        default=False,
        description="Move LATEST even when validation MSM does not beat the "
        "mean-shot and neighbour baselines (smoke tests of tiny runs only; the check passes "
        "and records beats_baselines: false)",
    )

    def train_config(self) -> dict:
        from mediafm_core.training import TrainConfig

        cfg = TrainConfig(
            size=self.size,
            steps=self.steps,
            optimizer=self.optimizer,
            device=self.device,
            batch_size=self.batch_size,
            lr=self.lr,
            window=self.window,
            seed=self.seed,
            eval_every=self.eval_every,
            checkpoint_every=self.checkpoint_every or self.eval_every,
            log_every=self.log_every,
            patience=self.patience,
            resume=True,
            warmup=min(100, max(1, self.steps // 5)),
        )
        return cfg.to_dict()


def training_inputs(storage: StorageResource) -> dict:
    """The trainer's inputs as locations, not tables (issue 17): the training dataset is the
    folder of per-title Parquet files `fused_shots` writes (each replaced in one atomic write),
    and `title_metadata_embedding`'s folder for the [GLOBAL] vectors (None before any)."""
    from upath import UPath

    from mediafm_core.storage.layout import join

    art = storage.layout().artefacts
    fused, globals_ = join(art, "fused_shots"), join(art, "title_metadata_embedding")
    return {"fused": fused, "globals": globals_ if UPath(globals_).exists() else None}


def check_dataset(uri: str) -> dict:
    """Open the training dataset's index (Parquet footers, no vectors) so that an empty
    dataset or mixed fused widths fail here, with the titles named, before any trainer or GPU
    pod is launched. Returns its titles, shots and width."""
    from mediafm_core.training.dataset import ParquetTitles

    titles = ParquetTitles(uri)
    return {
        "titles": len(titles.title_ids),
        "fused_dim": titles.dim,
        "shots": sum(titles.n_rows(t) for t in titles.title_ids),
    }


def trainer_command(trainer: TrainerLauncherResource) -> list[str]:
    """`python -m ...pipes_trainer`, or torchrun with one process per GPU when there are several."""
    python = trainer.python or sys.executable
    module = ["-m", "mediafm_assets.pretraining.pipes_trainer"]
    n = trainer.processes()
    if n <= 1:
        return [python, *module]
    return [python, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}", *module]


def run_in_process(context, spec: dict) -> dict:
    """Train in this process (tests, tiny CPU runs); returns the metadata Pipes would report."""
    from mediafm_assets.pretraining.pipes_trainer import train

    def report(step, m):
        context.log.info(f"step {step} train_loss {m.get('train_loss'):.4f}")

    out_dir, curve = train(spec, report)
    with open(os.path.join(out_dir, "metrics.json")) as f:
        metrics = json.load(f)
    scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}
    return {
        "loss_curve_plot": MetadataValue.md(curve_picture(curve, metrics)),
        "loss_curve": MetadataValue.md(curve_markdown(curve)),
        **scalars,
        "world_size": 1,
    }


def run_with_pipes(context, client: PipesSubprocessClient, trainer, spec: dict) -> dict:
    """Launch the trainer through Pipes (under stderr_tail); its reported metadata comes back with
    the result. A failed trainer raises `Failure` carrying its last stderr lines."""
    import tempfile

    from dagster._core.errors import DagsterPipesExecutionError

    cmd = trainer_command(trainer)
    env = {**os.environ, SPEC_ENV: json.dumps(spec)}
    with tempfile.TemporaryDirectory(prefix="mediafm-trainer-") as tmp:
        tail = os.path.join(tmp, "stderr_tail.txt")
        wrapped = [sys.executable, "-m", "mediafm_assets.pretraining.stderr_tail", tail, "--", *cmd]
        try:
            invocation = client.run(command=wrapped, context=context, env=env)
        except DagsterPipesExecutionError as exc:
            last = Path(tail).read_text().strip() if os.path.exists(tail) else ""
            raise Failure(
                description=f"trainer failed ({exc}); its last stderr lines:\n{last or '(none)'}",
                metadata={"command": " ".join(cmd), "stderr_tail": MetadataValue.text(last)},
            ) from exc
    reported = invocation.get_materialize_result().metadata or {}
    return dict(reported) | {"command": " ".join(cmd[1:])}


def checkpoint_curve_picture(out_dir: str) -> str:
    """The loss-curve picture (`curve_picture`) of the checkpoint at `out_dir`, from its
    metrics.json (the whole curve, also across a resume)."""
    from mediafm_core.storage.s3 import local_copy

    with open(os.path.join(local_copy(out_dir, "checkpoints"), "metrics.json")) as f:
        metrics = json.load(f)
    return curve_picture(metrics.get("curve", []), metrics)


def verify_checkpoint(out_dir: str, meta: dict) -> None:
    """Raise `Failure` unless the trainer reported its metrics and `out_dir` holds a checkpoint
    whose safetensors weights load into the model its config.json describes."""
    if "loss_curve" not in meta:
        raise Failure(
            description=f"the trainer exited without reporting its metrics over Pipes; "
            f"checkpoints/LATEST not moved to {out_dir}"
        )
    from mediafm_core.storage.s3 import local_copy
    from mediafm_core.training.checkpoint import load_checkpoint

    try:
        load_checkpoint(local_copy(out_dir, "checkpoints"))
    except Exception as exc:  # missing folder, config or weights; shapes that do not match
        raise Failure(
            description=f"the trainer wrote no loadable checkpoint at {out_dir} "
            f"({exc}); checkpoints/LATEST not moved"
        ) from exc


@asset(
    deps=["fused_shots", "title_metadata_embedding"],
    group_name="pretraining",
    owners=OWNERS,
    kinds={"pytorch", "safetensors"},
    pool=GPU_POOL,
    check_specs=[
        AssetCheckSpec(
            "beats_baselines",
            asset="encoder_checkpoint",
            blocking=True,
            description="Validation MSM below the mean-shot and neighbour "
            "baselines; otherwise checkpoints/LATEST does not move",
        )
    ],
    description="The MediaFM encoder pre-trained with Masked Shot Modelling on all titles' fused "
    "shots; trained out of process through Dagster Pipes (torchrun when several GPUs). Its data "
    "version is the checkpoint's model_version (a hash of the weights).",
)
def encoder_checkpoint(
    context: AssetExecutionContext,
    config: PretrainConfig,
    storage: StorageResource,
    trainer: TrainerLauncherResource,
    pipes_subprocess_client: PipesSubprocessClient,
) -> MaterializeResult:
    t0 = time.perf_counter()
    run = training_run_key(context)
    inputs = training_inputs(storage)  # paths: no partition is loaded into this process
    dataset = check_dataset(inputs["fused"])  # footers only: bad widths fail before a launch
    out_dir = storage.checkpoint_dir(f"run-{run}")
    spec = {**inputs, "out_dir": out_dir, "train": config.train_config()}
    if trainer.mode == "in_process":
        meta = run_in_process(context, spec)
    elif trainer.mode == "k8s":
        from mediafm_assets.pretraining.k8s import run_with_k8s

        meta = run_with_k8s(context, trainer, spec)  # dagster-k8s imported only here
    else:
        meta = run_with_pipes(context, pipes_subprocess_client, trainer, spec)
    verify_checkpoint(out_dir, meta)
    if "loss_curve_plot" not in meta:  # out of process: drawn here from the checkpoint's metrics
        meta["loss_curve_plot"] = MetadataValue.md(checkpoint_curve_picture(out_dir))
    gate = beats_baselines(meta)
    if gate.passed or config.publish_below_baselines:
        storage.set_current(f"run-{run}")
    return MaterializeResult(
        metadata={
            **meta,
            "checkpoint_dir": MetadataValue.path(out_dir),
            "training_dataset": MetadataValue.path(inputs["fused"]),
            **dataset,
            "launcher": trainer.mode,
            "train_config": MetadataValue.json(spec["train"]),
            "seconds": round(time.perf_counter() - t0, 2),
            "latest_moved": gate.passed or config.publish_below_baselines,
        },
        data_version=DataVersion(str(_value(meta.get("model_version", f"run-{run}")))),
        check_results=[baselines_result(gate, config.publish_below_baselines)],
    )


def training_run_key(context) -> str:
    """The checkpoint folder's key: the ROOT run's id, so a re-executed (retried) run finds the
    trainer state its first attempt saved and resumes there (`TrainConfig.resume`)."""
    return (context.run.root_run_id or context.run.run_id)[:8]


def beats_baselines(meta: dict):
    """`mediafm_core.checks.beats_baselines` over the metrics the trainer reported."""
    from mediafm_core.checks import beats_baselines as check

    return check({k: _value(v) for k, v in meta.items()})


def baselines_result(gate, published_anyway: bool) -> AssetCheckResult:
    """The blocking check result. With `publish_below_baselines` (smoke tests, the 7-title demo)
    the operator accepted the checkpoint: the check passes, says `beats_baselines: false` and
    why in its description, and downstream automation proceeds."""
    accepted = gate.passed or published_anyway
    why = (
        None
        if gate.passed
        else (
            f"{gate.problem}; published anyway (publish_below_baselines)"
            if published_anyway
            else gate.problem
        )
    )
    return AssetCheckResult(
        check_name="beats_baselines",
        passed=accepted,
        severity=AssetCheckSeverity.ERROR,
        description=why,
        metadata={
            **gate.metadata,
            "beats_baselines": gate.passed,
            "problem": gate.problem or "none",
            "latest_moved": accepted,
        },
    )


def _value(v):
    return getattr(v, "value", v)  # a reported metadata value carries its raw value
