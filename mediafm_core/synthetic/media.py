"""Synthetic landing-zone titles: real MP4 files with known shot boundaries and clip labels.

Each title is a sequence of shots joined by hard cuts, dissolves and fades through black, written
as H.264 video + AAC audio with PyAV. Shots have their own picture (colour fields with moving
shapes, drifting stripe textures, grainy fields, fast pans over a wide texture; some carry one- or
two-frame camera flashes) and their own sound (tones, chords, noise). Some shots have a subtitle
line; when `espeak-ng` is on PATH the line is spoken into the shot's audio, otherwise a
speech-like burst stands in, so picture, sound and text agree.

Generative story (one `numpy` generator seeded per title from `SynthMediaConfig.seed`):
1. Title: 1-2 genres of the seed's 11; genres bias the moods of its shots.
2. Shots: a mood (joyful, tense, calm, dark) picks the visual kind, palette brightness and sound;
   with probability `topic_prob` a shot is about an ad topic, which its subtitle mentions.
3. Transitions: cut, dissolve or fade (probabilities in the config) with lengths in frames.

Written per title (metadata.json last, the ready marker):
    <OUT>/<title_id>/video.mp4, subtitles.vtt (when any shot speaks), metadata.json,
    <OUT>/<title_id>/truth/boundaries.json
and for the whole run, in the clips contract:
    <OUT>/labels/clips_<task>.parquet for ad_relevancy, tone, genre (labels list<string>),
    popularity (score double) and retrieval (label bool). Clips are runs of 3-6 truth shots,
    half-open [shot_start, shot_end) over the truth shot indices; `start_s`/`end_s` columns say
    the clip's time span so users of detected shots can map clips onto their own indices.

boundaries.json: fps, n_frames, `transitions` (cut: `frame` = first frame of the new shot;
dissolve/fade: `start`..`end` inclusive = the mixed frames), `shots` (half-open frame ranges,
gradual boundaries at the transition's middle) and `flashes` (frame indices).
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from mediafm_core.media.titles import GENRES  # the seed's 11 genres, one list

log = logging.getLogger(__name__)

MOODS = ("joyful", "tense", "calm", "dark")
TOPICS = ("cars", "food", "travel", "sports", "tech")
# Mood preferences per genre (unnormalised weights over MOODS).
GENRE_MOODS = {
    "Action": (1, 4, 1, 2),
    "Anime": (3, 2, 2, 1),
    "Comedy": (5, 1, 2, 0.5),
    "Documentary": (1, 0.5, 5, 1),
    "Drama": (1, 2, 3, 2),
    "Fantasy": (3, 2, 2, 1),
    "Horror": (0.3, 3, 0.5, 5),
    "Kids": (5, 0.5, 3, 0.3),
    "Romance": (4, 1, 3, 1),
    "Sci-fi": (1, 3, 2, 3),
    "Thriller": (0.5, 5, 1, 3),
}
# Visual kinds each mood draws from.
MOOD_KINDS = {
    "joyful": ("shapes", "texture", "pan"),
    "tense": ("noise", "pan", "shapes"),
    "calm": ("texture", "shapes"),
    "dark": ("shapes", "noise", "texture"),
}
TASKS = ("ad_relevancy", "popularity", "tone", "genre", "retrieval")
_LINES = {
    "cars": ("the new car is fast on the coast road", "keep your hands on the wheel"),
    "food": ("dinner is ready, the soup smells great", "try the fresh bread from the bakery"),
    "travel": ("the train leaves for the mountains at dawn", "pack your bags, we fly tonight"),
    "sports": ("the team scores in the final minute", "run faster, the race is not over"),
    "tech": ("my phone lost the signal again", "the new computer is very quiet"),
    None: (
        "where were you last night",
        "I told you not to open that door",
        "we should talk about what happened",
        "look at the sky, it is beautiful",
    ),
}


@dataclass
class SynthMediaConfig:
    """Knobs of the synthetic titles; defaults write a 60 s title in a few seconds."""

    n_titles: int = 3  # titles to write
    seconds: float = 60.0  # approximate duration of each title
    seed: int = 0  # master seed; title i uses seed * 1000 + i
    width: int = 160  # picture width in pixels (even)
    height: int = 90  # picture height in pixels (even)
    fps: int = 25  # frames per second
    sample_rate: int = 16000  # audio sample rate in Hz (mono AAC)
    shot_s: tuple[float, float] = (1.2, 4.0)  # pure shot length range in seconds
    p_dissolve: float = 0.2  # probability a transition is a dissolve
    p_fade: float = 0.12  # probability a transition is a fade through black
    dissolve_frames: tuple[int, int] = (10, 20)  # dissolve length range (frames)
    fade_frames: tuple[int, int] = (6, 12)  # length of each fade half (frames)
    flash_prob: float = 0.15  # probability a shot contains a camera flash
    subtitle_prob: float = 0.4  # probability a shot has a subtitle line
    topic_prob: float = 0.35  # probability a shot is about an ad topic
    grain: float = 0.02  # per-frame pixel noise added to every frame (0..1 scale)
    speech: str = "auto"  # "auto" (espeak-ng if on PATH), "espeak" or "bursts"
    title_prefix: str = "synth"  # title ids are <prefix>_<seed>_<i>


@dataclass
class ShotSpec:
    """One shot's content, drawn once and rendered frame by frame."""

    kind: str  # shapes | texture | noise | pan
    mood: str
    topic: str | None
    palette: np.ndarray  # (3, 3) float32 colours in 0..1
    params: dict = field(default_factory=dict)  # kind-specific drawing parameters
    flash: int = 0  # 0: no camera flash, 1 or 2: a flash of that many frames inside the shot
    line: str | None = None  # subtitle text, spoken in the audio
    sound: str = "tone"  # tone | chord | noise


