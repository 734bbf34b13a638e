"""Masked Shot Modelling: mask sampling, the loss and the two trivial baselines."""

import math

import pytest
import torch
import torch.nn.functional as F

from mediafm_core.model.msm import (
    baseline_losses,
    contrastive_loss,
    cosine_distance,
    mean_shot_prediction,
    msm_loss,
    neighbour_prediction,
    sample_mask,
)


def test_sample_mask_ratio_and_only_real_shots():
    lengths = [10, 25, 3, 1, 40]
    shot_mask = torch.zeros(len(lengths), 40, dtype=torch.bool)
    for i, n in enumerate(lengths):
        shot_mask[i, :n] = True
    m = sample_mask(shot_mask, 0.2, torch.Generator().manual_seed(0))
    assert m.sum(1).tolist() == [2, 5, 1, 1, 8]  # round(0.2 n), at least one
    assert not (m & ~shot_mask).any()
    again = sample_mask(shot_mask, 0.2, torch.Generator().manual_seed(0))
    assert torch.equal(m, again)
    other = sample_mask(shot_mask, 0.2, torch.Generator().manual_seed(1))
    assert not torch.equal(m, other)


def _runs(row: torch.Tensor) -> list[int]:
    """Lengths of the runs of True in a 1-D bool tensor."""
    out, n = [], 0
    for v in row.tolist() + [False]:
        if v:
            n += 1
        elif n:
            out, n = out + [n], 0
    return out


def test_span_masks_cover_runs_of_shots_at_the_ratio():
    lengths = [200, 120, 37, 9]
    shot_mask = torch.zeros(len(lengths), 200, dtype=torch.bool)
    for i, n in enumerate(lengths):
        shot_mask[i, :n] = True
    gen = torch.Generator().manual_seed(3)
    mask = sample_mask(shot_mask, 0.2, generator=gen, span=4)
    assert not (mask & ~shot_mask).any()
    for i, n in enumerate(lengths):
        expect = max(1, round(n * 0.2 / 4))  # blocks drawn
        runs = _runs(mask[i])
        # adjacent blocks merge into longer runs; only a block cut by the end of the title is short
        assert sum(runs) <= 4 * expect and sum(runs) >= 4 * expect - 3
        assert all(r >= 4 or (r < 4 and mask[i, n - 1]) for r in runs)
    again = sample_mask(shot_mask, 0.2, generator=torch.Generator().manual_seed(3), span=4)
    assert torch.equal(mask, again)
    single = sample_mask(shot_mask, 0.2, generator=torch.Generator().manual_seed(3))
    mean_run = lambda m: sum(map(sum, map(_runs, m))) / sum(map(len, map(_runs, m)))  # noqa: E731
    assert mean_run(single) < 1.6 and mean_run(mask[:2]) >= 4


def test_msm_loss_counts_masked_positions_only():
    torch.manual_seed(0)
    target = torch.randn(2, 5, 8)
    mask = torch.zeros(2, 5, dtype=torch.bool)
    mask[0, 1], mask[1, 3] = True, True
    pred = target.clone()
    pred[~mask] = torch.randn(int((~mask).sum()), 8)  # wrong everywhere unmasked
    assert msm_loss(pred, target, mask).item() == pytest.approx(0.0, abs=1e-6)
    pred[0, 1] = -target[0, 1]  # distance 2 at one of the two masked positions
    assert msm_loss(pred, target, mask).item() == pytest.approx(1.0, abs=1e-6)
    assert cosine_distance(torch.tensor([1.0, 0]), torch.tensor([0.0, 3])).item() == 1.0


