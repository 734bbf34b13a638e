"""Embedding in context: contextual shot vectors for whole titles from a trained MediaFMEncoder.

Every title is embedded as one sequence (its [GLOBAL] token from the title's metadata vector).
Titles longer than the encoder's window (`max_shots`, 512) run in overlapping windows with stride
window/2; each shot takes its vector from the window where it sits most centrally, so it sees
context on both sides (except near the title's own ends) and every shot is emitted exactly once.
Windows of many titles are batched (padded, with a key mask) and processed in a fixed order, so the
result does not depend on the batch size beyond float rounding.

A clip's vector is the mean of its title's contextual vectors over the clip span ("embedding in
context"). `embed_clips_alone` runs the encoder on the clip's shots only, for the ablation.

Representation (`representation=`): "output" is the output projection back to the fused space
(the seed's contextual embedding), "hidden" the final normed hidden state, "concat" both,
"masked" each shot's MSM prediction (the shot replaced by [MASK], predicted from the rest of its
window: 5 phases, each masking every 5th shot, run as one stacked pass with the unmasked one,
`MediaFMEncoder.masked_phase_predictions`), "output+masked" the output and the MSM prediction
side by side (2 x fused width), "fused+masked" the shot's own fused vector plus its unit-length MSM
prediction (fused width), "compact" output+masked in an orthonormal basis of the subspace the
output head can reach (`serving_basis`), "centred+masked" output+masked with the output half
minus its whole title's mean output (where the shot stands in its title), "compact-centred" that
in the head's span (2 H + 1 floats, `centred_bases`), "auto" (the default since issue 20)
"compact-centred" where that is exact, else "centred+masked" (see DEFAULT_REPRESENTATION).
A clip run alone (`embed_clips_alone`) is centred on the clip itself: without its title the
centred half of the clip's mean is zero.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

log = logging.getLogger(__name__)

REPRESENTATIONS = (
    "output",
    "hidden",
    "concat",
    "masked",
    "output+masked",
    "fused+masked",
    "compact",
    "centred+masked",
    "compact-centred",
    "auto",
)
CENTRED = ("centred+masked", "compact-centred")  # first half centred on its title's mean
MASKED_PHASES = 5  # "masked": every 5th shot masked per pass (the 20 % MSM mask ratio), 5 passes
# Chosen on the suite's tune cells (bench/suite.py: narrative and drift, seed 11, 240 titles,
# noise 1.5; 2 x 128 Muon, best checkpoint) with 5-fold probes, contextual minus fused, paired
# (ad / popularity / tone / genre / retrieval):
#   narrative: hidden -0.013 / +0.009 / +0.004 / -0.028 / +0.006; output +0.005 / +0.009 /
#     +0.012 / -0.003 / +0.009; masked +0.014 / +0.021 / +0.030 / +0.043 / -0.046;
#     output+masked +0.012 / +0.032 / +0.024 / +0.019 / +0.002.
#   drift: hidden -0.007 / +0.009 / -0.008 / -0.024 / +0.016; output +0.012 / +0.012 / +0.005 /
#     +0.004 / +0.013; masked +0.052 / +0.004 / +0.044 / +0.047 / -0.029;
#     output+masked +0.038 / +0.015 / +0.029 / +0.024 / +0.008.
# The output at a visible shot keeps what is local to it (the clip's own content: retrieval,
# popularity within a title); the MSM prediction with the shot masked is what its context says it
# is (the scene, the arc: tone, genre, ad breaks). Either alone loses somewhere; together they
# won every task on both tune cells. On the four confirm cells it beat fused on 18 of 20 tasks,
# never significantly worse (the issue 9 note has the table).
# Issue 20, serving width: "output+masked" stores 2 x the fused width D, but both halves come out
# of one linear head from the H-wide hidden state (pred = W h + b), so each half lies in the
# (H + 1)-dimensional span of [W, b]. "compact" stores each half's coordinates in an orthonormal
# basis of that span, computed from the head's weights alone (`serving_basis`): inner products,
# norms, cosine distances and every linear probe's function class are those of output+masked,
# in 2 (H + 1) floats (258 for `small`, 1538 for `base`: 1032 / 6152 B per shot against 17024 B
# for the offline profile's output+masked). Where 2 (H + 1) > D (the suite's 192-d synthetic
# vectors under `small`) each half keeps the D / 2 directions of largest singular value, so the
# vector is no wider than the fused input and lossy there. Measured beside output+masked and
# fused+masked on the suite: README "Serving width". Centred (issue 20, margin): the suite's
# retrieval label (like the seed's clip retrieval) ranks a title's clips against each other, and
# a probe over clip vectors cannot subtract a title's level from them, so output+masked tied or
# lost to fused there (-2.3 % to +2.9 %). "centred+masked" stores the output minus its whole
# title's mean output (context the encoder's outputs already hold, made explicit) beside the MSM
# prediction (kept whole: the title-level evidence genre and ad relevancy need). On the 3000-step
# recipe checkpoints (tune cells narrative / drift, seed 11), retrieval minus fused went from
# -2.3 % / -0.4 % to +15.9 % / +24.3 %, genre from +0.021 / +0.025 to +0.067 / +0.098; ad
# relevancy -0.003 / +0.026 against +0.008 / +0.033. Confirm cells: README "Centred output".
# The default, "auto", is "compact-centred" wherever it is exact (2 H + 1 <= D: every size up to
# `large` on the offline and paper profiles) and "centred+masked" elsewhere, because the lossy
# compact vectors lost to the full pair on every suite cell.
DEFAULT_REPRESENTATION = "auto"


def resolve_representation(model, representation: str = DEFAULT_REPRESENTATION) -> str:
    """The representation "auto" stands for with this model (see DEFAULT_REPRESENTATION):
    "compact-centred" when it keeps centred+masked exactly in 2 H + 1 <= D floats, else
    "centred+masked"."""
    if representation != "auto":
        return representation
    exact = 2 * model.config.hidden + 1 <= model.config.fused_dim
    return "compact-centred" if exact else "centred+masked"


def _left_basis(M, k: int):
    """(D, k) float32: the top-k left singular vectors of the (D, m) matrix M, each signed so
    its largest entry is positive (a fixed choice: the same vectors on every machine)."""
    import torch

    U = torch.linalg.svd(M.detach().double().cpu(), full_matrices=False).U[:, :k]
    return (U * torch.sign(U.gather(0, U.abs().argmax(0, keepdim=True)))).float()


def _head_basis(model, with_bias: bool, k: int):
    """(D, k) `_left_basis` of the output head's [W, b] (or W alone), cached on the model per
    head version, so a batch never repeats the SVD and a changed head never gets a stale one."""
    import torch

    W, b = model.output_proj.weight, model.output_proj.bias  # (D, H), (D,)
    head = (W._version, b._version, W.data_ptr())
    cached = getattr(model, "_serving_bases", None)
    if cached is None or cached[0] != head:
        cached = model._serving_bases = (head, {})
    if (with_bias, k) not in cached[1]:
        M = torch.cat([W, b[:, None]], 1) if with_bias else W
        cached[1][(with_bias, k)] = _left_basis(M, k).to(W.device)
    return cached[1][(with_bias, k)]


def serving_basis(model, centred: bool = False):
    """(D, k) float32 orthonormal basis of the span of the output head's outputs W h + b (W: the
    head's (D, H) weight, b its bias), k = min(H + 1, D // 2): the top-k left singular vectors of
    [W, b] (signs fixed, `_left_basis`). "compact" stores both halves of output+masked in it.

    centred=True: the basis of the span of W alone, k = min(H, D // 2): an output minus its
    title's mean output is W (h - mean h), so "compact-centred" stores that half in H floats.
    Cached on the model per head version. Source: issue 20 (serving no wider than fused)."""
    D, H = model.output_proj.weight.shape
    if centred:
        return _head_basis(model, False, min(H, D // 2))
    return _head_basis(model, True, min(H + 1, D // 2))


def centred_bases(model):
    """((D, k_c), (D, k_m)) the bases of "compact-centred": span(W) for the centred output half
    and span([W, b]) for the masked half, k_c = min(H, D // 2), k_m = min(H + 1, D - k_c), so
    the vector is never wider than D; exact (every inner product of centred+masked kept) when
    2 H + 1 <= D."""
    D, H = model.output_proj.weight.shape
    Uc = serving_basis(model, centred=True)
    return Uc, _head_basis(model, True, min(H + 1, D - Uc.shape[1]))


def plan_windows(n: int, window: int) -> tuple[list[tuple[int, int]], np.ndarray]:
    """Windows [(start, end)] covering n shots, and (n,) the window each shot takes its vector from.

    Stride is window // 2 and the last window is aligned to the title's end. A shot's owner is the
    window whose centre is nearest (the earlier one on ties).
    """
    if n <= window:
        return [(0, n)], np.zeros(n, dtype=np.int64)
    stride = max(1, window // 2)
    starts = list(range(0, n - window, stride)) + [n - window]
    wins = [(s, s + window) for s in starts]
    centres = np.array([(s + e - 1) / 2.0 for s, e in wins])  # (W,)
    pos = np.arange(n)[:, None]
    inside = (pos >= np.array(starts)[None, :]) & (pos < np.array(starts)[None, :] + window)
    dist = np.where(inside, np.abs(pos - centres[None, :]), np.inf)  # (n, W)
    return wins, dist.argmin(axis=1)


def _represent(model, args: dict, representation: str, T: int):
    """(B, T, R) the requested representation of one padded batch (see the module docstring)."""
    import torch

    if representation == "masked":
        return _masked_predictions(model, args, T)
    if representation == "fused+masked":
        return _fused_plus_masked(model, args, T)
    if representation in STACKED:  # the rest of STACKED: the unmasked pass rides along
        out, masked = model.masked_phase_predictions(**args, phases=MASKED_PHASES)
        if representation in ("output+masked", "centred+masked"):  # centred per title later
            return torch.cat([out.pred, masked], dim=-1)
        if representation == "compact-centred":
            Uc, Um = centred_bases(model)  # (D, k_c), (D, k_m)
            return torch.cat([out.pred.float() @ Uc, masked.float() @ Um], dim=-1)
        basis = serving_basis(model)  # (D, k): each half in the basis of the head's span
        return torch.cat([out.pred.float() @ basis, masked.float() @ basis], dim=-1)  # (B, T, 2k)
    out = model(**args)
    if representation == "output":
        return out.pred
    if representation == "hidden":
        return out.hidden
    return torch.cat([out.hidden, out.pred], dim=-1)  # concat


def _fused_plus_masked(model, args: dict, T: int):
    """(B, T, D) the shot's fused input plus its unit-length MSM prediction: local evidence and
    what the context says, in the fused width (no unmasked pass needed)."""
    import torch

    pred = _masked_predictions(model, args, T)
    return args["shots"] + torch.nn.functional.normalize(pred.float(), dim=-1).to(pred.dtype)


# Rows (sequences x (T + 2) tokens x stacked passes) per forward pass on a CPU: the stacked
# masked phases multiply a batch by MASKED_PHASES + 1, and past ~6 k rows the activations leave
# the cache (measured on the 240-title benchmark, 2 x 128: titles fastest at 2-4 windows of up to
# 512 a pass, clips of 6-12 shots at 32-64 a pass; README "Probes (issue 20").
CPU_ROWS_PER_PASS = 6144
# representations run through masked_phase_predictions (MASKED_PHASES + 1 stacked rows)
STACKED = ("masked", "fused+masked", "output+masked", "compact", *CENTRED)


def sub_batches(lengths: list[int], rows: int, stacked: int = 1) -> list[tuple[int, int]]:
    """[(lo, hi)] consecutive slices of sequences, each padded to its longest, with
    (hi - lo) * (longest + 2) * stacked <= rows (at least one sequence a slice)."""
    out, lo = [], 0
    while lo < len(lengths):
        hi, longest = lo + 1, lengths[lo] + 2
        while hi < len(lengths) and (hi + 1 - lo) * max(longest, lengths[hi] + 2) * stacked <= rows:
            longest = max(longest, lengths[hi] + 2)
            hi += 1
        out.append((lo, hi))
        lo = hi
    return out


def _run_batch(
    model, seqs: list[np.ndarray], globs: list[np.ndarray | None], representation, device
) -> list[np.ndarray]:
    """Encoder outputs for a batch of shot sequences: on a CPU in `sub_batches` of at most
    CPU_ROWS_PER_PASS rows, each padded to its longest (the same vectors up to float rounding)."""
    import torch

    if torch.device(device).type != "cpu":
        return _run_padded(model, seqs, globs, representation, device)
    stacked = MASKED_PHASES + 1 if representation in STACKED else 1
    out: list[np.ndarray] = []
    for lo, hi in sub_batches([len(s) for s in seqs], CPU_ROWS_PER_PASS, stacked):
        out += _run_padded(model, seqs[lo:hi], globs[lo:hi], representation, device)
    return out


def _run_padded(
    model, seqs: list[np.ndarray], globs: list[np.ndarray | None], representation, device
) -> list[np.ndarray]:
    """Encoder outputs for a batch of shot sequences (padded to the longest)."""
    import torch

    T = max(len(s) for s in seqs)
    D = seqs[0].shape[1]
    shots = np.zeros((len(seqs), T, D), dtype=np.float32)
    mask = np.zeros((len(seqs), T), dtype=bool)
    for i, s in enumerate(seqs):
        shots[i, : len(s)], mask[i, : len(s)] = s, True
    g_dim = model.config.global_dim
    has_g = np.array([g is not None for g in globs])
    g = np.zeros((len(seqs), max(g_dim, 1)), dtype=np.float32)
    for i, v in enumerate(globs):
        if v is not None:
            g[i] = v
    with torch.inference_mode():
        kw = dict(device=device)
        autocast = torch.autocast(
            "cuda", dtype=torch.bfloat16, enabled=torch.device(device).type == "cuda"
        )
        args = dict(
            shots=torch.from_numpy(shots).to(**kw),  # (B, T, D)
            shot_mask=torch.from_numpy(mask).to(**kw),  # (B, T)
            globals_=torch.from_numpy(g).to(**kw) if g_dim > 0 and has_g.any() else None,
            has_global=torch.from_numpy(has_g).to(**kw),
        )
        with autocast:
            rep = _represent(model, args, representation, T).float().cpu().numpy()  # (B, T, R)
    return [rep[i, : len(s)] for i, s in enumerate(seqs)]


def _masked_predictions(model, args: dict, T: int):
    """(B, T, D) each shot's MSM prediction: in pass p every shot with index % 5 == p is replaced
    by [MASK] and predicted from the rest of the sequence, as in pre-training (20 % masked).
    The passes run stacked (`MediaFMEncoder.masked_phase_predictions`, issue 20): equal to one
    `model(**args, mask_positions=...)` per phase up to float rounding."""
    return model.masked_phase_predictions(**args, phases=MASKED_PHASES, visible=False)[1]


def embed_titles(
    model,  # MediaFMEncoder (eval mode)
    titles: dict[str, np.ndarray],  # title_id -> (n, D) fused shot vectors in shot order
    globals_: dict[str, np.ndarray] | None = None,  # title_id -> (G,) metadata vector
    representation: str = DEFAULT_REPRESENTATION,
    batch_size: int = 8,  # windows per batch (on a CPU run in `sub_batches` of those)
    window: int | None = None,  # defaults to model.config.max_shots
    device: str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, np.ndarray]:
    """title_id -> (n, R) float32 contextual vectors, one per shot.

    Raises `InputError` naming the titles when their fused width is not the checkpoint's
    (a new encoder profile needs a checkpoint trained on its layout: a new embedding space)."""
    if representation not in REPRESENTATIONS:
        raise ValueError(f"unknown representation {representation!r}; use {REPRESENTATIONS}")
    representation = resolve_representation(model, representation)
    _check_width(titles, model.config.fused_dim)
    window = min(window or model.config.max_shots, model.config.max_shots)
    model.eval()
    globals_ = globals_ or {}
    jobs, plans = [], {}
    for tid, x in titles.items():
        wins, owner = plan_windows(len(x), window)
        plans[tid] = (wins, owner)
        jobs += [(tid, w, s, e) for w, (s, e) in enumerate(wins)]
    jobs.sort(key=lambda j: -(j[3] - j[2]))  # similar lengths together: less padding
    results: dict[tuple[str, int], np.ndarray] = {}
    for b in range(0, len(jobs), batch_size):
        batch = jobs[b : b + batch_size]
        seqs = [titles[tid][s:e] for tid, _, s, e in batch]
        outs = _run_batch(
            model, seqs, [globals_.get(tid) for tid, *_ in batch], representation, device
        )
        for (tid, w, _, _), o in zip(batch, outs):
            results[(tid, w)] = o
        if progress is not None:
            progress(min(b + batch_size, len(jobs)), len(jobs))
    out = {tid: _assemble(tid, plans[tid], results) for tid in titles}
    if representation in CENTRED:
        k = centred_width(model, representation)
        for v in out.values():  # the output half minus its title's mean: where the shot stands
            v[:, :k] -= v[:, :k].mean(0, keepdims=True)
    return out


def centred_width(model, representation: str) -> int:
    """Floats of the centred (first) half of a CENTRED representation: D or k_c."""
    if representation == "centred+masked":
        return model.config.fused_dim
    return serving_basis(model, centred=True).shape[1]


def _check_width(titles: dict[str, np.ndarray], width: int) -> None:
    wrong = {t: x.shape[1] for t, x in titles.items() if x.ndim != 2 or x.shape[1] != width}
    if wrong:
        from mediafm_core.errors import InputError

        shown = ", ".join(f"{t} ({w})" for t, w in sorted(wrong.items())[:5])
        raise InputError(
            f"{len(wrong)} title(s)",
            f"fused width does not match the checkpoint's {width}: {shown}; train "
            "encoder_checkpoint on this encoder profile's fused layout first",
        )


def _assemble(tid: str, plan, results) -> np.ndarray:
    """Each shot's vector from its owning window."""
    wins, owner = plan
    first = results[(tid, 0)]
    out = np.empty((len(owner), first.shape[1]), dtype=np.float32)
    for w, (s, _) in enumerate(wins):
        idx = np.flatnonzero(owner == w)
        out[idx] = results[(tid, w)][idx - s]
    return out


def clip_vectors(per_title: dict[str, np.ndarray], title_ids, shot_start, shot_end) -> np.ndarray:
    """(N, R) mean of each clip's title vectors over [shot_start, shot_end)."""
    out = np.empty((len(title_ids), next(iter(per_title.values())).shape[1]), dtype=np.float64)
    for i, (tid, a, b) in enumerate(zip(title_ids, shot_start, shot_end)):
        out[i] = per_title[tid][a:b].mean(0)
    return out


def embed_clips_alone(
    model,
    titles: dict[str, np.ndarray],
    title_ids,
    shot_start,
    shot_end,
    globals_: dict[str, np.ndarray] | None = None,
    representation: str = DEFAULT_REPRESENTATION,
    batch_size: int = 64,
    device: str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """(N, R) ablation: the encoder run on each clip's shots alone (same [GLOBAL]), then the mean.

    Only the shots outside the clip are withheld, so the difference from `clip_vectors` of
    `embed_titles` is the narrative context alone.
    """
    spans = {(t, int(a), int(b)) for t, a, b in zip(title_ids, shot_start, shot_end)}
    keys = sorted(spans)
    seqs = {f"{t}\x00{a}\x00{b}": titles[t][a:b] for t, a, b in keys}
    globs = {f"{t}\x00{a}\x00{b}": globals_[t] for t, a, b in keys if globals_ and t in globals_}
    emb = embed_titles(
        model, seqs, globs, representation, batch_size, device=device, progress=progress
    )
    return np.stack(
        [
            emb[f"{t}\x00{int(a)}\x00{int(b)}"].mean(0)
            for t, a, b in zip(title_ids, shot_start, shot_end)
        ]
    ).astype(np.float64)
