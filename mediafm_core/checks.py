"""Data checks of one title's artefacts, run before anything is stored or served (issue 18).

Each function looks at ONE title (or one checkpoint's metrics) and returns a `CheckOutcome`:
the check's name, whether it passed, and metadata saying what was found. The Dagster code
location turns outcomes into per-title asset-check results (mediafm_assets/vector_checks.py);
`mediafm_core` never imports dagster. DESIGN.md "A catalogue that changes": check, then serve.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

UNIT_NORM_TOL = 1e-3  # |norm - 1| allowed for float32 vectors written as unit length
DURATION_TOL_S = 1.0  # shots may end this much short of the probed duration (container slack)
DURATION_TOL_SHARE = 0.02  # ... or this share of it, whichever is larger


@dataclass(frozen=True)
class CheckOutcome:
    """The result of one check on one title: `name` (the asset check's name), `passed`,
    `problem` (one line, empty when passed) and JSON-able `metadata`."""

    name: str
    passed: bool
    problem: str = ""
    metadata: dict = field(default_factory=dict)


def vectors(table: pa.Table, column: str = "vector") -> np.ndarray:
    """(N, D) float32 from a fixed-size-list column (N = rows)."""
    col = table[column].combine_chunks()
    return col.flatten().to_numpy(zero_copy_only=False).reshape(len(col), -1).astype(np.float32)


def finite_vectors(table: pa.Table, column: str = "vector") -> CheckOutcome:
    """No NaN or inf in any row of `column`."""
    bad = int((~np.isfinite(vectors(table, column))).any(axis=1).sum())
    return CheckOutcome(
        "finite_vectors",
        bad == 0,
        f"{bad} rows with NaN/inf" if bad else "",
        {"rows_with_nan_or_inf": bad},
    )


def unit_norm(
    table: pa.Table, column: str = "vector", allow_zero: bool = False, tol: float = UNIT_NORM_TOL
) -> CheckOutcome:
    """Every row has L2 norm 1 within `tol` (zero rows allowed with `allow_zero`: a modality
    may be missing). A NaN norm counts as the worst error."""
    norms = np.linalg.norm(vectors(table, column), axis=1)
    if allow_zero:
        norms = norms[~(norms <= 1e-6)]
    err = np.abs(norms - 1.0)
    worst = float(np.nanmax(np.where(np.isfinite(err), err, np.inf))) if len(err) else 0.0
    ok = worst <= tol
    return CheckOutcome(
        "unit_norm",
        ok,
        "" if ok else f"max |norm - 1| = {worst:.3g}",
        {"max_norm_error": worst if np.isfinite(worst) else "inf"},
    )


def rows_match_shots(table: pa.Table, shots: pa.Table, name: str = "rows_match_shots"):
    """One row per shot of the title, the same shot indices."""
    have = sorted(table["shot_index"].to_pylist()) if "shot_index" in table.column_names else []
    want = sorted(shots["shot_index"].to_pylist())
    ok = table.num_rows == shots.num_rows and (not have or have == want)
    problem = "" if ok else f"{table.num_rows} rows for {shots.num_rows} shots"
    return CheckOutcome(name, ok, problem, {"rows": table.num_rows, "shots": shots.num_rows})


def one_model_version(table: pa.Table) -> CheckOutcome:
    """Every row carries the same, non-empty model_version."""
    versions = sorted({str(v) for v in table["model_version"].to_pylist() if v})
    nulls = table["model_version"].null_count
    ok = len(versions) == 1 and nulls == 0
    return CheckOutcome(
        "one_model_version",
        ok,
        "" if ok else f"model versions {versions}" + (f" and {nulls} empty" if nulls else ""),
        {"model_versions": versions},
    )


def contextual_vectors(table: pa.Table, shots: pa.Table) -> list[CheckOutcome]:
    """The serving contract of one title's contextual vectors: one per shot, finite, unit
    norm, one model version. All must pass before the title's rows are written to LanceDB."""
    return [
        rows_match_shots(table, shots),
        finite_vectors(table),
        unit_norm(table),
        one_model_version(table),
    ]


def shot_coverage(shots: pa.Table, duration_s: float) -> CheckOutcome:
    """Shots tile the title: indices 0..n-1 in order, frames contiguous from 0 with no gap or
    overlap (end_frame is exclusive), every shot at least one frame long, times increasing, and
    the last shot ending within max(DURATION_TOL_S, DURATION_TOL_SHARE x duration) of the
    probed `duration_s`."""
    s = shots.sort_by("shot_index")
    idx = np.asarray(s["shot_index"].to_pylist(), np.int64)
    start = np.asarray(s["start_frame"].to_pylist(), np.int64)
    end = np.asarray(s["end_frame"].to_pylist(), np.int64)
    t0 = np.asarray(s["start_s"].to_pylist(), np.float64)
    t1 = np.asarray(s["end_s"].to_pylist(), np.float64)
    if len(idx) == 0:
        return CheckOutcome("covers_duration", False, "no shots", {"shots": 0})
    gaps = int((start[1:] > end[:-1]).sum()) + int(start[0] > 0)
    overlaps = int((start[1:] < end[:-1]).sum())
    empty = int((end <= start).sum()) + int((t1 <= t0).sum())
    missing_s = max(0.0, float(duration_s) - float(t1[-1]))
    tol = max(DURATION_TOL_S, DURATION_TOL_SHARE * float(duration_s))
    problems = [
        f"{n} {what}"
        for n, what in ((gaps, "gaps"), (overlaps, "overlaps"), (empty, "empty shots"))
        if n
    ]
    if not np.array_equal(idx, np.arange(len(idx))):
        problems.append("shot_index is not 0..n-1")
    if missing_s > tol:
        problems.append(f"shots end {missing_s:.2f} s before the title's {duration_s:.2f} s")
    meta = {
        "shots": len(idx),
        "gaps": gaps,
        "overlaps": overlaps,
        "empty_shots": empty,
        "duration_s": round(float(duration_s), 3),
        "last_end_s": round(float(t1[-1]), 3),
        "uncovered_s": round(missing_s, 3),
    }
    return CheckOutcome("covers_duration", not problems, "; ".join(problems), meta)


def beats_baselines(metrics: dict) -> CheckOutcome:
    """A checkpoint's best validation MSM (`best_val_loss`) is below both trivial predictors
    scored on the same masks (`baseline_mean_shot`, `baseline_neighbour`; README "The recipe").
    A checkpoint that does not beat them must not become LATEST."""
    val = _number(metrics.get("best_val_loss"))
    base = {k: _number(metrics.get(f"baseline_{k}")) for k in ("mean_shot", "neighbour")}
    meta = {"best_val_loss": val, **{f"baseline_{k}": v for k, v in base.items()}}
    if val is None or any(v is None for v in base.values()):
        return CheckOutcome("beats_baselines", False, "no validation MSM or baselines", meta)
    worse = [k for k, v in base.items() if not val < v]
    problem = ", ".join(f"val MSM {val:.4f} >= {k} {base[k]:.4f}" for k in worse)
    return CheckOutcome("beats_baselines", not worse, problem, meta)


def _number(value) -> float | None:
    value = getattr(value, "value", value)  # a metadata value object carries the number
    return float(value) if isinstance(value, (int, float)) and np.isfinite(value) else None
