"""Ingest: a landed title's metadata and media probe (`titles`), and its shot boundaries (`shots`).

Both call `mediafm_core.media`; a corrupt or incomplete title raises `TitleError` and fails only
its own partition. Values are `{title_id: pyarrow.Table}` (see io_manager.py).
"""

import time

import pyarrow as pa
from dagster import AssetExecutionContext, DataVersion, MetadataValue, Output

from mediafm_assets.automation import on_code_change
from mediafm_assets.partitions import per_title_asset, per_title_backfill
from mediafm_assets.resources import EncoderResource, StorageResource
from mediafm_assets.vector_checks import fail_titles, failures, keep_passing, spec, title_checks


def title_row(title) -> dict:
    """One `titles` row from a `mediafm_core.media.titles.Title`."""
    m = title.metadata
    return {
        "title_id": title.title_id,
        "name": m.name,
        "synopsis": m.synopsis,
        "tags": list(m.tags),
        "genres": list(m.genres),
        "duration_s": float(title.duration_s),
        "fps": float(title.fps),
        "n_frames": int(title.n_frames),
        "width": int(title.width),
        "height": int(title.height),
        "has_subtitles": title.subtitles_path is not None,
        "video_path": str(title.video_path),
    }


def open_titles(storage: StorageResource, title_ids: list[str]) -> dict:
    """title_id -> opened, validated Title from the landing zone."""
    from mediafm_core.media.titles import open_title

    landing = storage.local_landing(title_ids)  # s3:// titles are copied to local files once
    return {tid: open_title(tid, landing) for tid in title_ids}


@per_title_asset(
    group_name="ingest",
    backfill_policy=per_title_backfill,
    kinds={"python", "video"},
    automation_condition=on_code_change(),
    description="A landed title: metadata.json fields plus the media probe (duration, fps, size).",
)
def titles(context: AssetExecutionContext, storage: StorageResource):
    opened = open_titles(storage, context.partition_keys)
    rows = {tid: pa.Table.from_pylist([title_row(t)]) for tid, t in opened.items()}
    first = next(iter(opened.values()))
    return Output(
        rows,
        data_version=landed_version(storage, list(opened)),
        metadata={
            "titles": len(rows),
            "name": first.metadata.name,
            "genres": ", ".join(first.metadata.genres),
            "duration_s": round(float(first.duration_s), 2),
            "has_subtitles": first.subtitles_path is not None,
        },
    )


def landed_version(storage: StorageResource, title_ids: list[str]) -> DataVersion:
    """The data version of `titles`: what landed (the titles' fingerprints: files' names, sizes,
    mtimes), so a re-landed title makes its downstream partitions stale. One value covers every
    title of the step (Dagster takes one data version per output)."""
    from mediafm_core.storage.landing import scan_landing

    landed = scan_landing(storage.landing_root())
    return DataVersion(
        ",".join(landed[t].fingerprint if t in landed else "gone" for t in sorted(title_ids))
    )


def to_arrow(table) -> pa.Table:
    """Core functions may return polars or Arrow tables; assets store Arrow."""
    return table.to_arrow() if hasattr(table, "to_arrow") else table


@per_title_asset(
    group_name="ingest",
    backfill_policy=per_title_backfill,
    kinds={"python", "video"},
    deps=[titles],
    automation_condition=on_code_change(),
    check_specs=[
        spec(
            "shots",
            "covers_duration",
            "Shots tile the title: frames contiguous from "
            "0, no gaps or overlaps, ending at the title's duration",
        )
    ],
    description="Shot boundaries of each title (start/end frame and seconds), in order.",
)
def shots(context: AssetExecutionContext, storage: StorageResource, encoders: EncoderResource):
    from mediafm_core.checks import shot_coverage
    from mediafm_core.media.shots import detect_shots

    out, seconds, outcomes = {}, {}, {}
    for tid, title in open_titles(storage, context.partition_keys).items():
        t0 = time.perf_counter()
        kwargs = {} if encoders.shot_detector == "auto" else {"detector": encoders.shot_detector}
        out[tid] = to_arrow(detect_shots(title, **kwargs))
        seconds[tid] = round(time.perf_counter() - t0, 3)
        outcomes[tid] = [shot_coverage(out[tid], title.duration_s)]
    n = {tid: t.num_rows for tid, t in out.items()}
    failed = failures(outcomes)
    yield Output(
        keep_passing(out, failed),
        metadata={
            "shots": sum(n.values()),
            "shots_by_title": MetadataValue.json(n),
            "detect_seconds": MetadataValue.json(seconds),
            "detector": encoders.shot_detector,
        },
    )
    yield from title_checks(context, "shots", outcomes)
    fail_titles("shots", failed, len(out))
