"""Embeddings: per-shot video, audio and timed-text vectors, the title-metadata vector, fusion.

`unimodal_embeddings` decodes each title once (frames + 16 kHz audio) and produces the three
assets `video_embeddings`, `audio_embeddings`, `text_embeddings`. Encoders load once per run
(`EncoderResource`), and model-heavy assets batch up to TITLES_PER_RUN titles per backfill run.
"""

import json
import tempfile
import time

import numpy as np
import pyarrow as pa
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetObservation,
    AssetOut,
    MetadataValue,
    Output,
    multi_asset,
)

from mediafm_assets.automation import on_code_change, recompute
from mediafm_assets.partitions import (
    GPU_POOL,
    OWNERS,
    STORAGE_RETRY,
    batched_backfill,
    final_on_bad_input,
    per_title_asset,
    titles_partitions,
)
from mediafm_assets.resources import EncoderResource, StorageResource, TextEncoderResource
from mediafm_assets.vector_checks import (
    fail_titles,
    failures,
    keep_passing,
    spec,
    title_checks,
    vector_outcomes,
    vectors_of,
)
from mediafm_core.tables import vector_array

MODALITIES = ("video", "audio", "text")


def vector_table(
    title_id: str,
    vectors: np.ndarray,
    column: str = "vector",
    with_shots=True,
    encoder: dict | None = None,
    **extra,
) -> pa.Table:
    """A contract table (title_id[, shot_index], <column>, **extra), encoder info in metadata."""
    n = len(vectors)
    cols = {"title_id": pa.array([title_id] * n, pa.string())}
    if with_shots:
        cols["shot_index"] = pa.array(np.arange(n, dtype=np.int64))
    cols[column] = vector_array(vectors)
    cols.update({k: pa.array(v) for k, v in extra.items()})
    table = pa.table(cols)
    return table.replace_schema_metadata({b"mediafm.encoder": json.dumps(encoder or {})})


def read_inputs(storage: StorageResource, title_id: str, shots: pa.Table):
    """The title opened, its shots selected and its subtitles parsed
    (`mediafm_core.pipeline.read_title_inputs`): a bad title raises TitleError here, before any
    encoder loads (issue 11, case 8)."""
    from mediafm_core.pipeline import read_title_inputs

    landing = storage.local_landing([title_id])  # s3://: a local copy of the title
    return read_title_inputs(title_id, shots, landing)


def encode_unimodal(enc, title_id: str, inputs):
    """({modality: table}, stage timings) for one title read by `read_inputs`, via
    `mediafm_core.pipeline.encode_title` (one decode of the media; its files are staged in a
    temp folder and read back)."""
    import pyarrow.parquet as pq

    from mediafm_core.pipeline import encode_title

    with tempfile.TemporaryDirectory(prefix=f"encode-{title_id}-") as tmp:
        res = encode_title(title_id, inputs.shots, tmp, encoders=enc, inputs=inputs)
        tables = {m: pq.read_table(res.files[m]) for m in MODALITIES}
    return tables, {k: round(v, 3) for k, v in res.timings.items()}


@multi_asset(
    outs={
        f"{m}_embeddings": AssetOut(
            description=f"Per-shot {m} vectors (title_id, shot_index, vector"
            + (", has_text" if m == "text" else "")
            + ").",
            kinds={"pytorch", "parquet"},
            owners=OWNERS,
            group_name="embeddings",
            automation_condition=on_code_change(),
        )
        for m in MODALITIES
    },
    ins={"shots": AssetIn()},
    partitions_def=titles_partitions,
    backfill_policy=batched_backfill,
    retry_policy=STORAGE_RETRY,
    pool=GPU_POOL,
    check_specs=[
        spec(f"{m}_embeddings", "rows_match_shots", "One vector per shot") for m in MODALITIES
    ]
    + [spec(f"{m}_embeddings", "finite_vectors", "No NaN/inf") for m in MODALITIES],
    description="Decode each title once and run the video, audio and timed-text encoders.",
)
@final_on_bad_input
def unimodal_embeddings(
    context: AssetExecutionContext,
    storage: StorageResource,
    encoders: EncoderResource,
    text_encoder: TextEncoderResource,
    shots: dict,
):
    inputs = {tid: read_inputs(storage, tid, shots[tid]) for tid in context.partition_keys}
    t0 = time.perf_counter()
    enc = encoders.load(text_encoder)
    load_s = time.perf_counter() - t0
    tables = {m: {} for m in MODALITIES}
    timings = {}
    for tid in context.partition_keys:
        per_modality, timings[tid] = encode_unimodal(enc, tid, inputs[tid])
        for m in MODALITIES:
            tables[m][tid] = per_modality[m]
    outcomes = {m: vector_outcomes(tables[m], shots) for m in MODALITIES}
    failed = failures({t: [o for m in MODALITIES for o in outcomes[m][t]] for t in shots})
    for m in MODALITIES:
        info = enc.infos()[m]
        yield Output(
            keep_passing(tables[m], failed),
            output_name=f"{m}_embeddings",
            metadata={
                "rows": sum(t.num_rows for t in tables[m].values()),
                "width": info.dim,
                "encoder": info.name,
                "weights": info.weights,
                "random_init": info.random_init,
                **{
                    k: v
                    for k, v in info.to_dict().items()
                    if k in ("package", "version", "sha256", "licence") and v
                },
                "profile": enc.profile.name,
                "load_encoders_s": round(load_s, 3),
                "stage_seconds": MetadataValue.json(timings),
                **({"thumbnail_bytes_per_shot": _thumb_bytes(tables[m])} if m == "video" else {}),
                **(
                    {
                        "shots_with_text": int(
                            sum(
                                np.sum(t["has_text"].to_numpy(zero_copy_only=False))
                                for t in tables[m].values()
                            )
                        )
                    }
                    if m == "text"
                    else {}
                ),
            },
        )
    for m in MODALITIES:
        yield from title_checks(context, f"{m}_embeddings", outcomes[m])
    for tid in context.partition_keys:  # the thumbnails exist only now: show them on `shots`
        yield contact_sheet_observation(tid, shots[tid], tables["video"][tid])
    fail_titles("unimodal_embeddings", failed, len(context.partition_keys))


