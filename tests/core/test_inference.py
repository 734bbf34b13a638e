"""Embedding in context: windows, batching invariance, representations, clip vectors."""

import numpy as np
import pytest
import torch

from mediafm_core.inference import (
    clip_vectors,
    embed_clips_alone,
    embed_titles,
    plan_windows,
)
from mediafm_core.model.configuration_mediafm import config_for
from mediafm_core.model.modeling_mediafm import MediaFMEncoder

D, G = 12, 6


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    m = MediaFMEncoder(config_for("tiny", fused_dim=D, global_dim=G, max_shots=64)).eval()
    with torch.no_grad():  # a random but non-trivial model: the default init is near-silent
        for p in m.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return m


def _titles(lengths, seed=0):
    rng = np.random.default_rng(seed)
    return {f"t{i}": rng.normal(size=(n, D)).astype(np.float32) for i, n in enumerate(lengths)}


def _direct(model, x, g=None):
    with torch.no_grad():
        gl = None if g is None else torch.from_numpy(g)[None]
        out = model(torch.from_numpy(x)[None], globals_=gl)
    return out.hidden[0].numpy(), out.pred[0].numpy()


def test_windows_cover_every_shot_once_with_context_on_both_sides():
    n, w = 1100, 64
    wins, owner = plan_windows(n, w)
    assert all(e - s == w for s, e in wins) and wins[0][0] == 0 and wins[-1][1] == n
    assert owner.shape == (n,)  # exactly one owner per shot
    for i in range(n):
        s, e = wins[owner[i]]
        assert s <= i < e
        if w // 2 <= i < n - w // 2:  # away from the title's ends: context on both sides
            assert i - s >= w // 4 - 1 and e - 1 - i >= w // 4 - 1
    assert plan_windows(30, 64) == ([(0, 30)], pytest.approx(np.zeros(30)))


def test_long_title_every_shot_from_its_most_central_window(model):
    titles = _titles([1100])
    emb = embed_titles(model, titles, representation="hidden", batch_size=4)
    assert emb["t0"].shape == (1100, 64) and np.isfinite(emb["t0"]).all()
    wins, owner = plan_windows(1100, 64)
    for i in (0, 31, 500, 777, 1099):
        s, e = wins[owner[i]]
        hidden, _ = _direct(model, titles["t0"][s:e])
        np.testing.assert_allclose(emb["t0"][i], hidden[i - s], atol=1e-5)


def test_windowed_equals_full_pass_when_title_fits(model):
    titles = _titles([50])
    g = {"t0": np.ones(G, dtype=np.float32)}
    hidden, pred = _direct(model, titles["t0"], g["t0"])
    np.testing.assert_allclose(embed_titles(model, titles, g, "hidden")["t0"], hidden, atol=1e-5)
    np.testing.assert_allclose(embed_titles(model, titles, g, "output")["t0"], pred, atol=1e-5)
    both = embed_titles(model, titles, g, "concat")["t0"]
    assert both.shape == (50, 64 + D)
    # a title without a globals row uses the learnable fallback, unlike one with globals
    fallback = embed_titles(model, titles, {}, "hidden")["t0"]
    np.testing.assert_allclose(fallback, _direct(model, titles["t0"])[0], atol=1e-5)
    assert not np.allclose(fallback, hidden, atol=1e-3)


def test_batching_invariance_and_determinism(model):
    titles = _titles([5, 64, 200, 17, 130, 1])
    g = {t: np.full(G, i, dtype=np.float32) for i, t in enumerate(titles) if i % 2}
    batched = embed_titles(model, titles, g, batch_size=16)
    one = {t: embed_titles(model, {t: x}, g, batch_size=1)[t] for t, x in titles.items()}
    again = embed_titles(model, titles, g, batch_size=16)
    for t in titles:
        assert batched[t].shape[0] == len(titles[t])
        np.testing.assert_allclose(batched[t], one[t], atol=1e-5)
        np.testing.assert_array_equal(batched[t], again[t])


def test_clip_vectors_and_clip_alone_ablation(model):
    titles = _titles([40, 30])
    emb = embed_titles(model, titles, representation="hidden")
    tids, starts, ends = ["t0", "t1", "t0"], [3, 0, 10], [8, 30, 13]
    vecs = clip_vectors(emb, tids, starts, ends)
    np.testing.assert_allclose(vecs[0], emb["t0"][3:8].mean(0), atol=1e-6)
    np.testing.assert_allclose(vecs[1], emb["t1"].mean(0), atol=1e-6)
    alone = embed_clips_alone(model, titles, tids, starts, ends, representation="hidden")
    np.testing.assert_allclose(alone[0], _direct(model, titles["t0"][3:8])[0].mean(0), atol=1e-5)
    np.testing.assert_allclose(alone[1], vecs[1], atol=1e-5)  # the clip is the whole title
    # context matters for in-context vectors only: change shots outside clip 0
    changed = {**titles, "t0": titles["t0"].copy()}
    changed["t0"][20:] += 1.0
    ctx2 = clip_vectors(embed_titles(model, changed, representation="hidden"), tids, starts, ends)
    alone2 = embed_clips_alone(model, changed, tids, starts, ends, representation="hidden")
    assert not np.allclose(ctx2[0], vecs[0], atol=1e-4)
    np.testing.assert_allclose(alone2[0], alone[0], atol=1e-6)


