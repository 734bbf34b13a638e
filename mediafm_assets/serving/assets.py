"""Serving: contextual shot embeddings and title embeddings, written to LanceDB.

`contextual_embeddings` runs the current encoder checkpoint (checkpoints/LATEST) over each title's
fused shots with its [GLOBAL] metadata vector ("embedding in context", windowed for long titles),
unit-normalises, stores the per-title Parquet artefact and replaces the title's rows in LanceDB
`shot_embeddings` in one commit. A new checkpoint makes every partition stale: the eager automation
condition re-embeds them. `title_embeddings` pools a title's shots into one vector for
title-to-title similarity.

A new checkpoint is a new embedding space (mediafm_core/storage/spaces.py): its rows are written
beside the serving space's, which keeps answering, and the store switches in one step when the
new space holds every title. Meanwhile a title the serving space lacks (a cold start) is also
embedded with the serving space's checkpoint, so it is searchable at once.
"""

import time

import numpy as np
import pyarrow as pa
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AutomationCondition,
    MaterializeResult,
    MetadataValue,
    Output,
    asset,
)

from mediafm_assets.automation import recompute
from mediafm_assets.partitions import GPU_POOL, OWNERS, STORAGE_RETRY, per_title_asset
from mediafm_assets.resources import LanceDBResource, StorageResource
from mediafm_assets.vector_checks import (
    fail_titles,
    failures,
    keep_passing,
    spec,
    title_checks,
    vectors_of,
)
from mediafm_core.checks import CheckOutcome, contextual_vectors
from mediafm_core.storage.schemas import SHOT_EMBEDDINGS, TITLE_EMBEDDINGS
from mediafm_core.tables import vector_array

_MODELS: dict[str, tuple] = {}  # checkpoint dir -> (model, meta), one load per process
ANN_INDEX_CRON = "0 */6 * * *"  # ann_index: every 6 hours, when the embeddings changed since


def load_current_model(storage: StorageResource, name: str | None = None):
    """(model, meta, model_version) of checkpoints/LATEST (or of the folder `name`); cached for
    the process."""
    from mediafm_core.errors import InputError
    from mediafm_core.training.checkpoint import load_checkpoint

    name = name or storage.current_model_version()
    if name is None:
        raise InputError(
            storage.layout().checkpoints,
            "no encoder checkpoint yet; materialise encoder_checkpoint first",
        )
    path = storage.checkpoint_dir(name)
    if path not in _MODELS:
        from mediafm_core.storage.s3 import local_copy

        _MODELS.clear()
        _MODELS[path] = load_checkpoint(local_copy(path, "checkpoints"))  # s3: cached copy
    model, meta = _MODELS[path]
    return model, meta, meta.get("model_version", name)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def contextual_table(
    tid: str, shots: pa.Table, vectors: np.ndarray, version: str, video: pa.Table | None = None
) -> pa.Table:
    """The contextual contract: title_id, shot_index, start_s, end_s, vector, model_version,
    and each shot's thumbnail (WebP bytes, from `video`'s thumbnail column; null without)."""
    shots = shots.sort_by("shot_index")
    n = shots.num_rows
    thumbs = pa.nulls(n, pa.binary())
    if video is not None and "thumbnail" in video.column_names and video.num_rows == n:
        thumbs = video.sort_by("shot_index")["thumbnail"].cast(pa.binary())
    return pa.table(
        {
            "title_id": pa.array([tid] * n, pa.string()),
            "shot_index": shots["shot_index"].cast(pa.int64()),
            "start_s": shots["start_s"].cast(pa.float64()),
            "end_s": shots["end_s"].cast(pa.float64()),
            "vector": vector_array(vectors),
            "model_version": pa.array([version] * n, pa.string()),
            "thumbnail": thumbs,
        }
    )


