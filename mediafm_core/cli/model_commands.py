"""Model-side subcommands on Parquet files: synth, embed, probe, evaluate.

Only stdlib at module level: handlers import numpy, torch and sklearn themselves.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)

TASK_NAMES = ("ad_relevancy", "popularity", "tone", "genre", "retrieval")
REPRESENTATION_CHOICES = (
    "output",
    "hidden",
    "concat",
    "masked",
    "output+masked",
    "fused+masked",
    "compact",
    "centred+masked",
    "compact-centred",
    "auto",
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add synth, embed, probe and evaluate to the `mediafm` parser."""
    p = sub.add_parser("synth", help="write the synthetic narrative benchmark (vectors + clips)")
    p.add_argument("out_dir", help="folder to write fused/globals/video_only/clips_<task>.parquet")
    p.add_argument("--titles", type=int, default=200, help="number of titles (default 200)")
    p.add_argument(
        "--dims",
        type=int,
        nargs=3,
        default=(64, 64, 64),
        metavar=("DV", "DA", "DT"),
        help="video, audio, text widths (default 64 64 64)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the whole benchmark")
    p.add_argument(
        "--family",
        choices=("narrative", "drift", "recurring"),
        default="narrative",
        help="generative story (synthetic/families.py): discrete scenes with a title arc "
        "(narrative), continuously drifting state (drift), or sets shared across the catalogue "
        "and revisited within a title (recurring)",
    )
    p.add_argument("--min-shots", type=int, default=60, help="shortest title (default 60)")
    p.add_argument("--max-shots", type=int, default=700, help="longest title (default 700)")
    p.add_argument(
        "--noise",
        type=float,
        default=1.0,
        help="per-shot view noise: 0.5 easy, 1.0 default, 3.0 one shot barely identifies its "
        "surroundings",
    )
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("embed", help="contextual shot embeddings of whole titles")
    p.add_argument("--checkpoint", required=True, help="checkpoint folder (mediafm pretrain)")
    p.add_argument("--fused", required=True, help="fused.parquet (title_id, shot_index, fused)")
    p.add_argument("--globals", help="globals.parquet (title_id, vector)")
    p.add_argument("--out", required=True, help="output Parquet (title_id, shot_index, vector)")
    p.add_argument(
        "--representation",
        choices=REPRESENTATION_CHOICES,
        default=None,
        help="output projection, last hidden state, both (concat), each shot's MSM prediction "
        "(masked), output and MSM prediction side by side (output+masked, 2 x fused width), "
        "the fused input plus the unit MSM prediction (fused+masked), output+masked in the "
        "basis of the head's span (compact, 2 x (hidden + 1) floats), the output minus its "
        "title's mean beside the MSM prediction (centred+masked, 2 x fused width) and in the "
        "head's span (compact-centred, 2 x hidden + 1 floats), or auto (the default): "
        "compact-centred where that is exact (2 x hidden + 1 <= fused width), else "
        "centred+masked",
    )
    p.add_argument("--batch-size", type=int, default=8, help="windows per forward pass")
    p.add_argument("--device", default="cpu", help="cpu | cuda")
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("probe", help="linear probe of one task on frozen shot vectors")
    p.add_argument("--embeddings", required=True, help="Parquet with title_id, shot_index, vector")
    p.add_argument("--column", default="vector", help="vector column (default: vector)")
    p.add_argument("--clips", required=True, help="clips_<task>.parquet")
    p.add_argument("--task", required=True, help=f"one of {', '.join(TASK_NAMES)}")
    p.add_argument("--folds", type=int, default=10, help="outer folds grouped by title")
    p.add_argument("--seed", type=int, default=0, help="fold assignment seed")
    p.add_argument("--json", help="also write the result JSON here")
    _method_arg(p)
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("evaluate", help="the ablation: video-only, fused, contextual, clip-alone")
    p.add_argument("data_dir", help="folder in the `mediafm synth` layout")
    p.add_argument("--checkpoint", help="checkpoint folder; without it only the baselines run")
    p.add_argument("--folds", type=int, default=10, help="outer folds grouped by title")
    p.add_argument("--representation", choices=REPRESENTATION_CHOICES, default=None)
    p.add_argument("--device", default="cpu", help="cpu | cuda")
    p.add_argument("--json", help="also write all results as JSON here")
    _method_arg(p)
    p.set_defaults(func=cmd_evaluate)


def _method_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--method",
        choices=("ridge", "logistic"),
        default="ridge",
        help="probe: closed-form ridge, all labels and strengths at once (default), or one "
        "scikit-learn logistic regression per label (the slower reference)",
    )


