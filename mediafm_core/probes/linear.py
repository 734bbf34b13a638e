"""Linear probes on frozen clip features, evaluated with K folds grouped by title.

Why this protocol: clips of one title share content, so a split that puts one title on both sides
leaks. Outer folds and the inner CV that picks the regularisation are both grouped by title.
Features are standardised on the training fold only. Ranking (popularity) uses a within-title
(fixed-effects) ridge regression - features and scores minus their title's mean - scored by
Kendall's tau within each title. Labels with no positive (or no negative) clip in a test fold
cannot be scored there: they are left out of that fold's macro average and counted, never scored
as zero.

Classification (issue 20): `method="ridge"`, the default, fits every label of a task and every
grid strength at once, in closed form (least squares on -1/+1 targets, L2 penalty, unpenalised
intercept) from one Gram matrix per training set, in the primal (D x D) or the dual (n x n)
form, whichever is smaller, with one Cholesky factorisation per strength. `method="logistic"`
is the previous probe, one scikit-learn logistic regression per label and grid value; it stays
as the reference the ridge probe is tested against (`tests/core/test_probes.py`). Where every
fit of an outer fold is primal, its inner fits and its own fit come from the moments of the
three inner title parts (`PartGrams`: one D x D product per clip, not four), and the title
folds are computed once per (titles, k, seed) and shared by every row (issue 20, part 4).
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass, field

import numpy as np

from mediafm_core.probes.tasks import Clips, task_spec

log = logging.getLogger(__name__)

C_GRID = (0.01, 0.1, 1.0)  # inverse L2 strength for logistic regression (standardised features)
ALPHA_GRID = (1.0, 10.0, 100.0, 1000.0)  # ridge strength for the popularity regression
# Ridge strength for classification: one Gram matrix serves every value, so the grid is wide;
# on standardised features X'X has n on its diagonal, so 1e1..1e5 spans n/1000 to 10 n.
RIDGE_CLASS_GRID = (10.0, 100.0, 1000.0, 10000.0, 100000.0)
INNER_FOLDS = 3
METHODS = ("ridge", "logistic")


@dataclass
class ProbeResult:
    task: str
    metric: str
    mean: float
    std: float
    folds: list[float]  # per-fold score (folds with nothing scorable are left out)
    n_clips: int
    skipped: dict[str, int] = field(default_factory=dict)  # what could not be scored, counted

    def to_dict(self) -> dict:
        return {
            "task": self.task,
            "metric": self.metric,
            "mean": self.mean,
            "std": self.std,
            "folds": self.folds,
            "n_clips": self.n_clips,
            "skipped": self.skipped,
        }


# ---- metrics --------------------------------------------------------------------------------


def average_precision(y: np.ndarray, s: np.ndarray) -> float:
    """AP of scores `s` (n,) for 0/1 targets `y` (n,) with at least one positive: the sum over
    distinct score thresholds of recall gained times precision, as
    `sklearn.metrics.average_precision_score` computes it (ties form one threshold), without its
    per-call validation, which dominated the probes' time (issue 20)."""
    order = np.argsort(-s, kind="mergesort")
    ss, ys = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(ss)), len(ss) - 1]  # end of each run of equal scores
    tp = np.cumsum(ys, dtype=np.float64)[last]
    return float(np.sum(np.diff(tp, prepend=0.0) / tp[-1] * tp / (last + 1)))


