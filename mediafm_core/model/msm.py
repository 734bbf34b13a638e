"""Masked Shot Modelling (MSM): BERT's masked-token objective with shots as tokens.

A fraction (20 %) of each title's real shots is replaced by `[MASK]`; the loss is the mean cosine
distance between the model's prediction and the original fused vector at masked positions only.
Two trivial predictors are scored on the same masks so a loss figure means something:
`mean_shot` (the mean of the title's unmasked shots) and `neighbour` (copy the nearest unmasked
shot; the earlier one on ties).

`contrastive_loss` is an optional InfoNCE term beside MSM (issue 20,
TrainConfig.contrastive_weight): each masked prediction must pick its own shot out of all the real
shots of its title window.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mediafm_core.training.config import CONTRASTIVE_NEGATIVES  # torch-free: one list of choices

MASK_RATIO = 0.2


def sample_mask(
    shot_mask: torch.Tensor,  # (B, T) bool, True = real shot
    ratio: float = MASK_RATIO,
    generator: torch.Generator | None = None,
    span: int = 1,
) -> torch.Tensor:
    """(B, T) bool: round(ratio * n_real) real shots per row (at least one), chosen uniformly.

    span > 1 masks runs of `span` consecutive shots instead (the row is tiled into blocks of
    `span` at a random offset and round(ratio * n_real / span) blocks are drawn), so a masked
    shot cannot simply be copied from the shot beside it.
    """
    if span > 1:
        return _sample_span_mask(shot_mask, ratio, generator, span)
    B, T = shot_mask.shape
    scores = torch.rand(B, T, generator=generator, device=shot_mask.device)
    scores = scores.masked_fill(~shot_mask, 2.0)  # padding sorts last, never chosen
    n_real = shot_mask.sum(dim=1)
    n_mask = torch.clamp((n_real.float() * ratio).round().long(), min=1)
    n_mask = torch.minimum(n_mask, n_real)
    ranks = scores.argsort(dim=1).argsort(dim=1)  # rank of each position within its row
    return (ranks < n_mask.unsqueeze(1)) & shot_mask


def _sample_span_mask(
    shot_mask: torch.Tensor, ratio: float, generator: torch.Generator | None, span: int
) -> torch.Tensor:
    B, T = shot_mask.shape
    dev = shot_mask.device
    offset = torch.randint(0, span, (B, 1), generator=generator, device=dev)
    block = (torch.arange(T, device=dev)[None, :] + offset) // span  # (B, T) block of each shot
    n_blocks = (T + span - 1) // span + 1
    real = torch.zeros(B, n_blocks, device=dev).scatter_reduce(
        1, block, shot_mask.float(), reduce="amax"
    )  # (B, n_blocks) 1 where the block holds a real shot
    scores = torch.rand(B, n_blocks, generator=generator, device=dev).masked_fill(real == 0, 2.0)
    n_real = shot_mask.sum(dim=1)
    n_pick = torch.clamp((n_real.float() * ratio / span).round().long(), min=1)
    n_pick = torch.minimum(n_pick, real.sum(dim=1).long())
    picked = scores.argsort(dim=1).argsort(dim=1) < n_pick.unsqueeze(1)  # (B, n_blocks)
    return torch.gather(picked, 1, block) & shot_mask


def cosine_distance(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - cos(pred, target) over the last dim, computed in float32."""
    return 1.0 - F.cosine_similarity(pred.float(), target.float(), dim=-1, eps=1e-8)