def shot_map_metadata(tid: str, table: pa.Table) -> dict:
    """A 2-D map of one title's shots (PCA of the contextual vectors, coloured by time, a few
    thumbnails on it) as Markdown-image metadata, with its size and drawing time."""
    from mediafm_core.pictures import markdown_image, shot_map

    t0 = time.perf_counter()
    png = shot_map(vectors_of(table), table["start_s"].to_numpy(), table["thumbnail"].to_pylist())
    return {
        "shot_map": MetadataValue.md(
            markdown_image(png, f"{tid} shots, PCA of contextual vectors")
        ),
        "shot_map_title": tid,
        "shot_map_bytes": len(png),
        "pictures_seconds": round(time.perf_counter() - t0, 3),
    }


def lance_rows(store, table: str, tid: str, expected: int) -> CheckOutcome:
    """LanceDB `table` (the physical table the title was written to) holds exactly `expected`
    rows for the title: no duplicates, none missing."""
    have = store.count_rows(table, [tid])
    return CheckOutcome(
        "lancedb_rows_match",
        have == expected,
        "" if have == expected else f"{have} rows in {table}, {expected} written",
        {"rows": have, "expected": expected, "table": table},
    )


@per_title_asset(
    group_name="serving",
    ins={
        "fused_shots": AssetIn(),
        "title_metadata_embedding": AssetIn(),
        "shots": AssetIn(),
        "video_embeddings": AssetIn(),  # for its thumbnail column
    },
    deps=["encoder_checkpoint"],
    pool=GPU_POOL,
    automation_condition=recompute(),
    kinds={"pytorch", "lancedb"},
    check_specs=[
        spec("contextual_embeddings", "rows_match_shots", "One vector per shot"),
        spec("contextual_embeddings", "finite_vectors", "No NaN/inf"),
        spec("contextual_embeddings", "unit_norm", "Unit-norm vectors"),
        spec("contextual_embeddings", "one_model_version", "One model_version per title"),
        spec("contextual_embeddings", "lancedb_rows_match", "LanceDB rows = shots"),
    ],
    description="Per-shot contextual embeddings from the current encoder checkpoint; also "
    "replaces the title's rows in LanceDB `shot_embeddings` (one commit), only for titles whose "
    "vectors passed their checks (one per shot, finite, unit norm, one model version).",
)
def contextual_embeddings(
    context: AssetExecutionContext,
    storage: StorageResource,
    lancedb: LanceDBResource,
    fused_shots: dict,
    title_metadata_embedding: dict,
    shots: dict,
    video_embeddings: dict,
):
    from mediafm_core.inference import embed_titles

    t0 = time.perf_counter()
    model, meta, version = load_current_model(storage)
    load_s = time.perf_counter() - t0
    fused = {t: vectors_of(fused_shots[t], "fused") for t in context.partition_keys}
    globs = {
        t: vectors_of(title_metadata_embedding[t])[0]
        for t in context.partition_keys
        if t in title_metadata_embedding
    }
    t1 = time.perf_counter()
    vectors = embed_titles(model, fused, globs)  # {tid: (n, R)}
    embed_s = time.perf_counter() - t1
    out, outcomes = checked_tables(shots, vectors, version, video_embeddings)
    good = {t: x for t, x in out.items() if t not in failures(outcomes)}
    t2 = time.perf_counter()
    store = lancedb.store()
    # one commit for the run's titles: at catalogue size every commit adds a fragment and a
    # version, so a storm of per-title commits costs 8x the commits (issue 17)
    rows = pa.concat_tables(list(good.values()), promote_options="default") if good else None
    write = store.replace_titles(SHOT_EMBEDDINGS, rows) if good else {}
    writes = dict.fromkeys(good, write)
    for t, w in writes.items():
        outcomes[t].append(lance_rows(store, w["table"], t, good[t].num_rows))
    served = serve_new_titles(storage, store, version, {t: fused[t] for t in good}, globs, shots)
    failed = failures(outcomes)
    space = store.serving_space()
    first = next((t for t in context.partition_keys if t in good), None)
    yield Output(
        keep_passing(out, failed),
        metadata={
            "serving_space": space.id if space else "",
            "also_in_serving_space": MetadataValue.json(served),
            "rows": sum(x.num_rows for x in good.values()),
            "failed_titles": MetadataValue.json(failed),
            "width": int(next(iter(vectors.values())).shape[1]),
            "model_version": version,
            "lancedb_table": SHOT_EMBEDDINGS,
            "lancedb_rows_total": store.count_rows(SHOT_EMBEDDINGS),
            "lancedb_writes": MetadataValue.json(writes),
            "stage_seconds": MetadataValue.json(
                {
                    "load_model": round(load_s, 3),
                    "embed": round(embed_s, 3),
                    "lancedb_write": round(time.perf_counter() - t2, 3),
                }
            ),
            **(shot_map_metadata(first, good[first]) if first else {}),
        },
    )
    yield from title_checks(context, "contextual_embeddings", outcomes)
    fail_titles("contextual_embeddings", failed, len(out))


