"""Training data as a dataset on storage: an index of titles over Parquet files, read by window.

The graph's training dataset is the folder of per-title Parquet files the `fused_shots` asset
writes (`<root>/artefacts/fused_shots/<title_id>.parquet`, each replaced in one write-then-rename,
or one PUT on `s3://`), and likewise `title_metadata_embedding` for the [GLOBAL] vectors. A single
Parquet file of many titles (the CLI's `mediafm encode` output, concatenated) works the same way.

Opening a dataset reads only Parquet footers (row counts, schemas, `title_id` statistics) and, for
row groups holding several titles, their `title_id` column; it keeps one small `TitleSlice` per
title (O(titles), about 200 bytes each). Vectors are read when a window needs them, so memory
depends on the batch and the read cache (`cache_mb`), never on the catalogue (issue 17). Reads
are counted per title (`reads`), so a DDP run can show that its ranks read disjoint shards.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mediafm_core.errors import InputError
from mediafm_core.tables import VectorTable, one_width

log = logging.getLogger(__name__)

DEFAULT_CACHE_MB = 256  # decoded row groups kept for reuse (per process); 0 = none


@dataclass(frozen=True)
class TitleSlice:
    """Where one title's rows lie: (row group, first row in it, rows) segments of one file."""

    path: str
    segments: tuple[tuple[int, int, int], ...]

    @property
    def n_rows(self) -> int:
        return sum(n for _, _, n in self.segments)


