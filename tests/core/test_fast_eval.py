"""Issue 20, probes in seconds: the stacked masked-phase pass, CPU sub-batches, the clip-alone
spans shared by tasks and the cached title folds give the features and the probe results of the
old path (one encoder forward per masked phase, one clip-alone call per task)."""

import numpy as np
import pytest
import torch

from mediafm_core.cli import main
from mediafm_core.evaluation import ROWS, open_benchmark, run_ablation, streamed_features
from mediafm_core.inference import (
    MASKED_PHASES,
    embed_clips_alone,
    embed_titles,
    sub_batches,
)
from mediafm_core.model.configuration_mediafm import config_for
from mediafm_core.model.modeling_mediafm import MediaFMEncoder, MediaFMOutput
from mediafm_core.probes.linear import _group_folds


def per_phase_reference(
    model, shots, shot_mask=None, globals_=None, has_global=None, phases=5, visible=True
):
    """The old path: one unmasked forward, then one forward per phase with every shot
    t % phases == p replaced by [MASK], each shot's prediction taken from its own phase."""
    args = dict(shots=shots, shot_mask=shot_mask, globals_=globals_, has_global=has_global)
    B, T, _ = shots.shape
    phase_of = torch.arange(T) % phases
    rep = None
    for p in range(phases):
        at = (phase_of == p)[None, :].expand(B, T)
        pred = model(**args, mask_positions=at).pred
        rep = pred if rep is None else torch.where(at[..., None], pred, rep)
    return (model(**args) if visible else None), rep


def _model(layers: int, fused: int = 12, glob: int = 6, hidden: int = 16, seed: int = 0):
    torch.manual_seed(seed)
    m = MediaFMEncoder(
        config_for(
            "tiny",
            fused_dim=fused,
            global_dim=glob,
            hidden=hidden,
            heads=4,
            layers=layers,
            max_shots=64,
        )
    ).eval()
    with torch.no_grad():  # a random but non-trivial model: the default init is near-silent
        for p in m.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return m


@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("with_globals", [False, True])
def test_stacked_masked_phases_equal_one_forward_per_phase(layers, with_globals):
    m = _model(layers, glob=6 if with_globals else 0)
    lengths = [23, 7, 1, 23, 5]  # padding, a one-shot sequence, fewer shots than phases
    B, T = len(lengths), max(lengths)
    g = torch.Generator().manual_seed(1)
    shots = torch.randn(B, T, 12, generator=g)
    shot_mask = torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]
    kw = dict(shots=shots, shot_mask=shot_mask)
    if with_globals:
        kw.update(
            globals_=torch.randn(B, 6, generator=g), has_global=torch.tensor([1, 0, 1, 1, 0]).bool()
        )
    with torch.inference_mode():
        ref_out, ref = per_phase_reference(m, **kw)
        out, masked = m.masked_phase_predictions(**kw, phases=MASKED_PHASES)
        none, alone = m.masked_phase_predictions(**kw, phases=MASKED_PHASES, visible=False)
    assert isinstance(out, MediaFMOutput) and none is None
    assert masked.shape == (B, T, 12)
    real = shot_mask
    assert not torch.allclose(ref[real], ref_out.pred[real], atol=1e-2)  # masking matters here
    for got in (masked, alone):
        torch.testing.assert_close(got[real], ref[real], atol=2e-5, rtol=1e-5)
    for name in ("pred", "hidden", "cls"):
        a, b = getattr(out, name), getattr(ref_out, name)
        if name != "cls":
            a, b = a[real], b[real]
        torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-5)
    # unpadded batch (no attention mask) and another phase count
    full = shots[:1, :23]
    with torch.inference_mode():
        _, r3 = per_phase_reference(m, full, phases=3)
        _, g3 = m.masked_phase_predictions(full, phases=3, visible=False)
    torch.testing.assert_close(g3, r3, atol=2e-5, rtol=1e-5)