def cmd_synth(args: argparse.Namespace) -> int:
    from mediafm_core.errors import InputError
    from mediafm_core.synthetic.families import FamilyConfig, generate
    from mediafm_core.synthetic.narrative import write

    if args.titles < 1 or min(args.dims) < 1:
        raise InputError("arguments", "--titles and --dims must be positive")
    try:
        cfg = FamilyConfig(
            family=args.family,
            n_titles=args.titles,
            dims=tuple(args.dims),
            seed=args.seed,
            min_shots=args.min_shots,
            max_shots=args.max_shots,
            view_noise=args.noise,
        )
    except ValueError as exc:
        raise InputError("arguments", str(exc)) from exc
    log.info(
        "generating %d %s titles (dims %s, seed %d)", cfg.n_titles, cfg.family, cfg.dims, cfg.seed
    )
    paths = write(generate(cfg), args.out_dir)
    print(json.dumps({k: str(v) for k, v in paths.items()}))
    return 0


def _load_model(checkpoint: str, device: str):
    from mediafm_core.training.checkpoint import load_checkpoint

    model, meta = load_checkpoint(checkpoint, device)
    return model, meta


def _check_width(model, width: int, source: str) -> None:
    from mediafm_core.errors import InputError

    if width != model.config.fused_dim:
        raise InputError(
            source, f"vectors are {width} wide, the checkpoint expects {model.config.fused_dim}"
        )


def _read_globals(path: str | None, model) -> dict:
    from mediafm_core.errors import InputError
    from mediafm_core.tables import read_vectors

    if not path:
        return {}
    gt = read_vectors(path, keys=("title_id",))
    if model.config.global_dim and gt.dim != model.config.global_dim:
        raise InputError(
            path, f"vectors are {gt.dim} wide, the checkpoint expects {model.config.global_dim}"
        )
    return {str(t): v for t, v in zip(gt.title_ids, gt.vectors)}


def cmd_embed(args: argparse.Namespace) -> int:
    import numpy as np

    from mediafm_core.evaluation import _progress
    from mediafm_core.inference import DEFAULT_REPRESENTATION, embed_titles, resolve_representation
    from mediafm_core.probes.tasks import vectors_by_title
    from mediafm_core.tables import read_vectors, write_vectors

    model, meta = _load_model(args.checkpoint, args.device)
    table = read_vectors(args.fused, column="fused")
    _check_width(model, table.dim, args.fused)
    titles = vectors_by_title(table, args.fused)
    globs = _read_globals(args.globals, model)
    rep = resolve_representation(model, args.representation or DEFAULT_REPRESENTATION)
    emb = embed_titles(
        model, titles, globs, rep, args.batch_size, device=args.device, progress=_progress("embed")
    )
    tids = np.concatenate([[t] * len(v) for t, v in emb.items()])
    idx = np.concatenate([np.arange(len(v)) for v in emb.values()])
    version = str(meta.get("model_version", "unknown"))
    write_vectors(
        args.out, tids, idx, np.concatenate(list(emb.values())), model_version=[version] * len(tids)
    )
    print(
        json.dumps(
            {
                "out": args.out,
                "titles": len(emb),
                "shots": int(len(tids)),
                "representation": rep,
                "model_version": version,
            }
        )
    )
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    from mediafm_core.errors import InputError
    from mediafm_core.evaluation import _progress
    from mediafm_core.probes import clip_features, read_clips, run_probe
    from mediafm_core.probes.tasks import vectors_by_title
    from mediafm_core.tables import read_vectors

    if args.task not in TASK_NAMES:
        raise InputError(args.clips, f"unknown task {args.task!r}; known: {', '.join(TASK_NAMES)}")
    if args.folds < 2:
        raise InputError("--folds", "needs at least 2 folds")
    table = read_vectors(args.embeddings, column=args.column)
    per_title = vectors_by_title(table, args.embeddings)
    clips = read_clips(args.clips, args.task)
    feats = clip_features(per_title, clips, args.embeddings)
    res = run_probe(
        feats,
        clips,
        folds=args.folds,
        seed=args.seed,
        progress=_progress(f"probe {args.task}"),
        method=args.method,
    )
    line = json.dumps(res.to_dict())
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(line + "\n")
    print(line)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from mediafm_core.evaluation import (
        format_paired,
        format_table,
        open_benchmark,
        results_json,
        run_ablation,
        streamed_features,
    )
    from mediafm_core.inference import DEFAULT_REPRESENTATION

    bench = open_benchmark(args.data_dir)  # a scan: titles are read a chunk at a time
    model = None
    if args.checkpoint:
        model, _ = _load_model(args.checkpoint, args.device)
        _check_width(model, bench.fused.dim, str(Path(args.data_dir) / "fused.parquet"))
    else:
        print("no --checkpoint: contextual rows left out", file=sys.stderr)
    rep = args.representation or DEFAULT_REPRESENTATION
    feats = streamed_features(
        bench.fused, bench.video, bench.globals_, bench.clips, model, rep, args.device
    )
    results = run_ablation(
        bench.as_data(),
        model,
        folds=args.folds,
        representation=rep,
        device=args.device,
        features=feats,
        method=args.method,
    )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results_json(results), indent=2) + "\n")
    print(format_table(results))
    if "fused" in results and len(results) > 1:
        print("\ndifferences from fused, paired over the same folds: mean (t, folds won)")
        print(format_paired(results))
    return 0
