"""`mediafm pretrain`: Masked Shot Modelling pre-training on Parquet files (stdlib-only imports)."""

from __future__ import annotations

import argparse
import json
import os
import sys


def register(sub: argparse._SubParsersAction) -> None:
    """Add `pretrain` to the `mediafm` parser."""
    from mediafm_core.training.config import (  # dataclasses only
        CONTRASTIVE_NEGATIVES,
        CONTRASTIVE_ON,
        CORRUPTIONS,
        TrainConfig,
    )

    p = sub.add_parser(
        "pretrain",
        help="pre-train the shot encoder with Masked Shot Modelling",
        description="Pre-train the MediaFM encoder on fused shot vectors and write a checkpoint "
        "folder (model.safetensors, config.json, metrics.json, trainer_state.pt). Under torchrun "
        "every rank runs this command and rank 0 writes the checkpoint.",
    )
    p.add_argument(
        "--fused",
        required=True,
        help="fused shots (title_id, shot_index, fused): a Parquet file, or a folder "
        "of them such as <root>/artefacts/fused_shots (local or s3://); streamed",
    )
    p.add_argument(
        "--globals",
        help="title metadata vectors (title_id, vector): a Parquet file "
        "or folder such as <root>/artefacts/title_metadata_embedding",
    )
    p.add_argument(
        "--prefetch",
        type=int,
        default=TrainConfig.prefetch,
        help="batches read ahead in a background thread (0 = none)",
    )
    p.add_argument(
        "--cache-mb",
        type=float,
        default=TrainConfig.cache_mb,
        help="decoded Parquet row groups kept for reuse, MiB",
    )
    p.add_argument(
        "--in-memory",
        action="store_true",
        help="read the whole input into memory before training (the pre-streaming "
        "path; for comparisons)",
    )
    p.add_argument("--out", required=True, help="checkpoint folder to write")
    p.add_argument("--optimizer", choices=("muon", "adamw"), default="muon")
    p.add_argument(
        "--steps",
        type=int,
        default=TrainConfig.steps,
        help="optimiser steps (upper bound with --patience)",
    )
    p.add_argument(
        "--size",
        default=TrainConfig.size,
        help="auto (by training shots) | tiny | small | medium | base | large (README: which when)",
    )
    p.add_argument("--layers", type=int, help="override the size's layer count")
    p.add_argument("--hidden", type=int, help="override the size's width")
    p.add_argument("--heads", type=int, help="override the size's attention heads")
    p.add_argument(
        "--batch-size", type=int, default=TrainConfig.batch_size, help="windows per step (per rank)"
    )
    p.add_argument("--lr", type=float, default=TrainConfig.lr, help="AdamW peak learning rate")
    p.add_argument(
        "--muon-lr", type=float, default=TrainConfig.muon_lr, help="Muon peak learning rate"
    )
    p.add_argument(
        "--warmup", type=int, default=TrainConfig.warmup, help="warm-up steps (<= steps/5)"
    )
    p.add_argument(
        "--window",
        type=int,
        default=TrainConfig.window,
        help="training window in shots (random crops of longer titles)",
    )
    p.add_argument("--val-fraction", type=float, default=0.1, help="titles held out (by id)")
    p.add_argument(
        "--eval-every", type=int, default=TrainConfig.eval_every, help="validate every N steps"
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=TrainConfig.checkpoint_every,
        help="checkpoint every N steps",
    )
    p.add_argument("--log-every", type=int, default=10, help="progress line every N steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--compile", action="store_true", help="torch.compile the training step")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument(
        "--unmasked-weight",
        type=float,
        default=TrainConfig.unmasked_weight,
        help="weight of the reconstruction loss at unmasked shots (0 = masked-only MSM)",
    )
    p.add_argument(
        "--contrastive-weight",
        type=float,
        default=TrainConfig.contrastive_weight,
        help="weight of an InfoNCE term at masked shots, the title's other shots as negatives "
        "(0 = MSM alone)",
    )
    p.add_argument(
        "--contrastive-temperature",
        type=float,
        default=TrainConfig.contrastive_temperature,
        help="temperature of the InfoNCE term's cosine logits",
    )
    p.add_argument(
        "--contrastive-on",
        choices=CONTRASTIVE_ON,
        default=TrainConfig.contrastive_on,
        help="InfoNCE on the MSM prediction (output) or on a separate head trained by it alone",
    )
    p.add_argument(
        "--contrastive-negatives",
        choices=CONTRASTIVE_NEGATIVES,
        default=TrainConfig.contrastive_negatives,
        help="InfoNCE distractors: the title window's other shots (title) or every shot of the "
        "batch (batch)",
    )
    p.add_argument(
        "--corruption",
        choices=CORRUPTIONS,
        default=TrainConfig.corruption,
        help="selected shots -> [MASK] (mask) or BERT's 80/10/10 mask/random/keep (bert)",
    )
    p.add_argument(
        "--mask-span",
        type=int,
        default=TrainConfig.mask_span,
        help="mask runs of this many consecutive shots when training (1 = single shots)",
    )
    p.add_argument(
        "--dropout",
        type=float,
        default=TrainConfig.dropout,
        help="dropout on attention and residual branches (default: the recipe's)",
    )
    p.add_argument("--weight-decay", type=float, default=TrainConfig.weight_decay)
    p.add_argument(
        "--mask-ratio",
        type=float,
        default=TrainConfig.mask_ratio,
        help="share of shots masked for MSM (seed: 0.2)",
    )
    p.add_argument(
        "--patience",
        type=int,
        default=TrainConfig.patience,
        help="stop after N evaluations without a better validation MSM (0 = never)",
    )
    p.add_argument(
        "--last",
        action="store_true",
        help="keep the last weights, not those of the best validation MSM",
    )
    p.set_defaults(func=run_pretrain)


