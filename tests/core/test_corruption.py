"""BERT-style 80/10/10 input corruption for Masked Shot Modelling (training.data.corrupt_inputs)."""

from __future__ import annotations

import torch

from mediafm_core.model.msm import sample_mask
from mediafm_core.training.config import TrainConfig
from mediafm_core.training.data import corrupt_inputs


def _batch(B: int = 64, T: int = 200, D: int = 16, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(T // 2, T + 1, (B,), generator=g)
    shot_mask = torch.arange(T)[None, :] < lengths[:, None]  # (B, T)
    # distinct rows: every real shot is recognisable by its first coordinate
    shots = torch.randn(B, T, D, generator=g)
    shots[..., 0] = torch.arange(B * T, dtype=torch.float32).view(B, T)
    shots = shots * shot_mask.unsqueeze(-1)
    selected = sample_mask(shot_mask, 0.2, generator=g)
    return shots, shot_mask, selected


def test_split_proportions_and_unselected_positions_untouched():
    shots, shot_mask, selected = _batch()
    inputs, mask_in = corrupt_inputs(shots, shot_mask, selected, torch.Generator().manual_seed(1))
    n_sel = int(selected.sum())
    changed = (inputs != shots).any(-1)  # (B, T)
    assert not (mask_in & ~selected).any()  # [MASK] only at selected shots
    assert not (changed & ~selected).any()  # unselected shots and padding unchanged
    assert not (mask_in & changed).any()  # a [MASK]ed shot is not also swapped
    kept = selected & ~mask_in & ~changed
    frac_mask = int(mask_in.sum()) / n_sel
    frac_rand = int(changed.sum()) / n_sel
    frac_keep = int(kept.sum()) / n_sel
    assert n_sel > 1500  # enough for the tolerances below (about 3 std)
    assert abs(frac_mask - 0.8) < 0.03
    assert abs(frac_rand - 0.1) < 0.02
    assert abs(frac_keep - 0.1) < 0.02
    assert torch.equal(inputs[kept], shots[kept])  # kept shots exactly unchanged


def test_random_replacements_are_other_real_shots():
    shots, shot_mask, selected = _batch(seed=3)
    inputs, mask_in = corrupt_inputs(shots, shot_mask, selected, torch.Generator().manual_seed(2))
    swapped = (inputs != shots).any(-1)
    real_rows = shots[shot_mask]  # (N, D)
    ids = inputs[swapped][:, 0].long()  # each replacement's source id (row-major flat index)
    src = shots.view(-1, shots.shape[-1])[ids]
    assert torch.equal(src, inputs[swapped])  # copied whole from one shot of the batch
    assert shot_mask.view(-1)[ids].all()  # ... a real one, never padding
    own = torch.arange(shots.shape[0] * shots.shape[1]).view(shot_mask.shape)[swapped]
    assert not (ids == own).any()  # ... and never the shot itself
    assert real_rows.shape[0] > 0


def test_deterministic_and_mask_mode_is_the_default():
    shots, shot_mask, selected = _batch(B=4, T=50)
    a = corrupt_inputs(shots, shot_mask, selected, torch.Generator().manual_seed(5))
    b = corrupt_inputs(shots, shot_mask, selected, torch.Generator().manual_seed(5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert TrainConfig().corruption == "mask"
    assert TrainConfig(corruption="bert").to_dict()["corruption"] == "bert"
    try:
        TrainConfig(corruption="dropout")
    except ValueError as exc:
        assert "corruption" in str(exc)
    else:
        raise AssertionError("unknown corruption accepted")
