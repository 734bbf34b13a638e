"""Synthetic titles told in scenes: a media benchmark where context matters (issue 20, part 3).

`mediafm synth-media --family scenes` writes the same landing-zone layout as the `shots` family
(`media.py`: H.264 + AAC MP4, WebVTT, metadata.json last, truth/boundaries.json, clip labels in
the clips contract), but the story is told in scenes, and every label lives beyond the clip:

1. Catalogue: `n_sets` sets and `n_characters` characters shared by every title of a run (one
   generator seeded by `seed`). A set is a wide picture (stripes, tiles, blobs or a room with
   furniture) in its own palette with its own hum; a character is a figure (shape, colour, a
   band across it) with a voice (an espeak-ng variant and pitch; a tone pattern without it).
   Character 0 is the hero.
2. Title: 1-2 genres; a cast of 2-4 characters (the hero with probability 0.6); 2-4 of the sets
   (at most half as many as scenes: the first scenes visit each, later ones revisit them); an
   arc: intensity rises to a climax at 60-85 % of the title and falls after it.
3. Scenes: each at one of the title's sets (sets are revisited), with 1-2 of the cast, an
   intensity (the arc at the scene plus noise), a tone drawn from the genres' moods tilted by the
   intensity, and an ad topic with probability `topic_prob`.
4. Shots: a framing of the scene's set (crop and zoom, a slow camera drift), so every visit to a
   set renders the same picture under the same framing; a cast member on screen with
   probability `on_screen_prob`; the scene's score (the tone's sound) on `cue_prob` of the shots,
   the set's hum alone on the others; a spoken line on `line_prob` of them, by a cast member in
   their voice, saying the scene's topic, its tone, or nothing in particular.

Clips are runs of 2-5 shots inside one scene. Labels (clips contract, same files and types as
`media.py`):
- tone: the scene's tone; one shot in `cue_prob` carries its score, a few a line in that tone.
- popularity: the scene's intensity (the title's arc) plus 0.1 when the hero is in the scene.
- retrieval: the hero is in the scene (on screen or speaking on some of its shots only).
- ad_relevancy: the scene's topic, plus the next scene's topic when the clip is the last of its
  scene: an ad break placed after it is followed by that scene.
- genre: the title's genres.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mediafm_core.synthetic.media import (
    GENRE_MOODS,
    GENRES,
    MOODS,
    TOPICS,
    SynthMediaConfig,
    _encode_mp4,
    _espeak,
    _layout,
    _speech_bursts,
    _write_vtt,
    write_label_rows,
)

SET_KINDS = ("stripes", "tiles", "blobs", "room")
SHAPES = ("circle", "square", "diamond")
# (espeak-ng variant, pitch 0-99) per character; the hero speaks first.
VOICES = (
    ("en+m3", 35),
    ("en+f2", 70),
    ("en+m1", 20),
    ("en+f4", 85),
    ("en+m7", 55),
    ("en+f1", 45),
    ("en+m2", 10),
    ("en+f3", 95),
)
# The score each tone plays on its cue shots: (sound, base frequency Hz).
TONE_SCORES = {
    "joyful": ("major", 330.0),
    "tense": ("pulse", 0.0),
    "calm": ("sine", 220.0),
    "dark": ("minor", 110.0),
}
TONE_LINES = {
    "joyful": ("this is the best day of my life", "we won, let us celebrate tonight"),
    "tense": ("someone is following us, run", "we have ten seconds before it blows"),
    "calm": ("let us sit by the lake for a while", "the garden is quiet this morning"),
    "dark": ("the lights went out and nobody came back", "he never woke up after that night"),
}
TOPIC_LINES = {
    "cars": ("the new car is fast on the coast road", "keep your hands on the wheel"),
    "food": ("dinner is ready, the soup smells great", "try the fresh bread from the bakery"),
    "travel": ("the train leaves for the mountains at dawn", "pack your bags, we fly tonight"),
    "sports": ("the team scores in the final minute", "run faster, the race is not over"),
    "tech": ("my phone lost the signal again", "the new computer is very quiet"),
}
PLAIN_LINES = (
    "where were you last night",
    "I told you not to open that door",
    "we should talk about what happened",
    "pass me the keys please",
)


@dataclass
class SceneMediaConfig(SynthMediaConfig):
    """Knobs of the scenes family; rendering knobs (size, fps, transitions) as in the parent."""

    title_prefix: str = "scenes"
    shot_s: tuple[float, float] = (1.0, 2.2)  # pure shot length range in seconds
    p_dissolve: float = 0.1  # between scenes only; shots inside a scene are cut
    p_fade: float = 0.2  # between scenes only
    flash_prob: float = 0.0
    n_sets: int = 10  # sets shared by the catalogue
    n_characters: int = 6  # characters shared by the catalogue (character 0 is the hero)
    scene_shots: tuple[int, int] = (3, 8)  # shots per scene, inclusive
    cue_prob: float = 0.35  # share of a scene's shots that carry its score
    line_prob: float = 0.4  # share of shots with a spoken line (and a subtitle)
    on_screen_prob: float = 0.5  # share of shots showing a cast member
    topic_prob: float = 0.45  # share of scenes about an ad topic


@dataclass
class SetSpec:
    """One set of the catalogue, rendered the same way on every visit."""

    kind: str  # stripes | tiles | blobs | room
    palette: np.ndarray  # (3, 3) float32 colours in 0..1
    params: dict = field(default_factory=dict)
    hum_hz: float = 100.0  # the set's background hum


@dataclass
class CharacterSpec:
    shape: str
    colour: np.ndarray  # (3,) body colour
    band: np.ndarray  # (3,) colour of the band across the figure
    voice: tuple[str, int]  # espeak-ng variant, pitch


@dataclass
class SceneShot:
    """One shot: where it is, who is on screen, what plays and what is said."""

    scene: int
    set_id: int
    framing: tuple  # one of FRAMINGS
    drift: float  # camera drift in set pixels per frame
    on_screen: int | None  # character id, or None
    cue: bool  # the scene's score plays
    line: str | None = None
    speaker: int | None = None


@dataclass
class Catalogue:
    sets: list[SetSpec]
    characters: list[CharacterSpec]


def make_catalogue(cfg: SceneMediaConfig) -> Catalogue:
    """The sets and characters shared by every title of a run (seeded by `cfg.seed` alone)."""
    rng = np.random.default_rng([cfg.seed, 20])
    sets = [_draw_set(rng, SET_KINDS[i % len(SET_KINDS)]) for i in range(cfg.n_sets)]
    chars = []
    for i in range(cfg.n_characters):
        chars.append(
            CharacterSpec(
                shape=SHAPES[i % len(SHAPES)],
                colour=rng.uniform(0, 1, 3).astype(np.float32),
                band=rng.uniform(0, 1, 3).astype(np.float32),
                voice=VOICES[i % len(VOICES)],
            )
        )
    return Catalogue(sets, chars)


def _draw_set(rng: np.random.Generator, kind: str) -> SetSpec:
    palette = rng.uniform(0.1, 0.95, size=(3, 3)).astype(np.float32)
    params: dict = {"seed": int(rng.integers(2**31))}
    if kind == "stripes":
        params.update(freq=rng.uniform(0.04, 0.12), angle=rng.uniform(0, np.pi))
    elif kind == "tiles":
        params.update(size=int(rng.integers(6, 16)))
    elif kind == "room":
        params.update(n_boxes=int(rng.integers(3, 7)))
    return SetSpec(kind, palette, params, hum_hz=float(rng.uniform(60, 240)))


def write_scene_titles(out_dir: str | Path, cfg: SceneMediaConfig) -> list[Path]:
    """Write `cfg.n_titles` scene titles under `out_dir` and the clip label tables (module
    docstring); returns the title folders. Title i is seeded by (cfg.seed, i)."""
    from mediafm_core.progress import progress_bar

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cat = make_catalogue(cfg)
    speaker = _Voices(cfg, cat)
    dirs, rows = [], []
    with progress_bar("synth-media scenes", cfg.n_titles, unit="title") as bar:
        for i in range(cfg.n_titles):
            title_id = f"{cfg.title_prefix}_{cfg.seed}_{i:03d}"
            tdir, truth = write_scene_title(out, title_id, cfg, cat, speaker, seed=i)
            dirs.append(tdir)
            rows += scene_clip_rows(truth, np.random.default_rng([cfg.seed, i, 7]))
            bar.update()
    write_label_rows(out / "labels", rows)
    return dirs


def write_scene_title(
    out: Path, title_id: str, cfg: SceneMediaConfig, cat: Catalogue, speaker, seed: int
) -> tuple[Path, dict]:
    """Draw, render and write one title; returns its folder and truth dict."""
    rng = np.random.default_rng([cfg.seed, seed])
    story = _draw_story(rng, cfg, cat)
    plan = _plan(rng, cfg, story)
    tdir = out / title_id
    (tdir / "truth").mkdir(parents=True, exist_ok=True)
    audio = _render_audio(rng, cfg, cat, story, plan, speaker)
    renderer = SceneRenderer(cfg, cat, story["shots"], seed=int(rng.integers(2**31)))
    _encode_mp4(tdir / "video.mp4", cfg, story["shots"], plan, audio, rng, renderer=renderer)
    starts = plan["shot_starts"] + [plan["n_frames"]]
    cues = [
        (
            starts[i] / cfg.fps + 0.1,
            max(starts[i] / cfg.fps + 0.2, starts[i + 1] / cfg.fps - 0.1),
            s.line,
        )
        for i, s in enumerate(story["shots"])
        if s.line
    ]
    if cues:
        _write_vtt(tdir / "subtitles.vtt", cues)
    truth = _truth(title_id, cfg, story, plan)
    (tdir / "truth" / "boundaries.json").write_text(json.dumps(truth, indent=1))
    _write_metadata(tdir / "metadata.json", title_id, story["genres"])
    return tdir, truth


def arc(t: float, climax: float) -> float:
    """The title's intensity at relative time t in [0, 1]: 0.1 at the start, 1 at the climax,
    0.3 at the end."""
    return 0.1 + 0.9 * t / climax if t <= climax else 1.0 - 0.7 * (t - climax) / (1 - climax)


def _draw_story(rng: np.random.Generator, cfg: SceneMediaConfig, cat: Catalogue) -> dict:
    genres = [str(g) for g in rng.choice(GENRES, size=int(rng.integers(1, 3)), replace=False)]
    others = rng.permutation(np.arange(1, len(cat.characters)))
    cast = [0] * (rng.random() < 0.6) + [int(c) for c in others[: int(rng.integers(2, 4))]]
    n_scenes = max(1, int(round(cfg.seconds / (np.mean(cfg.shot_s) * np.mean(cfg.scene_shots)))))
    # At most half as many sets as scenes (so sets are revisited), two once there are two scenes.
    n_sets = min(int(rng.integers(2, 5)), max(2, n_scenes // 2), n_scenes)
    sets = [int(s) for s in rng.choice(len(cat.sets), size=n_sets, replace=False)]
    climax = float(rng.uniform(0.6, 0.85))
    mood_w = np.sum([GENRE_MOODS[g] for g in genres], axis=0)
    scenes, shots, prev_set = [], [], None
    for k in range(n_scenes):
        intensity = float(np.clip(arc((k + 0.5) / n_scenes, climax) + rng.normal(0, 0.1), 0, 1))
        tilt = np.exp(3 * (intensity - 0.5) * np.array([-1, 1, -1, 1]))  # tense, dark up
        w = mood_w * tilt
        choices = [s for s in sets if s != prev_set] or sets
        scene = {  # each set once in turn, then revisits (never the previous scene's set)
            "set": sets[k] if k < len(sets) else int(rng.choice(choices)),
            "intensity": intensity,
            "tone": MOODS[int(rng.choice(len(MOODS), p=w / w.sum()))],
            "topic": str(rng.choice(TOPICS)) if rng.random() < cfg.topic_prob else None,
            "cast": [
                int(c)
                for c in rng.choice(
                    cast, size=min(len(cast), int(rng.integers(1, 3))), replace=False
                )
            ],
        }
        prev_set = scene["set"]
        n = int(rng.integers(cfg.scene_shots[0], cfg.scene_shots[1] + 1))
        scene["shots"] = [len(shots), len(shots) + n]
        shots += _draw_scene_shots(rng, cfg, k, scene, n)
        scenes.append(scene)
    return {
        "genres": genres,
        "cast": cast,
        "sets": sets,
        "climax": climax,
        "scenes": scenes,
        "shots": shots,
    }


# Framings of a set: (x0 as a fraction of the free width, y0 fraction, zoom, reverse angle, key
# light side). Consecutive shots alternate the angle and the light's side (a mirrored view): a
# cut from one crop of a set to another crop of it reads as a camera move to a shot detector.
FRAMINGS = (
    (0.0, 0.0, 1.0, 0, -1.0),
    (0.5, 0.3, 1.4, 1, 1.0),
    (1.0, 0.0, 1.0, 1, 0.6),
    (0.25, 0.6, 1.8, 0, -0.5),
    (0.75, 0.5, 1.2, 1, 0.8),
    (0.6, 0.2, 1.5, 0, -0.8),
)


def _draw_scene_shots(rng, cfg: SceneMediaConfig, k: int, scene: dict, n: int) -> list:
    shots, prev = [], -1
    n_cues = max(1, int(round(cfg.cue_prob * n)))
    cue_at = set(rng.choice(n, size=n_cues, replace=False).tolist())
    for j in range(n):
        f = int(rng.choice([i for i, x in enumerate(FRAMINGS) if x[3] != prev]))
        prev = FRAMINGS[f][3]
        who = int(rng.choice(scene["cast"])) if rng.random() < cfg.on_screen_prob else None
        shot = SceneShot(
            scene=k,
            set_id=scene["set"],
            framing=FRAMINGS[f],
            drift=float(rng.uniform(-0.6, 0.6)),
            on_screen=who,
            cue=j in cue_at,
        )
        if rng.random() < cfg.line_prob:
            shot.speaker = who if who is not None else int(rng.choice(scene["cast"]))
            shot.line = _draw_line(rng, scene)
        shots.append(shot)
    return shots


def _draw_line(rng: np.random.Generator, scene: dict) -> str:
    u = rng.random()
    if scene["topic"] and u < 0.5:
        pool = TOPIC_LINES[scene["topic"]]
    elif u < 0.75:
        pool = TONE_LINES[scene["tone"]]
    else:
        pool = PLAIN_LINES
    return str(pool[int(rng.integers(len(pool)))])


def _plan(rng: np.random.Generator, cfg: SceneMediaConfig, story: dict) -> dict:
    """Frame layout: cuts inside scenes, a cut, dissolve or fade between scenes."""
    shots = story["shots"]
    pure = [int(rng.uniform(*cfg.shot_s) * cfg.fps) for _ in shots]
    trans = []
    for a, b in zip(shots, shots[1:]):
        u = rng.random()
        if a.scene == b.scene or u >= cfg.p_dissolve + cfg.p_fade:
            trans.append(("cut", 0, 0))
        elif u < cfg.p_dissolve:
            trans.append(("dissolve", int(rng.integers(*cfg.dissolve_frames)), 0))
        else:
            trans.append(("fade", int(rng.integers(*cfg.fade_frames)), 0))
    plan = _layout(pure, trans)
    plan["flashes"] = []
    return plan


class SceneRenderer:
    """Draws scene shots at (H, W, 3) float32 in 0..1: a framing of the set's wide picture, a
    slow camera drift, the character on screen, film grain. Set pictures are made once."""

    def __init__(self, cfg: SceneMediaConfig, cat: Catalogue, shots: list[SceneShot], seed: int):
        self.cfg, self.cat, self.shots = cfg, cat, shots
        self.rng = np.random.default_rng(seed)
        self.yy, self.xx = np.mgrid[0 : cfg.height, 0 : cfg.width].astype(np.float32)
        self._sets: dict[int, np.ndarray] = {}

    def frame(self, recipe: list[tuple[int, int, float]], flash: bool = False) -> np.ndarray:
        img = np.zeros((self.cfg.height, self.cfg.width, 3), np.float32)
        for shot_i, t, weight in recipe:
            img += weight * self.shot_frame(shot_i, t)
        img += self.cfg.grain * self.rng.standard_normal(img.shape, dtype=np.float32)
        return np.clip(img, 0, 1)

    def shot_frame(self, shot_i: int, t: int) -> np.ndarray:
        """Frame t of shot `shot_i` without grain (the same set and framing give the same
        picture in every scene and title)."""
        shot = self.shots[shot_i]
        img = self.view(shot.set_id, shot.framing, shot.drift * t)
        if shot.on_screen is not None:
            self._draw_character(img, self.cat.characters[shot.on_screen], shot_i, t)
        return img

    def view(self, set_id: int, framing: tuple, dx: float) -> np.ndarray:
        """The set seen under `framing` with the camera moved `dx` set pixels."""
        h, w = self.cfg.height, self.cfg.width
        wide = self.set_picture(set_id)
        x0f, y0f, zoom, reverse, light = framing
        cw, ch = w / zoom, h / zoom
        x0 = np.clip(x0f * (wide.shape[1] - cw - 8) + 4 + dx, 0, wide.shape[1] - cw)
        y0 = y0f * (wide.shape[0] - ch)
        xs = (x0 + np.arange(w) / zoom).astype(int)
        ys = (y0 + np.arange(h) / zoom).astype(int)
        img = wide[ys[:, None], xs[::-1] if reverse else xs]
        key = 1 + 0.3 * light * (self.xx[..., None] / w - 0.5) * 2
        return img * key

    def set_picture(self, set_id: int) -> np.ndarray:
        """The set's wide picture, (1.5 H, 3 W, 3) float32."""
        if set_id not in self._sets:
            self._sets[set_id] = set_picture(self.cat.sets[set_id], self.cfg.height, self.cfg.width)
        return self._sets[set_id]

    def _draw_character(self, img: np.ndarray, ch: CharacterSpec, shot_i: int, t: int) -> None:
        h, w = self.cfg.height, self.cfg.width
        cx = w * (0.3 + 0.4 * ((shot_i * 0.37) % 1)) + 3 * np.sin(t / 9)
        cy, r = h * 0.6 + 2 * np.sin(t / 5), 0.28 * h
        dx, dy = np.abs(self.xx - cx), np.abs(self.yy - cy)
        body = {
            "circle": dx**2 + dy**2 < r * r,
            "square": np.maximum(dx, dy) < 0.85 * r,
            "diamond": dx + dy < 1.2 * r,
        }[ch.shape]
        img[body] = ch.colour
        img[body & (np.abs(self.yy - cy) < 0.2 * r)] = ch.band