def contact_sheet_observation(tid: str, shots: pa.Table, video: pa.Table) -> AssetObservation:
    """An observation of the title's `shots` partition holding its contact sheet (thumbnails in
    shot order with their start times) and what the pictures cost."""
    from mediafm_core.pictures import SHEET_MIME, contact_sheet, markdown_image

    t0 = time.perf_counter()
    thumbs = video["thumbnail"].to_pylist() if "thumbnail" in video.column_names else []
    shots = shots.sort_by("shot_index")
    kinds = shots["transition"].to_pylist() if "transition" in shots.column_names else None
    sheet = contact_sheet(thumbs or [None] * shots.num_rows, shots["start_s"].to_pylist(), kinds)
    sizes = [len(t) for t in thumbs if t]
    return AssetObservation(
        asset_key="shots",
        partition=tid,
        metadata={
            "contact_sheet": MetadataValue.md(
                markdown_image(sheet, f"{tid} contact sheet", SHEET_MIME)
            ),
            "contact_sheet_bytes": len(sheet),
            "thumbnail_bytes_per_shot": round(float(np.mean(sizes)), 1) if sizes else 0,
            "pictures_seconds": round(time.perf_counter() - t0, 3),
        },
    )


@per_title_asset(
    group_name="embeddings",
    kinds={"pytorch", "parquet"},
    deps=["titles"],
    automation_condition=on_code_change(),
    description="The title's metadata (synopsis, tags, genres: each embedded, then averaged) "
    "embedded with the text encoder: the [GLOBAL] token input.",
)
def title_metadata_embedding(
    context: AssetExecutionContext,
    storage: StorageResource,
    text_encoder: TextEncoderResource,
):
    from mediafm_core.media.titles import open_title
    from mediafm_core.pipeline import global_vector

    text = text_encoder.load()
    out = {}
    landing = storage.local_landing(context.partition_keys)  # s3:// titles copied locally once
    for tid in context.partition_keys:
        meta = open_title(tid, landing).metadata
        glob = global_vector(text, meta)  # (1, D_text)
        out[tid] = vector_table(tid, glob, with_shots=False, encoder=text.info.to_dict())
    return Output(
        out, metadata={"titles": len(out), "width": text.info.dim, "encoder": text.info.name}
    )


@per_title_asset(
    group_name="embeddings",
    kinds={"numpy", "parquet"},
    ins={m: AssetIn(f"{m}_embeddings") for m in MODALITIES},
    automation_condition=recompute(),
    check_specs=[
        spec("fused_shots", "unit_norm", "Every fused vector has norm 1"),
        spec("fused_shots", "finite_vectors", "No NaN/inf"),
    ],
    description="Per-shot fusion: each modality L2-normalised, concatenated, unit-normalised "
    "(missing text zero-padded).",
)
def fused_shots(context: AssetExecutionContext, video: dict, audio: dict, text: dict):
    from mediafm_core.fusion import FusionLayout, fuse

    parts = {"video": video, "audio": audio, "text": text}
    out = {}
    for tid in context.partition_keys:
        layout = FusionLayout(tuple(_slot(m, parts[m][tid]) for m in MODALITIES))
        fused = fuse(tid, layout, {m: vectors_of(parts[m][tid]) for m in MODALITIES})
        has_text = text[tid]["has_text"].to_pylist()
        table = vector_table(tid, fused, column="fused", has_text=has_text)
        out[tid] = table.replace_schema_metadata({b"mediafm.layout": layout.to_json()})
    dims = {m: vectors_of(next(iter(parts[m].values()))).shape[1] for m in MODALITIES}
    outcomes = vector_outcomes(out, None, column="fused", unit=True)
    failed = failures(outcomes)
    yield Output(
        keep_passing(out, failed),
        metadata={
            "rows": sum(t.num_rows for t in out.values()),
            "width": sum(dims.values()),
            "widths": MetadataValue.json(dims),
            "failed_titles": MetadataValue.json(failed),
        },
    )
    yield from title_checks(context, "fused_shots", outcomes)
    fail_titles("fused_shots", failed, len(out))


def _thumb_bytes(tables: dict) -> float:
    """Mean bytes of the thumbnails in `tables` (title -> video table)."""
    sizes = [
        len(b)
        for t in tables.values()
        if "thumbnail" in t.column_names
        for b in t["thumbnail"].to_pylist()
        if b
    ]
    return round(float(np.mean(sizes)), 1) if sizes else 0.0


def _slot(modality: str, table: pa.Table):
    """The fusion slot of one modality, read from the encoder identity stored with its table."""
    from mediafm_core.fusion import ModalitySlot

    info = json.loads((table.schema.metadata or {}).get(b"mediafm.encoder", b"{}") or "{}")
    return ModalitySlot.from_info(modality, {"dim": 0, **info}, dim=vectors_of(table).shape[1])
