"""Linear probes on frozen clip features, evaluated with K folds grouped by title.

Why this protocol: clips of one title share content, so a split that puts one title on both sides
leaks. Outer folds and the inner CV that picks the regularisation are both grouped by title.
Features are standardised on the training fold only. Classification uses one-vs-rest logistic
regression; ranking (popularity) uses a within-title (fixed-effects) ridge regression - features
and scores minus their title's mean - scored by Kendall's tau within each title.
Labels with no positive (or no negative) clip in a test fold cannot be scored there: they are
left out of that fold's macro average and counted, never scored as zero.
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
INNER_FOLDS = 3


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
            "task": self.task, "metric": self.metric, "mean": self.mean, "std": self.std,
            "folds": self.folds, "n_clips": self.n_clips, "skipped": self.skipped,
        }  # fmt: skip


# ---- metrics --------------------------------------------------------------------------------


def macro_ap(y: np.ndarray, s: np.ndarray) -> tuple[float, int]:
    """Mean AP over labels that have both classes in `y`; returns (score, labels left out)."""
    from sklearn.metrics import average_precision_score

    ok = [j for j in range(y.shape[1]) if 0 < y[:, j].sum() < len(y)]
    if not ok:
        return float("nan"), y.shape[1]
    aps = [average_precision_score(y[:, j], s[:, j]) for j in ok]
    return float(np.mean(aps)), y.shape[1] - len(ok)


def micro_ap(y: np.ndarray, s: np.ndarray) -> tuple[float, int]:
    """AP over all (clip, label) pairs pooled."""
    from sklearn.metrics import average_precision_score

    if y.sum() == 0:
        return float("nan"), 1
    return float(average_precision_score(y.ravel(), s.ravel())), 0


def binary_ap(y: np.ndarray, s: np.ndarray) -> tuple[float, int]:
    from sklearn.metrics import average_precision_score

    if y.sum() == 0:
        return float("nan"), 1
    return float(average_precision_score(y, s)), 0


def mean_kendall(y: np.ndarray, s: np.ndarray, groups: np.ndarray) -> tuple[float, int]:
    """Kendall's tau between scores and targets within each title, averaged over titles.

    Titles with fewer than two clips or constant targets have no ranking and are left out.
    """
    from scipy.stats import kendalltau

    taus, left_out = [], 0
    for g in np.unique(groups):
        m = groups == g
        if m.sum() < 2 or np.ptp(y[m]) == 0:
            left_out += 1
            continue
        tau = kendalltau(y[m], s[m]).statistic
        taus.append(0.0 if np.isnan(tau) else tau)  # constant predictions rank nothing
    return (float(np.mean(taus)) if taus else float("nan")), left_out


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
    Xtr, Xte = _standardise(Xtr, Xte)
    if kind == "ranking":
        return _fit_predict_ridge(Xtr, demean_within(ytr, groups_tr), Xte, reg)
    return _fit_predict_logistic(Xtr, ytr, Xte, reg)


def _group_folds(groups: np.ndarray, k: int, seed: int):
    from sklearn.model_selection import GroupKFold

    k = min(k, len(np.unique(groups)))
    splitter = GroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(splitter.split(groups, groups=groups))


def _pick_regularisation(kind, metric, X, y, groups, seed: int) -> float:
    """Inner CV grouped by title: the grid value with the best mean score."""
    grid = ALPHA_GRID if kind == "ranking" else C_GRID
    folds = _group_folds(groups, INNER_FOLDS, seed)
    if len(folds) < 2:
        return grid[len(grid) // 2]
    best, best_score = grid[0], -np.inf
    for reg in grid:
        scores = []
        for tr, te in folds:
            s = _fit_predict(kind, X[tr], y[tr], X[te], reg, groups[tr])
            scores.append(score(kind, metric, y[te], s, groups[te])[0])
        m = np.nanmean(scores) if not np.all(np.isnan(scores)) else -np.inf
        if m > best_score:
            best, best_score = reg, m
    return best


def run_probe(
    features: np.ndarray,  # (N, D) one row per clip
    clips: Clips,
    folds: int = 10,
    seed: int = 0,
    progress=None,  # optional callable(fold_index, n_folds)
) -> ProbeResult:
    """K-fold (grouped by title) linear probe of `clips.task` on frozen `features`."""
    spec = task_spec(clips.task)
    X = np.asarray(features, dtype=np.float64)
    if X.shape[0] != len(clips):
        raise ValueError(f"{X.shape[0]} feature rows for {len(clips)} clips")
    groups = clips.title_ids
    if spec.kind == "ranking":
        X = demean_within(X, groups)
    scores, skipped = [], {"empty_folds": 0, "unscorable": 0}
    outer = _group_folds(groups, folds, seed)
    for i, (tr, te) in enumerate(outer):
        reg = _pick_regularisation(spec.kind, spec.metric, X[tr], clips.y[tr], groups[tr], seed)
        s = _fit_predict(spec.kind, X[tr], clips.y[tr], X[te], reg, groups[tr])
        value, left_out = score(spec.kind, spec.metric, clips.y[te], s, groups[te])
        skipped["unscorable"] += left_out
        if np.isnan(value):
            skipped["empty_folds"] += 1
        else:
            scores.append(value)
        if progress is not None:
            progress(i + 1, len(outer))
    arr = np.array(scores) if scores else np.array([np.nan])
    return ProbeResult(clips.task, spec.metric, float(arr.mean()), float(arr.std()),
                       [float(v) for v in scores], len(clips), skipped)  # fmt: skip


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
        np.savez(path, coef=self.coef, bias=self.bias, mean=self.mean, std=self.std,
                 reg=self.reg, labels=np.array(self.labels or [self.task]))  # fmt: skip


def fit_final_probe(features: np.ndarray, clips: Clips, seed: int = 0) -> FittedProbe:
    """Fit the deployable probe of `clips.task` on all clips, regularisation from the inner CV.

    Ranking probes are fitted within title (features and scores de-meaned per title), as in
    `run_probe`; labels with a single class get a zero row (they rank nothing)."""
    from sklearn.linear_model import LogisticRegression, Ridge

    spec = task_spec(clips.task)
    X = np.asarray(features, dtype=np.float64)
    groups = clips.title_ids
    if spec.kind == "ranking":
        X = demean_within(X, groups)
    reg = _pick_regularisation(spec.kind, spec.metric, X, clips.y, groups, seed)
    mean, std = X.mean(0), X.std(0)
    std[std < 1e-8] = 1.0
    Xs = (X - mean) / std
    if spec.kind == "ranking":
        m = Ridge(alpha=reg).fit(Xs, demean_within(clips.y, groups))
        coef, bias = np.atleast_2d(m.coef_), np.atleast_1d(m.intercept_)
    else:
        Y = clips.y if clips.y.ndim == 2 else clips.y[:, None]
        coef, bias = np.zeros((Y.shape[1], X.shape[1])), np.zeros(Y.shape[1])
        for j in range(Y.shape[1]):
            if 0 < Y[:, j].sum() < len(Y):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    m = LogisticRegression(C=reg, max_iter=300, tol=1e-3).fit(Xs, Y[:, j])
                coef[j], bias[j] = m.coef_[0], m.intercept_[0]
    return FittedProbe(clips.task, float(reg), mean, std, coef, bias, list(clips.label_names))
