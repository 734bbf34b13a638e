"""Periodic re-training: a weekly `encoder_checkpoint` run, off by default (enable it in the UI)."""

from dagster import AssetSelection, DefaultScheduleStatus, ScheduleDefinition, define_asset_job

from mediafm_assets.jobs import GPU_RUN_TAGS

retrain_job = define_asset_job(
    "retrain_encoder",
    selection=AssetSelection.assets("encoder_checkpoint"),
    description="Re-train the encoder on every title; contextual embeddings then re-embed.",
    tags={"mediafm/job": "pretrain", **GPU_RUN_TAGS},  # one at a time: dagster.yaml concurrency
)

retrain_schedule = ScheduleDefinition(
    name="weekly_retrain",
    job=retrain_job,
    cron_schedule="0 3 * * 0",  # Sundays 03:00
    default_status=DefaultScheduleStatus.STOPPED,
    description="Weekly re-training of the encoder (off by default).",
)