def msm_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean cosine distance at masked positions. pred, target (B, T, D); mask (B, T) bool."""
    d = cosine_distance(pred, target)  # (B, T)
    return (d * mask).sum() / mask.sum().clamp(min=1)


CONTRASTIVE_TEMPERATURE = 0.1


def contrastive_loss(
    pred: torch.Tensor,  # (B, T, D) predictions
    target: torch.Tensor,  # (B, T, D) the true fused vectors
    mask: torch.Tensor,  # (B, T) bool, positions scored (the MSM-masked shots)
    shot_mask: torch.Tensor,  # (B, T) bool, True = real shot (the candidates)
    temperature: float = CONTRASTIVE_TEMPERATURE,
    negatives: str = "title",
) -> torch.Tensor:
    """InfoNCE at masked positions, wav2vec 2.0-style with the title as the set of distractors.

    `negatives="batch"` scores each masked prediction against every real shot of every row of
    the batch instead (SimCLR-style in-batch negatives): the title-level part of a shot (genre,
    set, cast) then also separates it from other titles' shots, where title-only negatives make
    the term blind to what a title's shots share. Candidates whose fused vector equals the
    positive's exactly (the same shot in two overlapping windows of one title) are left out.

    Each masked prediction and every real shot's true fused vector are unit-normalised; the
    logits are their cosine similarities / `temperature` against all real shots of the same row
    (title window), the correct class is the shot's own position. Returns the mean cross-entropy
    (nats) over masked positions, a float32 scalar; 0 when nothing is masked. Padding is never a
    candidate; a row with one real shot contributes log(1) = 0. Computed in float32.
    Source: Baevski et al. 2020 (wav2vec 2.0), with MSM's fused vectors as the quantised targets.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if negatives not in CONTRASTIVE_NEGATIVES:
        raise ValueError(f"negatives must be one of {CONTRASTIVE_NEGATIVES}, got {negatives!r}")
    p = F.normalize(pred.float(), dim=-1, eps=1e-8)  # (B, T, D)
    t = F.normalize(target.float(), dim=-1, eps=1e-8)  # (B, T, D)
    if negatives == "batch":
        return _batch_contrastive(p, t, mask & shot_mask, shot_mask, temperature)
    logits = torch.einsum("bid,bjd->bij", p, t) / temperature  # (B, T query, T candidate)
    logits = logits.masked_fill(~shot_mask[:, None, :], float("-inf"))
    own = torch.diagonal(logits, dim1=1, dim2=2)  # (B, T) the positive's logit
    rows = mask & shot_mask  # (B, T) queries; a real shot is its own candidate: no all -inf row
    lse = torch.logsumexp(logits.masked_fill(~rows[:, :, None], 0.0), dim=-1)  # (B, T)
    nll = (lse - own.masked_fill(~rows, 0.0)) * rows
    return nll.sum() / rows.sum().clamp(min=1)


def _batch_contrastive(p, t, rows, shot_mask, temperature) -> torch.Tensor:
    """contrastive_loss with every real shot of the batch as a candidate (see there)."""
    if not bool(rows.any()):
        return p.new_zeros(())
    cand = t[shot_mask]  # (N, D) unit targets of all real shots, row-major
    flat = torch.cumsum(shot_mask.reshape(-1).long(), 0) - 1  # (B * T,) candidate index
    own = flat.reshape(shot_mask.shape)[rows]  # (Q,) each query's own candidate
    logits = p[rows] @ cand.T / temperature  # (Q, N)
    with torch.no_grad():  # the same shot again (cosine 1 to the positive's target): not a negative
        dup = (cand[own] @ cand.T) > 1.0 - 1e-6  # (Q, N)
        dup[torch.arange(len(own), device=own.device), own] = False
    logits = logits.masked_fill(dup, float("-inf"))
    return F.cross_entropy(logits, own)


def mean_shot_prediction(
    target: torch.Tensor, shot_mask: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Predict every shot as the mean of the title's visible (real, unmasked) shots. (B, T, D)"""
    visible = (shot_mask & ~mask).unsqueeze(-1).to(target.dtype)  # (B, T, 1)
    mean = (target * visible).sum(1, keepdim=True) / visible.sum(1, keepdim=True).clamp(min=1)
    return mean.expand_as(target)


def neighbour_prediction(
    target: torch.Tensor, shot_mask: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Predict every shot by copying its nearest visible shot (earlier one on ties). (B, T, D)"""
    B, T, _ = target.shape
    visible = shot_mask & ~mask  # (B, T)
    pos = torch.arange(T, device=target.device)
    dist = (pos[None, :, None] - pos[None, None, :]).abs().float()  # (1, T, T)
    # Tie-break toward the earlier neighbour with a small bias on later positions.
    dist = dist + (pos[None, None, :] > pos[None, :, None]).float() * 0.5
    dist = dist.expand(B, T, T).masked_fill(~visible[:, None, :], float("inf"))
    src = dist.argmin(dim=2)  # (B, T)
    return torch.gather(target, 1, src.unsqueeze(-1).expand_as(target))


def baseline_losses(
    target: torch.Tensor, shot_mask: torch.Tensor, mask: torch.Tensor
) -> dict[str, float]:
    """MSM loss of the two trivial predictors on the same masks."""
    return {
        "mean_shot": float(msm_loss(mean_shot_prediction(target, shot_mask, mask), target, mask)),
        "neighbour": float(msm_loss(neighbour_prediction(target, shot_mask, mask), target, mask)),
    }