def average_precision_columns(y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """(L,) `average_precision` of every column of scores `s` (n, L) for 0/1 targets `y` (n, L),
    each column with at least one positive, in one sort (issue 20): at the end of each run of
    equal scores, recall gained since the previous run's end times precision."""
    order = np.argsort(-s, axis=0, kind="mergesort")
    ss = np.take_along_axis(s, order, 0)
    tp = np.cumsum(np.take_along_axis(y, order, 0), axis=0, dtype=np.float64)  # (n, L)
    end = np.ones(ss.shape, dtype=bool)
    end[:-1] = ss[1:] != ss[:-1]  # last row of a run of ties
    at_end = np.where(end, tp, 0.0)
    before = np.zeros_like(tp)  # tp at the previous run's end (tp never decreases)
    before[1:] = np.maximum.accumulate(at_end, axis=0)[:-1]
    rank = np.arange(1, len(ss) + 1, dtype=np.float64)[:, None]
    return np.sum(np.where(end, (tp - before) / tp[-1] * tp / rank, 0.0), axis=0)


def macro_ap(y: np.ndarray, s: np.ndarray) -> tuple[float, int]:
    """Mean AP over labels that have both classes in `y`; returns (score, labels left out)."""
    n_pos = y.sum(0)
    ok = np.flatnonzero((0 < n_pos) & (n_pos < len(y)))
    if not len(ok):
        return float("nan"), y.shape[1]
    return float(np.mean(average_precision_columns(y[:, ok], s[:, ok]))), y.shape[1] - len(ok)


def micro_ap(y: np.ndarray, s: np.ndarray) -> tuple[float, int]:
    """AP over all (clip, label) pairs pooled."""
    if y.sum() == 0:
        return float("nan"), 1
    return average_precision(y.ravel(), s.ravel()), 0


def binary_ap(y: np.ndarray, s: np.ndarray) -> tuple[float, int]:
    if y.sum() == 0:
        return float("nan"), 1
    return average_precision(y, s), 0


def mean_kendall(y: np.ndarray, s: np.ndarray, groups: np.ndarray) -> tuple[float, int]:
    """Kendall's tau-b between scores and targets within each title, averaged over titles.

    tau-b = sum sign(dy) sign(ds) / sqrt(sum sign(dy)^2 sum sign(ds)^2) over the title's pairs,
    as `scipy.stats.kendalltau` defines it, computed for all titles at once on padded pair
    matrices. Titles with fewer than two clips or constant targets have no ranking and are left
    out; constant predictions rank nothing (tau 0).
    """
    _, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    order = np.argsort(inverse, kind="stable")
    slot = np.arange(len(order)) - np.repeat(np.cumsum(counts) - counts, counts)
    Y = np.full((len(counts), counts.max()), np.nan)
    S = np.full_like(Y, np.nan)
    Y[inverse[order], slot], S[inverse[order], slot] = y[order], s[order]
    dy = np.nan_to_num(np.sign(Y[:, :, None] - Y[:, None, :]))  # (G, m, m); padding -> 0
    ds = np.nan_to_num(np.sign(S[:, :, None] - S[:, None, :]))
    ny, ns = (dy**2).sum((1, 2)), (ds**2).sum((1, 2))
    ok = (counts >= 2) & (ny > 0)
    tau = np.where(ns[ok] > 0, (dy * ds).sum((1, 2))[ok] / np.sqrt(ny[ok] * ns[ok] + 1e-300), 0.0)
    return (float(tau.mean()) if ok.any() else float("nan")), int((~ok).sum())


def score(kind: str, metric: str, y, s, groups) -> tuple[float, int]:
    if kind == "ranking":
        return mean_kendall(y, s, groups)
    if kind == "binary":
        return binary_ap(y, s)
    return micro_ap(y, s) if metric == "micro_ap" else macro_ap(y, s)


# ---- models ---------------------------------------------------------------------------------


def _standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mu = train.mean(0)
    sd = train.std(0)
    sd[sd < 1e-8] = 1.0
    return [(x - mu) / sd for x in (train, *others)]


def _fit_predict_logistic(Xtr, ytr, Xte, C: float) -> np.ndarray:
    """Scores (N_te, C) or (N_te,) from one-vs-rest logistic regressions."""
    from sklearn.linear_model import LogisticRegression

    Y = ytr if ytr.ndim == 2 else ytr[:, None]
    out = np.zeros((len(Xte), Y.shape[1]))
    for j in range(Y.shape[1]):
        pos = Y[:, j].sum()
        if pos == 0 or pos == len(Y):  # one class only: a constant score ranks nothing
            out[:, j] = float(pos > 0)
            continue
        clf = LogisticRegression(C=C, max_iter=300, tol=1e-3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(Xtr, Y[:, j])
        out[:, j] = clf.decision_function(Xte)
    return out if ytr.ndim == 2 else out[:, 0]


def _fit_predict_ridge(Xtr, ytr, Xte, alpha: float) -> np.ndarray:
    from sklearn.linear_model import Ridge

    return Ridge(alpha=alpha).fit(Xtr, ytr).predict(Xte)


def demean_within(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """x minus its title's mean (rows grouped by title): a fixed-effects (within-title) view.

    Popularity is ranked only among clips of one title, so title-level offsets of both the features
    and the score are nuisance; removing them makes the regression invariant to them. Each title's
    mean uses only that title's clips, and folds are grouped by title, so nothing leaks.
    """
    out = np.array(x, dtype=np.float64, copy=True)
    for g in np.unique(groups):
        m = groups == g
        out[m] -= out[m].mean(0)
    return out


def _fit_predict(kind: str, Xtr, ytr, Xte, reg: float, groups_tr=None) -> np.ndarray:
    """The scikit-learn reference (`method="logistic"`): one model per label at one strength."""
    Xtr, Xte = _standardise(Xtr, Xte)
    if kind == "ranking":
        return _fit_predict_ridge(Xtr, demean_within(ytr, groups_tr), Xte, reg)
    return _fit_predict_logistic(Xtr, ytr, Xte, reg)


@dataclass
class RidgeGram:
    """Ridge regressions of every target column at several strengths, from one Gram matrix.

    For centred features Z (n, D) and centred targets Yc (n, L): the primal form solves
    (Z'Z + a I) W = Z'Yc when n >= D, the dual form (ZZ' + a I) A = Yc, W = Z'A otherwise, by one
    Cholesky factorisation per strength (min(n, D)^3 / 3 flops: cheaper than one
    eigendecomposition for the handful of grid values a probe tries). The Gram costs
    n D min(n, D) once. Equal to `sklearn.linear_model.Ridge(alpha=a)` on Z.
    """

    Z: np.ndarray  # (n, D) centred training features
    gram: np.ndarray  # (r, r): Z'Z (primal) or ZZ' (dual)
    rhs: np.ndarray  # (r, L): Z'Yc (primal) or Yc (dual)
    mean: np.ndarray  # (L,) the targets' training mean: the unpenalised intercept

    @property
    def primal(self) -> bool:
        return self.Z.shape[0] >= self.Z.shape[1]

    @classmethod
    def fit(cls, Z: np.ndarray, Y: np.ndarray) -> RidgeGram:
        """Z (n, D) centred features, Y (n, L) targets (centred here)."""
        mean = Y.mean(0)
        Yc = Y - mean
        if Z.shape[0] >= Z.shape[1]:
            return cls(Z, Z.T @ Z, Z.T @ Yc, mean)
        return cls(Z, Z @ Z.T, Yc, mean)

    def _solve(self, alpha: float) -> np.ndarray:
        return _ridge_solve(self.gram, self.rhs, alpha)

    def coef(self, alpha: float) -> np.ndarray:
        """(D, L) coefficients at strength `alpha`."""
        sol = self._solve(alpha)
        return sol if self.primal else self.Z.T @ sol

    def predict(self, Z: np.ndarray, alphas) -> list[np.ndarray]:
        """(N, L) predictions for centred features Z (N, D), one array per strength."""
        P = Z if self.primal else Z @ self.Z.T  # (N, r), shared by every strength
        return [P @ self._solve(a) + self.mean for a in alphas]


def _ridge_solve(gram: np.ndarray, rhs: np.ndarray, alpha: float) -> np.ndarray:
    """(gram + alpha I)^-1 rhs by one Cholesky factorisation (gram symmetric PSD, alpha > 0)."""
    from scipy.linalg import cho_factor, cho_solve

    A = gram.copy()
    A.flat[:: A.shape[0] + 1] += alpha
    return cho_solve(cho_factor(A, overwrite_a=True, check_finite=False), rhs, check_finite=False)


class PartGrams:
    """Primal ridge fits on unions of disjoint row parts, from each part's moments (issue 20).

    The inner CV trains on every pair of its 3 title parts and the outer fold on all 3, each fit
    standardising on its own training rows; the standardised Gram of a union follows from the
    parts' sums: with features centred once on the whole set (X - m0), a union of n rows with
    mean offset mu has C = sum_c Xc'Xc - n mu mu', std s = sqrt(diag(C) / n) (a std under 1e-8
    counts as 1, as `_standardise`), Z'Z = C / (s s') and Z'Yc = (sum_c Xc'Tc - n mu tbar') / s.
    One D x D product per row instead of one per fit (4 fits per outer fold): equal to
    `RidgeGram.fit` on the standardised union up to float rounding (tests/core/test_fast_eval.py).
    """

    def __init__(self, X: np.ndarray, T: np.ndarray, parts: list[np.ndarray]):
        """X (n, D) features, T (n, L) regression targets (`_targets`), parts: disjoint row
        index arrays."""
        self.m0 = X.mean(0)
        self.moments = []  # per part: (rows, sum x, X'X, X'T, sum t), x centred on m0
        for p in parts:
            Xc, Tp = X[p] - self.m0, T[p]
            self.moments.append((len(p), Xc.sum(0), Xc.T @ Xc, Xc.T @ Tp, Tp.sum(0)))

    def __len__(self) -> int:
        return len(self.moments)

    def predict(self, use, Xte: np.ndarray, alphas) -> list[np.ndarray]:
        """(N, L) predictions for raw features Xte (N, D) of the fit on the parts `use`, one
        array per strength in `alphas`."""
        n, sx, G, R, st = (sum(m[k] for m in (self.moments[i] for i in use)) for k in range(5))
        mu, tbar = sx / n, st / n
        C = G - n * np.outer(mu, mu)
        sd = np.sqrt(np.maximum(np.diag(C) / n, 0.0))
        sd[sd < 1e-8] = 1.0
        gram = C / np.outer(sd, sd)
        rhs = (R - n * np.outer(mu, tbar)) / sd[:, None]
        Z = (Xte - self.m0 - mu) / sd
        return [Z @ _ridge_solve(gram, rhs, a) + tbar for a in alphas]


def _targets(kind: str, y: np.ndarray, groups) -> np.ndarray:
    """(n, L) float regression targets: within-title scores (ranking), else labels as -1/+1, so a
    positive score says "label present" as a logistic decision function does (AP is unchanged)."""
    if kind == "ranking":
        return demean_within(y, groups)[:, None]
    return 2.0 * np.asarray(y if y.ndim == 2 else y[:, None], dtype=np.float64) - 1.0


def _grid(kind: str, method: str) -> tuple[float, ...]:
    if kind == "ranking":
        return ALPHA_GRID
    return C_GRID if method == "logistic" else RIDGE_CLASS_GRID


def _predict_grid(kind, method, Xtr, ytr, Xte, grid, groups_tr) -> list[np.ndarray]:
    """Test scores at every value of `grid`, shaped like `ytr` rows (one array per value)."""
    if method == "logistic":
        return [_fit_predict(kind, Xtr, ytr, Xte, reg, groups_tr) for reg in grid]
    Ztr, Zte = _standardise(Xtr, Xte)
    out = RidgeGram.fit(Ztr, _targets(kind, ytr, groups_tr)).predict(Zte, grid)
    return out if ytr.ndim == 2 else [o[:, 0] for o in out]


_FOLD_CACHE: dict[tuple, list] = {}  # (k, seed, groups) -> folds; see _group_folds
_FOLD_CACHE_SIZE = 256


def _group_folds(groups: np.ndarray, k: int, seed: int):
    """[(train, test)] index arrays, the folds of scikit-learn's
    `GroupKFold(k, shuffle=True, random_state=seed)` (k capped at the number of titles).

    Written out (the sorted titles permuted by `RandomState(seed)`, `array_split` into k runs,
    a fold's test rows those of its titles, both index arrays increasing; ValueError under two
    titles, as GroupKFold) so that a probe run
    neither imports scikit-learn nor pays its per-call validation (tested equal to it,
    tests/core/test_fast_eval.py). The split is a pure function of (groups, k, seed) and every
    row of an ablation probes the same clips with the same seed, so it is computed once per
    (groups, k, seed) and shared (issue 20): read the arrays, never write them."""
    g = np.asarray(groups)
    key = (k, seed, g.dtype.str, g.tobytes() if g.dtype != object else tuple(g.tolist()))
    hit = _FOLD_CACHE.get(key)
    if hit is not None:
        return hit
    _, inverse = np.unique(g, return_inverse=True)
    inverse = inverse.reshape(-1)
    n_titles = int(inverse.max()) + 1 if len(inverse) else 0
    k = min(k, n_titles)
    if k < 2:  # as GroupKFold, which needs two folds
        raise ValueError(f"{n_titles} title(s): at least 2 are needed for grouped folds")
    fold_of = np.empty(n_titles, dtype=np.int64)  # sorted title position -> fold
    for f, run in enumerate(np.array_split(np.random.RandomState(seed).permutation(n_titles), k)):
        fold_of[run] = f
    row_fold = fold_of[inverse]
    folds = []
    for f in range(k):
        test = row_fold == f
        tr, te = np.flatnonzero(~test), np.flatnonzero(test)
        tr.setflags(write=False)
        te.setflags(write=False)
        folds.append((tr, te))
    if len(_FOLD_CACHE) >= _FOLD_CACHE_SIZE:
        _FOLD_CACHE.pop(next(iter(_FOLD_CACHE)))  # oldest first
    _FOLD_CACHE[key] = folds
    return folds


def _pick_regularisation(kind, metric, X, y, groups, seed: int, method: str = "ridge") -> float:
    """Inner CV grouped by title: the grid value with the best mean score (first on ties)."""
    return _inner_cv(kind, metric, X, y, groups, seed, method)[0]


def _inner_cv(kind, metric, X, y, groups, seed: int, method: str):
    """(the grid value `_pick_regularisation` picks, the `PartGrams` of the inner test parts or
    None). The part moments serve every inner fit and the fit on all of X when every inner
    training set is primal (rows >= D) and the method is ridge; otherwise each fit is
    `_predict_grid` on its own rows."""
    grid = _grid(kind, method)
    folds = _group_folds(groups, INNER_FOLDS, seed)
    if len(folds) < 2:
        return grid[len(grid) // 2], None
    parts = None
    covered = sum(len(te) for _, te in folds) == len(X)  # the test parts partition X
    if method == "ridge" and covered and min(len(tr) for tr, _ in folds) >= X.shape[1]:
        parts = PartGrams(X, _targets(kind, y, groups), [te for _, te in folds])
    scores = np.full((len(folds), len(grid)), np.nan)
    for i, (tr, te) in enumerate(folds):
        if parts is None:
            preds = _predict_grid(kind, method, X[tr], y[tr], X[te], grid, groups[tr])
        else:
            preds = _shaped(parts.predict([j for j in range(len(folds)) if j != i], X[te], grid), y)
        for j, s in enumerate(preds):
            scores[i, j] = score(kind, metric, y[te], s, groups[te])[0]
    means = [np.nanmean(c) if not np.all(np.isnan(c)) else -np.inf for c in scores.T]
    return grid[int(np.argmax(means))], parts


def _shaped(preds: list[np.ndarray], y: np.ndarray) -> list[np.ndarray]:
    """(N, L) predictions shaped like rows of `y`: (N,) for a 1-d target."""
    return preds if y.ndim == 2 else [p[:, 0] for p in preds]


def run_probe(
    features: np.ndarray,  # (N, D) one row per clip
    clips: Clips,
    folds: int = 10,
    seed: int = 0,
    progress=None,  # optional callable(fold_index, n_folds)
    method: str = "ridge",  # "ridge" (all labels at once) | "logistic" (sklearn reference)
) -> ProbeResult:
    """K-fold (grouped by title) linear probe of `clips.task` on frozen `features`.

    Raises ValueError for a row count that does not match the clips or an unknown `method`."""
    spec = task_spec(clips.task)
    if method not in METHODS:
        raise ValueError(f"unknown probe method {method!r}; known: {', '.join(METHODS)}")
    X = np.asarray(features, dtype=np.float64)
    if X.shape[0] != len(clips):
        raise ValueError(f"{X.shape[0]} feature rows for {len(clips)} clips")
    # titles as integer codes in sorted title order: the same folds, means and title order as
    # the strings, without comparing strings in every split and mask (issue 20)
    groups, y = np.unique(clips.title_ids, return_inverse=True)[1].reshape(-1), clips.y
    if spec.kind == "ranking":
        X = demean_within(X, groups)
    scores, skipped = [], {"empty_folds": 0, "unscorable": 0}
    outer = _group_folds(groups, folds, seed)
    for i, (tr, te) in enumerate(outer):
        reg, parts = _inner_cv(spec.kind, spec.metric, X[tr], y[tr], groups[tr], seed, method)
        if parts is not None:  # the inner parts make up the outer training set
            s = _shaped(parts.predict(range(len(parts)), X[te], (reg,)), y)[0]
        else:
            s = _predict_grid(spec.kind, method, X[tr], y[tr], X[te], (reg,), groups[tr])[0]
        value, left_out = score(spec.kind, spec.metric, y[te], s, groups[te])
        skipped["unscorable"] += left_out
        if np.isnan(value):
            skipped["empty_folds"] += 1
        else:
            scores.append(value)
        if progress is not None:
            progress(i + 1, len(outer))
    arr = np.array(scores) if scores else np.array([np.nan])
    return ProbeResult(
        clips.task,
        spec.metric,
        float(arr.mean()),
        float(arr.std()),
        [float(v) for v in scores],
        len(clips),
        skipped,
    )


@dataclass
class FittedProbe:
    """A task's final probe, fitted on every clip: scores = ((x - mean) / std) @ coef.T + bias."""

    task: str
    reg: float  # regularisation chosen by the grouped inner CV
    mean: np.ndarray  # (D,) standardisation
    std: np.ndarray  # (D,)
    coef: np.ndarray  # (C, D) one row per label (1 row for binary and ranking)
    bias: np.ndarray  # (C,)
    labels: list[str]

    def save(self, path: str | os.PathLike) -> None:
        np.savez(
            path,
            coef=self.coef,
            bias=self.bias,
            mean=self.mean,
            std=self.std,
            reg=self.reg,
            labels=np.array(self.labels or [self.task]),
        )


def fit_final_probe(
    features: np.ndarray, clips: Clips, seed: int = 0, method: str = "ridge"
) -> FittedProbe:
    """Fit the deployable probe of `clips.task` on all clips, regularisation from the inner CV.

    Ranking probes are fitted within title (features and scores de-meaned per title), as in
    `run_probe`; labels with a single class get a zero row (they rank nothing)."""
    spec = task_spec(clips.task)
    X = np.asarray(features, dtype=np.float64)
    groups = clips.title_ids
    if spec.kind == "ranking":
        X = demean_within(X, groups)
    reg = _pick_regularisation(spec.kind, spec.metric, X, clips.y, groups, seed, method)
    mean, std = X.mean(0), X.std(0)
    std[std < 1e-8] = 1.0
    Xs = (X - mean) / std
    if method == "ridge" or spec.kind == "ranking":
        fit = RidgeGram.fit(Xs, _targets(spec.kind, clips.y, groups))
        coef, bias = fit.coef(reg).T, fit.mean
    else:
        coef, bias = _logistic_coef(Xs, clips.y, reg)
    return FittedProbe(clips.task, float(reg), mean, std, coef, bias, list(clips.label_names))


def _logistic_coef(Xs: np.ndarray, y: np.ndarray, C: float) -> tuple[np.ndarray, np.ndarray]:
    """(L, D) coefficients and (L,) intercepts of one sklearn logistic regression per label."""
    from sklearn.linear_model import LogisticRegression

    Y = y if y.ndim == 2 else y[:, None]
    coef, bias = np.zeros((Y.shape[1], Xs.shape[1])), np.zeros(Y.shape[1])
    for j in range(Y.shape[1]):
        if 0 < Y[:, j].sum() < len(Y):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                m = LogisticRegression(C=C, max_iter=300, tol=1e-3).fit(Xs, Y[:, j])
            coef[j], bias[j] = m.coef_[0], m.intercept_[0]
    return coef, bias
