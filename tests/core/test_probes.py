"""Linear probes: planted signal is found, noise stays at chance, folds never leak titles."""

import numpy as np
import pytest

from mediafm_core.errors import InputError
from mediafm_core.probes import clips_from_columns, run_probe
from mediafm_core.probes.linear import _group_folds, macro_ap, mean_kendall
from mediafm_core.probes.tasks import clip_features


def _clips(task, n_titles, per_title, values):
    tids = [f"t{i // per_title:03d}" for i in range(n_titles * per_title)]
    col = {
        "ad_relevancy": "labels",
        "tone": "labels",
        "genre": "labels",
        "retrieval": "label",
        "popularity": "score",
    }[task]
    return clips_from_columns(
        task,
        {
            "title_id": tids,
            "shot_start": [0] * len(tids),
            "shot_end": [1] * len(tids),
            col: values,
        },
    )


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_binary_planted_signal_vs_noise(rng):
    n = 600
    y = rng.random(n) < 0.25
    signal = np.c_[y * 2.0 + rng.normal(size=n), rng.normal(size=(n, 5))]
    noise = rng.normal(size=(n, 6))
    clips = _clips("retrieval", 60, 10, [bool(v) for v in y])
    good = run_probe(signal, clips, folds=5)
    bad = run_probe(noise, clips, folds=5)
    assert good.metric == "ap" and good.mean > 0.8
    assert abs(bad.mean - y.mean()) < 0.1
    assert len(good.folds) == 5 and good.std >= 0


def test_multilabel_planted_signal_micro_and_macro(rng):
    n, names = 600, ["a", "b", "c", "d"]
    Y = rng.random((n, 4)) < 0.3
    X = Y * 2.0 + rng.normal(size=(n, 4))
    labels = [[names[j] for j in np.flatnonzero(r)] for r in Y]
    for task, metric in (("tone", "micro_ap"), ("genre", "macro_ap")):
        clips = _clips(task, 60, 10, labels)
        assert clips.label_names == names
        good = run_probe(X, clips, folds=4)
        bad = run_probe(rng.normal(size=(n, 4)), clips, folds=4)
        assert good.metric == metric and good.mean > 0.8
        assert bad.mean < Y.mean() + 0.1


def test_popularity_ranks_within_titles(rng):
    n = 400
    X = rng.normal(size=(n, 5))
    title_offset = np.repeat(rng.normal(size=40) * 10, 10)  # irrelevant for within-title ranks
    score = X @ np.array([1.0, -0.5, 0, 0, 0]) + 0.1 * rng.normal(size=n) + title_offset
    clips = _clips("popularity", 40, 10, [float(s) for s in score])
    good = run_probe(X, clips, folds=4)
    bad = run_probe(rng.normal(size=(n, 5)), clips, folds=4)
    assert good.metric == "kendall_tau" and good.mean > 0.75
    assert abs(bad.mean) < 0.15
    # title-level offsets of the features are nuisance too: the within-title probe ignores them
    shifted = X + np.repeat(rng.normal(size=(40, 5)) * 10, 10, axis=0)
    assert run_probe(shifted, clips, folds=4).mean == pytest.approx(good.mean, abs=1e-6)


def test_grouped_folds_never_share_titles():
    groups = np.repeat([f"t{i}" for i in range(23)], 7)
    folds = _group_folds(groups, 10, seed=0)
    assert len(folds) == 10
    seen = []
    for tr, te in folds:
        assert not set(groups[tr]) & set(groups[te])
        seen += list(te)
    assert sorted(seen) == list(range(len(groups)))  # every clip tested exactly once
    assert len(_group_folds(groups[:14], 10, seed=0)) == 2  # fewer titles than folds


def test_labels_without_positives_in_a_fold_are_left_out_not_zero(rng):
    y = np.zeros((10, 2), dtype=int)
    y[:5, 0] = 1
    s = np.c_[np.r_[np.ones(5), np.zeros(5)], rng.random(10)]
    value, left_out = macro_ap(y, s)
    assert value == pytest.approx(1.0) and left_out == 1  # not (1 + 0) / 2


def test_rare_label_is_counted_as_unscorable(rng):
    n, names = 300, ["common", "rare"]
    Y = np.c_[rng.random(n) < 0.4, np.zeros(n, dtype=bool)]
    Y[:10, 1] = True  # the rare label lives in title t000 only
    labels = [[names[j] for j in np.flatnonzero(r)] for r in Y]
    clips = _clips("ad_relevancy", 30, 10, labels)
    res = run_probe(Y * 2.0 + rng.normal(size=(n, 2)), clips, folds=5)
    assert res.skipped["unscorable"] == 4  # four test folds have no positive of "rare"
    assert np.isfinite(res.mean) and len(res.folds) == 5


def test_binary_fold_without_positives_is_reported(rng):
    y = np.zeros(100, dtype=bool)
    y[:10] = True  # positives in titles t000 only
    clips = _clips("retrieval", 10, 10, [bool(v) for v in y])
    res = run_probe(rng.normal(size=(100, 3)), clips, folds=5)
    assert res.skipped["empty_folds"] == 4 and len(res.folds) == 1


