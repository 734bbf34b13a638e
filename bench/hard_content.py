"""Hard-content titles for the shot-detector benchmark: footage unlike `mediafm synth-media`.

    python bench/hard_content.py OUT_DIR [--titles 4] [--seconds 60] [--seed 100]

Each title is a run of drawn scenes (smooth colour fields with texture and a few shapes, seen by
a slowly moving camera) joined by cuts, dissolves, fades through black and fades through white,
with the cases that fool frame-difference detectors (issue 11, case 7):
- neighbouring scenes that share a palette (`shared_palette` on the transition);
- camera flashes of 1-3 frames, whip pans (a fast camera move of 4-8 frames inside a shot),
  strobe-lit stretches (brightness alternating every 2-4 frames) and very dark scenes;
- long static shots, encoded (like every frame of the title) with a codec and a fixed keyframe
  interval drawn per title (x264 or x265, keyframe every 25-100 frames, CRF 23-38), so keyframes
  land inside still pictures.

Every title is written as `<OUT>/<title_id>/video.mp4` (Debian's ffmpeg, rawvideo piped in, a sine
tone as audio), metadata.json, and `truth/boundaries.json`:
    fps, n_frames, codec, `transitions` (cut: `frame` = first frame of the new shot; dissolve /
    fade / fade_white: `start`..`end` inclusive = the mixed frames, `shared_palette`), and
    `distractors`: [{kind: flash|whip|strobe|static|dark, start, end}] spans inside shots where a
    detector must not put a boundary.
Seeds are independent: tune on some, report on others (bench/shots.py --hard-seeds).
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import numpy as np

FPS = 25
MARGIN = 25  # frames of camera path before and after a shot, seen inside transitions


def _field(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Smooth random field (h, w) in 0..1: bilinear upsampling of a coarse random grid."""
    gy, gx = cells, max(2, cells * w // h)
    g = rng.random((gy + 1, gx + 1))
    y = np.linspace(0, gy, h)[:, None]
    x = np.linspace(0, gx, w)[None, :]
    y0, x0 = np.minimum(y.astype(int), gy - 1), np.minimum(x.astype(int), gx - 1)
    fy, fx = y - y0, x - x0
    fy, fx = fy * fy * (3 - 2 * fy), fx * fx * (3 - 2 * fx)  # smoothstep
    a, b = g[y0, x0], g[y0, x0 + 1]
    c, d = g[y0 + 1, x0], g[y0 + 1, x0 + 1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


def _palette(rng: np.random.Generator) -> np.ndarray:
    """(3, 3) colours in 0..1: a base hue with two neighbours, varied lightness."""
    hue = rng.random()
    out = []
    for _ in range(3):
        hh = (hue + rng.uniform(-0.12, 0.12)) % 1.0
        light = rng.uniform(0.25, 0.85)
        sat = rng.uniform(0.3, 0.9)
        rgb = np.array([abs(hh * 6 - 3) - 1, 2 - abs(hh * 6 - 2), 2 - abs(hh * 6 - 4)])
        rgb = np.clip(rgb, 0, 1)
        out.append(light * (1 - sat + sat * rgb))
    return np.array(out, np.float32)


def _canvas(rng: np.random.Generator, pal: np.ndarray, h: int, w: int) -> np.ndarray:
    """A drawn scene (h, w, 3) float32: palette-mapped smooth fields, texture and shapes."""
    t = _field(rng, h, w, int(rng.integers(2, 5)))
    t2 = _field(rng, h, w, int(rng.integers(8, 20)))
    mix = np.clip(0.7 * t + 0.3 * t2, 0, 1)[..., None]
    img = np.where(
        mix < 0.5,
        pal[0] + (pal[1] - pal[0]) * (mix * 2),
        pal[1] + (pal[2] - pal[1]) * (mix * 2 - 1),
    )
    grain = rng.normal(0, rng.uniform(0.01, 0.05), (h, w, 1))  # fine texture
    img = img + grain
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(int(rng.integers(2, 7))):  # shapes in the palette's colours
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(0.04, 0.2) * h, rng.uniform(0.04, 0.2) * w
        m = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
        img[m] = pal[int(rng.integers(0, 3))] * rng.uniform(0.7, 1.2)
    return np.clip(img, 0, 1).astype(np.float32)


def _crop(canvas: np.ndarray, y: float, x: float, h: int, w: int) -> np.ndarray:
    """(h, w, 3) view of `canvas` at a sub-pixel offset (bilinear)."""
    y0, x0 = int(np.floor(y)), int(np.floor(x))
    fy, fx = y - y0, x - x0
    c = canvas[y0 : y0 + h + 1, x0 : x0 + w + 1]
    top = c[:h, :w] * (1 - fx) + c[:h, 1 : w + 1] * fx
    bot = c[1 : h + 1, :w] * (1 - fx) + c[1 : h + 1, 1 : w + 1] * fx
    return top * (1 - fy) + bot * fy


class _Shot:
    """One shot: a scene, a camera path and its in-shot events."""

    def __init__(
        self, rng: np.random.Generator, n: int, h: int, w: int, pal: np.ndarray, kind: str
    ):
        self.n, self.kind = n, kind
        self.ch, self.cw = h * 2, w * 3  # canvas larger than the view: room for pans
        self.canvas = _canvas(rng, pal, self.ch, self.cw)
        self.gain = rng.uniform(0.15, 0.3) if kind == "dark" else 1.0
        still = kind == "static"
        vy, vx = (0.0, 0.0) if still else (rng.uniform(-0.15, 0.15), rng.uniform(-0.6, 0.6))
        y0 = rng.uniform(5, self.ch - h - 5 - abs(vy) * n)
        y0 = float(np.clip(y0, 2, self.ch - h - 3))
        t = np.arange(n + 2 * MARGIN) - MARGIN  # the camera runs on into transitions
        pos_y = np.clip(y0 + vy * t, 2, self.ch - h - 3)
        x0 = rng.uniform(self.cw * 0.3, self.cw * 0.7 - w)
        pos_x = x0 + vx * t
        self.events: list[dict] = []
        self.flash = np.zeros(len(t), np.float32)  # added brightness per frame
        self.strobe = np.ones(len(t), np.float32)  # brightness factor per frame
        if kind == "static":
            self.events.append({"kind": "static", "start": 0, "end": n - 1})
        if kind == "dark":
            self.events.append({"kind": "dark", "start": 0, "end": n - 1})
        if not still and n >= 30 and rng.random() < 0.45:  # whip pan: 4-8 frames
            k, s = int(rng.integers(4, 9)), int(rng.integers(8, n - 16))
            speed = rng.choice([-1, 1]) * rng.uniform(0.25, 0.5) * w
            shift = np.zeros(len(t))
            shift[MARGIN + s : MARGIN + s + k] = speed
            pos_x = pos_x + np.cumsum(shift)
            self.events.append({"kind": "whip", "start": s, "end": s + k})
        span = self.cw - w - 3
        pos_x = 2 + np.mod(pos_x - 2, span - 2)  # wrap inside the canvas
        wrap = np.flatnonzero(np.abs(np.diff(pos_x)) > w)  # a wrap would look like a cut
        if len(wrap):
            pos_x[wrap[0] + 1 :] = pos_x[wrap[0]]
        self.pos = np.stack([pos_y, pos_x], 1)
        if n >= 20 and rng.random() < 0.4:  # camera flashes of 1-3 frames
            for _ in range(int(rng.integers(1, 3))):
                k, s = int(rng.integers(1, 4)), int(rng.integers(4, n - 6))
                self.flash[MARGIN + s : MARGIN + s + k] = rng.uniform(0.5, 1.0)
                self.events.append({"kind": "flash", "start": s, "end": s + k - 1})
        if kind not in ("static", "dark") and n >= 40 and rng.random() < 0.2:  # strobe
            s, k = int(rng.integers(4, n // 2)), int(rng.integers(12, 25))
            k = min(k, n - s - 4)
            period = int(rng.integers(2, 5))
            lit = (np.arange(k) // period) % 2 == 0
            self.strobe[MARGIN + s : MARGIN + s + k] = np.where(lit, 1.0, 0.35)
            self.events.append({"kind": "strobe", "start": s, "end": s + k - 1})
        self.h, self.w = h, w

    def frame(self, i: int) -> np.ndarray:
        i = min(max(i + MARGIN, 0), self.n + 2 * MARGIN - 1)
        y, x = self.pos[i]
        img = _crop(self.canvas, y, x, self.h, self.w)
        if i > 0 and abs(self.pos[i][1] - self.pos[i - 1][1]) > 4:  # motion blur in a whip
            img = 0.5 * img + 0.5 * _crop(self.canvas, *self.pos[i - 1], self.h, self.w)
        img = img * self.gain * self.strobe[i]
        return np.clip(img + self.flash[i], 0, 1)


def plan_title(rng: np.random.Generator, seconds: float, h: int, w: int) -> dict:
    """Draw shots and transitions; returns the render plan and the truth."""
    n_target = int(seconds * FPS)
    shots, trans, t = [], [], 0
    pal = _palette(rng)
    while t < n_target:
        kind = rng.choice(["moving", "static", "dark"], p=[0.7, 0.15, 0.15])
        n = int(rng.integers(int(1.2 * FPS), int(4.5 * FPS)))
        if kind == "static":
            n = int(rng.integers(5 * FPS, 10 * FPS))  # long still takes
        shots.append(_Shot(rng, n, h, w, pal, str(kind)))
        t += n
        shared = bool(rng.random() < 0.4)
        pal = pal if shared else _palette(rng)
        kind_t = rng.choice(["cut", "dissolve", "fade", "fade_white"], p=[0.6, 0.2, 0.12, 0.08])
        glen = int(rng.integers(8, 21)) if kind_t == "dissolve" else int(rng.integers(5, 11))
        trans.append((str(kind_t), glen, shared))
    trans = trans[:-1]
    return {"shots": shots, "trans": trans}


def render(plan: dict) -> tuple[list[np.ndarray], dict]:
    """Frames (uint8 RGB) and truth of a plan. A dissolve of L frames mixes the last L/2
    frames of one shot with the first L/2 of the next; a fade goes to black (or white) over its
    first half and back over its second."""
    shots, trans = plan["shots"], plan["trans"]
    frames: list[np.ndarray] = []
    truth_t, distractors = [], []
    for k, shot in enumerate(shots):
        start = len(frames)
        for i in range(shot.n):
            frames.append(shot.frame(i))
        for e in shot.events:
            distractors.append(
                {"kind": e["kind"], "start": start + e["start"], "end": start + e["end"]}
            )
        if k == len(trans):
            break
        kind, glen, shared = trans[k]
        nxt = shots[k + 1]
        if kind == "cut":
            truth_t.append({"type": "cut", "frame": len(frames), "shared_palette": shared})
            continue
        s = len(frames)
        if kind == "dissolve":
            for j in range(glen):
                a = (j + 1) / (glen + 1)
                frames.append((1 - a) * shot.frame(shot.n + j) + a * nxt.frame(j - glen))
        else:
            target = 1.0 if kind == "fade_white" else 0.0
            for j in range(glen):  # out
                a = (j + 1) / glen
                frames.append((1 - a) * shot.frame(shot.n + j) + a * target)
            for j in range(glen):  # in
                a = (j + 1) / (glen + 1)
                frames.append((1 - a) * target + a * nxt.frame(j - glen))
        truth_t.append({"type": kind, "start": s, "end": len(frames) - 1, "shared_palette": shared})
    # distractors that touch a transition are not distractors
    edges = [(t.get("frame", t.get("start")), t.get("frame", t.get("end"))) for t in truth_t]

    def clear(d: dict) -> bool:
        return not any(d["start"] - 3 <= e and d["end"] + 3 >= s for s, e in edges)

    distractors = [d for d in distractors if clear(d)]
    distractors.sort(key=lambda d: d["start"])
    u8 = [(np.clip(f, 0, 1) * 255 + 0.5).astype(np.uint8) for f in frames]
    return u8, {"fps": FPS, "n_frames": len(u8), "transitions": truth_t, "distractors": distractors}


def encode(frames: list[np.ndarray], path: Path, codec: str, keyint: int, crf: int) -> None:
    """Pipe raw RGB frames to Debian's ffmpeg (libx264/libx265, fixed keyframe interval)."""
    h, w, _ = frames[0].shape
    seconds = len(frames) / FPS
    if codec == "libx265":
        params = ["-x265-params", f"keyint={keyint}:min-keyint={keyint}:log-level=error"]
    else:
        params = ["-g", str(keyint), "-keyint_min", str(keyint)]
    cmd = [
        "ffmpeg",
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{w}x{h}",
        "-r",
        str(FPS),
        "-i",
        "-",
        "-f",
        "lavfi",
        "-i",
        f"sine=f=330:d={seconds:.3f}",
        "-c:v",
        codec,
        "-crf",
        str(crf),
        *params,
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-shortest",
        str(path),
    ]
    proc = subprocess.run(cmd, input=b"".join(f.tobytes() for f in frames), capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed for {path}: {proc.stderr.decode()[-400:]}")


def write_hard_title(
    out: Path,
    seed: int,
    seconds: float = 60.0,
    size: tuple[int, int] = (160, 90),
    title_prefix: str = "hard",
) -> Path:
    """Write one hard-content title for `seed`; returns its folder."""
    rng = np.random.default_rng(seed)
    w, h = size
    frames, truth = render(plan_title(rng, seconds, h, w))
    codec = str(rng.choice(["libx264", "libx265"]))
    keyint, crf = int(rng.choice([25, 50, 100])), int(rng.integers(23, 39))
    tdir = out / f"{title_prefix}_{seed}"
    (tdir / "truth").mkdir(parents=True, exist_ok=True)
    encode(frames, tdir / "video.mp4", codec, keyint, crf)
    truth.update(codec=codec, keyint=keyint, crf=crf, seed=seed)
    (tdir / "truth" / "boundaries.json").write_text(json.dumps(truth, indent=1))
    (tdir / "metadata.json").write_text(json.dumps({"name": f"hard content {seed}"}))
    return tdir


def write_hard_titles(
    out: str | Path, seeds: list[int], seconds: float = 60.0, size: tuple[int, int] = (160, 90)
) -> list[Path]:
    out = Path(out)
    return [write_hard_title(out, s, seconds, size) for s in seeds]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--titles", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=100)
    ap.add_argument("--size", default="160x90")
    a = ap.parse_args()
    w, h = (int(v) for v in a.size.split("x"))
    for d in write_hard_titles(a.out, list(range(a.seed, a.seed + a.titles)), a.seconds, (w, h)):
        t = json.loads((d / "truth" / "boundaries.json").read_text())
        print(
            d,
            t["codec"],
            len(t["transitions"]),
            "transitions",
            len(t["distractors"]),
            "distractors",
        )


if __name__ == "__main__":
    main()
