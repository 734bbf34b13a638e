"""The code location: domain folders merged into one `Definitions` (STYLE.md 1).

Resources are chosen in one place, `resources.build_resources()` ($MEDIAFM_ROOT,
$MEDIAFM_DEPLOYMENT, $MEDIAFM_ENCODER_PROFILE, $MEDIAFM_TRAINER).
"""

from dagster import Definitions, load_assets_from_modules

from mediafm_assets.embeddings import assets as embeddings
from mediafm_assets.evaluation import assets as evaluation
from mediafm_assets.ingest import assets as ingest
from mediafm_assets.ingest.sensors import title_arrival_sensor, title_retirement_sensor
from mediafm_assets.pretraining import assets as pretraining
from mediafm_assets.pretraining.schedules import retrain_job, retrain_schedule
from mediafm_assets.resources import build_resources
from mediafm_assets.serving import assets as serving
from mediafm_assets.serving.sensors import ann_index_sensor, reembed_sensor

DOMAINS = (ingest, embeddings, pretraining, serving, evaluation)


def build_definitions(root: str | None = None, deployment: str | None = None,
                      resources: dict | None = None) -> Definitions:  # fmt: skip
    """All definitions with resources for a storage root (tests pass a temp folder); `resources`
    replaces chosen resources by key (tests: a trainer launcher, sensor grace periods)."""
    return Definitions(
        assets=load_assets_from_modules(list(DOMAINS)),
        jobs=[retrain_job],
        sensors=[title_arrival_sensor, title_retirement_sensor, reembed_sensor, ann_index_sensor],
        schedules=[retrain_schedule],
        resources={**build_resources(root, deployment), **(resources or {})},
    )


defs = build_definitions()