@pytest.fixture
def old_path(monkeypatch):
    """Switch the encoder to the per-phase reference (the path before issue 20 part 4)."""

    def use():
        monkeypatch.setattr(MediaFMEncoder, "masked_phase_predictions", per_phase_reference)

    return use


@pytest.mark.parametrize(
    "rep",
    [
        "output+masked",
        "masked",
        "fused+masked",
        "compact",
        "output",
        "centred+masked",
        "compact-centred",
    ],
)
def test_embed_titles_equals_the_per_phase_path(rep, old_path):
    m = _model(2, fused=40, glob=6, hidden=8)  # 2 (H + 1) = 18 <= 40: compact is exact
    rng = np.random.default_rng(3)
    titles = {
        f"t{i}": rng.normal(size=(n, 40)).astype(np.float32)
        for i, n in enumerate([9, 30, 150, 2, 64])
    }
    g = {t: rng.normal(size=6).astype(np.float32) for t in ("t0", "t2")}
    fast = embed_titles(m, titles, g, rep, batch_size=3)  # 150 shots: windows of 64
    old_path()
    old = embed_titles(m, titles, g, rep, batch_size=3)
    for t in titles:
        assert fast[t].shape == old[t].shape
        np.testing.assert_allclose(fast[t], old[t], atol=2e-5, rtol=1e-5, err_msg=f"{rep} {t}")


def test_sub_batches_bound_the_rows_and_cover_every_sequence():
    lengths = [510, 500, 300, 299, 12, 12, 11, 6, 1]
    for rows, stacked in ((6144, 6), (1000, 1), (10, 6)):
        parts = sub_batches(lengths, rows, stacked)
        assert [i for lo, hi in parts for i in range(lo, hi)] == list(range(len(lengths)))
        for lo, hi in parts:
            assert hi - lo == 1 or (hi - lo) * (max(lengths[lo:hi]) + 2) * stacked <= rows
    assert sub_batches(lengths, 6144, 6) == [(0, 2), (2, 5), (5, 9)]  # 2 x 512 x 6 = 6144
    assert sub_batches([], 100) == []


@pytest.mark.parametrize("kind", ["strings", "codes"])
def test_title_folds_equal_sklearn_group_kfold_and_are_cached_read_only(kind):
    from sklearn.model_selection import GroupKFold

    rng = np.random.default_rng(9)
    titles = np.array([f"t{rng.integers(0, 10**6)}" for _ in range(37)], dtype=object)
    groups = titles[rng.integers(0, 37, 500)]
    if kind == "codes":
        groups = np.unique(groups, return_inverse=True)[1]
    n_titles = len(np.unique(groups))
    for k, seed in ((10, 0), (3, 4), (5, 123), (n_titles, 7)):
        folds = _group_folds(groups, k, seed)
        ref = GroupKFold(n_splits=k, shuffle=True, random_state=seed).split(groups, groups=groups)
        for (a, b), (c, d) in zip(folds, ref, strict=True):
            np.testing.assert_array_equal(a, c)
            np.testing.assert_array_equal(b, d)
    assert len(_group_folds(groups, 100, 0)) == n_titles  # k capped at the titles
    folds = _group_folds(groups, 5, seed=4)
    assert _group_folds(groups.copy(), 5, seed=4) is folds  # same titles, seed, k: shared
    other = _group_folds(groups, 5, seed=5)
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(folds, other))
    with pytest.raises(ValueError):
        folds[0][0][0] = 1
    with pytest.raises(ValueError, match="2 are needed"):
        _group_folds(groups[groups == groups[0]], 3, 0)


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("fast_eval")
    assert main(["synth", str(out), "--titles", "24", "--dims", "6", "4", "5", "--seed", "3"]) == 0
    return out


