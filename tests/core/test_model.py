"""The shot encoder: shapes, padding invariance, [GLOBAL] fallback, [MASK] and sizes."""

import pytest
import torch

from mediafm_core.model.configuration_mediafm import MediaFMConfig, config_for
from mediafm_core.model.modeling_mediafm import N_SPECIAL, MediaFMEncoder

FUSED, GLOBAL = 12, 6


@pytest.fixture(scope="module")
def model() -> MediaFMEncoder:
    torch.manual_seed(0)
    return MediaFMEncoder(config_for("tiny", FUSED, GLOBAL, max_shots=16)).eval()


def test_output_shapes(model):
    shots = torch.randn(3, 7, FUSED)
    out = model(shots, torch.ones(3, 7, dtype=torch.bool), torch.randn(3, GLOBAL))
    H = model.config.hidden
    assert out.pred.shape == (3, 7, FUSED)
    assert out.hidden.shape == (3, 7, H)
    assert out.cls.shape == (3, H)
    assert torch.isfinite(out.pred).all()


def test_padded_batch_matches_unpadded_runs(model):
    torch.manual_seed(1)
    a, b = torch.randn(7, FUSED), torch.randn(4, FUSED)
    g = torch.randn(2, GLOBAL)
    shots = torch.zeros(2, 7, FUSED)
    shots[0], shots[1, :4] = a, b
    shots[1, 4:] = 100.0  # garbage in the padding must not leak into real positions
    mask = torch.zeros(2, 7, dtype=torch.bool)
    mask[0], mask[1, :4] = True, True
    with torch.no_grad():
        batched = model(shots, mask, g)
        alone_a = model(a[None], None, g[:1])
        alone_b = model(b[None], None, g[1:])
    torch.testing.assert_close(batched.pred[0], alone_a.pred[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(batched.pred[1, :4], alone_b.pred[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(batched.cls[1], alone_b.cls[0], atol=1e-5, rtol=0)


def test_global_fallback_used_when_title_has_no_global(model):
    torch.manual_seed(2)
    shots = torch.randn(2, 5, FUSED)
    g = torch.randn(2, GLOBAL)
    has = torch.tensor([True, False])
    with torch.no_grad():
        mixed = model(shots, None, g, has)
        none = model(shots, None, None)  # no globals at all: fallback everywhere
        other = model(shots, None, torch.randn(2, GLOBAL), has)
        seq = model.embed(shots, g, has)
    torch.testing.assert_close(mixed.pred[1], none.pred[1])  # row 1 used the fallback
    torch.testing.assert_close(other.pred[1], mixed.pred[1])  # its global vector is ignored
    assert not torch.allclose(mixed.pred[0], none.pred[0])  # row 0 used its global vector
    torch.testing.assert_close(seq[1, 1], model.global_fallback + model.positions[1])
    torch.testing.assert_close(seq[0, 1], model.global_proj(g[0]) + model.positions[1])


def test_mask_token_replaces_masked_shots(model):
    torch.manual_seed(3)
    shots = torch.randn(1, 6, FUSED)
    masked = torch.zeros(1, 6, dtype=torch.bool)
    masked[0, 2] = True
    with torch.no_grad():
        seq = model.embed(shots, None, None, masked)
        out = model(shots, None, None, None, masked)
        changed = shots.clone()
        changed[0, 2] = torch.randn(FUSED) * 10  # the masked shot's content is hidden
        out2 = model(changed, None, None, None, masked)
    torch.testing.assert_close(seq[0, 2 + N_SPECIAL], model.mask_token + model.positions[4])
    torch.testing.assert_close(out.pred, out2.pred)
    unmasked = model.input_proj(shots[0, 3]) + model.positions[3 + N_SPECIAL]
    torch.testing.assert_close(seq[0, 3 + N_SPECIAL], unmasked.detach())


def test_too_many_shots_raises(model):
    with pytest.raises(ValueError, match="max_shots"):
        model(torch.randn(1, 17, FUSED))


def test_sizes_and_overrides():
    base = config_for("base", 2304, 768)
    assert (base.layers, base.hidden, base.heads, base.fused_dim) == (12, 768, 12, 2304)
    cfg = config_for("tiny", 10, 0, layers=3, hidden=None)
    assert (cfg.layers, cfg.hidden, cfg.global_dim) == (3, 64, 0)
    assert MediaFMConfig.from_dict({**cfg.to_dict(), "unknown": 1}) == cfg
    with pytest.raises(ValueError, match="unknown size"):
        config_for("huge", 10)
    with pytest.raises(ValueError, match="divisible"):
        config_for("tiny", 10, hidden=63)
    assert MediaFMEncoder(cfg).global_proj is None


def test_auto_size_follows_the_catalogue():
    from mediafm_core.model.configuration_mediafm import SIZES, auto_size

    assert [auto_size(n) for n in (50_000, 499_999, 500_000, 4_000_000, 60_000_000)] == [
        "small",
        "small",
        "medium",
        "medium",
        "base",
    ]
    assert (SIZES["small"]["layers"], SIZES["small"]["hidden"]) == (2, 128)


def test_trainer_auto_size_resolves_from_training_shots(tmp_path):
    import numpy as np

    from mediafm_core.tables import VectorTable
    from mediafm_core.training import TrainConfig
    from mediafm_core.training.trainer import Trainer

    n = 40
    vt = VectorTable(
        np.array([f"t{i % 4}" for i in range(n)], dtype=object),
        np.arange(n) // 4,
        np.random.default_rng(0).normal(size=(n, 6)).astype(np.float32),
        {},
    )
    tr = Trainer(TrainConfig(size="auto", steps=1, val_fraction=0.25), vt, None, tmp_path / "c")
    assert (tr.model_cfg.layers, tr.model_cfg.hidden) == (2, 128)
    assert tr._config_json()["model"]["hidden"] == 128
