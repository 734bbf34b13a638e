"""A suite of structurally different synthetic benchmark families (issue 9).

One generator is a guess about the world; a recipe tuned on it may not transfer. Each family here
tells another generative story, with the same output contract as `synthetic.narrative` (fused,
globals, video_only Parquet and clips for the five tasks), so every recipe choice can be made on
some members of the suite and confirmed on others.

- `narrative` (synthetic/narrative.py): discrete scenes, AR(1) content between scenes, content
  unique to each title; labels from the clip, its neighbouring scenes and the title's arc.
- `drift`: continuous state - content, mood and energy drift shot by shot, no scene cuts; content
  unique to each title; labels from a window of neighbouring shots around the clip (what came
  before, what comes next).
- `recurring`: discrete scenes that revisit a few sets drawn from a bank shared across the whole
  catalogue; labels from the whole title (how central the clip's set is, where a set first
  appears, the clip's rank in the title's own arc).

Settings ranges (documented and exercised by `bench/ablation.py --suite`): titles 100-1000, title
length 60-700 shots, `view_noise` from 0.5 (one shot identifies its surroundings well) to 3.0 (one
shot barely does; its neighbours must be pooled). Every family draws everything from one
`numpy` generator seeded by `FamilyConfig.seed`, so a config gives identical files.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from mediafm_core.synthetic.narrative import (
    AD_CATEGORIES,
    GENRES,
    TASKS,
    TONES,
    NarrativeConfig,
    NarrativeDataset,
    _clip_columns,
    _random_spans,
    _sample_multilabel,
    _title_genres,
    _unit,
)
from mediafm_core.synthetic.narrative import generate as generate_narrative

log = logging.getLogger(__name__)

FAMILIES = ("narrative", "drift", "recurring")


@dataclass
class FamilyConfig:
    """Settings shared by every family (each maps them onto its own story)."""

    family: str = "narrative"  # one of FAMILIES
    n_titles: int = 200  # 100-1000 in the suite
    dims: tuple[int, int, int] = (64, 64, 64)  # video, audio, text widths
    seed: int = 0
    min_shots: int = 60  # shortest title (suite: 60-700)
    max_shots: int = 700  # longest title
    view_noise: float = 1.0  # per-shot, per-dimension view noise (0.5 easy .. 3.0 hard)
    extra: dict = field(default_factory=dict)  # family-specific overrides of its own config

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown family {self.family!r}; known: {', '.join(FAMILIES)}")
        if self.n_titles < 1 or self.min_shots < 12 or self.max_shots < self.min_shots:
            raise ValueError("need >= 1 title and 12 <= min_shots <= max_shots")
        if self.view_noise < 0:
            raise ValueError(f"view_noise must be >= 0, got {self.view_noise}")


@dataclass
class FamilyTitle:
    """What `narrative.write` needs of a title (the vectors), plus its latent story."""

    title_id: str
    genre_weights: np.ndarray  # (11,)
    video: np.ndarray  # (n, Dv) L2-normalised
    fused: np.ndarray  # (n, D) unit norm
    has_text: np.ndarray  # (n,) bool
    globals_: np.ndarray  # (Dt,)
    latent: dict = field(default_factory=dict)  # family-specific per-shot / per-scene state

    @property
    def n_shots(self) -> int:
        return len(self.fused)


@dataclass
class _World:
    maps: dict[str, np.ndarray]  # modality -> (D_m, L) view of the latent
    genre_content: np.ndarray  # (11, Lz)
    globals_map: np.ndarray  # (Dt, 11 + Lz)
    appeal: np.ndarray  # (Lz,)
    tone_coef: np.ndarray  # (T, L) tone logits from a latent summary
    ad_coef: np.ndarray  # (C, L) ad logits from a latent summary
    genre_tone: np.ndarray  # (T, 11)
    genre_ad: np.ndarray  # (C, 11)


LZ, LM = 16, 8  # latent content and mood widths; latent = [content, mood, energy]
L = LZ + LM + 1
GAINS = {"video": (1.0, 0.4, 0.4), "audio": (0.4, 1.0, 1.0), "text": (0.8, 0.8, 0.3)}


def _world(cfg: FamilyConfig, rng: np.random.Generator) -> _World:
    G = len(GENRES)
    return _World(
        maps={m: rng.normal(size=(d, L)) / np.sqrt(L) for m, d in zip(GAINS, cfg.dims)},
        genre_content=rng.normal(size=(G, LZ)),
        globals_map=rng.normal(size=(cfg.dims[2], G + LZ)) / np.sqrt(G + LZ),
        appeal=_unit(rng.normal(size=LZ)),
        tone_coef=rng.normal(size=(len(TONES), L)) / np.sqrt(L / 4),
        ad_coef=rng.normal(size=(len(AD_CATEGORIES), L)) / np.sqrt(L / 4),
        genre_tone=0.5 * rng.normal(size=(len(TONES), G)),
        genre_ad=0.5 * rng.normal(size=(len(AD_CATEGORIES), G)),
    )


def _length(cfg: FamilyConfig, rng) -> int:
    n = int(np.exp(rng.uniform(np.log(cfg.min_shots), np.log(cfg.max_shots + 1))))
    return min(max(n, cfg.min_shots), cfg.max_shots)


def _render(cfg, world: _World, tid, gw, mu, latent, talk, rng) -> FamilyTitle:
    """Views of (n, L) latents (gains, map, per-title nuisance, view noise), fusion, globals."""
    n = len(latent)
    blocks = [slice(0, LZ), slice(LZ, LZ + LM), slice(LZ + LM, L)]
    views = {}
    for name, d in zip(GAINS, cfg.dims):
        h = latent.copy()
        for blk, g in zip(blocks, GAINS[name]):
            h[:, blk] *= g
        x = h @ world.maps[name].T + 0.5 * rng.normal(size=d)
        views[name] = _unit(x + cfg.view_noise * rng.normal(size=x.shape))
    has_text = rng.random(n) < np.where(talk, 0.8, 0.05)
    views["text"] = views["text"] * has_text[:, None]
    fused = _unit(np.concatenate([views["video"], views["audio"], views["text"]], axis=1))
    syn = np.r_[gw * 3.0, mu] @ world.globals_map.T
    glob = _unit(syn + 0.5 * rng.normal(size=len(syn)) * np.linalg.norm(syn) / np.sqrt(len(syn)))
    f32 = np.float32
    return FamilyTitle(
        tid, gw, views["video"].astype(f32), fused.astype(f32), has_text, glob.astype(f32)
    )


def _smooth(n: int, dim: int, length: float, rng) -> np.ndarray:
    """(n, dim) stationary AR(1) with correlation length `length` shots and unit variance."""
    rho = float(np.exp(-1.0 / length))
    out = np.empty((n, dim))
    out[0] = rng.normal(size=dim)
    eps = rng.normal(size=(n, dim)) * np.sqrt(1 - rho**2)
    for i in range(1, n):
        out[i] = rho * out[i - 1] + eps[i]
    return out


# ---- drift: continuous state, labels from the neighbouring shots ------------------------------


def _drift_title(cfg, world, tid, rng) -> FamilyTitle:
    """Content, mood and energy drift shot by shot (correlation length 5-20 shots per title);
    there are no scene cuts. Dialogue comes and goes as a smooth on/off process too."""
    gw = _title_genres(rng)
    mu = gw @ world.genre_content + 0.5 * rng.normal(size=LZ)
    n = _length(cfg, rng)
    ell = rng.uniform(5, 20)
    content = mu + _smooth(n, LZ, ell, rng)
    mood = _smooth(n, LM, ell, rng)
    energy = _smooth(n, 1, ell * 1.5, rng)
    latent = np.concatenate([content, mood, energy], axis=1)  # (n, L) the clean state
    noisy = latent + 0.3 * rng.normal(size=latent.shape)  # the shot itself varies a little
    talk = _smooth(n, 1, ell, rng)[:, 0] > 0.2
    t = _render(cfg, world, tid, gw, mu, noisy, talk, rng)
    t.latent = {"state": latent}
    return t


def _window_mean(x: np.ndarray, a: int, b: int, fallback: np.ndarray | None = None) -> np.ndarray:
    """Mean of rows [a, b) clipped to the title; `fallback` (else zeros) when nothing is left."""
    lo, hi = max(0, a), min(len(x), b)
    if hi > lo:
        return x[lo:hi].mean(0)
    return np.zeros(x.shape[1]) if fallback is None else fallback


def _drift_clips(cfg, world, titles, rng) -> dict[str, dict]:
    """Labels from what surrounds the clip: tone from a +-12-shot window, popularity from the
    build-up (clip energy minus the 15 shots before), retrieval from energy peaks relative to
    +-20 shots, ad relevancy from the 12 shots after the break and the 12 before it."""
    tone_rows, tone_logits, pop_rows, pops, ret_rows, flags = [], [], [], [], [], []
    ad_rows, ad_logits, gen_rows, gen_labels = [], [], [], []
    E = slice(LZ + LM, L)
    for t in titles:
        s, n = t.latent["state"], t.n_shots
        for a, b in _random_spans(n, 10, rng):
            ctx = _window_mean(s, a - 12, b + 12)
            tone_logits.append(world.tone_coef @ ctx + world.genre_tone @ t.genre_weights)
            tone_rows.append((t.title_id, a, b))
        for a, b in _random_spans(n, 12, rng):
            here = s[a:b].mean(0)
            build = here[E].mean() - _window_mean(s, a - 15, a, here)[E].mean()
            pops.append(0.6 * world.appeal @ s[a:b, :LZ].mean(0) + build + 0.3 * rng.normal())
            pop_rows.append((t.title_id, a, b))
        n_pos = int(rng.integers(6, 11))
        spans = _random_spans(n, 8 * n_pos, rng)
        worth = [
            s[a:b, E].mean()
            - _window_mean(s, a - 20, b + 20)[E].mean()
            + 0.5 * world.appeal @ s[a:b, :LZ].mean(0)
            + 0.2 * rng.normal()
            for a, b in spans
        ]
        _retrieval_rows(t.title_id, spans, worth, n_pos, rng, ret_rows, flags)
        cuts = np.arange(12, n - 12)  # breaks with 12 shots on either side
        picks = rng.choice(cuts, size=min(8, max(1, n // 40)), replace=False) if len(cuts) else []
        for cut in picks:
            nxt, prev = _window_mean(s, cut, cut + 12), _window_mean(s, cut - 12, cut)
            ad_logits.append(
                world.ad_coef @ (0.7 * nxt + 0.3 * prev) + world.genre_ad @ t.genre_weights
            )
            ad_rows.append((t.title_id, int(cut) - 3, int(cut) + 3))
        _genre_rows(t, rng, gen_rows, gen_labels)
    return _clip_tables(
        tone_rows,
        tone_logits,
        pop_rows,
        pops,
        ret_rows,
        flags,
        ad_rows,
        ad_logits,
        gen_rows,
        gen_labels,
        rng,
    )


# ---- recurring: a catalogue-wide bank of sets, labels from the whole title ---------------------


def _recurring_title(cfg, world, tid, rng, bank) -> FamilyTitle:
    """A title visits 3-8 sets from the catalogue's shared bank (genre-biased choice), moving
    between them by a Markov chain that favours its main sets, so sets recur within a title and
    across titles. Energy follows one of four arc shapes; mood belongs to the set."""
    gw = _title_genres(rng)
    protos, set_mood, set_genre = bank
    aff = set_genre @ gw
    p = np.exp(2.0 * aff - (2.0 * aff).max())
    k = int(rng.integers(3, 9))
    sets = rng.choice(len(protos), size=k, replace=False, p=p / p.sum())
    weight = rng.dirichlet(np.full(k, 0.7))  # some sets are central, others one-offs
    n = _length(cfg, rng)
    lengths = []
    while sum(lengths) < n:
        lengths.append(max(2, int(rng.geometric(1 / 7.0))))
    bounds = np.minimum(np.r_[0, np.cumsum(lengths)], n)
    bounds = bounds[np.r_[True, np.diff(bounds) > 0]]
    K = len(bounds) - 1
    scene_set = np.empty(K, dtype=np.int64)
    for j in range(K):
        w = weight.copy()
        if j:
            w[scene_set[j - 1]] *= 0.2  # a cut usually moves elsewhere
        scene_set[j] = rng.choice(k, p=w / w.sum())
    shape = int(rng.integers(4))
    pos = (bounds[:-1] + bounds[1:]) / 2 / n
    arc = [
        np.sin(np.pi * pos),
        pos**2,
        np.exp(-(((pos - 0.3) / 0.15) ** 2)) + np.exp(-(((pos - 0.8) / 0.1) ** 2)),
        1 - pos,
    ][shape] * 2 - 1
    scene_energy = arc + 0.3 * rng.normal(size=K)
    of_shot = np.repeat(np.arange(K), np.diff(bounds))
    gid = sets[scene_set]  # (K,) bank index of each scene's set
    mu = gw @ world.genre_content
    content = protos[gid][of_shot] + 0.4 * rng.normal(size=(n, LZ))
    mood = set_mood[gid][of_shot] + 0.3 * rng.normal(size=(n, LM))
    latent = np.concatenate([content, mood, scene_energy[of_shot][:, None]], axis=1)
    talk = (rng.random(K) < 0.6)[of_shot]
    t = _render(cfg, world, tid, gw, mu, latent, talk, rng)
    freq = np.bincount(scene_set, weights=np.diff(bounds), minlength=k) / n  # share of screen time
    first = np.array(
        [np.flatnonzero(scene_set == s)[0] if (scene_set == s).any() else -1 for s in range(k)]
    )
    t.latent = {
        "bounds": bounds,
        "of_shot": of_shot,
        "scene_set": scene_set,
        "gid": gid,
        "freq": freq,
        "first": first,
        "energy": scene_energy,
        "latent": latent,
    }
    return t


def _recurring_clips(cfg, world, titles, rng) -> dict[str, dict]:
    """Tone: the clip's set's share of the title's screen time (central vs one-off) and the
    clip's energy rank within the title; popularity: energy rank in the title plus whether the
    clip is in the title's main set; retrieval: the first appearance of a set (introductions)
    and the title's peak; ad relevancy: the set of the scene after the break."""
    tone_rows, tone_logits, pop_rows, pops, ret_rows, flags = [], [], [], [], [], []
    ad_rows, ad_logits, gen_rows, gen_labels = [], [], [], []
    T, C = len(TONES), len(AD_CATEGORIES)
    cw = {"central": rng.normal(size=T), "rank": rng.normal(size=T), "pop": rng.normal(size=C)}
    for t in titles:
        z = t.latent
        rank = np.argsort(np.argsort(z["energy"])) / max(1, len(z["energy"]) - 1)  # (K,) in title

        def feats(a, b, z=z, rank=rank):
            sc = z["of_shot"][a:b]
            s = np.bincount(sc).argmax()  # the clip's main scene
            return s, z["freq"][z["scene_set"][s]], rank[sc].mean()

        for a, b in _random_spans(t.n_shots, 10, rng):
            s, share, r = feats(a, b)
            tone_logits.append(
                world.tone_coef @ z["latent"][a:b].mean(0) * 0.3
                + cw["central"] * 3 * share
                + cw["rank"] * 2 * r
                + world.genre_tone @ t.genre_weights
            )
            tone_rows.append((t.title_id, a, b))
        main = z["freq"].argmax()
        for a, b in _random_spans(t.n_shots, 12, rng):
            s, share, r = feats(a, b)
            pops.append(1.5 * r + 1.0 * (z["scene_set"][s] == main) + 0.3 * rng.normal())
            pop_rows.append((t.title_id, a, b))
        n_pos = int(rng.integers(6, 11))
        spans = _random_spans(t.n_shots, 8 * n_pos, rng)
        worth = []
        for a, b in spans:
            s, share, r = feats(a, b)
            intro = float(z["first"][z["scene_set"][s]] == s)
            worth.append(1.2 * intro + 1.5 * r + 0.3 * rng.normal())
        _retrieval_rows(t.title_id, spans, worth, n_pos, rng, ret_rows, flags)
        K = len(z["bounds"]) - 1
        n_breaks = min(K - 1, int(np.clip(K // 6, 3, 12)))
        for k in rng.choice(np.arange(1, K), size=n_breaks, replace=False) if n_breaks else ():
            cut = int(z["bounds"][k])
            nxt = z["latent"][cut : int(z["bounds"][k + 1])].mean(0)
            ad_logits.append(
                world.ad_coef @ nxt
                + world.genre_ad @ t.genre_weights
                + cw["pop"] * 2 * z["freq"][z["scene_set"][k]]
            )
            ad_rows.append((t.title_id, max(0, cut - 3), min(t.n_shots, cut + 3)))
        _genre_rows(t, rng, gen_rows, gen_labels)
    return _clip_tables(
        tone_rows,
        tone_logits,
        pop_rows,
        pops,
        ret_rows,
        flags,
        ad_rows,
        ad_logits,
        gen_rows,
        gen_labels,
        rng,
    )


def _bank(world: _World, rng, size: int = 48):
    """The catalogue's shared sets: (S, Lz) content, (S, Lm) mood, (S, 11) genre affinity."""
    genre_aff = rng.dirichlet(np.full(len(GENRES), 0.3), size=size)
    protos = genre_aff @ world.genre_content + rng.normal(size=(size, LZ))
    return protos, 1.2 * rng.normal(size=(size, LM)), genre_aff


# ---- shared label plumbing ---------------------------------------------------------------------


def _retrieval_rows(tid, spans, worth, n_pos, rng, rows, flags) -> None:
    order = np.argsort(-np.asarray(worth))
    pos = set(order[:n_pos].tolist())
    neg = rng.choice(order[n_pos:], size=min(3 * n_pos, len(order) - n_pos), replace=False)
    for i in sorted(list(pos) + neg.tolist()):
        rows.append((tid, *spans[i]))
        flags.append(i in pos)


def _genre_rows(t: FamilyTitle, rng, rows, labels) -> None:
    names = [GENRES[j] for j in np.flatnonzero(t.genre_weights)]
    for a, b in _random_spans(t.n_shots, 5, rng):
        rows.append((t.title_id, a, b))
        labels.append(list(names))


def _clip_tables(
    tone_rows,
    tone_logits,
    pop_rows,
    pops,
    ret_rows,
    flags,
    ad_rows,
    ad_logits,
    gen_rows,
    gen_labels,
    rng,
) -> dict[str, dict]:
    return {
        "ad_relevancy": _clip_columns(
            ad_rows, labels=_sample_multilabel(np.array(ad_logits), AD_CATEGORIES, rng, 0.8)
        ),
        "popularity": _clip_columns(pop_rows, score=[float(s) for s in pops]),
        "tone": _clip_columns(
            tone_rows, labels=_sample_multilabel(np.array(tone_logits), TONES, rng, 1.0)
        ),
        "genre": _clip_columns(gen_rows, labels=gen_labels),
        "retrieval": _clip_columns(ret_rows, label=flags),
    }


def generate(cfg: FamilyConfig) -> NarrativeDataset:
    """The benchmark of `cfg.family`; identical for identical configs. The result is written with
    `synthetic.narrative.write` (its titles expose title_id, n_shots, fused, has_text, video,
    globals_)."""
    if cfg.family == "narrative":
        ncfg = NarrativeConfig(
            n_titles=cfg.n_titles,
            dims=tuple(cfg.dims),
            seed=cfg.seed,
            min_shots=cfg.min_shots,
            max_shots=cfg.max_shots,
            view_noise=cfg.view_noise,
            **cfg.extra,
        )
        return generate_narrative(ncfg)
    rng = np.random.default_rng([cfg.seed, FAMILIES.index(cfg.family)])
    world = _world(cfg, rng)
    if cfg.family == "drift":
        titles = [_drift_title(cfg, world, f"t{i:04d}", rng) for i in range(cfg.n_titles)]
        clips = _drift_clips(cfg, world, titles, rng)
    else:
        bank = _bank(world, rng)
        titles = [_recurring_title(cfg, world, f"t{i:04d}", rng, bank) for i in range(cfg.n_titles)]
        clips = _recurring_clips(cfg, world, titles, rng)
    log.info("%s: %d titles, %d shots", cfg.family, len(titles), sum(t.n_shots for t in titles))
    return NarrativeDataset(cfg, titles, {task: clips[task] for task in TASKS})  # type: ignore[arg-type]