def checked_tables(shots: dict, vectors: dict, version: str, video: dict) -> tuple[dict, dict]:
    """({title: contextual table or None}, {title: check outcomes}), checked BEFORE anything is
    written: a title whose vectors do not match its shots gets no table, only that failure."""
    out, outcomes = {}, {}
    for t, v in vectors.items():
        n = shots[t].num_rows
        if len(v) != n:
            out[t], outcomes[t] = (
                None,
                [
                    CheckOutcome(
                        "rows_match_shots",
                        False,
                        f"{len(v)} vectors for {n} shots",
                        {"rows": len(v), "shots": n},
                    )
                ],
            )
            continue
        out[t] = contextual_table(t, shots[t], unit(v), version, video.get(t))
        outcomes[t] = contextual_vectors(out[t], shots[t])
    return out, outcomes


def serve_new_titles(storage: StorageResource, store, version: str, fused, globs, shots) -> list:
    """While a new space is being built (LATEST is not the serving space), embed the titles the
    serving space lacks with ITS checkpoint too, so a cold start is searchable before the
    switch. Returns those title ids."""
    from mediafm_core.inference import embed_titles

    serving = store.serving_space()
    if serving is None or serving.model_version == version:
        return []
    have = store.titles_among(serving.table(SHOT_EMBEDDINGS), fused)
    new = [t for t in fused if t not in have]
    folder = storage.checkpoint_for(serving.model_version)
    if not new or folder is None:
        return []
    model, _, old = load_current_model(storage, folder)
    vectors = embed_titles(model, {t: fused[t] for t in new}, globs)
    store.replace_titles(
        SHOT_EMBEDDINGS,
        pa.concat_tables(
            [contextual_table(t, shots[t], unit(v), old) for t, v in vectors.items()],
            promote_options="default",
        ),
    )
    return sorted(vectors)


def title_row(tid: str, contextual: pa.Table, meta: pa.Table) -> pa.Table:
    """One title_embeddings row: the unit-normed mean of the title's contextual vectors."""
    vec = unit(vectors_of(contextual).mean(axis=0, keepdims=True))  # (1, D)
    m = meta.to_pylist()[0]
    return pa.table(
        {
            "title_id": [tid],
            "vector": vector_array(vec),
            "model_version": [contextual["model_version"][0].as_py()],
            "name": [m.get("name")],
            "genres": [m.get("genres") or []],
            "tags": [m.get("tags") or []],
            "n_shots": [contextual.num_rows],
        }
    )