def write_synthetic_titles(out_dir: str | Path, cfg: SynthMediaConfig) -> list[Path]:
    """Write `cfg.n_titles` titles under `out_dir` plus the clip label tables; return title dirs."""
    from mediafm_core.progress import progress_bar

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dirs, truths = [], []
    with progress_bar("synth-media", cfg.n_titles, unit="title") as bar:
        for i in range(cfg.n_titles):
            title_id = f"{cfg.title_prefix}_{cfg.seed}_{i:03d}"
            tdir, truth = write_title(out, title_id, cfg, seed=cfg.seed * 1000 + i)
            dirs.append(tdir)
            truths.append(truth)
            bar.update()
    write_clip_labels(out / "labels", truths, seed=cfg.seed)
    return dirs


def write_title(
    out: Path,
    title_id: str,
    cfg: SynthMediaConfig,
    seed: int,
    with_audio: bool = True,
    with_metadata: bool = True,
) -> tuple[Path, dict]:
    """Draw, render and write one title; returns its folder and its truth dict."""
    rng = np.random.default_rng(seed)
    genres = list(rng.choice(GENRES, size=int(rng.integers(1, 3)), replace=False))
    shots = [_draw_shot(rng, cfg, genres) for _ in range(_n_shots_for(cfg))]
    plan = _plan_timeline(rng, cfg, shots)
    tdir = out / title_id
    (tdir / "truth").mkdir(parents=True, exist_ok=True)
    audio = _render_audio(rng, cfg, shots, plan) if with_audio else None
    _encode_mp4(tdir / "video.mp4", cfg, shots, plan, audio, rng)
    cues = _subtitle_cues(cfg, shots, plan)
    if cues:
        _write_vtt(tdir / "subtitles.vtt", cues)
    truth = _truth(title_id, cfg, shots, plan, genres)
    (tdir / "truth" / "boundaries.json").write_text(json.dumps(truth, indent=1))
    if with_metadata:
        _write_metadata(tdir / "metadata.json", title_id, genres, shots, rng)
    return tdir, truth


def _n_shots_for(cfg: SynthMediaConfig) -> int:
    mean_shot = (cfg.shot_s[0] + cfg.shot_s[1]) / 2 + 0.25
    return max(1, int(round(cfg.seconds / mean_shot)))