def run_pretrain(args: argparse.Namespace) -> int:
    from mediafm_core.errors import InputError
    from mediafm_core.training import TrainConfig, pretrain

    try:
        cfg = TrainConfig(
            size=args.size,
            layers=args.layers,
            hidden=args.hidden,
            heads=args.heads,
            optimizer=args.optimizer,
            steps=args.steps,
            batch_size=args.batch_size,
            lr=args.lr,
            muon_lr=args.muon_lr,
            warmup=args.warmup,
            window=args.window,
            seed=args.seed,
            val_fraction=args.val_fraction,
            device=args.device,
            compile=args.compile,
            eval_every=args.eval_every,
            checkpoint_every=args.checkpoint_every,
            log_every=args.log_every,
            resume=args.resume,
            unmasked_weight=args.unmasked_weight,
            contrastive_weight=args.contrastive_weight,
            contrastive_temperature=args.contrastive_temperature,
            contrastive_on=args.contrastive_on,
            contrastive_negatives=args.contrastive_negatives,
            corruption=args.corruption,
            mask_span=args.mask_span,
            dropout=args.dropout,
            weight_decay=args.weight_decay,
            mask_ratio=args.mask_ratio,
            patience=args.patience,
            keep_best=not args.last,
            prefetch=args.prefetch,
            cache_mb=args.cache_mb,
            in_memory=args.in_memory,
        )
    except ValueError as exc:
        raise InputError("arguments", str(exc)) from exc
    from mediafm_core.progress import progress_bar

    rank0 = os.environ.get("RANK", "0") == "0"  # under torchrun one bar, rank 0's
    with progress_bar("pretrain", cfg.steps if rank0 else 0, unit="step") as bar:
        out = pretrain(
            cfg, args.fused, args.globals, args.out, callback=lambda step, metrics: bar.set(step)
        )
    if os.environ.get("RANK", "0") != "0":
        return 0  # under torchrun only rank 0 reports
    metrics = json.loads((out / "metrics.json").read_text())
    summary = {
        k: metrics.get(k)
        for k in (
            "steps",
            "optimizer",
            "train_loss",
            "val_loss",
            "baseline_mean_shot",
            "baseline_neighbour",
            "best_step",
            "best_val_loss",
            "stopped_early",
            "model_version",
        )
    }
    print(json.dumps({"checkpoint": str(out), **summary}), file=sys.stdout)
    return 0