@per_title_asset(
    group_name="serving",
    ins={"contextual_embeddings": AssetIn(), "titles": AssetIn()},
    automation_condition=recompute(),
    kinds={"numpy", "lancedb"},
    check_specs=[spec("title_embeddings", "lancedb_rows_match", "One LanceDB row per title")],
    description="One vector per title (mean of its contextual shot vectors, unit-normed) with "
    "name and genres; replaces the title's row in LanceDB `title_embeddings`.",
)
def title_embeddings(
    context: AssetExecutionContext,
    lancedb: LanceDBResource,
    contextual_embeddings: dict,
    titles: dict,
):
    out = {t: title_row(t, contextual_embeddings[t], titles[t]) for t in context.partition_keys}
    store = lancedb.store()
    by_space: dict[str, list] = {}  # one write per embedding space (one model version each)
    for t, x in out.items():
        by_space.setdefault(x["model_version"][0].as_py(), []).append(t)
    written = {}
    for tids in by_space.values():
        result = store.replace_titles(TITLE_EMBEDDINGS, pa.concat_tables([out[t] for t in tids]))
        written |= dict.fromkeys(tids, result["table"])
    serving = store.serving_space()
    if serving is not None and serving.model_version not in by_space:
        # a cold start during a space migration: its serving-space title row, from the shots
        # `contextual_embeddings` embedded with the serving checkpoint
        have = store.titles_among(serving.table(TITLE_EMBEDDINGS), out)
        shot_titles = store.titles_among(serving.table(SHOT_EMBEDDINGS), out)
        for t in [t for t in out if t not in have and t in shot_titles]:
            store.replace_titles(
                TITLE_EMBEDDINGS, title_row(t, store.read(SHOT_EMBEDDINGS, t), titles[t])
            )
    yield Output(
        out,
        metadata={
            "titles": len(out),
            "model_version": MetadataValue.json(
                sorted({x["model_version"][0].as_py() for x in out.values()})
            ),
            "lancedb_rows_total": store.count_rows(TITLE_EMBEDDINGS),
        },
    )
    outcomes = {t: [lance_rows(store, written[t], t, 1)] for t in out}
    yield from title_checks(context, "title_embeddings", outcomes)
    fail_titles("title_embeddings", failures(outcomes), len(out))


@asset(
    deps=["contextual_embeddings", "title_embeddings"],
    group_name="serving",
    owners=OWNERS,
    kinds={"lancedb"},
    retry_policy=STORAGE_RETRY,
    automation_condition=AutomationCondition.on_cron(ANN_INDEX_CRON),
    description="The ANN index of the serving LanceDB tables, kept current: built once a table "
    "is large enough (settings planned from the data), rows written since folded in, "
    "partitions retrained after 5 % changed or growth; then every table is compacted and its "
    "versions older than the retention removed (disk saved in the metadata). Every 6 hours "
    "after embeddings changed; a space switch also brings the new tables' index current.",
)
def ann_index(lancedb: LanceDBResource) -> MaterializeResult:
    store = lancedb.store()
    report, seconds = {}, {}
    for name in (SHOT_EMBEDDINGS, TITLE_EMBEDDINGS):
        if not store.has_table(name):
            continue
        t0 = time.perf_counter()
        report[name] = store.refresh_index(name)
        seconds[name] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    upkeep = store.upkeep()  # every table: compaction + versions past the retention removed
    space = store.serving_space()
    before = sum(u["before"]["bytes"] for u in upkeep.values())
    after = sum(u["after"]["bytes"] for u in upkeep.values())
    return MaterializeResult(
        metadata={
            "serving_space": space.id if space else "",
            "index": MetadataValue.json(report),
            "seconds": MetadataValue.json(seconds),
            "unindexed_rows_after": sum(r["after"]["unindexed"] for r in report.values()),
            "upkeep": MetadataValue.json(upkeep),
            "upkeep_seconds": round(time.perf_counter() - t0, 3),
            "disk_bytes_before": before,
            "disk_bytes_after": after,
            "disk_saved_bytes": before - after,
            "versions_removed": sum(
                u["before"]["versions"] - u["after"]["versions"] for u in upkeep.values()
            ),
            "retain_versions_s": store.config.retain_versions_s,
        }
    )
