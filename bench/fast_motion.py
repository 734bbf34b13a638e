"""Fast-motion titles for the shot-detector benchmark (issue 19, case 8): continuous takes that
change most of the picture every frame, joined by hard cuts.

    python bench/fast_motion.py OUT_DIR [--rates 8,12,25] [--clip-s 3]

Each title runs at one frame rate (8, 12 or 25 fps: fast motion at low rates moves furthest per
frame) and holds one take of each kind, in an order drawn from the rate, cut together:
- zoom: ffmpeg's zoompan into testsrc2, 1.6x per second;
- mandelbrot: ffmpeg's zooming mandelbrot source (about 3x per second);
- pan: a crop sliding across a wide testsrc2 at about one picture width per second;
- shake: a handheld-like jitter, crop offsets from sines plus random jumps, on smptehdbars;
- whip: a pan at about three picture widths per second.
Written as `<OUT>/<title_id>/video.mp4` (Debian's ffmpeg, x264, a sine tone as audio),
metadata.json and `truth/boundaries.json` in bench/hard_content.py's format: the cuts, and each
take's inside as a distractor span (kind = the motion) where no boundary belongs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

KINDS = ("zoom", "mandelbrot", "pan", "shake", "whip")


def take(kind: str, rate: int, seconds: float, size: tuple[int, int]) -> str:
    """A lavfi source graph for one take of `kind` at `rate` fps."""
    w, h = size
    tail = f"scale={w}:{h},setsar=1,fps={rate},format=yuv420p"
    if kind == "zoom":
        return (
            f"testsrc2=s=640x360:r={rate}:d={seconds},zoompan=z='pow(1.6,in/{rate})':d=1:"
            f"x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)':s={w}x{h}:fps={rate},{tail}"
        )
    if kind == "mandelbrot":
        return (
            f"mandelbrot=s=96x54:r={rate}:end_pts={seconds}:"
            f"end_scale={3 * 10 ** (-seconds / 2)}:maxiter=256,trim=duration={seconds},{tail}"
        )
    if kind in ("pan", "whip"):
        speed = 320 if kind == "pan" else 960  # px/s of a 320 px wide view
        return (
            f"testsrc2=s={320 + speed * seconds:.0f}x360:r={rate}:d={seconds},"
            f"crop=320:180:x='t*{speed}':y=90,{tail}"
        )
    if kind == "shake":
        return (
            f"smptehdbars=s=480x270:r={rate}:d={seconds},crop=320:180:"
            f"x='80+50*sin(t*23)+30*random(1)':y='45+25*cos(t*29)+20*random(2)',{tail}"
        )
    raise ValueError(kind)


def write_motion_title(
    out: Path, rate: int, clip_s: float = 3.0, size: tuple[int, int] = (160, 90)
) -> Path:
    """One title at `rate` fps: one take of every kind, cut together (order rotates with rate)."""
    k = rate % len(KINDS)
    kinds = KINDS[k:] + KINDS[:k]
    tdir = out / f"motion_{rate}fps"
    (tdir / "truth").mkdir(parents=True, exist_ok=True)
    n = round(clip_s * rate)
    graph = ";".join(
        f"{take(kind, rate, clip_s, size)},trim=end_frame={n},setpts=PTS-STARTPTS[v{i}]"
        for i, kind in enumerate(kinds)
    )
    graph += ";" + "".join(f"[v{i}]" for i in range(len(kinds)))
    graph += f"concat=n={len(kinds)}:v=1:a=0[v]"
    seconds = clip_s * len(kinds)
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-nostdin",
            "-y",
            "-filter_complex",
            graph,
            "-f",
            "lavfi",
            "-i",
            f"sine=f=440:d={seconds}",
            "-map",
            "[v]",
            "-map",
            "0:a",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-c:a",
            "aac",
            "-shortest",
            str(tdir / "video.mp4"),
        ],
        check=True,
    )
    truth = {
        "fps": rate,
        "n_frames": n * len(kinds),
        "codec": "libx264",
        "transitions": [{"type": "cut", "frame": i * n} for i in range(1, len(kinds))],
        "distractors": [
            {"kind": kind, "start": i * n + 3, "end": (i + 1) * n - 4}
            for i, kind in enumerate(kinds)
        ],
    }
    (tdir / "truth" / "boundaries.json").write_text(json.dumps(truth, indent=1))
    (tdir / "metadata.json").write_text(json.dumps({"name": f"fast motion {rate} fps"}))
    return tdir


def write_motion_titles(
    out: str | Path, rates: list[int], clip_s: float = 3.0, size: tuple[int, int] = (160, 90)
) -> list[Path]:
    return [write_motion_title(Path(out), r, clip_s, size) for r in rates]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--rates", default="8,12,25")
    ap.add_argument("--clip-s", type=float, default=3.0)
    a = ap.parse_args()
    for d in write_motion_titles(a.out, [int(r) for r in a.rates.split(",")], a.clip_s):
        print(d)


if __name__ == "__main__":
    main()
