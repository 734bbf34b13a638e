"""Jobs shared across domains: the per-title cold-start job the arrival sensor launches."""

from __future__ import annotations

from dagster import AssetKey, AssetSelection, define_asset_job

from mediafm_assets.partitions import titles_partitions

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


cold_start_job = define_asset_job(
    "cold_start",
    selection=AssetSelection.assets(*INGEST_CHAIN, *SERVING_CHAIN),
    partitions_def=titles_partitions,
    description="One new title: ingest, encode, fuse and (with a checkpoint) embed in context and "
    "write to LanceDB. Launched by title_arrival_sensor, one run per title.",
    tags={"mediafm/kind": "cold_start"},
)