class InMemoryTitles:
    """A `VectorTable` held in memory behind the same interface as `ParquetTitles` (tests, small
    runs, callers that already hold the table)."""

    def __init__(self, table: VectorTable):
        self._titles = table.by_title()
        self.dim = table.dim
        self.reads: dict[str, int] = {}

    @property
    def title_ids(self) -> list[str]:
        return sorted(self._titles)

    def __contains__(self, title_id: str) -> bool:
        return title_id in self._titles

    def n_rows(self, title_id: str) -> int:
        return len(self._titles[title_id])

    def read(self, title_id: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """(stop - start, D) float32 rows of one title, in shot order."""
        self.reads[title_id] = self.reads.get(title_id, 0) + 1
        return self._titles[title_id][start:stop]


class ParquetTitles:
    """Titles of one or more Parquet files, read on demand (see the module docstring).

    `column` is the vector column; `per_shot` False for one row per title (globals). Raises
    `InputError` naming the file for a missing path, unreadable files, missing columns, mixed
    widths, a title in two files; and naming the title for NaN/inf or duplicate shots on read.
    """

    def __init__(
        self,
        uri: str,
        column: str = "fused",
        per_shot: bool = True,
        cache_mb: float = DEFAULT_CACHE_MB,
        filesystem=None,
    ):
        self.uri, self.column, self.per_shot = str(uri), column, per_shot
        self.fs, root = _filesystem(self.uri, filesystem)
        self._slices: dict[str, TitleSlice] = {}
        widths: dict[str, int] = {}
        for path in _parquet_files(self.fs, root, self.uri):
            widths.update(self._index_file(path))
        if not self._slices:
            raise InputError(self.uri, "no titles: the dataset holds no Parquet rows")
        self.dim = one_width(widths, self.uri, what=f"{column} width")
        self._ids = sorted(self._slices)
        self._cache: OrderedDict[tuple[str, int], pa.Table] = OrderedDict()
        self._cache_bytes, self._cache_limit = 0, int(cache_mb * 2**20)
        self._lock = threading.Lock()  # the prefetch thread and the trainer share the cache
        self.reads: dict[str, int] = {}

    # ---- index
    def _index_file(self, path: str) -> dict[str, int]:
        """Add the titles of one file to the index; returns {title_id: width} for its titles."""
        try:
            meta = pq.ParquetFile(path, filesystem=self.fs).metadata
        except Exception as exc:  # pyarrow raises several types for unreadable files
            raise InputError(
                path, f"not a readable Parquet file ({exc.__class__.__name__}: {exc})"
            ) from exc
        schema = meta.schema.to_arrow_schema()
        needed = ("title_id", self.column) + (("shot_index",) if self.per_shot else ())
        missing = [c for c in needed if c not in schema.names]
        if missing:
            raise InputError(path, f"missing column(s) {', '.join(missing)}; has {schema.names}")
        width = _schema_width(schema.field(self.column).type, path, self.column)
        found: dict[str, list[tuple[int, int, int]]] = {}
        for rg in range(meta.num_row_groups):
            for tid, start, n in self._row_group_titles(path, meta, rg, schema):
                found.setdefault(tid, []).append((rg, start, n))
        for tid, segments in found.items():
            if tid in self._slices:
                raise InputError(path, f"title {tid!r} is also in {self._slices[tid].path}")
            self._slices[tid] = TitleSlice(path, tuple(segments))
        return {tid: width or self._first_width(tid) for tid in found}

    def _row_group_titles(self, path, meta, rg: int, schema) -> list[tuple[str, int, int]]:
        """(title_id, first row, rows) runs of one row group: from its statistics when it holds
        one title (no data read), else from its `title_id` column."""
        group = meta.row_group(rg)
        if group.num_rows == 0:
            return []
        stats = group.column(schema.get_field_index("title_id")).statistics
        if stats is not None and stats.has_min_max and stats.min == stats.max:
            return [(_as_str(stats.min), 0, group.num_rows)]
        col = pq.ParquetFile(path, filesystem=self.fs).read_row_group(rg, columns=["title_id"])
        ids = np.asarray(col["title_id"].to_pylist(), dtype=object)
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])  # runs; unsorted rows give
        ends = np.r_[starts[1:], len(ids)]  # several runs of one title, read and joined
        return [(str(ids[s]), int(s), int(e - s)) for s, e in zip(starts, ends)]

    def verify(self) -> None:
        """Read every row group once (one at a time: bounded memory) and raise `InputError`
        naming the file and row for NaN/inf vectors, before training starts. Used for single
        files; a dataset folder is checked upstream (the `fused_shots` asset checks) and again as
        each window is read."""
        for path in sorted({s.path for s in self._slices.values()}):
            f = pq.ParquetFile(path, filesystem=self.fs)
            base = 0
            for rg in range(f.metadata.num_row_groups):
                x = _vectors(f.read_row_group(rg, columns=[self.column])[self.column])
                bad = ~np.isfinite(x).all(axis=1) if x.size else np.zeros(0, bool)
                if bad.any():
                    row = base + int(np.flatnonzero(bad)[0])
                    raise InputError(
                        path, f"column {self.column!r} has NaN or inf values (first at row {row})"
                    )
                base += len(x)

    def _first_width(self, title_id: str) -> int:
        return int(self.read(title_id, 0, 1, count=False).shape[1])

    # ---- interface shared with InMemoryTitles
    @property
    def title_ids(self) -> list[str]:
        """Every title, sorted by id (the order `read_vectors` gives the in-memory path)."""
        return self._ids

    def __contains__(self, title_id: str) -> bool:
        return title_id in self._slices

    def n_rows(self, title_id: str) -> int:
        return self._slices[title_id].n_rows

    def read(
        self, title_id: str, start: int = 0, stop: int | None = None, count: bool = True
    ) -> np.ndarray:
        """(stop - start, D) float32 rows [start, stop) of one title, in shot order. Raises
        `InputError` naming the title for NaN/inf values or duplicate shot indices."""
        s = self._slices[title_id]
        parts = [self._segment(s.path, rg, a, n) for rg, a, n in s.segments]
        rows = parts[0] if len(parts) == 1 else pa.concat_tables(parts)
        if self.per_shot:
            shot = rows["shot_index"].combine_chunks().to_numpy(zero_copy_only=False)
            if len(shot) > 1 and not (np.diff(shot) > 0).all():
                if (np.diff(np.sort(shot)) == 0).any():
                    raise InputError(f"title {title_id!r}", f"duplicate shot_index in {s.path}")
                rows = rows.take(pa.array(np.argsort(shot, kind="stable")))
        rows = rows.slice(start, None if stop is None else max(0, stop - start))
        x = _vectors(rows[self.column])
        if not np.isfinite(x).all():
            raise InputError(
                f"title {title_id!r}", f"{self.column} has NaN or inf values ({s.path})"
            )
        if count:
            self.reads[title_id] = self.reads.get(title_id, 0) + 1
        return x

    def _segment(self, path: str, rg: int, start: int, n: int) -> pa.Table:
        """Rows [start, start + n) of one row group (decoded groups kept in a bounded LRU)."""
        key = (path, rg)
        with self._lock:
            table = self._cache.get(key)
            if table is not None:
                self._cache.move_to_end(key)
        if table is None:
            cols = [self.column] + (["shot_index"] if self.per_shot else [])
            table = pq.ParquetFile(path, filesystem=self.fs).read_row_group(rg, columns=cols)
            self._remember(key, table)
        return table.slice(start, n)

    def _remember(self, key, table: pa.Table) -> None:
        """Keep `table` in the LRU; the newest group stays even past the limit, so reading the
        titles of one large row group in order decodes it once (a single-file input)."""
        with self._lock:
            self._cache[key] = table
            self._cache_bytes += table.nbytes
            while self._cache_bytes > self._cache_limit and len(self._cache) > 1:
                _, old = self._cache.popitem(last=False)
                self._cache_bytes -= old.nbytes