def test_baselines_on_a_hand_made_title():
    # shots [1,0], [0,1], [1,1], [2,0], then one padding row that must be ignored
    target = torch.tensor([[[1.0, 0], [0, 1], [1, 1], [2, 0], [-5, 7]]])
    shot_mask = torch.tensor([[True, True, True, True, False]])
    mask = torch.tensor([[False, False, True, False, False]])
    mean = mean_shot_prediction(target, shot_mask, mask)
    torch.testing.assert_close(mean[0, 2], torch.tensor([1.0, 1 / 3]))
    neigh = neighbour_prediction(target, shot_mask, mask)
    torch.testing.assert_close(neigh[0, 2], torch.tensor([0.0, 1]))  # tie -> earlier neighbour
    b = baseline_losses(target, shot_mask, mask)
    assert b["mean_shot"] == pytest.approx(1 - 4 / math.sqrt(20), abs=1e-6)
    assert b["neighbour"] == pytest.approx(1 - 1 / math.sqrt(2), abs=1e-6)


def test_neighbour_skips_masked_and_padding():
    target = torch.tensor([[[1.0, 0], [0, 1], [1, 1], [3, 1], [0, 0]]])
    shot_mask = torch.tensor([[True, True, True, True, False]])
    mask = torch.tensor([[True, True, False, True, False]])
    neigh = neighbour_prediction(target, shot_mask, mask)
    # every masked shot copies shot 2, the only visible one (never the padding at 4)
    for t in (0, 1, 3):
        torch.testing.assert_close(neigh[0, t], torch.tensor([1.0, 1]))
    loss = baseline_losses(target, shot_mask, mask)["neighbour"]
    expected = (1 - 1 / math.sqrt(2)) * 2 + (1 - 4 / (math.sqrt(2) * math.sqrt(10)))
    assert loss == pytest.approx(expected / 3, abs=1e-6)