def test_evaluate_features_and_results_equal_the_old_path(bench_dir, old_path):
    """The fast path (stacked phases, sub-batches, one clip-alone call for all tasks) gives the
    old path's features to float rounding and the same fold scores on every row and task."""
    m = _model(2, fused=15, glob=5, hidden=16)
    bench = open_benchmark(bench_dir)

    def features():
        return streamed_features(
            bench.fused,
            bench.video,
            bench.globals_,
            bench.clips,
            m,
            "output+masked",
            chunk_titles=7,
        )

    fast = features()
    old_path()
    old = features()
    # the old clip-alone row: one call per task
    per_task = {}
    for task, c in bench.clips.items():
        titles = {str(t): bench.fused.read(str(t)) for t in set(c.title_ids)}
        globs = {t: bench.globals_.read(t)[0] for t in titles}
        per_task[task] = embed_clips_alone(
            m, titles, c.title_ids, c.shot_start, c.shot_end, globs, "output+masked"
        )
    assert set(fast) == set(old) == set(ROWS)
    for row in ROWS:
        for task in bench.clips:
            if row in ("contextual", "clip_alone"):
                assert fast[row][task].shape == (len(bench.clips[task]), 2 * 15)
            np.testing.assert_allclose(
                fast[row][task], old[row][task], atol=2e-5, err_msg=f"{row} {task}"
            )
    for task, x in per_task.items():
        np.testing.assert_allclose(fast["clip_alone"][task], x, atol=2e-5, err_msg=task)
    data = bench.as_data()
    a = run_ablation(data, m, folds=3, features=fast)
    b = run_ablation(data, m, folds=3, features=old)
    for row in a:
        for task in a[row]:
            np.testing.assert_allclose(a[row][task].folds, b[row][task].folds, atol=1e-6)


@pytest.mark.parametrize("kind", ["multilabel", "ranking"])
def test_part_grams_equal_a_ridge_fit_on_each_standardised_union(kind):
    """The inner CV's fits from part moments equal `RidgeGram` on the union's standardised
    rows, for every union the probe uses, with offset features and a constant column."""
    from mediafm_core.probes.linear import PartGrams, RidgeGram, _standardise, _targets

    rng = np.random.default_rng(5)
    n, d = 90, 7
    X = rng.normal(size=(n, d)) * rng.uniform(0.1, 3, d) + rng.normal(scale=20, size=d)
    X[:, 3] = 4.25  # constant: std counts as 1
    groups = np.repeat(np.arange(15), 6)
    y = rng.integers(0, 2, size=(n, 3)) if kind == "multilabel" else rng.normal(size=n)
    T = _targets(kind, y, groups)
    parts = [np.flatnonzero(groups % 3 == r) for r in range(3)]
    pg = PartGrams(X, T, parts)
    Xte = rng.normal(size=(11, d)) + X.mean(0)
    for use in ([0, 1], [0, 2], [1, 2], [0, 1, 2]):
        rows = np.concatenate([parts[i] for i in use])
        Ztr, Zte = _standardise(X[rows], Xte)
        ref = RidgeGram.fit(Ztr, _targets(kind, y[rows], groups[rows])).predict(Zte, (1.0, 100.0))
        got = pg.predict(use, Xte, (1.0, 100.0))
        for a, b in zip(got, ref, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)


def _probe_clips(task, tids, values):
    from mediafm_core.probes import clips_from_columns

    col = {"tone": "labels", "retrieval": "label", "popularity": "score"}[task]
    n = len(tids)
    return clips_from_columns(
        task, {"title_id": tids, "shot_start": [0] * n, "shot_end": [1] * n, col: values}
    )


def test_run_probe_with_part_grams_equals_one_fit_per_training_set(monkeypatch):
    """run_probe's scores with the part moments equal the old one-Gram-per-fit path's."""
    from mediafm_core.probes import linear, run_probe

    rng = np.random.default_rng(6)
    tids = [f"t{i // 12:02d}" for i in range(40 * 12)]
    X = rng.normal(size=(len(tids), 6)) * 2.0 + 3.0
    signal = X @ rng.normal(size=(6, 3)) + rng.normal(size=(len(tids), 3))
    names = np.array(["calm", "dark", "warm"])
    above = signal > np.median(signal, axis=0)
    cases = {
        "tone": [list(names[row]) or ["calm"] for row in above],
        "retrieval": above[:, 0].astype(int),
        "popularity": signal[:, 1],
    }
    fast = {t: run_probe(X, _probe_clips(t, tids, v), folds=4) for t, v in cases.items()}
    monkeypatch.setattr(linear, "PartGrams", lambda *a: None)  # the old path: one Gram a fit
    for task, values in cases.items():
        old = run_probe(X, _probe_clips(task, tids, values), folds=4)
        assert old.mean > 0.2, task  # a planted signal, so the scores are not all chance
        np.testing.assert_allclose(fast[task].folds, old.folds, atol=1e-9, err_msg=task)