def test_kendall_skips_titles_without_ranking():
    y = np.array([1.0, 2.0, 3.0, 5.0, 5.0, 7.0])
    s = np.array([1.0, 2.0, 3.0, 0.0, 1.0, 0.0])
    groups = np.array(["a", "a", "a", "b", "b", "c"])
    value, left_out = mean_kendall(y, s, groups)
    assert value == pytest.approx(1.0) and left_out == 2


def test_clip_features_are_span_means_and_bad_spans_fail():
    per_title = {"t0": np.arange(20, dtype=np.float32).reshape(10, 2)}
    clips = clips_from_columns(
        "retrieval",
        {
            "title_id": ["t0", "t0"],
            "shot_start": [0, 4],
            "shot_end": [2, 7],
            "label": [True, False],
        },
    )
    np.testing.assert_allclose(clip_features(per_title, clips), [[1, 2], [10, 11]])
    long = clips_from_columns(
        "retrieval", {"title_id": ["t0"], "shot_start": [5], "shot_end": [11], "label": [True]}
    )
    with pytest.raises(InputError, match="ends at shot 11"):
        clip_features(per_title, long)
    with pytest.raises(InputError, match="unknown task"):
        clips_from_columns("mood", {"title_id": ["t0"]})
    with pytest.raises(InputError, match="shot_start < shot_end"):
        clips_from_columns(
            "retrieval", {"title_id": ["t0"], "shot_start": [3], "shot_end": [3], "label": [True]}
        )


def test_final_probe_recovers_a_planted_direction_and_saves():
    import tempfile

    from mediafm_core.probes.linear import fit_final_probe
    from mediafm_core.probes.tasks import Clips

    rng = np.random.default_rng(3)
    n, d = 240, 8
    X = rng.normal(size=(n, d))
    y = (X[:, 2] > 0).astype(np.int64)
    titles = np.array([f"t{i % 12}" for i in range(n)], dtype=object)
    clips = Clips("retrieval", titles, np.zeros(n, np.int64), np.ones(n, np.int64), y, [])
    probe = fit_final_probe(X, clips)
    assert probe.coef.shape == (1, d)
    assert int(np.argmax(np.abs(probe.coef[0]))) == 2
    scores = ((X - probe.mean) / probe.std) @ probe.coef.T + probe.bias
    assert ((scores[:, 0] > 0) == y.astype(bool)).mean() > 0.9
    with tempfile.TemporaryDirectory() as tmp:
        probe.save(f"{tmp}/retrieval.npz")
        saved = np.load(f"{tmp}/retrieval.npz")
        assert np.allclose(saved["coef"], probe.coef)


def test_clips_given_in_seconds_map_onto_detected_shots():
    import pyarrow as pa

    from mediafm_core.probes.tasks import map_clips_to_shots

    shots = {"t": pa.table({"start_s": [0.0, 2.0, 4.0, 6.0], "end_s": [2.0, 4.0, 6.0, 8.0]})}
    clips = pa.table(
        {
            "title_id": ["t", "t"],
            "shot_start": [0, 0],
            "shot_end": [1, 1],
            "start_s": [1.9, 5.0],
            "end_s": [6.1, 5.5],
        }
    )
    out = map_clips_to_shots(clips, shots)
    assert out["shot_start"].to_pylist() == [1, 2]
    assert out["shot_end"].to_pylist() == [3, 3]


def test_paired_differences_pair_folds_and_count_wins():
    from mediafm_core.evaluation import format_paired, paired_differences
    from mediafm_core.probes.linear import ProbeResult

    def res(folds):
        return {
            "tone": ProbeResult(
                "tone", "micro_ap", float(np.mean(folds)), float(np.std(folds)), list(folds), 10, {}
            )
        }

    hard_easy = np.array([0.3, 0.7, 0.4, 0.8])  # fold difficulty varies a lot
    table = {
        "fused": res(hard_easy),
        "ctx": res(hard_easy + [0.02, 0.03, 0.01, 0.02]),
        "worse": res(hard_easy - [0.01, -0.01, 0.0, 0.0]),
    }
    d = paired_differences(table)
    assert d["ctx"]["tone"]["wins"] == 4 and d["ctx"]["tone"]["folds"] == 4
    assert np.isclose(d["ctx"]["tone"]["diff"], 0.02)
    diffs = np.array([0.02, 0.03, 0.01, 0.02])
    assert np.isclose(d["ctx"]["tone"]["t"], 0.02 / (diffs.std(ddof=1) / 2))
    assert d["worse"]["tone"]["wins"] == 1 and np.isclose(d["worse"]["tone"]["diff"], 0.0)
    assert "fused" not in d
    lines = format_paired(table).splitlines()
    assert lines[2] == "| ctx | +0.020 (t +4.9, 4/4) |"
    only_ctx = format_paired(table, base="worse", prefix="ctx").splitlines()
    assert only_ctx[0].startswith("| minus worse,")
    assert [r.split("|")[1].strip() for r in only_ctx[2:]] == ["ctx"]


