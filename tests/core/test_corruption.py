"""BERT-style 80/10/10 input corruption for Masked Shot Modelling (training.data.corrupt_inputs)."""

from __future__ import annotations

import pytest
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


def _tiny_trainer(tmp_path, **over):
    import numpy as np

    from mediafm_core.tables import VectorTable
    from mediafm_core.training.trainer import Trainer

    rng = np.random.default_rng(0)
    ids, idx, vecs = [], [], []
    for t in range(6):
        n = int(rng.integers(8, 20))
        vecs.append(rng.normal(size=(n, 8)) + rng.normal(size=8))
        ids += [f"t{t}"] * n
        idx += list(range(n))
    table = VectorTable(
        np.array(ids, dtype=object), np.array(idx), np.concatenate(vecs).astype(np.float32), {}
    )
    base = dict(
        size="tiny",
        steps=2,
        batch_size=3,
        window=12,
        warmup=1,
        eval_every=0,
        checkpoint_every=0,
        log_every=1,
        val_fraction=0.34,
        seed=0,
    )
    return Trainer(TrainConfig(**{**base, **over}), table, None, tmp_path / "ck")


def test_unmasked_weight_adds_the_visible_shot_loss_and_val_ignores_it(tmp_path):
    from mediafm_core.model.msm import cosine_distance

    tr = _tiny_trainer(tmp_path, unmasked_weight=0.3)
    b = next(iter(tr.validation_batches()))  # the first fixed validation batch
    tr.model.eval()
    with torch.no_grad():
        out = tr.model(b.shots, b.shot_mask, b.globals_, b.has_global, mask_positions=b.mask)
        d = cosine_distance(out.pred, b.shots)
        rest = b.shot_mask & ~b.mask
        masked = float((d * b.mask).sum() / b.mask.sum())
        visible = float((d * rest).sum() / rest.sum())
        total, n = tr._forward_loss(tr.model, b, unmasked_weight=0.3)
        plain, _ = tr._forward_loss(tr.model, b)
    assert int(n) == int(b.mask.sum())
    assert float(total) == pytest.approx(masked + 0.3 * visible, rel=1e-5)
    assert float(plain) == pytest.approx(masked, rel=1e-5)
    # validation is the seed's masked-only loss whatever the training weight (comparable runs)
    ref = _tiny_trainer(tmp_path, unmasked_weight=0.0)
    assert tr.evaluate() == pytest.approx(ref.evaluate(), rel=1e-6)


def test_bert_corruption_trains_and_is_recorded(tmp_path):
    import json

    tr = _tiny_trainer(tmp_path, corruption="bert", unmasked_weight=0.0)
    before = {k: v.clone() for k, v in tr.model.state_dict().items()}
    out = tr.fit()
    cfg = json.loads((out / "config.json").read_text())["train"]
    assert cfg["corruption"] == "bert" and cfg["unmasked_weight"] == 0.0
    after = tr.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    # same seed, same corruption -> same weights (draws come from the step generator)
    again = _tiny_trainer(tmp_path / "b", corruption="bert", unmasked_weight=0.0)
    again.fit()
    for k, v in again.model.state_dict().items():
        assert torch.equal(v, after[k]), k


def test_contrastive_weight_adds_infonce_and_val_ignores_it(tmp_path):
    from mediafm_core.model.msm import contrastive_loss

    tr = _tiny_trainer(tmp_path, contrastive_weight=0.5, contrastive_temperature=0.2)
    b = next(iter(tr.validation_batches()))
    tr.model.eval()
    with torch.no_grad():
        out = tr.model(b.shots, b.shot_mask, b.globals_, b.has_global, mask_positions=b.mask)
        nce = float(contrastive_loss(out.pred, b.shots, b.mask, b.shot_mask, 0.2))
        plain, _ = tr._forward_loss(tr.model, b)
        total, _ = tr._forward_loss(tr.model, b, contrastive_weight=0.5)
    assert nce > 0
    assert float(total) == pytest.approx(float(plain) + 0.5 * nce, rel=1e-5)
    ref = _tiny_trainer(tmp_path, contrastive_weight=0.0)
    assert tr.evaluate() == pytest.approx(ref.evaluate(), rel=1e-6)  # validation = plain MSM
    # training with the term takes other steps than without it
    with_term = [tr.train_step() for _ in range(2)]
    without = [ref.train_step() for _ in range(2)]
    assert with_term[0] > without[0] and with_term[1] != without[1]
    for bad in ({"contrastive_weight": -0.1}, {"contrastive_temperature": 0.0}):
        with pytest.raises(ValueError, match="contrastive"):
            TrainConfig(**bad)


def test_contrastive_weight_zero_trains_exactly_as_before(tmp_path, monkeypatch):
    import mediafm_core.training.trainer as trainer_mod

    def boom(*a, **k):
        raise AssertionError("the contrastive term was computed at weight 0")

    monkeypatch.setattr(trainer_mod, "contrastive_loss", boom)
    tr = _tiny_trainer(tmp_path, steps=4, contrastive_weight=0.0)
    losses = [tr.train_step() for _ in range(4)]
    # recorded from this tiny run at commit 22bcd40, before the contrastive term existed
    before = [1.1848459243774414, 0.9887198209762573, 0.6654033064842224, 0.5616855621337891]
    assert losses == pytest.approx(before, rel=1e-5)
    assert tr.evaluate() == pytest.approx(0.7647562026977539, rel=1e-5)
    again = _tiny_trainer(tmp_path / "b", steps=4, contrastive_weight=0.0)
    assert [again.train_step() for _ in range(4)] == losses  # bit-identical
    # the recipe's default (issue 20): off; 0.5 is the measured temperature for switching it on
    assert (TrainConfig().contrastive_weight, TrainConfig().contrastive_temperature) == (0.0, 0.5)


def test_contrastive_head_takes_the_term_off_the_output_head(tmp_path):
    from mediafm_core.training.checkpoint import load_checkpoint

    tr = _tiny_trainer(tmp_path, contrastive_weight=1.0, contrastive_on="head")
    assert tr.model.config.contrastive_head and tr.model.contrastive_proj is not None
    b = next(iter(tr.validation_batches()))
    tr.model.train()
    nce_only = tr._forward_loss(tr.model, b, contrastive_weight=1.0)[0]
    nce_only = nce_only - tr._forward_loss(tr.model, b)[0]  # the InfoNCE term alone
    tr.model.zero_grad()
    nce_only.backward()
    head = tr.model.contrastive_proj.weight.grad
    assert head is not None and head.abs().sum() > 0
    # the features' head gets no gradient from the term; the body does
    assert tr.model.output_proj.weight.grad.abs().max().item() == 0.0
    assert tr.model.blocks[0].attn.q.weight.grad.abs().sum() > 0
    # the same seed draws the same initial weights with or without the extra head
    plain = _tiny_trainer(tmp_path / "p")
    for k, v in plain.model.state_dict().items():
        assert torch.equal(v, tr.model.state_dict()[k]), k
    # it trains, round-trips through the checkpoint, and the output head is unchanged by it
    out = tr.fit()
    model, meta = load_checkpoint(out)
    assert meta["model"]["contrastive_head"] is True and model.contrastive_proj is not None
    assert not plain.model.config.contrastive_head and plain.model.contrastive_proj is None
    with pytest.raises(ValueError, match="contrastive_on"):
        TrainConfig(contrastive_on="cls")