def _draw_shot(rng: np.random.Generator, cfg: SynthMediaConfig, genres: list[str]) -> ShotSpec:
    w = np.sum([GENRE_MOODS[g] for g in genres], axis=0)
    mood = MOODS[int(rng.choice(len(MOODS), p=w / w.sum()))]
    kind = str(rng.choice(MOOD_KINDS[mood]))
    topic = str(rng.choice(TOPICS)) if rng.random() < cfg.topic_prob else None
    bright = {"joyful": (0.5, 1.0), "tense": (0.25, 0.8), "calm": (0.3, 0.8), "dark": (0.05, 0.35)}
    palette = rng.uniform(*bright[mood], size=(3, 3)).astype(np.float32)
    shot = ShotSpec(kind=kind, mood=mood, topic=topic, palette=palette)
    shot.params = _draw_params(rng, cfg, kind)
    if rng.random() < cfg.flash_prob:
        shot.flash = int(rng.integers(1, 3))
    if rng.random() < cfg.subtitle_prob or topic is not None:
        lines = _LINES[topic]
        shot.line = str(lines[int(rng.integers(len(lines)))])
    shot.sound = {"joyful": "chord", "tense": "noise", "calm": "tone", "dark": "chord"}[mood]
    return shot


def _draw_params(rng: np.random.Generator, cfg: SynthMediaConfig, kind: str) -> dict:
    h, w = cfg.height, cfg.width
    if kind == "shapes":
        k = int(rng.integers(2, 5))
        return dict(
            centres=rng.uniform([0, 0], [w, h], size=(k, 2)),
            vel=rng.uniform(-2.5, 2.5, size=(k, 2)),
            radii=rng.uniform(0.08, 0.22, k) * h,
            colours=rng.uniform(0, 1, size=(k, 3)),
            grad=rng.uniform(0, 2 * np.pi),
        )
    if kind == "texture":
        return dict(
            freq=rng.uniform(0.03, 0.12), angle=rng.uniform(0, np.pi), speed=rng.uniform(0.02, 0.08)
        )
    if kind == "noise":
        return dict(
            sigma=rng.uniform(0.06, 0.12),
            flicker=rng.uniform(0.0, 0.05),
            grad=rng.uniform(0, 2 * np.pi),
        )
    # pan: a texture 5x wider than the frame, moved 4-10 px per frame (a fast pan)
    low = rng.uniform(0, 1, size=(max(2, h // 10), max(2, 5 * w // 10), 3)).astype(np.float32)
    return dict(low=low, speed=float(rng.uniform(4, 10) * rng.choice([-1, 1])))


def _plan_timeline(rng: np.random.Generator, cfg: SynthMediaConfig, shots: list) -> dict:
    """Frame layout: pure spans per shot and the transition between consecutive shots."""
    pure = [int(rng.uniform(*cfg.shot_s) * cfg.fps) for _ in shots]
    trans = []
    for _ in range(len(shots) - 1):
        u = rng.random()
        if u < cfg.p_dissolve:
            trans.append(
                (
                    "dissolve",
                    int(rng.integers(cfg.dissolve_frames[0], cfg.dissolve_frames[1] + 1)),
                    0,
                )
            )
        elif u < cfg.p_dissolve + cfg.p_fade:
            half = int(rng.integers(cfg.fade_frames[0], cfg.fade_frames[1] + 1))
            trans.append(("fade", half, int(rng.integers(0, 3))))
        else:
            trans.append(("cut", 0, 0))
    plan = _layout(pure, trans)
    plan["flashes"] = _place_flashes(rng, shots, plan["pure_spans"])
    return plan


def _place_flashes(rng: np.random.Generator, shots: list, pure_spans: list) -> list[int]:
    """Global frames of camera flashes, inside pure spans and away from their ends."""
    frames = []
    for shot, (a, b) in zip(shots, pure_spans):
        if shot.flash and b - a >= 12:
            f = int(rng.integers(a + 4, b - 4 - shot.flash))
            frames += list(range(f, f + shot.flash))
    return frames


def _layout(pure: list[int], trans: list[tuple]) -> dict:
    """Per-frame recipes [(shot, local_t, weight), ...] and transition spans."""
    recipes: list[list[tuple[int, int, float]]] = []
    spans, shot_starts, pure_spans = [], [0], []
    local = [0] * len(pure)
    for i, n in enumerate(pure):
        pure_spans.append((len(recipes), len(recipes) + n))
        for _ in range(n):
            recipes.append([(i, local[i], 1.0)])
            local[i] += 1
        if i == len(pure) - 1:
            break
        kind, length, gap = trans[i]
        start = len(recipes)
        if kind == "cut":
            spans.append(("cut", start, start))
        elif kind == "dissolve":
            for j in range(length):
                a = (j + 1) / (length + 1)
                recipes.append([(i, local[i], 1 - a), (i + 1, local[i + 1], a)])
                local[i] += 1
                local[i + 1] += 1
            spans.append(("dissolve", start, len(recipes) - 1))
        else:
            for j in range(length):
                recipes.append([(i, local[i], 1 - (j + 1) / (length + 1))])
                local[i] += 1
            recipes.extend([[] for _ in range(gap)])
            for j in range(length):
                recipes.append([(i + 1, local[i + 1], (j + 1) / (length + 1))])
                local[i + 1] += 1
            spans.append(("fade", start, len(recipes) - 1))
        s, e = spans[-1][1], spans[-1][2]
        shot_starts.append(s if kind == "cut" else (s + e + 1) // 2)
    return dict(
        recipes=recipes,
        spans=spans,
        shot_starts=shot_starts,
        n_frames=len(recipes),
        pure_spans=pure_spans,
    )


class _Renderer:
    """Draws shot pictures at (H, W, 3) float32 in 0..1."""

    def __init__(self, cfg: SynthMediaConfig, shots: list[ShotSpec], seed: int):
        self.cfg, self.shots = cfg, shots
        self.yy, self.xx = np.mgrid[0 : cfg.height, 0 : cfg.width].astype(np.float32)
        self.rng = np.random.default_rng(seed)
        self._pan_cache: dict[int, np.ndarray] = {}

    def frame(self, recipe: list[tuple[int, int, float]], flash: bool) -> np.ndarray:
        img = np.zeros((self.cfg.height, self.cfg.width, 3), np.float32)
        for shot_i, t, weight in recipe:
            shot = self.shots[shot_i]
            img += weight * getattr(self, f"_{shot.kind}")(shot, t, shot_i)
        if flash:
            img = 0.25 * img + 0.75  # a camera flash: near-white for one or two frames
        img += self.rng.normal(0, self.cfg.grain, img.shape).astype(np.float32)
        return np.clip(img, 0, 1)

    def _gradient(self, shot: ShotSpec, angle: float) -> np.ndarray:
        u = np.cos(angle) * self.xx / self.cfg.width + np.sin(angle) * self.yy / self.cfg.height
        u = (u - u.min()) / max(float(np.ptp(u)), 1e-6)
        return shot.palette[0] * (1 - u[..., None]) + shot.palette[1] * u[..., None]

    def _shapes(self, shot: ShotSpec, t: int, i: int) -> np.ndarray:
        p, (h, w) = shot.params, (self.cfg.height, self.cfg.width)
        img = self._gradient(shot, p["grad"])
        pos = p["centres"] + p["vel"] * t
        pos = np.abs((pos + [w, h]) % (2 * np.array([w, h])) - [w, h])  # bounce off the edges
        for (cx, cy), r, c in zip(pos, p["radii"], p["colours"]):
            mask = (self.xx - cx) ** 2 + (self.yy - cy) ** 2 < r * r
            img[mask] = c
        return img

    def _texture(self, shot: ShotSpec, t: int, i: int) -> np.ndarray:
        p = shot.params
        u = np.cos(p["angle"]) * self.xx + np.sin(p["angle"]) * self.yy
        s = 0.5 + 0.5 * np.sin(2 * np.pi * (p["freq"] * u - p["speed"] * t))
        return shot.palette[0] * (1 - s[..., None]) + shot.palette[2] * s[..., None]

    def _noise(self, shot: ShotSpec, t: int, i: int) -> np.ndarray:
        p = shot.params
        img = self._gradient(shot, p["grad"]) * (1 + p["flicker"] * np.sin(t * 1.3))
        return img + self.rng.normal(0, p["sigma"], img.shape).astype(np.float32)

    def _pan(self, shot: ShotSpec, t: int, i: int) -> np.ndarray:
        if i not in self._pan_cache:
            self._pan_cache[i] = self._wide_texture(shot)
        tex = self._pan_cache[i]
        w = self.cfg.width
        span = tex.shape[1] - w
        x0 = int(abs(shot.params["speed"] * t)) % (2 * span)
        x0 = x0 if x0 <= span else 2 * span - x0  # sweep back and forth, never jump
        return tex[:, x0 : x0 + w]

    def _wide_texture(self, shot: ShotSpec) -> np.ndarray:
        from scipy.ndimage import zoom

        low = shot.params["low"]
        zf = (self.cfg.height / low.shape[0], 5 * self.cfg.width / low.shape[1], 1)
        tex = zoom(low, zf, order=1)[: self.cfg.height, : 5 * self.cfg.width]
        mix = shot.palette[0] * (1 - tex) + shot.palette[2] * tex  # (H, 5W, 3)
        return mix.astype(np.float32)


def _encode_mp4(
    path: Path,
    cfg: SynthMediaConfig,
    shots: list,
    plan: dict,
    audio: np.ndarray | None,
    rng: np.random.Generator,
    renderer=None,
) -> None:
    """H.264 (ultrafast) + AAC mono into an MP4; audio is muxed in step with the video.

    `renderer` draws each frame (`frame(recipe, flash) -> (H, W, 3)` floats in 0..1); default:
    the per-shot `_Renderer`."""
    import av

    renderer = renderer or _Renderer(cfg, shots, seed=int(rng.integers(2**31)))
    tmp = path.with_suffix(".part.mp4")
    with av.open(str(tmp), "w") as out:
        vs = out.add_stream("libx264", rate=cfg.fps, options={"preset": "ultrafast", "crf": "23"})
        vs.width, vs.height, vs.pix_fmt = cfg.width, cfg.height, "yuv420p"
        aus = (
            out.add_stream("aac", rate=cfg.sample_rate, layout="mono")
            if audio is not None
            else None
        )
        spf, flashes = cfg.sample_rate // cfg.fps, set(plan["flashes"])
        for k, recipe in enumerate(plan["recipes"]):
            img = (renderer.frame(recipe, k in flashes) * 255 + 0.5).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = k
            out.mux(vs.encode(frame))
            if aus is not None and k % cfg.fps == cfg.fps - 1:
                _mux_audio(out, aus, audio, (k + 1 - cfg.fps) * spf, (k + 1) * spf, cfg)
        if aus is not None:
            done = (len(plan["recipes"]) // cfg.fps) * cfg.fps * spf
            _mux_audio(out, aus, audio, done, len(audio), cfg)
            out.mux(aus.encode(None))
        out.mux(vs.encode(None))
    tmp.replace(path)


def _mux_audio(out, aus, audio: np.ndarray, a: int, b: int, cfg: SynthMediaConfig) -> None:
    import av

    if b <= a:
        return
    frame = av.AudioFrame.from_ndarray(audio[None, a:b], format="fltp", layout="mono")
    frame.sample_rate, frame.pts, frame.time_base = cfg.sample_rate, a, Fraction(1, cfg.sample_rate)
    out.mux(aus.encode(frame))


def _render_audio(
    rng: np.random.Generator, cfg: SynthMediaConfig, shots: list, plan: dict
) -> np.ndarray:
    """Per-shot sound over each truth shot's span, speech mixed in on subtitled shots."""
    sr, spf = cfg.sample_rate, cfg.sample_rate // cfg.fps
    starts = plan["shot_starts"] + [plan["n_frames"]]
    audio = np.zeros(plan["n_frames"] * spf, np.float32)
    speaker = _speaker(cfg)
    for i, shot in enumerate(shots):
        a, b = starts[i] * spf, starts[i + 1] * spf
        seg = _shot_sound(rng, shot.sound, b - a, sr)
        if shot.line:
            voice = speaker(shot.line, rng, sr)[: max(0, b - a - sr // 5)]
            seg[sr // 10 : sr // 10 + len(voice)] += voice
        ramp = np.minimum(1, np.minimum(np.arange(b - a), np.arange(b - a)[::-1]) / (0.01 * sr))
        audio[a:b] = seg * ramp
    return np.clip(audio, -1, 1)


def _shot_sound(rng: np.random.Generator, sound: str, n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    if sound == "tone":
        return (0.15 * np.sin(2 * np.pi * rng.uniform(180, 700) * t)).astype(np.float32)
    if sound == "chord":
        f0 = rng.uniform(150, 400)
        ratios = (1, 1.26, 1.5) if rng.random() < 0.5 else (1, 1.19, 1.5)  # major / minor
        return (0.08 * sum(np.sin(2 * np.pi * f0 * r * t) for r in ratios)).astype(np.float32)
    white = rng.normal(0, 1, n)
    k = int(rng.integers(2, 12))
    smooth = np.convolve(white, np.ones(k) / k, mode="same")  # low-passed noise
    return (0.12 * smooth / max(smooth.std(), 1e-6)).astype(np.float32)


def _speaker(cfg: SynthMediaConfig):
    """A function line -> float32 speech at `sr`: espeak-ng when available, else bursts."""
    exe = shutil.which("espeak-ng")
    if cfg.speech == "espeak" and exe is None:
        raise RuntimeError("speech='espeak' but espeak-ng is not on PATH")
    if cfg.speech == "bursts" or exe is None:
        return _speech_bursts
    cache: dict[str, np.ndarray] = {}

    def speak(line: str, rng: np.random.Generator, sr: int) -> np.ndarray:
        if line not in cache:
            cache[line] = _espeak(exe, line, sr)
        return cache[line]

    return speak


def _espeak(exe: str, line: str, sr: int, voice: tuple[str, ...] = ()) -> np.ndarray:
    """`line` spoken by espeak-ng at `sr` Hz; `voice` adds its options (e.g. -v en+f2 -p 70)."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "line.wav"
        cmd = [exe, *voice, "-w", str(wav), line]
        subprocess.run(cmd, check=True, capture_output=True, timeout=30)
        with wave.open(str(wav)) as w:
            rate, raw = w.getframerate(), w.readframes(w.getnframes())
    x = np.frombuffer(raw, np.int16).astype(np.float32) / 32768.0
    n_out = int(len(x) * sr / rate)
    return np.interp(np.arange(n_out) * rate / sr, np.arange(len(x)), x).astype(np.float32) * 0.8


def _speech_bursts(line: str, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Syllable-like bursts: voiced harmonics under a 4 Hz envelope, one burst per word."""
    words = line.split()
    n = int(0.3 * sr * len(words))
    t = np.arange(n) / sr
    f0 = rng.uniform(100, 220) * (1 + 0.1 * np.sin(2 * np.pi * 3 * t))
    voiced = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in (1, 2, 3, 4))
    env = np.clip(np.sin(np.pi * t / 0.3), 0, None) ** 2
    return (0.2 * voiced * env).astype(np.float32)


def _subtitle_cues(
    cfg: SynthMediaConfig, shots: list, plan: dict
) -> list[tuple[float, float, str]]:
    starts = plan["shot_starts"] + [plan["n_frames"]]
    cues = []
    for i, shot in enumerate(shots):
        if shot.line:
            a, b = starts[i] / cfg.fps, starts[i + 1] / cfg.fps
            cues.append((a + 0.1, max(a + 0.2, b - 0.1), shot.line))
    return cues


def _vtt_time(s: float) -> str:
    ms = int(round(s * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def _write_vtt(path: Path, cues: list[tuple[float, float, str]]) -> None:
    body = ["WEBVTT", ""]
    for a, b, text in cues:
        body += [f"{_vtt_time(a)} --> {_vtt_time(b)}", text, ""]
    path.write_text("\n".join(body), encoding="utf-8")


def _truth(title_id: str, cfg: SynthMediaConfig, shots: list, plan: dict, genres: list) -> dict:
    starts = plan["shot_starts"] + [plan["n_frames"]]
    transitions = [
        {"type": k, "frame": s} if k == "cut" else {"type": k, "start": s, "end": e}
        for k, s, e in plan["spans"]
    ]
    return {
        "title_id": title_id,
        "fps": cfg.fps,
        "n_frames": plan["n_frames"],
        "width": cfg.width,
        "height": cfg.height,
        "genres": genres,
        "transitions": transitions,
        "flashes": plan["flashes"],
        "shots": [
            {
                "start_frame": starts[i],
                "end_frame": starts[i + 1],
                "kind": s.kind,
                "mood": s.mood,
                "topic": s.topic,
                "line": s.line,
            }
            for i, s in enumerate(shots)
        ],
    }


def _write_metadata(
    path: Path, title_id: str, genres: list, shots: list, rng: np.random.Generator
) -> None:
    moods = sorted({s.mood for s in shots})
    topics = sorted({s.topic for s in shots if s.topic})
    meta = {
        "name": f"Synthetic {' '.join(genres)} {title_id.rsplit('_', 1)[-1]}",
        "synopsis": f"A {' and '.join(g.lower() for g in genres)} story, mostly "
        f"{moods[0]}, about {', '.join(topics) or 'nothing in particular'}.",
        "tags": moods + topics,
        "genres": genres,
    }
    tmp = path.with_suffix(".json.part")
    tmp.write_text(json.dumps(meta, indent=1))
    tmp.replace(path)


def clip_spans(truth: dict, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Consecutive runs of 3-6 truth shots covering the title (the last run may be shorter)."""
    n, spans, s = len(truth["shots"]), [], 0
    while s < n:
        e = min(n, s + int(rng.integers(3, 7)))
        spans.append((s, e))
        s = e
    return spans


def _clip_rows(truth: dict, rng: np.random.Generator) -> list[dict]:
    rows, fps = [], truth["fps"]
    flashes = set(truth["flashes"])
    for k, (s, e) in enumerate(clip_spans(truth, rng)):
        shots = truth["shots"][s:e]
        a, b = shots[0]["start_frame"], shots[-1]["end_frame"]
        moods = [x["mood"] for x in shots]
        pan = np.mean([x["kind"] == "pan" for x in shots])
        speech = np.mean([x["line"] is not None for x in shots])
        flash = float(any(a <= f < b for f in flashes))
        rows.append(
            {
                "title_id": truth["title_id"],
                "clip_id": f"{truth['title_id']}:c{k:03d}",
                "shot_start": s,
                "shot_end": e,
                "start_s": a / fps,
                "end_s": b / fps,
                "ad_relevancy": sorted({x["topic"] for x in shots if x["topic"]}),
                "tone": sorted({m for m in moods if moods.count(m) * 3 >= len(moods)}),
                "genre": list(truth["genres"]),
                "popularity": float(0.4 * pan + 0.3 * flash + 0.3 * speech + rng.normal(0, 0.05)),
                "retrieval": bool(pan > 0),
            }
        )
    return rows


def write_clip_labels(labels_dir: Path, truths: list[dict], seed: int) -> dict[str, Path]:
    """One clips_<task>.parquet per task over all titles (clips contract)."""
    rng = np.random.default_rng(seed + 7)
    return write_label_rows(labels_dir, [r for t in truths for r in _clip_rows(t, rng)])


def write_label_rows(labels_dir: Path, rows: list[dict]) -> dict[str, Path]:
    """One clips_<task>.parquet per task from clip rows (title_id, clip_id, shot_start, shot_end,
    start_s, end_s and one value per task in TASKS); returns task -> path."""
    import pyarrow as pa

    from mediafm_core.tables import write_table_atomic

    labels_dir.mkdir(parents=True, exist_ok=True)
    base = {
        k: [r[k] for r in rows]
        for k in ("title_id", "clip_id", "shot_start", "shot_end", "start_s", "end_s")
    }
    types = {
        "ad_relevancy": ("labels", pa.list_(pa.string())),
        "tone": ("labels", pa.list_(pa.string())),
        "genre": ("labels", pa.list_(pa.string())),
        "popularity": ("score", pa.float64()),
        "retrieval": ("label", pa.bool_()),
    }
    paths = {}
    for task, (col, typ) in types.items():
        cols = {
            **{k: pa.array(v) for k, v in base.items()},
            col: pa.array([r[task] for r in rows], type=typ),
        }
        cols["shot_start"] = pa.array(base["shot_start"], pa.int64())
        cols["shot_end"] = pa.array(base["shot_end"], pa.int64())
        paths[task] = labels_dir / f"clips_{task}.parquet"
        write_table_atomic(pa.table(cols), paths[task])
    return paths