def set_picture(spec: SetSpec, h: int, w: int) -> np.ndarray:
    """(1.5 h, 3 w, 3) float32 picture of a set, a pure function of `spec` and the size."""
    H, W = int(1.5 * h), 3 * w
    rng = np.random.default_rng(spec.params["seed"])
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    p, pal = spec.params, spec.palette
    if spec.kind == "stripes":
        u = np.cos(p["angle"]) * xx + np.sin(p["angle"]) * yy
        s = (0.5 + 0.5 * np.sin(2 * np.pi * p["freq"] * u))[..., None]
        img = pal[0] * (1 - s) + pal[1] * s
    elif spec.kind == "tiles":
        s = (((xx // p["size"]) + (yy // p["size"])) % 2)[..., None]
        img = pal[0] * (1 - s) + pal[2] * s
    elif spec.kind == "blobs":
        from scipy.ndimage import zoom

        low = rng.uniform(0, 1, size=(max(2, H // 12), max(2, W // 12)))
        s = zoom(low, (H / low.shape[0], W / low.shape[1]), order=1)[:H, :W, None]
        img = pal[0] * (1 - s) + pal[1] * s
    else:  # room: a wall gradient over a floor, boxes of furniture
        u = (yy / H)[..., None]
        img = pal[0] * (1 - u) + pal[1] * u
        img[int(0.7 * H) :] = pal[2]
        for _ in range(p["n_boxes"]):
            x, y = rng.integers(0, W - 12), rng.integers(0, H - 12)
            bw, bh = rng.integers(8, max(9, W // 6)), rng.integers(8, max(9, H // 3))
            img[y : y + bh, x : x + bw] = rng.uniform(0, 1, 3)
    return np.clip(img, 0, 1).astype(np.float32)


class _Voices:
    """Speech for (line, character): espeak-ng in the character's voice when available, else
    syllable bursts at the character's own pitch. Cached for the whole run."""

    def __init__(self, cfg: SceneMediaConfig, cat: Catalogue):
        self.exe = shutil.which("espeak-ng")
        if cfg.speech == "espeak" and self.exe is None:
            raise RuntimeError("speech='espeak' but espeak-ng is not on PATH")
        if cfg.speech == "bursts":
            self.exe = None
        self.cat, self.sr = cat, cfg.sample_rate
        self._cache: dict[tuple[str, int], np.ndarray] = {}

    def __call__(self, line: str, who: int) -> np.ndarray:
        key = (line, who)
        if key not in self._cache:
            variant, pitch = self.cat.characters[who].voice
            if self.exe:
                self._cache[key] = _espeak(
                    self.exe, line, self.sr, ("-v", variant, "-p", str(pitch))
                )
            else:
                rng = np.random.default_rng([pitch, len(line)])
                self._cache[key] = _speech_bursts(line, rng, self.sr) * (0.5 + pitch / 100)
        return self._cache[key]


def _render_audio(
    rng, cfg: SceneMediaConfig, cat: Catalogue, story: dict, plan: dict, speaker: _Voices
) -> np.ndarray:
    """Per shot: the set's hum, the scene's score on cue shots, the line in its speaker's voice."""
    sr, spf = cfg.sample_rate, cfg.sample_rate // cfg.fps
    starts = plan["shot_starts"] + [plan["n_frames"]]
    audio = np.zeros(plan["n_frames"] * spf, np.float32)
    for i, shot in enumerate(story["shots"]):
        a, b = starts[i] * spf, starts[i + 1] * spf
        t = np.arange(b - a) / sr
        seg = 0.05 * np.sin(2 * np.pi * cat.sets[shot.set_id].hum_hz * t)
        seg += 0.01 * rng.normal(0, 1, b - a)
        if shot.cue:
            scene = story["scenes"][shot.scene]
            seg += score(scene["tone"], scene["intensity"], t, rng)
        if shot.line:
            voice = speaker(shot.line, shot.speaker)[: max(0, b - a - sr // 5)]
            seg[sr // 10 : sr // 10 + len(voice)] += voice
        ramp = np.minimum(1, np.minimum(np.arange(b - a), np.arange(b - a)[::-1]) / (0.01 * sr))
        audio[a:b] = seg * ramp
    return np.clip(audio, -1, 1).astype(np.float32)


def score(tone: str, intensity: float, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The tone's music at times `t` (s): chords, a sine, or pulsed noise; louder and faster
    pulsing as the intensity rises."""
    sound, f0 = TONE_SCORES[tone]
    gain = 0.06 + 0.08 * intensity
    pulse = 0.5 + 0.5 * np.sign(np.sin(2 * np.pi * (2 + 6 * intensity) * t))
    if sound == "pulse":
        return gain * 1.5 * pulse * rng.normal(0, 1, len(t))
    ratios = {"major": (1, 1.26, 1.5), "minor": (1, 1.19, 1.5), "sine": (1,)}[sound]
    return gain * sum(np.sin(2 * np.pi * f0 * r * t) for r in ratios)


def _truth(title_id: str, cfg: SceneMediaConfig, story: dict, plan: dict) -> dict:
    starts = plan["shot_starts"] + [plan["n_frames"]]
    transitions = [
        {"type": k, "frame": s} if k == "cut" else {"type": k, "start": s, "end": e}
        for k, s, e in plan["spans"]
    ]
    shots = [
        {
            "start_frame": starts[i],
            "end_frame": starts[i + 1],
            "scene": s.scene,
            "set": s.set_id,
            "framing": list(s.framing),
            "on_screen": s.on_screen,
            "cue": s.cue,
            "line": s.line,
            "speaker": s.speaker,
        }
        for i, s in enumerate(story["shots"])
    ]
    return {
        "title_id": title_id,
        "family": "scenes",
        "fps": cfg.fps,
        "n_frames": plan["n_frames"],
        "width": cfg.width,
        "height": cfg.height,
        "genres": story["genres"],
        "cast": story["cast"],
        "sets": story["sets"],
        "climax": story["climax"],
        "scenes": story["scenes"],
        "transitions": transitions,
        "flashes": [],
        "shots": shots,
    }


def _write_metadata(path: Path, title_id: str, genres: list[str]) -> None:
    """Title-level text only (name, genres): nothing that tells scenes apart."""
    meta = {
        "name": f"Scenes {' '.join(genres)} {title_id.rsplit('_', 1)[-1]}",
        "synopsis": f"A {' and '.join(g.lower() for g in genres)} story told in scenes.",
        "tags": [g.lower() for g in genres],
        "genres": genres,
    }
    tmp = path.with_suffix(".json.part")
    tmp.write_text(json.dumps(meta, indent=1))
    tmp.replace(path)


def scene_clip_spans(truth: dict, rng: np.random.Generator) -> list[tuple[int, int, int]]:
    """(shot_start, shot_end, scene) runs of 2-5 shots that never cross a scene boundary; the
    last run of a scene may be a single shot when the scene has one left over."""
    spans = []
    for k, scene in enumerate(truth["scenes"]):
        s, end = scene["shots"]
        while s < end:
            e = min(end, s + int(rng.integers(2, 6)))
            if end - e == 1:  # never leave a one-shot run behind
                e = end
            spans.append((s, e, k))
            s = e
    return spans


def scene_clip_rows(truth: dict, rng: np.random.Generator) -> list[dict]:
    """Clip rows of one title under the rules of the module docstring."""
    rows, fps, scenes = [], truth["fps"], truth["scenes"]
    for c, (s, e, k) in enumerate(scene_clip_spans(truth, rng)):
        scene = scenes[k]
        topics = {scene["topic"]} - {None}
        if e == scene["shots"][1] and k + 1 < len(scenes):  # the break after it opens scene k+1
            topics |= {scenes[k + 1]["topic"]} - {None}
        hero = 0 in scene["cast"]
        rows.append(
            {
                "title_id": truth["title_id"],
                "clip_id": f"{truth['title_id']}:c{c:03d}",
                "shot_start": s,
                "shot_end": e,
                "start_s": truth["shots"][s]["start_frame"] / fps,
                "end_s": truth["shots"][e - 1]["end_frame"] / fps,
                "ad_relevancy": sorted(topics),
                "tone": [scene["tone"]],
                "genre": list(truth["genres"]),
                "popularity": float(scene["intensity"] + 0.1 * hero + rng.normal(0, 0.02)),
                "retrieval": bool(hero),
            }
        )
    return rows
