"""Automation: re-embed titles when their inputs or the encoder checkpoint change.

`contextual_embeddings` and `title_embeddings` carry `AutomationCondition.eager()`; this sensor
evaluates those conditions. A new `encoder_checkpoint` materialisation updates a dependency of
every title partition, so every title is requested again (batched by the backfill policy).
"""

from dagster import AssetSelection, AutomationConditionSensorDefinition, DefaultSensorStatus

from mediafm_assets.jobs import GPU_RUN_TAGS

reembed_sensor = AutomationConditionSensorDefinition(
    "reembed_on_new_checkpoint",
    target=AssetSelection.assets("contextual_embeddings", "title_embeddings"),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    run_tags=GPU_RUN_TAGS,  # re-embedding runs go to the GPU pool (K8s / ECS launchers)
    description="Requests contextual + title embeddings for every title that is stale "
    "(new checkpoint, or re-ingested inputs).",
)

ann_index_sensor = AutomationConditionSensorDefinition(
    "ann_index_on_schedule",
    target=AssetSelection.assets("ann_index"),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=300,
    description="Brings the LanceDB ANN index current (ann_index's on_cron condition: every 6 "
    "hours, once contextual or title embeddings changed since the last tick).",
)
