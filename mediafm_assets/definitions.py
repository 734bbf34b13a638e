"""The code location: domain folders merged into one `Definitions` (STYLE.md 1).

Resources are chosen in one place, `resources.build_resources()` ($MEDIAFM_ROOT,
$MEDIAFM_DEPLOYMENT, $MEDIAFM_ENCODER_PROFILE, $MEDIAFM_TRAINER). Per-title assets get their
code versions from `mediafm_core.versions` for the configured encoders (`code_versions`).
"""

from dagster import Definitions, load_assets_from_modules

from mediafm_assets.embeddings import assets as embeddings
from mediafm_assets.evaluation import assets as evaluation
from mediafm_assets.ingest import assets as ingest
from mediafm_assets.ingest.retirement import retire_titles_job
from mediafm_assets.ingest.sensors import title_arrival_sensor, title_retirement_sensor
from mediafm_assets.pretraining import assets as pretraining
from mediafm_assets.pretraining.schedules import retrain_job, retrain_schedule
from mediafm_assets.resources import build_resources
from mediafm_assets.serving import assets as serving
from mediafm_assets.serving.sensors import ann_index_sensor, reembed_sensor

DOMAINS = (ingest, embeddings, pretraining, serving, evaluation)


def build_definitions(
    root: str | None = None, deployment: str | None = None, resources: dict | None = None
) -> Definitions:
    """All definitions with resources for a storage root (tests pass a temp folder); `resources`
    replaces chosen resources by key (tests: a trainer launcher, sensor grace periods)."""
    resources = {**build_resources(root, deployment), **(resources or {})}
    versions = code_versions(resources)
    return Definitions(
        assets=[
            a.map_asset_specs(
                lambda s: s.replace_attributes(
                    code_version=versions.get(s.key.to_user_string(), s.code_version)
                )
            )
            for a in load_assets_from_modules(list(DOMAINS))
        ],
        jobs=[retrain_job, retire_titles_job],
        sensors=[title_arrival_sensor, title_retirement_sensor, reembed_sensor, ann_index_sensor],
        schedules=[retrain_schedule],
        resources=resources,
    )


def code_versions(resources: dict) -> dict[str, str]:
    """Asset name -> code version for the per-title assets, from `mediafm_core.versions` and
    the configured encoders (a profile change makes the titles encoded with the old one stale)."""
    from mediafm_core import versions as v

    enc, text = resources["encoders"], resources["text_encoder"].config()
    out = {
        f"{m}_embeddings": v.encoder_version(enc.profile, m, text, enc.frames_per_shot)
        for m in v.MODALITIES
    }
    return out | {
        "titles": v.titles_version(),
        "shots": v.shots_version(enc.shot_detector),
        "title_metadata_embedding": out["text_embeddings"],
        "fused_shots": v.fusion_version(),
        "contextual_embeddings": v.contextual_version(),
        "title_embeddings": v.title_pooling_version(),
    }


defs = build_definitions()
