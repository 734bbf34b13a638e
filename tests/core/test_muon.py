"""Muon: the parameter split, Newton-Schulz orthogonalisation, device dtype, and that it trains."""

import pytest
import torch
from torch.optim._muon import _zeropower_via_newtonschulz

from mediafm_core.model.configuration_mediafm import config_for
from mediafm_core.model.modeling_mediafm import MediaFMEncoder
from mediafm_core.model.msm import msm_loss, sample_mask
from mediafm_core.optim.muon import (
    NS_COEFFICIENTS,
    Muon,
    build_optimizer,
    cpu_has_fast_bf16,
    muon_update,
    ns_dtype_for,
    param_groups,
    zeropower_via_newtonschulz5,
)


@pytest.fixture()
def model() -> MediaFMEncoder:
    torch.manual_seed(0)
    return MediaFMEncoder(config_for("tiny", 12, 6, max_shots=16))


def test_every_parameter_in_exactly_one_group(model):
    groups = param_groups(model)
    ids = [id(p) for g in groups.values() for _, p in g]
    assert len(ids) == len(set(ids))
    assert set(ids) == {id(p) for p in model.parameters()}
    opt = build_optimizer(model, "muon")
    in_opt = [id(p) for g in opt.param_groups for p in g["params"]]
    assert sorted(in_opt) == sorted(ids)


def test_listed_kinds_land_in_adamw_and_body_matrices_in_muon(model):
    groups = param_groups(model)
    muon = {n for n, _ in groups["muon"]}
    adamw = {n for n, _ in groups["adamw_decay"] + groups["adamw_no_decay"]}
    for name in (
        "input_proj.weight",
        "input_proj.bias",
        "output_proj.weight",
        "output_proj.bias",
        "global_proj.weight",
        "global_proj.bias",
        "cls_token",
        "global_fallback",
        "mask_token",
        "positions",
        "final_norm.weight",
        "final_norm.bias",
        "blocks.0.ln1.weight",
        "blocks.0.ln2.bias",
        "blocks.0.attn.q.bias",
        "blocks.1.mlp.fc2.bias",
    ):
        assert name in adamw, name
    expected = {
        f"blocks.{i}.{m}.weight"
        for i in range(model.config.layers)
        for m in ("attn.q", "attn.k", "attn.v", "attn.o", "mlp.fc1", "mlp.fc2")
    }
    assert muon == expected
    decay = {n for n, _ in groups["adamw_decay"]}
    assert decay == {"input_proj.weight", "output_proj.weight", "global_proj.weight"}
    opt = build_optimizer(model, "muon")
    assert isinstance(opt.optimizers["muon"], Muon)
    assert "muon" not in build_optimizer(model, "adamw").optimizers


def _square_with_spectrum(n: int) -> torch.Tensor:
    """A square matrix whose singular values span 1.5 decades (a random square Gaussian has a
    near-zero one that five Newton-Schulz steps cannot lift, by design of Muon)."""
    Q1, _ = torch.linalg.qr(torch.randn(n, n))
    Q2, _ = torch.linalg.qr(torch.randn(n, n))
    return Q1 @ torch.diag(torch.logspace(-1.5, 0, n)) @ Q2


@pytest.mark.parametrize("shape", [(64, 160), (160, 64), (96, 96)])
def test_orthogonalisation_matches_newton_schulz_reference(shape):
    torch.manual_seed(0)
    G = torch.randn(*shape) if shape[0] != shape[1] else _square_with_spectrum(shape[0])
    O = zeropower_via_newtonschulz5(G, steps=5, dtype=torch.float32)
    assert O.shape == G.shape and O.dtype == torch.float32
    s = torch.linalg.svdvals(O)
    assert s.min() > 0.6 and s.max() < 1.3  # the NS5 quintic's band around 1
    U, _, Vh = torch.linalg.svd(G, full_matrices=False)
    polar = U @ Vh
    cos = (O * polar).sum() / (O.norm() * polar.norm())
    assert cos > 0.95  # same singular vectors as the exact orthogonal factor
    ref = _zeropower_via_newtonschulz(G, NS_COEFFICIENTS, 5, 1e-7).float()  # torch's, in bf16
    assert (O - ref).norm() / ref.norm() < 0.05


def test_ns_dtype_follows_device():
    assert ns_dtype_for(torch.device("cuda")) == torch.bfloat16
    expected_cpu = torch.bfloat16 if cpu_has_fast_bf16() else torch.float32
    assert ns_dtype_for("cpu") == expected_cpu
    G = torch.randn(8, 16)
    assert zeropower_via_newtonschulz5(G, dtype=torch.bfloat16).dtype == torch.bfloat16
    assert zeropower_via_newtonschulz5(G, dtype=torch.float32).dtype == torch.float32


@pytest.mark.parametrize("forced", [None, torch.float32])
def test_muon_step_applies_the_orthogonalised_update(forced):
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(16, 32))
    w0 = w.detach().clone()
    g = torch.randn(16, 32)
    w.grad = g.clone()
    opt = Muon([w], lr=0.1, weight_decay=0.0, momentum=0.9, ns_dtype=forced)
    opt.step()
    buf = torch.zeros_like(g)
    update = muon_update(g, buf, momentum=0.9, dtype=forced or ns_dtype_for("cpu"))
    assert update.dtype == torch.float32  # returned in the gradient's dtype
    torch.testing.assert_close(w.detach(), w0 - 0.1 * update, atol=1e-6, rtol=0)
    assert torch.equal(opt.state[w]["momentum_buffer"], buf)


def test_one_step_decreases_a_simple_loss():
    torch.manual_seed(0)
    X, Y = torch.randn(32, 64), torch.randn(16, 64)
    W = torch.nn.Parameter(torch.zeros(16, 32))
    opt = Muon([W], lr=0.05, weight_decay=0.0)

    def loss():
        return ((W @ X - Y) ** 2).mean()

    before = loss()
    before.backward()
    opt.step()
    assert loss().item() < before.item()


@pytest.mark.parametrize("kind", ["muon", "adamw"])
def test_optimizer_step_decreases_msm_loss(model, kind):
    shots = torch.randn(2, 10, 12)
    shot_mask = torch.ones(2, 10, dtype=torch.bool)
    mask = sample_mask(shot_mask, generator=torch.Generator().manual_seed(0))
    opt = build_optimizer(model, kind, lr=1e-3, muon_lr=0.01)

    def loss():
        return msm_loss(model(shots, shot_mask, mask_positions=mask).pred, shots, mask)

    first = loss()
    first.backward()
    opt.step()
    with torch.no_grad():
        assert loss().item() < first.item()


def test_matches_stock_torch_muon_when_forced_to_bf16():
    """Only the Newton-Schulz dtype differs from torch.optim.Muon: forced to bf16, steps agree."""
    torch.manual_seed(0)
    w0 = torch.randn(24, 40)
    ours, stock = torch.nn.Parameter(w0.clone()), torch.nn.Parameter(w0.clone())
    o1 = Muon([ours], lr=0.05, weight_decay=0.1, ns_dtype=torch.bfloat16)
    o2 = torch.optim.Muon([stock], lr=0.05, weight_decay=0.1)
    for _ in range(3):
        g = torch.randn(24, 40)
        ours.grad, stock.grad = g.clone(), g.clone()
        o1.step()
        o2.step()
    torch.testing.assert_close(ours.detach(), stock.detach(), atol=1e-6, rtol=0)
