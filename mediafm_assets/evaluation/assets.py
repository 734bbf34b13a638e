"""Evaluation: frozen linear probes on the seed's five tasks, as the ablation table
(video_only, fused, contextual, clip_alone), via `mediafm_core.evaluation.run_ablation`.

Labels follow the clips contract and are read from <root>/labels/clips_<task>.parquet, else from
<landing>/labels/ (where synth-media writes them). Clips given in truth-shot indices with a time
span (start_s, end_s) are mapped onto the detected shots by time overlap. Clips of titles without
embeddings (a failed title) are left out and counted.
Scores go to <root>/probes/probe_scores.parquet (the `probe_scores` SQL view); final probe
weights per task, fitted on the contextual features of all clips, to <root>/probes/weights/.
"""

import time

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from dagster import AssetExecutionContext, AssetIn, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field
from upath import UPath

from mediafm_assets.partitions import ALLOW_MISSING, OWNERS
from mediafm_assets.resources import StorageResource
from mediafm_assets.serving.assets import load_current_model


class ProbeConfig(Config):
    folds: int = Field(default=5, description="Outer folds, grouped by title (capped at #titles)")
    seed: int = Field(default=0, description="Fold assignment seed")


def label_table(storage: StorageResource, task: str) -> pa.Table | None:
    """clips_<task> rows from <root>/labels, else from <landing>/labels (folder or s3://)."""
    for path in (
        UPath(storage.layout().clips(task)),
        UPath(storage.landing_root()) / "labels" / f"clips_{task}.parquet",
    ):
        if path.exists():
            with path.open("rb") as f:
                return pq.read_table(f)
    return None


def load_clips(storage: StorageResource, shots: dict) -> tuple[dict, dict]:
    """task -> Clips of the titles in `shots` (mapped onto detected shots); task -> left out."""
    from mediafm_core.probes.tasks import (
        TASKS,
        clips_from_columns,
        map_clips_to_shots,
        task_spec,
    )

    clips, dropped = {}, {}
    for task in TASKS:
        table = label_table(storage, task)
        if table is None:
            continue
        keep = pc.is_in(table["title_id"], pa.array(sorted(shots), pa.string()))
        dropped[task] = table.num_rows - int(pc.sum(keep).as_py() or 0)
        table = map_clips_to_shots(table.filter(keep), shots)
        if table.num_rows:
            cols = ["title_id", "shot_start", "shot_end", task_spec(task).column]
            clips[task] = clips_from_columns(task, {c: table[c].to_pylist() for c in cols}, task)
    return clips, dropped


def scores_table(results: dict, version: str) -> pa.Table:
    """Long format: one row per (features, task); `folds` holds the per-fold scores (the
    folds are the same for every row, so differences between rows can be paired)."""
    rows = [
        {
            "features": row,
            "task": task,
            "metric": r.metric,
            "mean": r.mean,
            "std": r.std,
            "n_clips": r.n_clips,
            "model_version": version,
            "folds": [float(f) for f in r.folds],
        }
        for row, per in results.items()
        for task, r in per.items()
    ]
    return pa.Table.from_pylist(rows)


def save_probe_weights(folder: str, contextual: dict, clips: dict) -> list[str]:
    """Fit each task's final probe on the clips' contextual features (task -> (N, F), the ones
    the ablation already computed); save as .npz under `folder` (a folder or s3://)."""
    from mediafm_core.probes.linear import fit_final_probe

    UPath(folder).mkdir(parents=True, exist_ok=True)
    written = []
    for task, c in clips.items():
        path = UPath(folder) / f"{task}.npz"
        with path.open("wb") as f:
            fit_final_probe(contextual[task], c).save(f)
        written.append(str(path))
    return written


def artefact_sources(storage: StorageResource) -> dict:
    """Title sources over the stored per-title Parquet artefacts (read title by title in the
    probes' scan; issue 17): fused, video and [GLOBAL] vectors (None where never written)."""
    from mediafm_core.storage.layout import join
    from mediafm_core.training.dataset import open_titles

    def source(asset: str, column: str, per_shot: bool = True):
        path = join(storage.layout().artefacts, asset)
        return open_titles(path, column, per_shot=per_shot) if UPath(path).exists() else None

    return {
        "fused": source("fused_shots", "fused"),
        "video": source("video_embeddings", "vector"),
        "globals_": source("title_metadata_embedding", "vector", per_shot=False),
    }


@asset(
    ins={"shots": AssetIn(metadata=ALLOW_MISSING)},  # shot times only, to map clips onto shots
    deps=[
        "fused_shots",
        "video_embeddings",
        "title_metadata_embedding",
        "contextual_embeddings",
        "encoder_checkpoint",
    ],
    group_name="evaluation",
    owners=OWNERS,
    kinds={"scikitlearn", "parquet"},
    description="Frozen linear probes on the five tasks: the ablation table (video_only, fused, "
    "contextual, clip_alone); scores in probe_scores.parquet, weights per task.",
)
def linear_probes(
    context: AssetExecutionContext,
    config: ProbeConfig,
    storage: StorageResource,
    shots: dict,
) -> MaterializeResult:
    from mediafm_core.errors import InputError
    from mediafm_core.evaluation import (
        ROWS,
        BenchmarkData,
        format_paired,
        format_table,
        results_json,
        run_ablation,
        streamed_features,
    )
    from mediafm_core.inference import DEFAULT_REPRESENTATION
    from mediafm_core.pictures import markdown_image, probe_chart

    t0 = time.perf_counter()
    sources = artefact_sources(storage)
    if sources["fused"] is None:
        raise InputError(storage.layout().artefacts, "no fused_shots yet")
    titles = set(sources["fused"].title_ids) & set(shots)
    clips, dropped = load_clips(storage, {t: shots[t] for t in titles})
    if not clips:
        raise InputError(storage.layout().labels, "no clips_<task>.parquet labels found")
    model, _, version = load_current_model(storage)
    folds = max(2, min(config.folds, len(titles)))  # grouped by title: <= #titles
    feats = streamed_features(
        **sources, clips=clips, model=model, representation=DEFAULT_REPRESENTATION, rows=ROWS
    )
    data = BenchmarkData({}, None, {}, clips)  # the clips; the features came from the scan
    results = run_ablation(data, model, folds=folds, seed=config.seed, features=feats)
    layout = storage.layout()
    UPath(layout.probes).mkdir(parents=True, exist_ok=True)
    with UPath(layout.probe_scores).open("wb") as f:  # a folder or s3://
        pq.write_table(scores_table(results, version), f)
    weights = save_probe_weights(f"{layout.probes}/weights", feats["contextual"], clips)
    t1 = time.perf_counter()
    chart = probe_chart(results)
    return MaterializeResult(
        metadata={
            "ablation_chart": MetadataValue.md(markdown_image(chart, "probe scores per task")),
            "ablation": MetadataValue.md(format_table(results)),
            "ablation_paired": MetadataValue.md(format_paired(results)),
            "chart_bytes": len(chart),
            "chart_seconds": round(time.perf_counter() - t1, 3),
            "results": MetadataValue.json(results_json(results)),
            "model_version": version,
            "titles": len(titles),
            "folds": folds,
            "clips": MetadataValue.json({t: len(c) for t, c in clips.items()}),
            "clips_left_out": MetadataValue.json(dropped),
            "probe_scores": MetadataValue.path(layout.probe_scores),
            "weights": MetadataValue.json(weights),
            "seconds": round(time.perf_counter() - t0, 2),
        }
    )
