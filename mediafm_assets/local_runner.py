"""Drive the code location against a real Dagster instance without the daemon: tick the arrival
sensor, apply its partition requests, execute its run requests, run the re-embed step.

Used by the demo, the tests and bench/cold_start.py. Runs execute in this process
(`execute_in_process` on the real instance), so encoders and checkpoints load once for many runs;
the daemon does the same through `dagster-daemon run` (see tests/e2e/test_daemon.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from dagster import (
    AssetKey,
    DagsterInstance,
    Definitions,
    DeleteDynamicPartitionsRequest,
    RunRequest,
    RunsFilter,
    build_sensor_context,
    partition_loading_context,
)

from mediafm_assets.partitions import titles_partitions

RUN_KEY = "dagster/run_key"  # the tag the sensor daemon dedupes run requests by
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}  # run_config: no step logs


def _config(run_config: dict | None, quiet: bool) -> dict:
    return {**(run_config or {}), **(QUIET if quiet else {})}


@dataclass
class TickResult:
    run_requests: list[RunRequest]  # without those whose run_key already has a run
    added_partitions: list[str]
    cursor: str | None
    skip_reason: str | None = None
    deleted_partitions: list[str] = field(default_factory=list)
    skipped_run_keys: list[str] = field(default_factory=list)  # as the daemon skips them


@dataclass
class RunOutcome:
    partition_keys: list[str]
    success: bool
    run_id: str
    seconds: float
    error: str | None = None
    step_seconds: dict[str, float] = field(default_factory=dict)


def tick_sensor(
    defs: Definitions,
    instance: DagsterInstance,
    cursor: str | None = None,
    name: str = "title_arrival_sensor",
) -> TickResult:
    """Evaluate the sensor once, commit its dynamic-partition requests to the instance, and drop
    run requests whose run_key already has a run (what the sensor daemon does)."""
    sensor = defs.get_sensor_def(name)
    ctx = build_sensor_context(
        instance=instance,
        instance_ref=instance.get_ref(),
        cursor=cursor,
        definitions=defs,
        resources=defs.resources,
    )
    with partition_loading_context(dynamic_partitions_store=instance):
        data = sensor.evaluate_tick(ctx)
    added, deleted = [], []
    for req in data.dynamic_partitions_requests or []:
        keys = list(req.partition_keys or [])
        if isinstance(req, DeleteDynamicPartitionsRequest):
            for key in keys:
                instance.delete_dynamic_partition(req.partitions_def_name, key)
            deleted += keys
        else:
            instance.add_dynamic_partitions(req.partitions_def_name, keys)
            added += keys
    requests, skipped = [], []
    for req in data.run_requests or []:
        if req.run_key and instance.get_runs(RunsFilter(tags={RUN_KEY: req.run_key}), limit=1):
            skipped.append(req.run_key)
        else:
            requests.append(req)
    return TickResult(requests, added, data.cursor, data.skip_message, deleted, skipped)


def execute_request(
    defs: Definitions,
    instance: DagsterInstance,
    request: RunRequest,
    job: str | None = None,
    run_config: dict | None = None,
    quiet: bool = False,
) -> RunOutcome:
    """Execute one run request (one title) in process against the instance: in `job`, else in
    the implicit asset job (where the arrival sensor's requests go)."""
    job_def = defs.resolve_job_def(job) if job else defs.resolve_implicit_global_asset_job_def()
    t0 = time.perf_counter()
    result = job_def.execute_in_process(
        instance=instance,
        partition_key=request.partition_key,
        asset_selection=list(request.asset_selection or []) or None,
        tags={**(request.tags or {}), RUN_KEY: request.run_key or ""},
        run_config=_config(run_config, quiet),
        raise_on_error=False,
    )
    return RunOutcome(
        [request.partition_key],
        result.success,
        result.run_id,
        time.perf_counter() - t0,
        _first_error(result),
        _step_seconds(instance, result.run_id),
    )


def materialize_titles(
    defs: Definitions,
    instance: DagsterInstance,
    assets: list[str],
    title_ids: list[str],
    run_config: dict | None = None,
    quiet: bool = False,
) -> RunOutcome:
    """One run over several titles (a partition range: one model load for all of them)."""
    keys = instance.get_dynamic_partitions(titles_partitions.name)
    pos = sorted(keys.index(t) for t in title_ids)
    job = defs.resolve_implicit_global_asset_job_def()
    t0 = time.perf_counter()
    tags = {
        "dagster/asset_partition_range_start": keys[pos[0]],
        "dagster/asset_partition_range_end": keys[pos[-1]],
    }
    result = job.execute_in_process(
        instance=instance,
        asset_selection=[AssetKey(a) for a in assets],
        tags=tags,
        run_config=_config(run_config, quiet),
        raise_on_error=False,
    )
    return RunOutcome(
        keys[pos[0] : pos[-1] + 1],
        result.success,
        result.run_id,
        time.perf_counter() - t0,
        _first_error(result),
        _step_seconds(instance, result.run_id),
    )


def materialize_unpartitioned(
    defs: Definitions,
    instance: DagsterInstance,
    asset: str,
    run_config: dict | None = None,
    quiet: bool = False,
) -> RunOutcome:
    job = defs.resolve_implicit_global_asset_job_def()
    t0 = time.perf_counter()
    result = job.execute_in_process(
        instance=instance,
        asset_selection=[AssetKey(asset)],
        run_config=_config(run_config, quiet),
        raise_on_error=False,
    )
    return RunOutcome(
        [],
        result.success,
        result.run_id,
        time.perf_counter() - t0,
        _first_error(result),
        _step_seconds(instance, result.run_id),
    )


def _first_error(result) -> str | None:
    """The first failed step's error with its causes, e.g. the TitleError naming the title."""
    for event in result.all_events:
        if event.is_step_failure:
            err, parts = event.step_failure_data.error, []
            while err is not None:
                parts.append(str(err.message).strip())
                err = err.cause
            return " <- ".join(parts)
    return None


def _step_seconds(instance: DagsterInstance, run_id: str) -> dict[str, float]:
    """Step key -> seconds, from the run's step stats."""
    stats = instance.get_run_step_stats(run_id)
    return {s.step_key: round((s.end_time or 0) - (s.start_time or 0), 2) for s in stats}
