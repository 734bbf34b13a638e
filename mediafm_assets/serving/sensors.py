"""Automation: re-run per-title assets when their inputs, their code or the encoder change.

The per-title assets carry the conditions of mediafm_assets/automation.py; this sensor evaluates
them. A new `encoder_checkpoint` (another model_version, its data version) changes a dependency
of every title partition, so every title is re-embedded (batched by the backfill policy); a
changed code version (mediafm_core/versions.py) re-runs the partitions made with the old one
and, in the same tick, everything below them.
"""

from dagster import AssetSelection, AutomationConditionSensorDefinition, DefaultSensorStatus

from mediafm_assets.jobs import GPU_RUN_TAGS, cold_start_targets

reembed_sensor = AutomationConditionSensorDefinition(
    "reembed_on_new_checkpoint",
    target=cold_start_targets,  # every per-title asset: one tick requests a whole chain
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    run_tags=GPU_RUN_TAGS,  # re-embedding runs go to the GPU pool (K8s / ECS launchers)
    description="Requests the per-title assets of every title that is stale: contextual + "
    "title embeddings after a new checkpoint (another model_version) or changed inputs, and "
    "any per-title asset whose code version changed (detector rules, encoder profile or "
    "weights, fusion layout), once the upstream blocking checks passed.",
)

ann_index_sensor = AutomationConditionSensorDefinition(
    "ann_index_on_schedule",
    target=AssetSelection.assets("ann_index"),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=300,
    description="Brings the LanceDB ANN index current (ann_index's on_cron condition: every 6 "
    "hours, once contextual or title embeddings changed since the last tick).",
)
