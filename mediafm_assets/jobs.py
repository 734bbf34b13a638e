"""What the arrival sensor launches: the per-title cold-start selection and its run tags.

Cold-start runs go through Dagster's implicit asset job (the sensor's `asset_selection`), not a
`define_asset_job`: an asset job over assets with different backfill policies (one title per run
for `titles`/`shots`, TITLES_PER_RUN for the model-heavy assets) warns "varying BackfillPolicies"
at every load, though a cold start is one title per run whatever the policies say (issue 12).
"""

from __future__ import annotations

import json

from dagster import AssetKey, AssetSelection

# Run tags of GPU-bound runs (embedding, training). Each run launcher reads its own and ignores
# the rest (the local default launcher ignores all): K8sRunLauncher puts the run pod on the `gpu`
# node pool with one GPU; EcsRunLauncher places the task on the GPU capacity provider with one GPU
# (infra/helm/values.yaml, infra/ecs/dagster.yaml).
GPU_RUN_TAGS = {
    "dagster-k8s/config": json.dumps(
        {
            "container_config": {"resources": {"limits": {"nvidia.com/gpu": "1"}}},
            "pod_spec_config": {
                "node_selector": {"mediafm/pool": "gpu"},
                "tolerations": [
                    {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
                ],
            },
        }
    ),
    "ecs/run_task_kwargs": json.dumps(
        {"capacityProviderStrategy": [{"capacityProvider": "mediafm-gpu"}]}
    ),
    "ecs/container_overrides": json.dumps(
        [{"name": "run", "resourceRequirements": [{"type": "GPU", "value": "1"}]}]
    ),
}

# Per-title chain up to the inputs of the encoder; runs for any title, trained model or not.
INGEST_CHAIN = (
    "titles",
    "shots",
    "video_embeddings",
    "audio_embeddings",
    "text_embeddings",
    "title_metadata_embedding",
    "fused_shots",
)
SERVING_CHAIN = ("contextual_embeddings", "title_embeddings")  # needs a checkpoint


def cold_start_selection(has_checkpoint: bool) -> list[AssetKey]:
    """Assets of a new title's first run: everything per-title, serving only with a checkpoint."""
    names = INGEST_CHAIN + (SERVING_CHAIN if has_checkpoint else ())
    return [AssetKey(n) for n in names]


cold_start_targets = AssetSelection.assets(*INGEST_CHAIN, *SERVING_CHAIN)
# Tags of every cold-start run: one new title, ingested, encoded, fused and (with a checkpoint)
# embedded in context and written to LanceDB; GPU placement for the K8s / ECS launchers.
COLD_START_TAGS = {"mediafm/kind": "cold_start", **GPU_RUN_TAGS}
