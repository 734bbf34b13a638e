"""`mediafm encode`: one title + its shots -> unimodal, fused and globals Parquet tables.

Only stdlib at import time; torch, open_clip and transformers load inside the handler.
"""

from __future__ import annotations

import argparse
import json

PROFILE_NAMES = ("offline", "offline-base", "paper")


def register(sub: argparse._SubParsersAction) -> None:
    """Add `encode` to the `mediafm` parser."""
    p = sub.add_parser(
        "encode",
        help="encode a title's shots (video, audio, timed text) and fuse them",
        description=(
            "Write video/audio/text/fused/globals.parquet for one landing-zone title. "
            "Profiles: offline (default; seeded random-init small video/audio models and the "
            "packaged all-MiniLM-L6-v2 text model, no network), offline-base (random-init "
            "ViT-B-32 + wav2vec2-base: paper-sized compute), paper (ViT-B-32 openai weights, "
            "facebook/wav2vec2-base, OpenAI text-embedding-3-large at 768 dims; needs "
            "OPENAI_API_KEY and downloads weights once)."
        ),
    )
    p.add_argument("title_dir", metavar="TITLE_DIR", help="landing-zone title folder")
    p.add_argument("--shots", required=True, help="shots Parquet (from `mediafm shots`)")
    p.add_argument("--out", required=True, help="output folder for the five Parquet files")
    p.add_argument("--profile", default="offline", choices=PROFILE_NAMES, help="encoder profile")
    p.add_argument("--frames-per-shot", type=int, default=None, help="frames sampled per shot")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: CUDA if present)")
    p.add_argument("--landing-root", default=None, help="landing zone (default: TITLE_DIR/..)")
    p.add_argument("--video-checkpoint", default=None, help="local open_clip checkpoint file")
    p.add_argument("--video-model", default=None, help="open_clip model name, e.g. ViT-B-32")
    p.add_argument("--audio-model", default=None, help="wav2vec2 hub id or local folder")
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
        video = dataclasses.replace(video, model_name=args.video_model, vision_cfg=None)
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
    from mediafm_core.encoders.profiles import Encoders
    from mediafm_core.errors import InputError
    from mediafm_core.pipeline import encode_title

    try:
        encoders = Encoders.from_profile(build_profile(args))
    except (ValueError, FileNotFoundError, OSError) as exc:
        raise InputError(f"profile {args.profile!r}", str(exc)) from exc
    res = encode_title(
        args.title_dir,
        args.shots,
        args.out,
        encoders=encoders,
        frames_per_shot=args.frames_per_shot,
        landing_root=args.landing_root,
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
        print(f"{res.title_id}: {res.n_shots} shots ({res.n_with_text} with text) -> {args.out}")
        print(f"fused width {res.layout.dim} = {dims}; profile {encoders.profile.name}")
        print("stage seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in res.timings.items()))
    return 0