def open_titles(
    source, column: str = "fused", per_shot: bool = True, cache_mb: float = DEFAULT_CACHE_MB
):
    """A title source for training: `source` is a `VectorTable` (kept in memory), a Parquet file,
    or a folder of Parquet files (local or `s3://`), e.g. `<root>/artefacts/fused_shots`."""
    if source is None or isinstance(source, (InMemoryTitles, ParquetTitles)):
        return source
    if isinstance(source, VectorTable):
        return InMemoryTitles(source)
    titles = ParquetTitles(str(source), column=column, per_shot=per_shot, cache_mb=cache_mb)
    if str(source).endswith(".parquet"):
        titles.verify()  # one file: checked whole before training, one group at a time
    return titles


# ---- helpers
def _filesystem(uri: str, filesystem=None):
    """(pyarrow filesystem, path inside it) for a local path or an `s3://` URI."""
    from pyarrow import fs as pafs

    if filesystem is not None:
        return filesystem, uri
    if uri.startswith("s3://"):
        from mediafm_core.storage.s3 import arrow_filesystem

        return arrow_filesystem(), uri.removeprefix("s3://")
    import os

    return pafs.LocalFileSystem(), os.path.abspath(uri)


def _parquet_files(fs, root: str, uri: str) -> list[str]:
    """The Parquet files of a file or folder (hidden and temporary files skipped), sorted."""
    from pyarrow import fs as pafs

    info = fs.get_file_info(root)
    if info.type == pafs.FileType.NotFound:
        raise InputError(uri, "file or folder not found")
    if info.type == pafs.FileType.File:
        return [root]
    found = fs.get_file_info(pafs.FileSelector(root, recursive=True))
    files = [
        f.path
        for f in found
        if f.type == pafs.FileType.File
        and f.base_name.endswith(".parquet")
        and not f.base_name.startswith(".")
    ]
    return sorted(files)


def _schema_width(t: pa.DataType, path: str, column: str) -> int:
    """Width of a fixed-size vector column from the schema alone; 0 for variable lists."""
    if pa.types.is_fixed_size_list(t):
        return int(t.list_size)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return 0
    raise InputError(path, f"column {column!r} is {t}, expected a list of floats")


def _vectors(col: pa.ChunkedArray) -> np.ndarray:
    """(N, D) float32 from a (fixed-size) list column."""
    arr = col.combine_chunks()
    if len(arr) == 0:
        return np.zeros((0, 0), np.float32)
    if pa.types.is_fixed_size_list(arr.type):
        width = arr.type.list_size
    else:
        width = int(pc.list_value_length(arr)[0].as_py())
    flat = arr.flatten().to_numpy(zero_copy_only=False)
    return flat.reshape(len(arr), width).astype(np.float32, copy=False)


def _as_str(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
