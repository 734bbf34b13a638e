"""Parquet tables of the data contracts (DESIGN.md "Data contracts"), read and written with checks.

Every vector column is float32; a table holds one row per shot ordered by `shot_index` within a
title. Readers validate and raise `InputError` naming the file and the problem: missing columns,
empty tables, ragged vector widths, NaN or inf values, duplicate keys.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mediafm_core.errors import InputError


@dataclass
class VectorTable:
    """Rows of (title_id, shot_index, vector), sorted by title then shot."""

    title_ids: np.ndarray  # (N,) object array of str
    shot_index: np.ndarray  # (N,) int64
    vectors: np.ndarray  # (N, D) float32
    extra: dict[str, np.ndarray]  # other columns by name (e.g. has_text)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def by_title(self) -> dict[str, np.ndarray]:
        """title_id -> (n_shots, D) float32, shots in order. Titles in first-seen order."""
        out: dict[str, np.ndarray] = {}
        if len(self.title_ids) == 0:
            return out
        starts = np.flatnonzero(np.r_[True, self.title_ids[1:] != self.title_ids[:-1]])
        ends = np.r_[starts[1:], len(self.title_ids)]
        for s, e in zip(starts, ends):
            out[str(self.title_ids[s])] = self.vectors[s:e]
        return out


def vector_array(vectors: np.ndarray) -> pa.FixedSizeListArray:
    """(N, D) float array -> Arrow fixed_size_list<float32>[D]."""
    v = np.ascontiguousarray(vectors, dtype=np.float32)
    if v.ndim != 2:
        raise ValueError(f"expected a 2-D array of vectors, got shape {v.shape}")
    return pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), v.shape[1])


def column_width(table: pa.Table, column: str) -> int:
    """Width of a vector column (fixed-size list, else the first row's length)."""
    t = table.schema.field(column).type
    if pa.types.is_fixed_size_list(t):
        return int(t.list_size)
    return len(table[column][0]) if table.num_rows else 0


def one_width(widths: dict[str, int], source: str, what: str = "fused width") -> int:
    """The one width shared by every title (title_id -> width), else ONE `InputError` naming
    `source`, each width and the titles that have it (a catalogue half re-encoded with another
    encoder profile; issue 12 part 5)."""
    by_width: dict[int, list[str]] = {}
    for tid, w in sorted(widths.items()):
        by_width.setdefault(int(w), []).append(tid)
    if len(by_width) <= 1:
        return next(iter(by_width), 0)
    parts = []
    for w, tids in sorted(by_width.items()):
        shown = ", ".join(tids[:5]) + (f" and {len(tids) - 5} more" if len(tids) > 5 else "")
        parts.append(f"{w} ({shown})")
    raise InputError(
        source,
        f"titles have mixed {what}s: {'; '.join(parts)}; re-encode them "
        "with one encoder profile, or train a new space on one width",
    )


def _vectors_from_column(col: pa.ChunkedArray, path: str, name: str) -> np.ndarray:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    t = arr.type
    if pa.types.is_fixed_size_list(t):
        if arr.null_count:
            raise InputError(path, f"column {name!r} has null vectors")
        flat = arr.flatten().to_numpy(zero_copy_only=False)
        return flat.reshape(len(arr), t.list_size).astype(np.float32, copy=False)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        if arr.null_count:
            raise InputError(path, f"column {name!r} has null vectors")
        lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
        if len(lengths) and (lengths.min() != lengths.max()):
            raise InputError(
                path,
                f"column {name!r} has ragged vector widths ({int(lengths.min())}..."
                f"{int(lengths.max())})",
            )
        width = int(lengths[0]) if len(lengths) else 0
        flat = arr.flatten().to_numpy(zero_copy_only=False)
        return flat.reshape(len(arr), width).astype(np.float32, copy=False)
    raise InputError(path, f"column {name!r} is {t}, expected a list of floats")


def read_table(path: str | os.PathLike, required: tuple[str, ...] = ()) -> pa.Table:
    """Read a Parquet file, checking it exists, parses, is non-empty and has `required` columns."""
    p = str(path)
    if not Path(p).exists():
        raise InputError(p, "file not found")
    try:
        table = pq.read_table(p)
    except Exception as exc:  # pyarrow raises several types for unreadable files
        raise InputError(
            p, f"not a readable Parquet file ({exc.__class__.__name__}: {exc})"
        ) from exc
    missing = [c for c in required if c not in table.column_names]
    if missing:
        raise InputError(p, f"missing column(s) {', '.join(missing)}; has {table.column_names}")
    if table.num_rows == 0:
        raise InputError(p, "table is empty")
    return table


def read_vectors(
    path: str | os.PathLike,
    column: str = "vector",
    keys: tuple[str, ...] = ("title_id", "shot_index"),
    extra: tuple[str, ...] = (),
) -> VectorTable:
    """Read a vector table keyed by `keys` (title_id[, shot_index]) and validate it."""
    p = str(path)
    table = read_table(p, required=(*keys, column))
    vectors = _vectors_from_column(table[column], p, column)
    if vectors.shape[1] == 0:
        raise InputError(p, f"column {column!r} has zero-width vectors")
    bad = ~np.isfinite(vectors)
    if bad.any():
        row = int(np.flatnonzero(bad.any(axis=1))[0])
        raise InputError(p, f"column {column!r} has NaN or inf values (first at row {row})")
    title_ids = np.asarray(table["title_id"].to_pylist(), dtype=object)
    if "shot_index" in keys:
        shot_index = table["shot_index"].to_numpy().astype(np.int64)
    else:
        shot_index = np.zeros(len(title_ids), dtype=np.int64)
    order = np.lexsort((shot_index, title_ids.astype(str)))
    title_ids, shot_index, vectors = title_ids[order], shot_index[order], vectors[order]
    dup = (title_ids[1:] == title_ids[:-1]) & (shot_index[1:] == shot_index[:-1])
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise InputError(p, f"duplicate key ({title_ids[i]!r}, {int(shot_index[i])})")
    extras = {
        name: table[name].to_numpy(zero_copy_only=False)[order]
        for name in extra
        if name in table.column_names
    }
    return VectorTable(title_ids, shot_index, np.ascontiguousarray(vectors), extras)


def write_table_atomic(table: pa.Table, path: str | os.PathLike) -> None:
    """Write Parquet to a temp file beside `path`, then rename: readers never see half a file."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; artefacts are meant to be shared
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_vectors(
    path: str | os.PathLike,
    title_ids,
    shot_index,
    vectors: np.ndarray,
    column: str = "vector",
    **extra_columns,
) -> None:
    """Write (title_id, shot_index, <column>, **extra) atomically; shot_index=None omits it."""
    cols: dict[str, pa.Array] = {"title_id": pa.array([str(t) for t in title_ids], pa.string())}
    if shot_index is not None:
        cols["shot_index"] = pa.array(np.asarray(shot_index, dtype=np.int64))
    cols[column] = vector_array(vectors)
    for name, values in extra_columns.items():
        cols[name] = pa.array(values)
    write_table_atomic(pa.table(cols), path)