# ---- issue 20: probes in seconds (closed-form ridge, all labels at once) ----------------------


@pytest.mark.parametrize("n,d", [(40, 90), (150, 20)])  # dual form (n < D) and primal form
def test_ridge_gram_equals_sklearn_ridge_for_every_label_and_strength(n, d):
    from sklearn.linear_model import Ridge

    from mediafm_core.probes.linear import RidgeGram, _standardise

    rng = np.random.default_rng(n)
    Z, Zte = _standardise(rng.normal(size=(n, d)) * 3 + 1, rng.normal(size=(9, d)))
    Y = rng.normal(size=(n, 4))
    fit = RidgeGram.fit(Z, Y)
    alphas = (0.1, 10.0, 1e4)
    for a, pred in zip(alphas, fit.predict(Zte, alphas)):
        ref = Ridge(alpha=a).fit(Z, Y)
        np.testing.assert_allclose(pred, ref.predict(Zte), atol=1e-10)
        np.testing.assert_allclose(fit.coef(a).T, ref.coef_, atol=1e-10)


def test_fast_metrics_equal_sklearn_and_scipy_with_ties():
    from scipy.stats import kendalltau
    from sklearn.metrics import average_precision_score

    from mediafm_core.probes.linear import average_precision

    rng = np.random.default_rng(1)
    for _ in range(100):
        n = int(rng.integers(2, 50))
        y = (rng.random(n) < 0.3).astype(int)
        y[0] = 1
        s = np.round(rng.normal(size=n), int(rng.integers(0, 3)))  # rounding makes ties
        assert average_precision(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)
    groups = np.repeat([f"t{i}" for i in range(30)], rng.integers(1, 15, 30))
    y, s = np.round(rng.normal(size=(2, len(groups))), 1)
    y[groups == "t3"], s[groups == "t4"] = 1.0, 0.0  # constant targets; constant predictions
    taus = []
    for g in np.unique(groups):
        m = groups == g
        if m.sum() >= 2 and np.ptp(y[m]) > 0:
            tau = kendalltau(y[m], s[m]).statistic
            taus.append(0.0 if np.isnan(tau) else tau)
    value, left_out = mean_kendall(y, s, groups)
    assert value == pytest.approx(np.mean(taus), abs=1e-12)
    assert left_out == 30 - len(taus) and left_out >= 1


def test_ridge_probe_agrees_with_sklearn_logistic_within_fold_noise():
    """The default probe fits all labels at once in closed form; on a small suite-like benchmark
    its score on every task lies within the fold spread of the scikit-learn logistic probe."""
    from mediafm_core.synthetic.families import FamilyConfig, generate

    ds = generate(
        FamilyConfig(
            family="narrative",
            seed=3,
            n_titles=36,
            dims=(8, 8, 8),
            min_shots=60,
            max_shots=120,
            view_noise=1.5,
        )
    )
    fused = {t.title_id: t.fused for t in ds.titles}
    for task, cols in ds.clips.items():
        clips = clips_from_columns(task, cols)
        X = clip_features(fused, clips)
        ridge = run_probe(X, clips, folds=3, method="ridge")
        ref = run_probe(X, clips, folds=3, method="logistic")
        assert len(ridge.folds) == len(ref.folds) == 3
        assert abs(ridge.mean - ref.mean) <= max(ref.std, ridge.std), (task, ridge, ref)
        if task == "popularity":  # the same within-title ridge either way
            assert ridge.folds == pytest.approx(ref.folds, abs=1e-9)


def test_unknown_probe_method_is_refused(rng):
    clips = _clips("retrieval", 10, 5, [bool(v) for v in rng.random(50) < 0.5])
    with pytest.raises(ValueError, match="unknown probe method 'svm'"):
        run_probe(rng.normal(size=(50, 3)), clips, folds=2, method="svm")


def test_final_ridge_probe_scores_are_its_fold_predictions(rng):
    """The deployable probe is the same ridge as the evaluation: its saved coefficients reproduce
    sklearn's Ridge on -1/+1 targets at the chosen strength."""
    from sklearn.linear_model import Ridge

    from mediafm_core.probes.linear import fit_final_probe

    n, names = 240, ["a", "b", "c"]
    Y = rng.random((n, 3)) < 0.3
    X = Y * 1.5 + rng.normal(size=(n, 3))
    clips = _clips("genre", 24, 10, [[names[j] for j in np.flatnonzero(r)] for r in Y])
    probe = fit_final_probe(X, clips)
    Xs = (X - probe.mean) / probe.std
    ref = Ridge(alpha=probe.reg).fit(Xs, 2.0 * Y - 1.0)
    np.testing.assert_allclose(probe.coef, ref.coef_, atol=1e-10)
    np.testing.assert_allclose(Xs @ probe.coef.T + probe.bias, ref.predict(Xs), atol=1e-10)
