"""Asset-check results shared by the vector-producing assets (DESIGN.md Bad input and failure).

Each function takes {title_id: table} and returns an `AssetCheckResult`; an ERROR-severity failure
of a blocking check stops downstream steps of the run, so bad vectors never reach LanceDB.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey


def vectors_of(table: pa.Table, column: str = "vector") -> np.ndarray:
    """(N, D) float32 from a fixed-size-list column."""
    col = table[column].combine_chunks()
    return col.flatten().to_numpy(zero_copy_only=False).reshape(len(col), -1).astype(np.float32)


def spec(asset: str, name: str, description: str, blocking: bool = True) -> AssetCheckSpec:
    return AssetCheckSpec(name, asset=AssetKey(asset), description=description, blocking=blocking)


def finite_check(asset: str, tables: dict, column: str = "vector") -> AssetCheckResult:
    """No NaN or inf anywhere."""
    bad = {t: int((~np.isfinite(vectors_of(x, column))).any(axis=1).sum()) for t, x in
           tables.items()}  # fmt: skip
    return AssetCheckResult(
        asset_key=AssetKey(asset),
        check_name="finite_vectors",
        passed=not any(bad.values()),
        severity=AssetCheckSeverity.ERROR,
        metadata={"rows_with_nan_or_inf": sum(bad.values())},
    )


def unit_norm_check(asset: str, tables: dict, column: str = "vector", allow_zero: bool = False,
                    tol: float = 1e-3) -> AssetCheckResult:  # fmt: skip
    """Every row has L2 norm 1 (zero rows allowed where a modality may be missing)."""
    worst = 0.0
    for x in tables.values():
        norms = np.linalg.norm(vectors_of(x, column), axis=1)
        if allow_zero:
            norms = norms[norms > 1e-6]
        if len(norms):
            worst = max(worst, float(np.abs(norms - 1.0).max()))
    return AssetCheckResult(
        asset_key=AssetKey(asset),
        check_name="unit_norm",
        passed=worst <= tol,
        severity=AssetCheckSeverity.ERROR,
        metadata={"max_norm_error": worst},
    )


def row_count_check(asset: str, tables: dict, shots: dict, name: str = "rows_match_shots"):
    """One row per shot of the title."""
    diff = {t: tables[t].num_rows - shots[t].num_rows for t in tables}
    return AssetCheckResult(
        asset_key=AssetKey(asset),
        check_name=name,
        passed=not any(diff.values()),
        severity=AssetCheckSeverity.ERROR,
        metadata={"row_minus_shot_counts": {t: d for t, d in diff.items() if d} or "none"},
    )
