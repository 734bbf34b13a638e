"""The five downstream tasks of the seed and their clip tables (DESIGN.md "clips (labels)").

A clip is a half-open span [shot_start, shot_end) of one title's shots. Multi-label tasks carry a
`labels` list<string>, retrieval a `label` bool, popularity a `score` double.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from mediafm_core.errors import InputError


@dataclass(frozen=True)
class TaskSpec:
    kind: str  # "multilabel" | "binary" | "ranking"
    metric: str  # name reported next to the number
    column: str  # label column in clips_<task>.parquet


TASKS: dict[str, TaskSpec] = {
    "ad_relevancy": TaskSpec("multilabel", "macro_ap", "labels"),
    "popularity": TaskSpec("ranking", "kendall_tau", "score"),
    "tone": TaskSpec("multilabel", "micro_ap", "labels"),
    "genre": TaskSpec("multilabel", "macro_ap", "labels"),
    "retrieval": TaskSpec("binary", "ap", "label"),
}


@dataclass
class Clips:
    """Clips of one task with their targets."""

    task: str
    title_ids: np.ndarray  # (N,) object array of str
    shot_start: np.ndarray  # (N,) int64
    shot_end: np.ndarray  # (N,) int64, exclusive
    y: np.ndarray  # (N, C) {0,1} multi-label, (N,) {0,1} binary, (N,) float ranking score
    label_names: list[str]  # C label names (multi-label); [] otherwise

    def __len__(self) -> int:
        return len(self.title_ids)


def task_spec(task: str, source: str = "task") -> TaskSpec:
    if task not in TASKS:
        raise InputError(source, f"unknown task {task!r}; known: {', '.join(TASKS)}")
    return TASKS[task]


def clips_from_columns(task: str, cols: dict, source: str = "clips") -> Clips:
    """Build `Clips` from columns of the clips contract, validating spans and labels."""
    spec = task_spec(task, source)
    for name in ("title_id", "shot_start", "shot_end", spec.column):
        if name not in cols:
            raise InputError(source, f"missing column {name!r} for task {task!r}")
    start = np.asarray(cols["shot_start"], dtype=np.int64)
    end = np.asarray(cols["shot_end"], dtype=np.int64)
    if len(start) == 0:
        raise InputError(source, "no clips")
    if (start < 0).any() or (end <= start).any():
        raise InputError(source, "clip spans must satisfy 0 <= shot_start < shot_end")
    tids = np.asarray([str(t) for t in cols["title_id"]], dtype=object)
    raw = cols[spec.column]
    names: list[str] = []
    if spec.kind == "multilabel":
        if any(v is None for v in raw):
            raise InputError(source, f"column {spec.column!r} has null label lists")
        names = sorted({str(lab) for v in raw for lab in v})
        index = {n: j for j, n in enumerate(names)}
        y = np.zeros((len(raw), len(names)), dtype=np.int8)
        for i, v in enumerate(raw):
            y[i, [index[str(lab)] for lab in v]] = 1
    else:
        y = np.asarray(raw, dtype=np.float64)
        if not np.isfinite(y).all():
            raise InputError(source, f"column {spec.column!r} has null, NaN or inf values")
        if spec.kind == "binary":
            y = y.astype(np.int8)
    return Clips(task, tids, start, end, y, names)


def read_clips(path: str | os.PathLike, task: str) -> Clips:
    """Read and validate clips_<task>.parquet."""
    from mediafm_core.tables import read_table

    spec = task_spec(task, str(path))
    table = read_table(path, required=("title_id", "shot_start", "shot_end", spec.column))
    cols = {c: table[c].to_pylist() for c in ("title_id", "shot_start", "shot_end", spec.column)}
    if any(v is None for c in ("title_id", "shot_start", "shot_end") for v in cols[c]):
        raise InputError(str(path), "null title_id or span")
    return clips_from_columns(task, cols, str(path))


def clip_features(per_title: dict[str, np.ndarray], clips: Clips, source: str = "embeddings"):
    """(N, D) clip features: mean of the title's per-shot vectors over each clip span."""
    from mediafm_core.inference import clip_vectors

    check_spans(per_title, clips, source)
    return clip_vectors(per_title, clips.title_ids, clips.shot_start, clips.shot_end)


def check_spans(per_title: dict[str, np.ndarray], clips: Clips, source: str) -> None:
    """InputError unless every clip's title has vectors covering the clip's span."""
    for i, (tid, b) in enumerate(zip(clips.title_ids, clips.shot_end)):
        vecs = per_title.get(tid)
        if vecs is None:
            raise InputError(source, f"no vectors for title {tid!r} (clip {i})")
        if b > len(vecs):
            raise InputError(source, f"clip {i} ends at shot {b}, title {tid!r} has {len(vecs)}")


def vectors_by_title(table, source: str) -> dict[str, np.ndarray]:
    """VectorTable -> title_id -> (n, D), checking each title's shot_index is 0..n-1."""
    out = table.by_title()
    starts = np.flatnonzero(np.r_[True, table.title_ids[1:] != table.title_ids[:-1]])
    for s, (tid, v) in zip(starts, out.items()):
        if not np.array_equal(table.shot_index[s : s + len(v)], np.arange(len(v))):
            raise InputError(source, f"title {tid!r}: shot_index is not 0..{len(v) - 1}")
    return out


def map_clips_to_shots(table, shots: dict):
    """Re-express clips given as time spans (start_s, end_s) in a title's detected shots.

    Labels written against ground-truth shots carry their time span; a detected shot belongs to
    the clip when more than half of it lies inside the span, and a clip always keeps at least the
    shot holding its midpoint. `table` is a pyarrow Table in the clips contract; `shots` maps
    title_id -> shots table (start_s, end_s). Tables without start_s come back unchanged."""
    import pyarrow as pa

    if "start_s" not in table.column_names:
        return table
    starts, ends = [], []
    spans = zip(
        table["title_id"].to_pylist(), table["start_s"].to_pylist(), table["end_s"].to_pylist()
    )
    bounds: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # title_id -> (start_s, end_s)
    for tid, a, b in spans:
        if tid not in bounds:
            bounds[tid] = tuple(
                np.asarray(shots[tid][c].to_numpy(), dtype=np.float64) for c in ("start_s", "end_s")
            )
        s, e = bounds[tid]
        idx = np.flatnonzero(np.clip(np.minimum(e, b) - np.maximum(s, a), 0, None) > 0.5 * (e - s))
        if len(idx) == 0:
            idx = np.flatnonzero((s <= (a + b) / 2) & (e > (a + b) / 2))[:1]
        starts.append(int(idx.min()) if len(idx) else 0)
        ends.append(int(idx.max()) + 1 if len(idx) else 1)
    for name, values in (("shot_start", starts), ("shot_end", ends)):
        column = pa.array(values, pa.int64())
        table = table.set_column(table.schema.get_field_index(name), name, column)
    return table