def test_contrastive_loss_values_on_a_hand_made_title():
    # one title of three orthogonal real shots plus a padding row; shot 0 masked
    target = torch.tensor([[[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [9, 9, 9]]])
    shot_mask = torch.tensor([[True, True, True, False]])
    mask = torch.tensor([[True, False, False, False]])
    tau = 0.1
    pred = target.clone()
    pred[0, 0] = 3.0 * target[0, 0]  # its own shot (scale is irrelevant: unit-normalised)
    right = contrastive_loss(pred, target, mask, shot_mask, tau)
    # logits 10, 0, 0 (the padding row is no candidate): -log(e^10 / (e^10 + 2))
    assert right.item() == pytest.approx(math.log1p(2 * math.exp(-10)), abs=1e-6)  # float32
    pred[0, 0] = target[0, 1]  # the prediction is another shot of the title
    wrong = contrastive_loss(pred, target, mask, shot_mask, tau)
    assert wrong.item() == pytest.approx(math.log(2 + math.exp(10)), rel=1e-5)
    assert wrong > right
    pred[0, 0] = torch.tensor([1.0, 1.0, 0.0])  # halfway: cos 1/sqrt2 to shots 0 and 1 -> log 2-ish
    half = 10 / math.sqrt(2)
    expect = -half + math.log(2 * math.exp(half) + 1)
    assert contrastive_loss(pred, target, mask, shot_mask, tau).item() == pytest.approx(
        expect, rel=1e-5
    )
    # nothing masked -> 0; a non-positive temperature is refused
    assert contrastive_loss(pred, target, torch.zeros_like(mask), shot_mask).item() == 0.0
    with pytest.raises(ValueError, match="temperature"):
        contrastive_loss(pred, target, mask, shot_mask, 0.0)


def test_contrastive_loss_gradients_are_finite_and_skip_padding():
    torch.manual_seed(0)
    shot_mask = torch.tensor([[True] * 6 + [False] * 4, [True] * 10, [True] + [False] * 9])
    target = torch.randn(3, 10, 8) * shot_mask.unsqueeze(-1)  # padding rows are zero vectors
    mask = sample_mask(shot_mask, 0.3, torch.Generator().manual_seed(1))
    mask[2, 0] = True  # a one-shot title: its only candidate is itself, loss log 1 = 0
    pred = torch.randn(3, 10, 8, requires_grad=True)
    loss = contrastive_loss(pred, target, mask, shot_mask)
    loss.backward()
    assert torch.isfinite(loss) and loss.item() > 0
    assert torch.isfinite(pred.grad).all()
    assert pred.grad[~mask].abs().max().item() == 0.0  # only masked predictions are scored
    assert pred.grad[2, 0].abs().max().item() == 0.0  # softmax over one candidate: no gradient
    assert pred.grad[mask & (torch.arange(10) < 6)].abs().sum().item() > 0
    # the padding rows' targets take no part: changing them changes nothing
    moved = target.clone()
    moved[~shot_mask] = 5.0
    assert contrastive_loss(pred, moved, mask, shot_mask).item() == pytest.approx(loss.item())
    # a prediction equal to its own target beats every wrong-shot prediction of the title
    right = contrastive_loss(target, target, mask, shot_mask)
    rolled = torch.roll(target, 1, dims=1)  # each masked shot predicted as its neighbour
    assert right < contrastive_loss(rolled, target, mask, shot_mask)


def test_batch_negatives_score_every_real_shot_of_the_batch():
    """contrastive_negatives="batch": the candidates of each masked prediction are all real shots
    of all rows (other titles too), brute-forced here; a shot repeated in an overlapping window
    (the same fused vector) is not its own negative; the title-only loss is the special case of
    a one-row batch."""
    torch.manual_seed(3)
    B, T, D = 3, 7, 5
    pred, target = torch.randn(B, T, D), torch.randn(B, T, D)
    shot_mask = torch.ones(B, T, dtype=torch.bool)
    shot_mask[2, 5:] = False
    mask = sample_mask(shot_mask, 0.4, torch.Generator().manual_seed(0))
    tau = 0.5
    p, t = F.normalize(pred, dim=-1), F.normalize(target, dim=-1)
    cand = [(b, j) for b in range(B) for j in range(T) if shot_mask[b, j]]
    C = torch.stack([t[b, j] for b, j in cand])
    want = [
        torch.logsumexp(p[b, i] @ C.T / tau, 0) - p[b, i] @ t[b, i] / tau
        for b in range(B)
        for i in range(T)
        if mask[b, i]
    ]
    got = contrastive_loss(pred, target, mask, shot_mask, tau, negatives="batch")
    assert got.item() == pytest.approx(torch.stack(want).mean().item(), rel=1e-5)
    title = contrastive_loss(pred, target, mask, shot_mask, tau)
    assert got > title  # more distractors, a larger loss
    one = contrastive_loss(pred[:1], target[:1], mask[:1], shot_mask[:1], tau, negatives="batch")
    assert one.item() == pytest.approx(
        contrastive_loss(pred[:1], target[:1], mask[:1], shot_mask[:1], tau).item(), rel=1e-5
    )
    dup = target.clone()
    dup[1] = target[0]  # row 1 repeats row 0's shots (two windows over one title)
    pred2 = pred.clone()
    pred2[1] = pred[0]
    m2 = mask.clone()
    m2[1] = mask[0]
    twice = contrastive_loss(pred2, dup, m2, shot_mask, tau, negatives="batch")
    want2 = []
    for b in range(B):
        for i in range(T):
            if m2[b, i]:  # every real shot but the positive's twin in the other window
                kept = [
                    F.normalize(dup[c, j], dim=0)
                    for c, j in cand
                    if (c, j) == (b, i) or not torch.equal(dup[c, j], dup[b, i])
                ]
                q = F.normalize(pred2[b, i], dim=0)
                own = q @ F.normalize(dup[b, i], dim=0) / tau
                want2.append(torch.logsumexp(q @ torch.stack(kept).T / tau, 0) - own)
    assert twice.item() == pytest.approx(torch.stack(want2).mean().item(), rel=1e-5)
    with pytest.raises(ValueError, match="negatives"):
        contrastive_loss(pred, target, mask, shot_mask, tau, negatives="catalogue")
