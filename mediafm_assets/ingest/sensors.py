"""`title_arrival_sensor`: a newly landed title becomes a partition and ONE cold-start run.

Exactly once, even for bursts of hundreds of arrivals:
1. The set of `titles` partitions in the instance is the durable record of seen titles; the sensor
   adds new keys and requests their runs in the same `SensorResult`, committed together.
2. Each run has `run_key = cold-start:<title_id>`, so a retried tick never launches a second run.
3. The cursor keeps `{"known": n, "last": title_id}` for the UI and caps work per tick at
   `MAX_TITLES_PER_TICK`; a larger burst drains over the next ticks (sorted order).
Titles whose `metadata.json` ready marker is missing (half-copied folders) are not touched.
"""

from __future__ import annotations

import json

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from mediafm_assets.ingest.landing import ready_titles
from mediafm_assets.jobs import cold_start_job, cold_start_selection
from mediafm_assets.partitions import titles_partitions
from mediafm_assets.resources import StorageResource

MAX_TITLES_PER_TICK = 1000  # partitions + run requests per tick; a larger burst takes more ticks


def new_titles(context: SensorEvaluationContext, landing: str) -> list[str]:
    """Ready titles not yet known as partitions, sorted, at most MAX_TITLES_PER_TICK."""
    known = set(context.instance.get_dynamic_partitions(titles_partitions.name))
    fresh = [t for t in ready_titles(landing) if t not in known]
    return fresh[:MAX_TITLES_PER_TICK]


@sensor(
    job=cold_start_job,
    minimum_interval_seconds=10,
    default_status=DefaultSensorStatus.RUNNING,
    description="Adds a `titles` partition and requests one cold-start run per newly landed title "
    "(ready marker: metadata.json).",
)
def title_arrival_sensor(context: SensorEvaluationContext, storage: StorageResource):
    fresh = new_titles(context, storage.landing_root())
    if not fresh:
        return SkipReason(f"no new ready titles in {storage.landing_root()}")
    selection = cold_start_selection(storage.has_checkpoint())
    known = len(context.instance.get_dynamic_partitions(titles_partitions.name)) + len(fresh)
    return SensorResult(
        run_requests=[
            RunRequest(
                run_key=f"cold-start:{tid}",
                partition_key=tid,
                asset_selection=selection,
                tags={"mediafm/trigger": "title_arrival"},
            )
            for tid in fresh
        ],
        dynamic_partitions_requests=[titles_partitions.build_add_request(fresh)],
        cursor=json.dumps({"known": known, "last": fresh[-1]}),
    )