def test_unknown_representation_is_refused(model):
    with pytest.raises(ValueError, match="representation"):
        embed_titles(model, _titles([3]), representation="cls")


def test_masked_representation_is_each_shots_msm_prediction(model):
    """`masked`: shot i's vector is the output projection with i (and every 5th shot beside it)
    replaced by [MASK] - so it does not depend on shot i's own input at all."""
    import torch

    titles = _titles([23])
    x = titles["t0"]
    emb = embed_titles(model, titles, representation="masked")["t0"]
    assert emb.shape == (23, D)
    for i in (0, 7, 22):
        at = torch.zeros(1, 23, dtype=torch.bool)
        at[0, np.arange(23) % 5 == i % 5] = True
        with torch.inference_mode():
            pred = model(torch.from_numpy(x)[None], mask_positions=at).pred[0, i].numpy()
        np.testing.assert_allclose(emb[i], pred, atol=1e-5)
    other = x.copy()
    other[7] += 5.0  # shot 7's own input is never seen where it is predicted
    np.testing.assert_allclose(
        embed_titles(model, {"t0": other}, representation="masked")["t0"][7], emb[7], atol=1e-5
    )
    out_other = embed_titles(model, {"t0": other}, representation="output")["t0"][7]
    assert not np.allclose(out_other, embed_titles(model, titles, representation="output")["t0"][7])
    both = embed_titles(model, titles, representation="output+masked")["t0"]
    assert both.shape == (23, 2 * D)
    np.testing.assert_allclose(both[:, D:], emb, atol=1e-5)
    np.testing.assert_allclose(
        both[:, :D], embed_titles(model, titles, representation="output")["t0"], atol=1e-5
    )


def test_fused_plus_masked_is_the_input_plus_the_unit_msm_prediction(model):
    """`fused+masked`: shot i's fused vector plus its unit-length MSM prediction (which never saw
    shot i), in the fused width, so a shot keeps its own evidence."""
    titles = _titles([23, 600])  # one title longer than the 512-shot window
    compact = embed_titles(model, titles, representation="fused+masked")
    for tid, x in titles.items():
        masked = embed_titles(model, {tid: x}, representation="masked")[tid]
        assert compact[tid].shape == x.shape  # (n, D), not (n, 2 D)
        unit = masked / np.linalg.norm(masked, axis=1, keepdims=True)
        np.testing.assert_allclose(compact[tid], x + unit, atol=1e-4)
    other = {"t0": titles["t0"].copy()}
    other["t0"][7] += 5.0  # shot 7's own input moves its vector by exactly that much
    moved = embed_titles(model, other, representation="fused+masked")["t0"][7]
    np.testing.assert_allclose(moved - compact["t0"][7], np.full(D, 5.0), atol=1e-4)


def _wide_model(wide=40, hidden=8, seed=1):
    torch.manual_seed(seed)
    m = MediaFMEncoder(
        config_for("tiny", fused_dim=wide, global_dim=0, hidden=hidden, heads=2, max_shots=64)
    ).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return m


def test_centred_plus_masked_is_the_output_minus_its_title_mean_beside_the_msm_prediction(model):
    """Issue 20: `centred+masked` = [output - the mean output over the whole title (where the shot
    stands in its title), MSM prediction]. The mean is the title's, not a window's: a 600-shot
    title runs in many 64-shot windows and its centred half still sums to zero over the title."""
    titles = _titles([23, 600])
    cm = embed_titles(model, titles, representation="centred+masked")
    om = embed_titles(model, titles, representation="output+masked")
    for tid, x in titles.items():
        assert cm[tid].shape == (len(x), 2 * D)
        want = om[tid][:, :D] - om[tid][:, :D].mean(0, keepdims=True)
        np.testing.assert_allclose(cm[tid][:, :D], want, atol=1e-4)
        np.testing.assert_allclose(cm[tid][:, D:], om[tid][:, D:], atol=1e-5)
        np.testing.assert_allclose(cm[tid][:, :D].mean(0), 0.0, atol=1e-5)
    # a changed title is centred on its own new mean
    other = {"t0": titles["t0"].copy()}
    other["t0"][7] += 5.0
    moved = embed_titles(model, other, representation="centred+masked")["t0"]
    out = embed_titles(model, other, representation="output")["t0"]
    np.testing.assert_allclose(moved[:, :D], out - out.mean(0, keepdims=True), atol=1e-4)


