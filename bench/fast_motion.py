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
# Variants beyond the bench set (issue 19: "other rates and motions"), `--variants`: tilts at one
# and three picture heights per second, a diagonal pan, camera roll (slow on testsrc2, fast on
# bars), a zoom out, zooms into bars and a colour spectrum, wider shake on testsrc2, pans over a
# colour chart and a Sierpinski carpet, the fractal at its other zoom point, a whip over
# primary-colour bands. The first set the detector was checked and mended against
# (VARIANTS); the second was run once afterwards, as held out (VARIANTS_HELD_OUT).
VARIANTS = (
    "tilt",
    "whiptilt",
    "diag",
    "roll",
    "rollbars",
    "zoomout",
    "zoombars",
    "zoomspectrum",
    "shaketest",
    "panchart",
    "texpan",
    "seahorse",
    "bands",
)
VARIANTS_HELD_OUT = (
    "zoomoutbars",
    "shakespectrum",
    "pancellauto",
    "rollzoom",
    "diagwhip",
    "zoomyuv",
    "roll",
    "bands",
    "seahorse",
    "shaketest",
)


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
    return _variant(kind, rate, seconds, tail)


def _zoompan(
    src: str, z: str, rate: int, x: str = "iw/2-(iw/zoom/2)", y: str = "ih/2-(ih/zoom/2)"
) -> str:
    return f"{src},zoompan=z='{z}':d=1:x='{x}':y='{y}':s=160x90:fps={rate}"


def _variant(kind: str, rate: int, sec: float, tail: str) -> str:
    """The lavfi graph of a VARIANTS / VARIANTS_HELD_OUT take (160x90 before `tail`)."""
    src = f"r={rate}:d={sec}"
    graphs = {
        "tilt": f"testsrc2=s={180 + 180 * sec:.0f}x320:{src},transpose=1,"
        "crop=320:180:x=0:y='t*180'",
        "whiptilt": f"smptehdbars=s={180 + 540 * sec:.0f}x320:{src},transpose=1,"
        "crop=320:180:x=0:y='t*540'",
        "diag": f"testsrc2=s={320 + 400 * sec:.0f}x{180 + 200 * sec:.0f}:{src},"
        "crop=320:180:x='t*400':y='t*200'",
        "roll": f"testsrc2=s=320x180:{src},rotate=a='t*1.2':c=black",
        "rollbars": f"smptehdbars=s=320x180:{src},rotate=a='t*3':c=black",
        "zoomout": _zoompan(f"testsrc2=s=640x360:{src}", f"pow(1.6,{sec}-in/{rate})", rate),
        "zoombars": _zoompan(f"smptehdbars=s=640x360:{src}", f"pow(2,in/{rate})", rate),
        "zoomspectrum": _zoompan(
            f"colorspectrum=s=640x360:{src}", f"pow(2,in/{rate})", rate, x="iw/3-(iw/zoom/3)"
        ),
        "shaketest": f"testsrc2=s=480x270:{src},crop=320:180:"
        "x='80+60*sin(t*19)+40*random(1)':y='45+35*cos(t*31)+25*random(2)'",
        "panchart": f"colorchart={src}:patch_size=128x128,scale=1600:360,"
        "crop=320:180:x='t*400':y=90",
        "texpan": f"sierpinski=s=1280x360:r={rate},trim=duration={sec},crop=320:180:x='t*300':y=90",
        "seahorse": f"mandelbrot=s=160x90:r={rate}:start_x=-0.743643887037151:"
        f"start_y=-0.131825904205311970493132056385139:start_scale=3:end_pts={sec}:"
        f"end_scale={3 * 10 ** (-sec / 2)}:maxiter=1000,trim=duration={sec}",
        "bands": f"rgbtestsrc=s={320 + 1100 * sec:.0f}x180:{src},crop=320:180:x='t*1100':y=0",
        "zoomoutbars": _zoompan(f"pal75bars=s=640x360:{src}", f"pow(1.8,{sec}-in/{rate})", rate),
        "shakespectrum": f"colorspectrum=s=480x270:{src},crop=320:180:"
        "x='80+70*sin(t*17)+30*random(1)':y='45+30*cos(t*23)+20*random(2)'",
        "pancellauto": f"cellauto=s=1400x360:r={rate}:rule=110:scroll=0,trim=duration={sec},"
        "crop=320:180:x='t*360':y=90",
        "rollzoom": _zoompan(
            f"testsrc2=s=640x360:{src},rotate=a='t*0.8':c=black", f"pow(1.4,in/{rate})", rate
        ),
        "diagwhip": f"smptehdbars=s={320 + 900 * sec:.0f}x{180 + 300 * sec:.0f}:{src},"
        "crop=320:180:x='t*900':y='t*300'",
        "zoomyuv": _zoompan(
            f"yuvtestsrc=s=640x360:{src}",
            f"pow(2.2,in/{rate})",
            rate,
            x="iw/4-(iw/zoom/4)",
            y="ih/4-(ih/zoom/4)",
        ),
    }
    if kind not in graphs:
        raise ValueError(kind)
    return f"{graphs[kind]},{tail}"


def write_motion_title(
    out: Path,
    rate: int,
    clip_s: float = 3.0,
    size: tuple[int, int] = (160, 90),
    kinds: tuple[str, ...] = KINDS,
    name: str = "motion",
) -> Path:
    """One title at `rate` fps: one take of every kind, cut together (order rotates with rate)."""
    k = rate % len(kinds)
    kinds = kinds[k:] + kinds[:k]
    tdir = out / f"{name}_{rate}fps"
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
    out: str | Path,
    rates: list[int],
    clip_s: float = 3.0,
    size: tuple[int, int] = (160, 90),
    kinds: tuple[str, ...] = KINDS,
    name: str = "motion",
) -> list[Path]:
    return [write_motion_title(Path(out), r, clip_s, size, kinds, name) for r in rates]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--rates", default="8,12,25")
    ap.add_argument("--clip-s", type=float, default=3.0)
    ap.add_argument("--variants", choices=("checked", "held-out"), help="the variant kinds")
    a = ap.parse_args()
    kinds = {None: KINDS, "checked": VARIANTS, "held-out": VARIANTS_HELD_OUT}[a.variants]
    rates = [int(r) for r in a.rates.split(",")]
    for d in write_motion_titles(a.out, rates, a.clip_s, kinds=kinds, name=a.variants or "motion"):
        print(d)


if __name__ == "__main__":
    main()
