"""Media subcommands: `shots` (shot boundary detection) and `synth-media` (synthetic titles).

Only the standard library is imported here; handlers import PyAV, numpy and the detectors.
"""

from __future__ import annotations

import argparse

# Keys of mediafm_core.media.shots.DETECTORS (kept here so parsing imports nothing heavy).
DETECTOR_NAMES = ("mediafm", "pyscenedetect-adaptive", "pyscenedetect-content", "transnetv2")


def register(sub: argparse._SubParsersAction) -> None:
    """Add `shots` and `synth-media` to the `mediafm` parser."""
    p = sub.add_parser("shots", help="detect shot boundaries of a landing-zone title")
    p.add_argument("title_dir", help="title folder <landing>/<title_id>/")
    p.add_argument("--out", required=True, help="shots Parquet file to write")
    p.add_argument(
        "--detector", default="mediafm", choices=DETECTOR_NAMES, help="shot boundary detector"
    )
    p.add_argument("--min-shot-s", type=float, default=0.4, help="shortest shot in seconds")
    p.add_argument(
        "--max-shot-s",
        type=float,
        default=30.0,
        help="longer takes are split into equal parts (0 = never split)",
    )
    p.add_argument(
        "--landing-root",
        default=None,
        help="landing zone the title must stay inside (default: its parent folder)",
    )
    p.set_defaults(func=_shots)

    s = sub.add_parser("synth-media", help="write synthetic landing-zone titles with ground truth")
    s.add_argument("out_dir", help="landing zone folder to write titles into")
    s.add_argument("--titles", type=int, default=3, help="number of titles")
    s.add_argument("--seconds", type=float, default=60.0, help="approximate length of each title")
    s.add_argument("--seed", type=int, default=0, help="random seed")
    s.add_argument("--size", default="160x90", help="picture size WxH (even numbers)")
    s.add_argument("--fps", type=int, default=25, help="frames per second")
    s.add_argument(
        "--speech",
        choices=("auto", "espeak", "bursts"),
        default="auto",
        help="speak subtitle lines with espeak-ng (auto: when on PATH)",
    )
    s.add_argument(
        "--family",
        choices=("shots", "scenes"),
        default="shots",
        help="shots: each shot drawn on its own; scenes: scenes that revisit sets and "
        "characters, labels that live beyond the clip (synthetic/scenes.py)",
    )
    s.set_defaults(func=_synth_media)


def _shots(args: argparse.Namespace) -> int:
    from mediafm_core.media.shots import detect_shots, write_shots
    from mediafm_core.media.titles import open_title

    title = open_title(args.title_dir, args.landing_root)
    table = detect_shots(title, args.detector, args.min_shot_s, args.max_shot_s)
    write_shots(table, args.out)
    print(f"{title.title_id}: {table.num_rows} shots -> {args.out}")
    return 0


def _synth_media(args: argparse.Namespace) -> int:
    from mediafm_core.errors import InputError
    from mediafm_core.synthetic.media import SynthMediaConfig, write_synthetic_titles
    from mediafm_core.synthetic.scenes import SceneMediaConfig, write_scene_titles

    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise InputError("--size", f"must look like 160x90, got {args.size!r}") from None
    if width < 16 or height < 16 or width % 2 or height % 2:
        raise InputError("--size", f"needs even sides of at least 16 pixels, got {args.size}")
    if args.titles < 1 or args.seconds <= 0 or args.fps < 1:
        raise InputError("synth-media", "--titles, --seconds and --fps must be positive")
    config, write = {
        "shots": (SynthMediaConfig, write_synthetic_titles),
        "scenes": (SceneMediaConfig, write_scene_titles),
    }[args.family]
    cfg = config(
        n_titles=args.titles,
        seconds=args.seconds,
        seed=args.seed,
        width=width,
        height=height,
        fps=args.fps,
        speech=args.speech,
    )
    dirs = write(args.out_dir, cfg)
    for d in dirs:
        print(d)
    print(f"labels: {args.out_dir}/labels/clips_<task>.parquet")
    return 0