def test_compact_centred_default_keeps_centred_plus_masked_geometry_in_2h_plus_1_floats():
    """Issue 20: the default serving vector ("auto" = compact-centred where 2 H + 1 <= D) stores
    the centred output in an orthonormal basis of span(W) (H floats: output minus mean is
    W (h - mean h)) and the MSM prediction in one of span([W, b]) (H + 1), so every inner product
    and cosine is centred+masked's, in 2 H + 1 floats instead of 2 D."""
    from mediafm_core.inference import DEFAULT_REPRESENTATION, resolve_representation, serving_basis

    m = _wide_model()
    rng = np.random.default_rng(2)
    titles = {f"t{i}": rng.normal(size=(n, 40)).astype(np.float32) for i, n in enumerate([9, 30])}
    assert DEFAULT_REPRESENTATION == "auto" and resolve_representation(m) == "compact-centred"
    compact = embed_titles(m, titles)
    full = embed_titles(m, titles, representation="centred+masked")
    for tid in titles:
        assert compact[tid].shape == (len(titles[tid]), 17) and full[tid].shape[1] == 80
        np.testing.assert_allclose(
            compact[tid] @ compact[tid].T, full[tid] @ full[tid].T, rtol=1e-4, atol=1e-4
        )
        np.testing.assert_allclose(compact[tid][:, :8].mean(0), 0.0, atol=1e-5)
    Uc = serving_basis(m, centred=True).numpy()
    assert Uc.shape == (40, 8)
    np.testing.assert_allclose(Uc.T @ Uc, np.eye(8), atol=1e-5)
    # a narrower fused input (2 H + 1 = 17 > 16) makes auto keep the full-width pair
    assert resolve_representation(_wide_model(wide=16)) == "centred+masked"


def test_compact_keeps_output_plus_masked_geometry_in_2h_plus_2_floats():
    """Issue 20: "compact" is output+masked with each half in an orthonormal basis of the output
    head's span, so every inner product (cosine, ANN distance) is output+masked's, in 2 (H + 1)
    floats instead of 2 D; the basis comes from the weights alone."""
    from mediafm_core.inference import serving_basis

    torch.manual_seed(1)
    wide = 40  # fused width well above 2 (H + 1) = 18 for an 8-wide hidden state
    m = MediaFMEncoder(
        config_for("tiny", fused_dim=wide, global_dim=0, hidden=8, heads=2, max_shots=64)
    ).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.1 * torch.randn_like(p))
    rng = np.random.default_rng(2)
    titles = {f"t{i}": rng.normal(size=(n, wide)).astype(np.float32) for i, n in enumerate([9, 30])}
    compact = embed_titles(m, titles, representation="compact")
    both = embed_titles(m, titles, representation="output+masked")
    for tid in titles:
        assert compact[tid].shape == (len(titles[tid]), 18) and both[tid].shape[1] == 2 * wide
        np.testing.assert_allclose(
            compact[tid] @ compact[tid].T, both[tid] @ both[tid].T, rtol=1e-4, atol=1e-4
        )
    basis = serving_basis(m).numpy()  # the same basis on every call: signs fixed
    np.testing.assert_allclose(basis.T @ basis, np.eye(9), atol=1e-5)
    assert (basis[np.abs(basis).argmax(0), np.arange(9)] > 0).all()
    with torch.no_grad():  # a changed head gets a new basis, never a stale cached one
        m.output_proj.weight.add_(1.0)
    assert not np.allclose(serving_basis(m).numpy(), basis)


def test_compact_is_no_wider_than_fused_when_2h_plus_2_exceeds_it(model):
    """Where the head's span is wider than the fused input (here H = 64, D = 12), "compact" keeps
    each half's D / 2 directions of largest singular value: never wider than the fused vectors
    (so does compact-centred); the default ("auto") then stays centred+masked, because the lossy
    vectors lost to the full pair on the suite."""
    from mediafm_core.inference import resolve_representation

    titles = _titles([23])
    assert embed_titles(model, titles, representation="compact")["t0"].shape == (23, D)
    assert embed_titles(model, titles, representation="compact-centred")["t0"].shape == (23, D)
    assert resolve_representation(model) == "centred+masked"
    np.testing.assert_allclose(
        embed_titles(model, titles)["t0"],
        embed_titles(model, titles, representation="centred+masked")["t0"],
    )
