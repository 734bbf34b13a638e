"""`mediafm encode`: one title + its shots -> unimodal, fused and globals Parquet tables.

Light modules only at import time (the profile cards come from `encoders.profiles`, which needs
numpy but no model library); torch, timm, ctranslate2, open_clip and transformers load inside
the handler.
"""

from __future__ import annotations

import argparse
import json
import textwrap


def register(sub: argparse._SubParsersAction) -> None:
    """Add `encode` to the `mediafm` parser."""
    from mediafm_core.encoders.profiles import DEFAULT_PROFILE, PROFILE_CARDS

    cards = "\n".join(
        textwrap.fill(
            card, 92, initial_indent=f"  {name}: ", subsequent_indent="    ", break_on_hyphens=False
        )
        for name, card in PROFILE_CARDS.items()
    )
    p = sub.add_parser(
        "encode",
        help="encode a title's shots (video, audio, timed text) and fuse them",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Write video/audio/text/fused/globals.parquet for one landing-zone title, or for\n"
            "several with one model load: TITLE_DIR..., --shots and --out one per title, in\n"
            "the same order (a bad title fails alone: one line, the others go on, exit 2).\n\n"
            f"Encoder profiles (--profile; default {DEFAULT_PROFILE}):\n{cards}\n\n"
            "Every table records each encoder's package, version, weights SHA-256, licence,\n"
            "width and random_init flag in its Parquet metadata (mediafm.encoder)."
        ),
    )
    p.add_argument("title_dir", metavar="TITLE_DIR", nargs="+", help="landing-zone title folder(s)")
    p.add_argument(
        "--shots",
        required=True,
        nargs="+",
        help="shots Parquet (from `mediafm shots`), one per title",
    )
    p.add_argument(
        "--out",
        required=True,
        nargs="+",
        help="output folder for the five Parquet files, one per title",
    )
    p.add_argument(
        "--profile",
        default=DEFAULT_PROFILE,
        choices=tuple(PROFILE_CARDS),
        help=f"encoder profile (default {DEFAULT_PROFILE}; see above)",
    )
    p.add_argument("--frames-per-shot", type=int, default=None, help="frames sampled per shot")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: CUDA if present)")
    p.add_argument("--landing-root", default=None, help="landing zone (default: TITLE_DIR/..)")
    p.add_argument(
        "--video-checkpoint",
        default=None,
        help="local checkpoint file of the profile's video model",
    )
    p.add_argument("--video-model", default=None, help="open_clip model name, e.g. ViT-B-32")
    p.add_argument(
        "--audio-model",
        default=None,
        help="wav2vec2 hub id or folder; offline profile: a CTranslate2 Whisper folder",
    )
    p.add_argument(
        "--audio-max-seconds",
        type=float,
        default=None,
        help="seconds of audio encoded per shot, sampled across it (0 = whole shot)",
    )
    p.add_argument("--text-base-url", default=None, help="OpenAI-compatible base URL")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run_encode)


def build_profile(args: argparse.Namespace):
    """The named profile with the command-line overrides applied."""
    import dataclasses

    from mediafm_core.encoders.profiles import get_profile

    p = get_profile(args.profile)
    video, audio, text = p.video, p.audio, p.text
    if args.video_model:
        video = dataclasses.replace(
            video, kind="open_clip", model_name=args.video_model, vision_cfg=None
        )
    if args.video_checkpoint:
        video = dataclasses.replace(video, checkpoint=args.video_checkpoint, vision_cfg=None)
    if args.audio_model:
        audio = dataclasses.replace(audio, model=args.audio_model)
    if args.audio_max_seconds is not None:
        audio = dataclasses.replace(audio, max_seconds=args.audio_max_seconds or None)
    if args.text_base_url:
        text = dataclasses.replace(text, base_url=args.text_base_url)
    p = dataclasses.replace(p, video=video, audio=audio, text=text)
    return p.with_device(args.device) if args.device else p


def run_encode(args: argparse.Namespace) -> int:
    """Encode each TITLE_DIR with its --shots into its --out; models load once, after every
    title's inputs were read (their errors come first). One bad title: its line on stderr, the
    others go on, exit 2 (a single bad title raises, as before)."""
    import sys

    from mediafm_core.errors import InputError, TitleError
    from mediafm_core.pipeline import read_title_inputs

    if not len(args.title_dir) == len(args.shots) == len(args.out):
        raise InputError(
            "encode",
            f"{len(args.title_dir)} titles need as many --shots and "
            f"--out, got {len(args.shots)} and {len(args.out)}",
        )
    jobs, failed = [], 0
    for title_dir, shots, out in zip(args.title_dir, args.shots, args.out):
        try:
            jobs.append(
                (title_dir, shots, out, read_title_inputs(title_dir, shots, args.landing_root))
            )
        except TitleError as exc:
            if len(args.title_dir) == 1:
                raise
            print(f"mediafm encode: error: {exc}", file=sys.stderr)
            failed += 1
    if jobs:
        encoders = _load_encoders(args)
        for title_dir, shots, out, inputs in jobs:
            try:
                _encode_one(args, encoders, title_dir, shots, out, inputs)
            except TitleError as exc:
                if len(args.title_dir) == 1:
                    raise
                print(f"mediafm encode: error: {exc}", file=sys.stderr)
                failed += 1
    return 2 if failed else 0


def _load_encoders(args: argparse.Namespace):
    from mediafm_core.encoders.profiles import Encoders
    from mediafm_core.errors import InputError

    try:
        return Encoders.from_profile(build_profile(args))
    except (ValueError, OSError, ImportError) as exc:  # ImportError: a weights package missing
        raise InputError(f"profile {args.profile!r}", str(exc)) from exc


def _encode_one(args, encoders, title_dir, shots, out, inputs) -> None:
    from mediafm_core.pipeline import encode_title

    res = encode_title(
        title_dir,
        shots,
        out,
        encoders=encoders,
        frames_per_shot=args.frames_per_shot,
        landing_root=args.landing_root,
        inputs=inputs,
    )
    summary = {
        "title_id": res.title_id,
        "shots": res.n_shots,
        "shots_with_text": res.n_with_text,
        "fused_dim": res.layout.dim,
        "files": {k: str(v) for k, v in res.files.items()},
        "timings_s": {k: round(v, 3) for k, v in res.timings.items()},
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        dims = " + ".join(f"{s.modality} {s.dim}" for s in res.layout.slots)
        print(f"{res.title_id}: {res.n_shots} shots ({res.n_with_text} with text) -> {out}")
        print(f"fused width {res.layout.dim} = {dims}; profile {encoders.profile.name}")
        print("stage seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in res.timings.items()))
