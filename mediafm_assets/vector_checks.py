"""Per-title asset checks (DESIGN.md "check, then serve"; issue 18).

Per-title assets run several titles in one step, but each title's checks are its own: every
check spec is partitioned by title (`titles_partitions`) and a step yields one
`AssetCheckEvaluation` per title and check, naming the title in its partition and metadata, so
the UI keeps a history per title and a later passing run of other titles hides nothing.
`AutomationCondition.all_deps_blocking_checks_passed()` then holds back exactly the titles whose
upstream checks failed.

The checks themselves are `mediafm_core.checks` functions (one title -> `CheckOutcome`). A step
decides what to store from them: a title that fails is left out of what is written (its Parquet
artefact and LanceDB rows keep their previous state), the other titles are stored, and the step
then fails naming the failed titles (`fail_titles`).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
from dagster import (
    AssetCheckEvaluation,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetRecordsFilter,
    Failure,
    MetadataValue,
    Output,
)
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from mediafm_assets.partitions import titles_partitions
from mediafm_core.checks import CheckOutcome, vectors


def vectors_of(table: pa.Table, column: str = "vector") -> np.ndarray:
    """(N, D) float32 from a fixed-size-list column."""
    return vectors(table, column)


def spec(
    asset: str, name: str, description: str, blocking: bool = True, per_title: bool = True
) -> AssetCheckSpec:
    """A check spec of `asset`; per title (partitioned like the asset) unless `per_title=False`."""
    return AssetCheckSpec(
        name,
        asset=AssetKey(asset),
        description=description,
        blocking=blocking,
        partitions_def=titles_partitions if per_title else None,
    )


def failures(outcomes: dict[str, list[CheckOutcome]]) -> dict[str, str]:
    """{title: 'check: problem; ...'} of the titles with a failed check."""
    return {
        t: "; ".join(f"{o.name}: {o.problem}" for o in outs if not o.passed)
        for t, outs in outcomes.items()
        if not all(o.passed for o in outs)
    }


def title_checks(context, asset: str, outcomes: dict[str, list[CheckOutcome]]) -> Iterator:
    """Events for the per-title checks of `asset`: the check outputs of the step (once each),
    then one evaluation per title and selected check. Yield them AFTER the asset's Output, so
    each evaluation targets the title's new materialization."""
    names = {
        s.key: n
        for n, s in context.assets_def.check_specs_by_output_name.items()
        if s.asset_key == AssetKey(asset)
    }
    selected = {k for k in names if k in context.selected_asset_check_keys}
    for key in sorted(selected, key=lambda k: k.name):
        yield Output(None, output_name=names[key])
    by_name = {k.name: k for k in selected}
    for tid in sorted(outcomes):
        target = _target(context, asset, tid)
        for o in outcomes[tid]:
            if o.name in by_name:
                yield _evaluation(asset, tid, o, target)


def _evaluation(asset: str, tid: str, o: CheckOutcome, target) -> AssetCheckEvaluation:
    meta = {
        "title_id": tid,
        **({"problem": o.problem} if o.problem else {}),
        **{
            k: MetadataValue.json(v) if isinstance(v, (dict, list)) else v
            for k, v in o.metadata.items()
        },
    }
    return AssetCheckEvaluation(
        asset_key=AssetKey(asset),
        check_name=o.name,
        passed=o.passed,
        metadata=meta,
        target_materialization_data=target,
        severity=AssetCheckSeverity.ERROR,
        description=f"{tid}: {o.problem}" if o.problem else None,
        blocking=True,
        partition=tid,
    )


def _target(context, asset: str, tid: str):
    """The title's latest materialization of `asset` (the one its check result is about)."""
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=[tid]), limit=1
    ).records
    if not records:
        return None
    r = records[0]
    return AssetCheckEvaluationTargetMaterializationData(
        run_id=r.event_log_entry.run_id, storage_id=r.storage_id, timestamp=r.timestamp
    )


def fail_titles(asset: str, failed: dict[str, str], total: int) -> None:
    """Raise `Failure` naming each failed title and its problem (no retries: the data is bad).
    The step fails after the passing titles were stored and every check result was logged."""
    if not failed:
        return
    lines = "; ".join(f"{t} ({why})" for t, why in sorted(failed.items()))
    raise Failure(
        description=f"{asset}: {len(failed)} of {total} titles failed their checks and were not "
        f"stored: {lines}",
        metadata={"failed_titles": MetadataValue.json(failed)},
        allow_retries=False,
    )


def keep_passing(values: dict, failed: dict) -> dict:
    """`values` with None for the failed titles: the IO manager leaves their artefact as it was."""
    return {t: (None if t in failed else v) for t, v in values.items()}


def vector_outcomes(
    tables: dict[str, pa.Table],
    shots: dict | None,
    column: str = "vector",
    unit: bool = False,
    allow_zero: bool = False,
) -> dict:
    """{title: [outcomes]} of the vector checks a unimodal or fused table gets: rows match the
    title's shots (when given), finite, and (with `unit`) unit norm."""
    from mediafm_core.checks import finite_vectors, rows_match_shots, unit_norm

    out = {}
    for t, x in tables.items():
        outs = [rows_match_shots(x, shots[t])] if shots is not None else []
        outs.append(finite_vectors(x, column))
        if unit:
            outs.append(unit_norm(x, column, allow_zero=allow_zero))
        out[t] = outs
    return out