def test_title_codes_give_the_folds_of_the_title_strings():
    """run_probe splits on integer title codes (sorted title order): the same folds as the
    strings, outer and inner."""
    rng = np.random.default_rng(7)
    titles = np.array([f"title-{rng.integers(0, 10**6)}" for _ in range(30)], dtype=object)
    groups = titles[rng.integers(0, 30, 400)]
    codes = np.unique(groups, return_inverse=True)[1]
    for k, seed in ((10, 0), (3, 4)):
        for (a, b), (c, d) in zip(
            _group_folds(groups, k, seed), _group_folds(codes, k, seed), strict=True
        ):
            np.testing.assert_array_equal(a, c)
            np.testing.assert_array_equal(b, d)
            inner_s, inner_c = _group_folds(groups[a], 3, seed), _group_folds(codes[a], 3, seed)
            for (e, f), (g, h) in zip(inner_s, inner_c, strict=True):
                np.testing.assert_array_equal(e, g)
                np.testing.assert_array_equal(f, h)


def test_column_ap_equals_the_per_label_ap_and_sklearn_with_ties():
    from sklearn.metrics import average_precision_score

    from mediafm_core.probes.linear import average_precision, average_precision_columns

    rng = np.random.default_rng(8)
    n, L = 200, 7
    y = (rng.random((n, L)) < rng.uniform(0.02, 0.6, L)).astype(np.int8)
    y[0] = 1  # every column has a positive
    s = rng.normal(size=(n, L))
    s[:, 2] = np.round(s[:, 2], 1)  # many ties
    s[:, 3] = 0.5  # one run of ties: AP = prevalence
    s[:, 4] = y[:, 4] + 0.0  # perfect ranking with ties
    got = average_precision_columns(y, s)
    for j in range(L):
        assert got[j] == pytest.approx(average_precision(y[:, j], s[:, j]), abs=1e-12), j
        assert got[j] == pytest.approx(average_precision_score(y[:, j], s[:, j]), abs=1e-12), j
    assert got[3] == pytest.approx(y[:, 3].mean()) and got[4] == pytest.approx(1.0)


def test_fused_title_baseline_row_is_the_clip_minus_its_title_mean_beside_the_clip(bench_dir):
    """The opt-in `fused_title` row (evaluation.EXTRA_ROWS): per clip, [mean fused over the clip
    minus the title's mean fused vector, mean fused over the clip]; streamed by title chunks it is
    the same; it is probed and paired against fused like any row."""
    from mediafm_core.evaluation import paired_differences

    bench = open_benchmark(bench_dir)
    feats = streamed_features(
        bench.fused, None, None, bench.clips, None, rows=("fused", "fused_title"), chunk_titles=5
    )
    for task, c in bench.clips.items():
        x = feats["fused_title"][task]
        assert x.shape == (len(c), 2 * 15)
        np.testing.assert_allclose(x[:, 15:], feats["fused"][task], atol=1e-5)
        for i in (0, len(c) - 1):
            title = bench.fused.read(str(c.title_ids[i]))
            want = title[c.shot_start[i] : c.shot_end[i]].mean(0) - title.mean(0)
            np.testing.assert_allclose(x[i, :15], want, atol=1e-5)
    res = run_ablation(bench.as_data(), None, folds=3, features=feats)
    assert list(res) == ["fused", "fused_title"]
    assert set(paired_differences(res)["fused_title"]) == set(bench.clips)
