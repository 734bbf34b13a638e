"""Synthetic narrative benchmark: titles as scenes with latent state, shot vectors as noisy views.

The benchmark stands in for a catalogue (which we do not have) so the encoder, the probes and the
ablation can be exercised end to end. Its settings were picked from the story below, once, and
are not tuned for the model to win; `bench/ablation.py` checks conclusions on other seeds.

Generative story (all draws from one `numpy` generator seeded by `NarrativeConfig.seed`):

1. World. 11 genres (the seed's core genres), `n_moods` moods, a tone vocabulary and ad
   categories. Each genre has a mean content direction and mood preferences; each modality has
   its own random linear map from the latent state to its vector space.
2. Title. 1-3 genres with Dirichlet weights; a title content mean (genre directions + a
   title-specific offset); a length between `min_shots` and `max_shots` (log-uniform, so some
   titles exceed the encoder's 512-shot window); a climax position in [0.65, 0.9].
3. Scenes. The title is cut into scenes (geometric lengths, mean `mean_scene_shots`). Each scene
   has a latent state: content `z` (AR(1) around the title mean, coefficient `scene_ar`),
   tension `tau` (the narrative arc - inciting bump, rise, climax, resolution - plus AR(1) noise),
   and a mood (a sticky Markov chain whose fresh draws depend on genre and tension).
4. Shots. A shot inherits its scene's state with per-shot variation (`shot_noise`). Its latent
   vector is [content, mood embedding, tension]. Video, audio and text are views of it through
   different random linear maps with different gains (video sees content best; audio hears mood
   and tension best; dialogue text sits between), plus a per-title nuisance offset per modality
   (camera, mix, writing style) and per-shot noise (`view_noise`). Text exists only on shots with
   dialogue (`has_text`): a scene has dialogue with probability `dialogue_scene_prob`, and its
   shots carry text with probability 0.8 (0.05 outside dialogue scenes).
5. Fusion as DESIGN.md: each modality L2-normalised, concatenated (missing text = zeros),
   unit-normalised. The title metadata vector (globals) is a noisy text-space view of the genre
   weights and the title's content mean (a synopsis).
6. Labels (clips are contiguous spans of 3-12 shots, half-open [shot_start, shot_end)):
   - genre: the parent title's genres (visible from any clip through the title content mean).
   - ad_relevancy: a 6-shot span around a scene boundary (an ad break); category relevance
     depends on the full preceding and following scenes' content, the next scene's mood and
     tension, and genre. The clip sees only a few noisy shots of each scene.
   - tone: a logit per tone from the clip's own mood mix and tension (local) plus the tension of
     the surrounding +-3 scenes and its trend (context: is the story building or releasing) and
     the genre. Labels drawn with a steep sigmoid of the standardised logit.
   - popularity: a score from the clip's content appeal and tension (local), its proximity to the
     title's climax and its contrast with the neighbouring scenes (context), plus noise; the
     probe ranks clips within a title.
   - retrieval: "clip-worthy" = top 6-10 candidates of a title by a score from content appeal,
     a tension jump over the previous scenes (turning point) and climax proximity; negatives are
     3x as many other candidates (1:3).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mediafm_core.media.titles import GENRES  # the seed's 11 genres, one list

log = logging.getLogger(__name__)

TONES = (
    "creepy",
    "scary",
    "humorous",
    "tense",
    "suspenseful",
    "romantic",
    "melancholic",
    "uplifting",
    "dark",
    "whimsical",
    "heartfelt",
    "thrilling",
    "foreboding",
    "triumphant",
    "tragic",
    "playful",
    "gritty",
    "serene",
    "chaotic",
    "bittersweet",
)
AD_CATEGORIES = (
    "automotive",
    "food",
    "travel",
    "technology",
    "finance",
    "fashion",
    "gaming",
    "family",
)
TASKS = ("ad_relevancy", "popularity", "tone", "genre", "retrieval")


@dataclass
class NarrativeConfig:
    n_titles: int = 200  # number of titles
    dims: tuple[int, int, int] = (64, 64, 64)  # video, audio, text widths (paper: 768 x 3)
    seed: int = 0  # everything (world and titles) is drawn from this seed
    min_shots: int = 60  # shortest title
    max_shots: int = 700  # longest title (some exceed the 512-shot encoder window)
    mean_scene_shots: float = 8.0  # mean scene length in shots (geometric, >= 2)
    content_dim: int = 16  # latent content width
    n_moods: int = 8  # discrete scene moods
    mood_dim: int = 8  # width of a mood's latent embedding
    scene_ar: float = 0.8  # AR(1) coefficient of scene content around the title mean
    mood_stickiness: float = 0.6  # probability a scene keeps the previous scene's mood
    shot_noise: float = 0.5  # per-shot deviation of content from its scene (latent units)
    view_noise: float = 1.0  # per-shot noise std per view dimension (signal is ~1 per dim)
    nuisance: float = 0.5  # per-title, per-modality offset scale (style, not content)
    dialogue_scene_prob: float = 0.6  # probability a scene has dialogue (so text)
    globals_noise: float = 0.5  # noise on the title metadata vector
    genre_clips: int = 5  # genre-task clips per title
    tone_clips: int = 10  # tone-task clips per title
    popularity_clips: int = 12  # popularity clips per title
    # gains on the latent blocks [content, mood, tension] seen by each modality
    gains: dict[str, tuple[float, float, float]] = field(
        default_factory=lambda: {
            "video": (1.0, 0.4, 0.4),
            "audio": (0.4, 1.0, 1.0),
            "text": (0.8, 0.8, 0.3),
        }
    )


@dataclass
class NarrativeWorld:
    """Parameters shared by all titles of one benchmark."""

    genre_content: np.ndarray  # (11, Lz) mean content direction per genre
    genre_mood: np.ndarray  # (11, M) mood logits per genre
    mood_tension: np.ndarray  # (M,) how much tension favours each mood
    mood_emb: np.ndarray  # (M, Lm) latent embedding of each mood
    maps: dict[str, np.ndarray]  # modality -> (D_m, L) view matrix
    globals_map: np.ndarray  # (D_t, 11 + Lz) synopsis view
    appeal: np.ndarray  # (Lz,) unit "audience appeal" content direction
    tone_coef: dict[str, np.ndarray]  # tone logit coefficients (see _tone_logits)
    ad_coef: dict[str, np.ndarray]  # ad-category logit coefficients (see _ad_logits)


@dataclass
class NarrativeTitle:
    title_id: str
    genre_weights: np.ndarray  # (11,) Dirichlet weights, zero outside the title's genres
    climax: float  # climax position in [0, 1]
    scene_of_shot: np.ndarray  # (n,) scene index of each shot
    scene_bounds: np.ndarray  # (K + 1,) shot index where each scene starts, then n
    scene_content: np.ndarray  # (K, Lz)
    scene_tension: np.ndarray  # (K,)
    scene_mood: np.ndarray  # (K,) int
    shot_content: np.ndarray  # (n, Lz)
    shot_tension: np.ndarray  # (n,)
    video: np.ndarray  # (n, Dv) L2-normalised
    audio: np.ndarray  # (n, Da) L2-normalised
    text: np.ndarray  # (n, Dt) L2-normalised, zeros where has_text is False
    has_text: np.ndarray  # (n,) bool
    fused: np.ndarray  # (n, Dv + Da + Dt) unit norm
    globals_: np.ndarray  # (Dt,) title metadata vector

    @property
    def n_shots(self) -> int:
        return len(self.scene_of_shot)


@dataclass
class NarrativeDataset:
    config: NarrativeConfig
    titles: list[NarrativeTitle]
    clips: dict[str, dict[str, list]]  # task -> columns of the clips contract


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(n, 1e-12)


def make_world(cfg: NarrativeConfig, rng: np.random.Generator) -> NarrativeWorld:
    """Draw the world parameters (step 1 of the story)."""
    G, Lz, M, Lm = len(GENRES), cfg.content_dim, cfg.n_moods, cfg.mood_dim
    L = Lz + Lm + 1
    maps = {
        name: rng.normal(size=(d, L)) / np.sqrt(L)
        for name, d in zip(("video", "audio", "text"), cfg.dims)
    }
    T, C = len(TONES), len(AD_CATEGORIES)
    tone_coef = {
        "mood": rng.normal(size=(T, M)),  # local: the clip's mood mix
        "tension": rng.normal(size=T),  # local: the clip's tension
        "context": rng.normal(size=T),  # context: mean tension of the +-3 surrounding scenes
        "trend": rng.normal(size=T),  # context: following minus preceding tension
        "genre": 0.5 * rng.normal(size=(T, G)),
    }
    ad_coef = {
        "prev": rng.normal(size=(C, Lz)) / np.sqrt(Lz),  # preceding scene content
        "next": rng.normal(size=(C, Lz)) / np.sqrt(Lz),  # following scene content
        "mood": 0.7 * rng.normal(size=(C, M)),  # following scene mood
        "tension": 0.5 * rng.normal(size=C),  # following scene tension (cliffhanger)
        "genre": 0.5 * rng.normal(size=(C, G)),
    }
    return NarrativeWorld(
        genre_content=rng.normal(size=(G, Lz)),
        genre_mood=1.5 * rng.normal(size=(G, M)),
        mood_tension=rng.normal(size=M),
        mood_emb=rng.normal(size=(M, Lm)),
        maps=maps,
        globals_map=rng.normal(size=(cfg.dims[2], G + Lz)) / np.sqrt(G + Lz),
        appeal=_unit(rng.normal(size=Lz)),
        tone_coef=tone_coef,
        ad_coef=ad_coef,
    )


def _arc(p: np.ndarray, climax: float) -> np.ndarray:
    """Narrative tension at relative position p: inciting bump, rise, climax, resolution."""
    inciting = 0.6 * np.exp(-(((p - 0.12) / 0.05) ** 2))
    rise = 1.2 * np.clip(p / climax, 0, 1) ** 2
    peak = 1.5 * np.exp(-(((p - climax) / 0.05) ** 2))
    fall = np.where(p > climax, -2.5 * (p - climax), 0.0)
    return inciting + rise + peak + fall - 0.8


def _scene_bounds(n: int, mean_len: float, rng: np.random.Generator) -> np.ndarray:
    lengths = []
    while sum(lengths) < n:
        lengths.append(max(2, int(rng.geometric(1.0 / mean_len))))
    bounds = np.r_[0, np.cumsum(lengths)]
    bounds[-1] = n
    if bounds[-1] - bounds[-2] < 2 and len(bounds) > 2:  # merge a tiny last scene
        bounds = np.r_[bounds[:-2], n]
    return bounds.astype(np.int64)


def _title_genres(rng: np.random.Generator) -> np.ndarray:
    k = rng.choice([1, 2, 3], p=[0.5, 0.35, 0.15])
    chosen = rng.choice(len(GENRES), size=k, replace=False)
    w = np.zeros(len(GENRES))
    w[chosen] = rng.dirichlet(np.full(k, 2.0))
    return w


def _scene_states(cfg, world, gw, mu, climax, bounds, rng):
    """Content (K, Lz), tension (K,), mood (K,) of each scene (step 3)."""
    K = len(bounds) - 1
    n = bounds[-1]
    p = (bounds[:-1] + bounds[1:]) / 2.0 / n
    arc = _arc(p, climax)
    content = np.empty((K, cfg.content_dim))
    tension = np.empty(K)
    mood = np.empty(K, dtype=np.int64)
    rho = cfg.scene_ar
    z, e = mu + rng.normal(size=cfg.content_dim), 0.0
    mood_logits_title = gw @ world.genre_mood  # (M,)
    for k in range(K):
        z = mu + rho * (z - mu) + np.sqrt(1 - rho**2) * rng.normal(size=cfg.content_dim)
        e = 0.7 * e + 0.3 * rng.normal()
        content[k], tension[k] = z, arc[k] + e
        if k > 0 and rng.random() < cfg.mood_stickiness:
            mood[k] = mood[k - 1]
        else:
            logits = mood_logits_title + 1.5 * tension[k] * world.mood_tension
            pr = np.exp(logits - logits.max())
            mood[k] = rng.choice(cfg.n_moods, p=pr / pr.sum())
    return content, tension, mood


def _views(cfg, world, shot_latent, rng):
    """Per-modality views of (n, L) shot latents: gains, random map, title nuisance, noise."""
    Lz, Lm = cfg.content_dim, cfg.mood_dim
    blocks = [slice(0, Lz), slice(Lz, Lz + Lm), slice(Lz + Lm, Lz + Lm + 1)]
    out = {}
    for name, d in zip(("video", "audio", "text"), cfg.dims):
        h = shot_latent.copy()
        for blk, g in zip(blocks, cfg.gains[name]):
            h[:, blk] *= g
        x = h @ world.maps[name].T  # (n, D)
        x += cfg.nuisance * rng.normal(size=d)  # per-title style offset
        x += cfg.view_noise * rng.normal(size=x.shape)  # per-shot sensor/encoder noise
        out[name] = _unit(x)
    return out


def make_title(cfg: NarrativeConfig, world: NarrativeWorld, tid: str, rng) -> NarrativeTitle:
    """One title (steps 2-5)."""
    gw = _title_genres(rng)
    mu = gw @ world.genre_content + 0.5 * rng.normal(size=cfg.content_dim)
    n = int(np.exp(rng.uniform(np.log(cfg.min_shots), np.log(cfg.max_shots + 1))))
    n = min(max(n, cfg.min_shots), cfg.max_shots)
    climax = rng.uniform(0.65, 0.9)
    bounds = _scene_bounds(n, cfg.mean_scene_shots, rng)
    content, tension, mood = _scene_states(cfg, world, gw, mu, climax, bounds, rng)
    scene_of_shot = np.repeat(np.arange(len(bounds) - 1), np.diff(bounds))
    shot_content = content[scene_of_shot] + cfg.shot_noise * rng.normal(size=(n, cfg.content_dim))
    shot_tension = tension[scene_of_shot] + 0.2 * rng.normal(size=n)
    latent = np.concatenate(
        [shot_content, world.mood_emb[mood[scene_of_shot]], shot_tension[:, None]], axis=1
    )
    views = _views(cfg, world, latent, rng)
    dialogue = rng.random(len(bounds) - 1) < cfg.dialogue_scene_prob
    has_text = rng.random(n) < np.where(dialogue[scene_of_shot], 0.8, 0.05)
    views["text"] = views["text"] * has_text[:, None]
    fused = _unit(np.concatenate([views["video"], views["audio"], views["text"]], axis=1))
    synopsis = np.r_[gw * 3.0, mu] @ world.globals_map.T
    glob = _unit(
        synopsis
        + cfg.globals_noise
        * rng.normal(size=cfg.dims[2])
        * np.linalg.norm(synopsis)
        / np.sqrt(cfg.dims[2])
    )
    f32 = np.float32
    return NarrativeTitle(
        tid,
        gw,
        climax,
        scene_of_shot,
        bounds,
        content,
        tension,
        mood,
        shot_content,
        shot_tension,
        views["video"].astype(f32),
        views["audio"].astype(f32),
        views["text"].astype(f32),
        has_text,
        fused.astype(f32),
        glob.astype(f32),
    )


# ---- labels ----------------------------------------------------------------------------------


def _random_spans(n: int, k: int, rng, lo: int = 3, hi: int = 12) -> list[tuple[int, int]]:
    spans = []
    for _ in range(k):
        length = int(rng.integers(lo, min(hi, n) + 1))
        start = int(rng.integers(0, n - length + 1))
        spans.append((start, start + length))
    return spans


def _clip_scenes(t: NarrativeTitle, a: int, b: int) -> tuple[int, int]:
    """First and last scene index touched by shots [a, b)."""
    return int(t.scene_of_shot[a]), int(t.scene_of_shot[b - 1])


def _climax_proximity(t: NarrativeTitle, a: int, b: int) -> float:
    p = (a + b) / 2.0 / t.n_shots
    return float(np.exp(-abs(p - t.climax) / 0.08))


def _context_tension(t: NarrativeTitle, s0: int, s1: int, width: int = 3) -> tuple[float, float]:
    """Mean tension of the +-width scenes around scenes s0..s1, and following minus preceding."""
    K = len(t.scene_tension)
    prev = t.scene_tension[max(0, s0 - width) : s0]
    nxt = t.scene_tension[s1 + 1 : min(K, s1 + 1 + width)]
    here = t.scene_tension[s0 : s1 + 1]
    prev_m = prev.mean() if len(prev) else here.mean()
    next_m = nxt.mean() if len(nxt) else here.mean()
    return float((prev_m + next_m) / 2), float(next_m - prev_m)


def _tone_features(cfg, t: NarrativeTitle, a: int, b: int) -> dict:
    s0, s1 = _clip_scenes(t, a, b)
    moods = np.bincount(t.scene_mood[t.scene_of_shot[a:b]], minlength=cfg.n_moods) / (b - a)
    ctx, trend = _context_tension(t, s0, s1)
    return {
        "mood": moods,
        "tension": float(t.shot_tension[a:b].mean()),
        "context": ctx,
        "trend": trend,
        "genre": t.genre_weights,
    }


def _sample_multilabel(logits: np.ndarray, names, rng, offset: float) -> list[list[str]]:
    """(N, C) logits -> label lists: standardise per label over clips, steep sigmoid, Bernoulli."""
    z = (logits - logits.mean(0)) / (logits.std(0) + 1e-9)
    pr = 1.0 / (1.0 + np.exp(-3.0 * (z - offset)))
    draw = rng.random(pr.shape) < pr
    return [[names[j] for j in np.flatnonzero(row)] for row in draw]


def _tone_clips(cfg, world, titles, rng) -> dict[str, list]:
    rows, logits = [], []
    c = world.tone_coef
    for t in titles:
        for a, b in _random_spans(t.n_shots, cfg.tone_clips, rng):
            f = _tone_features(cfg, t, a, b)
            logits.append(
                c["mood"] @ f["mood"]
                + c["tension"] * f["tension"]
                + c["context"] * f["context"]
                + c["trend"] * f["trend"]
                + c["genre"] @ f["genre"]
            )
            rows.append((t.title_id, a, b))
    labels = _sample_multilabel(np.array(logits), TONES, rng, offset=1.0)
    return _clip_columns(rows, labels=labels)


def _ad_clips(cfg, world, titles, rng) -> dict[str, list]:
    rows, logits = [], []
    c = world.ad_coef
    for t in titles:
        K = len(t.scene_tension)
        n_breaks = int(np.clip(t.n_shots // 40, 3, 12))  # a break every few minutes
        cands = np.arange(1, K)  # boundary before scene k
        for k in np.sort(rng.choice(cands, size=min(n_breaks, len(cands)), replace=False)):
            cut = int(t.scene_bounds[k])
            a, b = max(0, cut - 3), min(t.n_shots, cut + 3)
            mood = np.eye(cfg.n_moods)[t.scene_mood[k]]
            logits.append(
                c["prev"] @ t.scene_content[k - 1]
                + c["next"] @ t.scene_content[k]
                + c["mood"] @ mood
                + c["tension"] * t.scene_tension[k]
                + c["genre"] @ t.genre_weights
            )
            rows.append((t.title_id, a, b))
    labels = _sample_multilabel(np.array(logits), AD_CATEGORIES, rng, offset=0.8)
    return _clip_columns(rows, labels=labels)


def _contrast(t: NarrativeTitle, a: int, b: int, width: int = 2) -> float:
    """Distance of the clip's content from the neighbouring scenes' mean content."""
    s0, s1 = _clip_scenes(t, a, b)
    K = len(t.scene_tension)
    idx = [k for k in range(max(0, s0 - width), min(K, s1 + 1 + width)) if not s0 <= k <= s1]
    here = t.shot_content[a:b].mean(0)
    if not idx:
        return 0.0
    return float(np.linalg.norm(here - t.scene_content[idx].mean(0)))


def _popularity_clips(cfg, world, titles, rng) -> dict[str, list]:
    rows, scores = [], []
    for t in titles:
        for a, b in _random_spans(t.n_shots, cfg.popularity_clips, rng):
            local = world.appeal @ t.shot_content[a:b].mean(0) + 0.5 * t.shot_tension[a:b].mean()
            context = 1.5 * _climax_proximity(t, a, b) + 0.5 * _contrast(t, a, b)
            scores.append(local + context + 0.3 * rng.normal())
            rows.append((t.title_id, a, b))
    return _clip_columns(rows, score=[float(s) for s in scores])


def _retrieval_clips(cfg, world, titles, rng) -> dict[str, list]:
    rows, flags = [], []
    for t in titles:
        n_pos = int(rng.integers(6, 11))
        spans = _random_spans(t.n_shots, 8 * n_pos, rng)
        worth = []
        for a, b in spans:
            s0, _ = _clip_scenes(t, a, b)
            before = t.scene_tension[max(0, s0 - 2) : s0]
            jump = t.shot_tension[a:b].mean() - (before.mean() if len(before) else 0.0)
            local = 0.8 * world.appeal @ t.shot_content[a:b].mean(0)
            worth.append(local + 0.8 * jump + 1.5 * _climax_proximity(t, a, b) + 0.3 * rng.normal())
        order = np.argsort(-np.array(worth))
        neg = rng.choice(order[n_pos:], size=3 * n_pos, replace=False)
        for i in sorted(list(order[:n_pos]) + list(neg)):
            rows.append((t.title_id, *spans[i]))
            flags.append(bool(i in set(order[:n_pos])))
    return _clip_columns(rows, label=flags)


def _genre_clips(cfg, world, titles, rng) -> dict[str, list]:
    rows, labels = [], []
    for t in titles:
        names = [GENRES[j] for j in np.flatnonzero(t.genre_weights)]
        for a, b in _random_spans(t.n_shots, cfg.genre_clips, rng):
            rows.append((t.title_id, a, b))
            labels.append(list(names))
    return _clip_columns(rows, labels=labels)


def _clip_columns(rows, **label_column) -> dict[str, list]:
    ((name, values),) = label_column.items()
    return {
        "title_id": [r[0] for r in rows],
        "clip_id": [f"{r[0]}:{r[1]}-{r[2]}:{i}" for i, r in enumerate(rows)],
        "shot_start": [int(r[1]) for r in rows],
        "shot_end": [int(r[2]) for r in rows],
        name: values,
    }


LABELLERS = {
    "ad_relevancy": _ad_clips,
    "popularity": _popularity_clips,
    "tone": _tone_clips,
    "genre": _genre_clips,
    "retrieval": _retrieval_clips,
}


def generate(cfg: NarrativeConfig) -> NarrativeDataset:
    """The whole benchmark for `cfg`; identical for identical configs."""
    rng = np.random.default_rng(cfg.seed)
    world = make_world(cfg, rng)
    titles = []
    for i in range(cfg.n_titles):
        titles.append(make_title(cfg, world, f"t{i:04d}", rng))
    clips = {task: LABELLERS[task](cfg, world, titles, rng) for task in TASKS}
    log.info("generated %d titles, %d shots", len(titles), sum(t.n_shots for t in titles))
    return NarrativeDataset(cfg, titles, clips)


def write(ds: NarrativeDataset, out_dir: str | Path) -> dict[str, Path]:
    """Write fused, globals, video_only and clips_<task> Parquet files; returns name -> path."""
    import pyarrow as pa

    from mediafm_core.tables import write_table_atomic, write_vectors

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tids = np.concatenate([[t.title_id] * t.n_shots for t in ds.titles])
    shot_idx = np.concatenate([np.arange(t.n_shots) for t in ds.titles])
    stack = lambda attr: np.concatenate([getattr(t, attr) for t in ds.titles])  # noqa: E731
    paths = {
        "fused": out / "fused.parquet",
        "globals": out / "globals.parquet",
        "video_only": out / "video_only.parquet",
    }
    write_vectors(
        paths["fused"],
        tids,
        shot_idx,
        stack("fused"),
        column="fused",
        has_text=stack("has_text").astype(bool),
    )
    write_vectors(paths["video_only"], tids, shot_idx, stack("video"))
    write_vectors(
        paths["globals"],
        [t.title_id for t in ds.titles],
        None,
        np.stack([t.globals_ for t in ds.titles]),
    )
    for task, cols in ds.clips.items():
        paths[f"clips_{task}"] = out / f"clips_{task}.parquet"
        write_table_atomic(pa.table(cols), paths[f"clips_{task}"])
    return paths
