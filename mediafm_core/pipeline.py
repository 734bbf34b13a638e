"""encode_title: one landing-zone title + its shots -> unimodal, fused and globals tables.

Stages (each timed): open the title, decode per-shot inputs once (frames + 16 kHz audio), run
the video, audio and text encoders in batches, embed the title metadata, fuse, write. All five
Parquet files are written into a staging folder first and moved into place only when every
stage succeeded, so a failure leaves no partial output. Encoders come from an `Encoders`
bundle that callers load once and pass to many `encode_title` calls.

`encode_modality` writes one unimodal table (or the globals table) on its own, for pipelines
that keep each modality as a separate asset; `mediafm_core.fusion.fuse_tables` joins them.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from mediafm_core.errors import InputError, TitleError
from mediafm_core.fusion import LAYOUT_KEY, FusionLayout, fuse
from mediafm_core.tables import read_table, vector_array, write_table_atomic

if TYPE_CHECKING:
    from mediafm_core.media.subtitles import Cue
    from mediafm_core.media.titles import Title

logger = logging.getLogger(__name__)

SHOT_COLUMNS = ("title_id", "shot_index", "start_frame", "end_frame", "start_s", "end_s")
# The video table's per-shot thumbnail (WebP bytes of the middle sampled frame, issue 13).
THUMBNAIL_FIELD = pa.field("thumbnail", pa.binary())


@dataclass
class EncodeResult:
    """What encode_title wrote and how long each stage took."""

    title_id: str
    n_shots: int
    out_dir: Path
    files: dict[str, Path]  # "video" | "audio" | "text" | "fused" | "globals" -> written file
    layout: FusionLayout
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds
    n_with_text: int = 0  # shots with timed text


@contextmanager
def _timed(timings: dict[str, float], stage: str):
    t0 = time.perf_counter()
    yield
    timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - t0


def load_shots(shots, title_id: str) -> pa.Table:
    """The title's rows of a shots table (path, pyarrow or polars), sorted by shot_index."""
    import pyarrow.compute as pc

    source = str(shots) if isinstance(shots, (str, os.PathLike)) else "shots table"
    if isinstance(shots, (str, os.PathLike)):
        table = read_table(shots, required=SHOT_COLUMNS)
    elif isinstance(shots, pa.Table):
        table = shots
    elif hasattr(shots, "to_arrow"):
        table = shots.to_arrow()
    else:
        raise TypeError(f"shots must be a path, pyarrow or polars table, not {type(shots)}")
    missing = [c for c in SHOT_COLUMNS if c not in table.column_names]
    if missing:
        raise InputError(source, f"missing column(s) {', '.join(missing)}")
    table = table.filter(pc.equal(table["title_id"], title_id))
    if table.num_rows == 0:
        raise TitleError(title_id, f"{source} has no shots for this title")
    table = table.sort_by("shot_index")
    _check_shots(table, title_id)
    return table


def _check_shots(table: pa.Table, title_id: str) -> None:
    idx = table["shot_index"].to_numpy()
    if (idx != np.arange(len(idx))).any():
        raise TitleError(title_id, "shot_index must run 0..n-1 without gaps or duplicates")
    start = table["start_s"].to_numpy().astype(np.float64)
    end = table["end_s"].to_numpy().astype(np.float64)
    if not (np.isfinite(start).all() and np.isfinite(end).all()) or (end <= start).any():
        raise TitleError(title_id, "shots need finite start_s < end_s")


def global_parts(metadata) -> list[str]:
    """The parts of the title text the global vector is made of: the synopsis, "Tags: ...",
    "Genres: ..." (those present), or the name when all are empty."""
    synopsis = (getattr(metadata, "synopsis", "") or "").strip()
    parts = [synopsis] if synopsis else []
    for label, field_name in (("Tags", "tags"), ("Genres", "genres")):
        items = [t.strip() for t in (getattr(metadata, field_name, ()) or ()) if t and t.strip()]
        if items:
            parts.append(f"{label}: " + ", ".join(items))
    return parts or [(getattr(metadata, "name", "") or "").strip()]


def global_vector(encoder, metadata) -> np.ndarray:
    """(1, D) float32: the title's [GLOBAL] input, the mean of the unit vectors of its
    `global_parts`, unit-normalised (a zero vector when every part is empty).

    Each part is embedded on its own, within the encoder's window (long ones in windows, see
    `mediafm_core.encoders.text`), and weighs the same: one string cut at the window (MiniLM's
    256 word pieces) lost the tags behind a long synopsis, and even uncut, mean pooling over
    one string lets 400 words of synopsis drown three tags (issue 19, case 6)."""
    vecs = np.asarray(encoder.encode(global_parts(metadata)), np.float64)  # (P, D)
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    unit = np.divide(vecs, norms, out=np.zeros_like(vecs), where=norms > 0)
    mean = unit.mean(axis=0, keepdims=True)
    norm = np.linalg.norm(mean)
    return (mean / norm if norm > 0 else mean).astype(np.float32)


def read_cues(title) -> list:
    """The title's cleaned subtitle cues ([] without subtitles); TitleError when malformed."""
    from mediafm_core.media.subtitles import read_subtitles

    path = getattr(title, "subtitles_path", None)
    return [] if path is None else read_subtitles(path, title.title_id)


def shot_texts(title, starts: np.ndarray, ends: np.ndarray, cues: list | None = None) -> list[str]:
    """Per-shot timed text from the title's subtitles ("" everywhere when it has none).

    `starts`, `ends`: (S,) shot times in seconds on the presentation timeline (the shots table's
    start_s, end_s), the clock subtitle cues are timed on. `cues`: already read cues (else the
    title's file is read)."""
    from mediafm_core.media.subtitles import assign_cues_to_shots

    return assign_cues_to_shots(read_cues(title) if cues is None else cues, starts, ends)


@dataclass
class TitleInputs:
    """A title's inputs, opened and checked before any model loads, so a bad title (media,
    shots or subtitles) fails in milliseconds rather than after the encoders' loading (issue 11,
    case 8)."""

    title: Title  # opened and probed
    shots: pa.Table  # the title's rows of the shots table, sorted by shot_index
    cues: list[Cue]  # cleaned subtitle cues, [] without subtitles


def read_title_inputs(title_dir, shots, landing_root=None) -> TitleInputs:
    """Open the title, select its shots and parse its subtitles; raises TitleError."""
    from mediafm_core.media.titles import open_title

    title = open_title(title_dir, landing_root)
    table = load_shots(shots, title.title_id)
    return TitleInputs(title, table, read_cues(title))


def _vector_table(cols: dict, vec_name: str, vectors: np.ndarray, meta: dict, **after) -> pa.Table:
    """Columns `cols`, then the vector column, then `after`; with string schema metadata."""
    table = pa.table({**cols, vec_name: vector_array(vectors), **after})
    return table.replace_schema_metadata({k.encode(): v.encode() for k, v in meta.items()})


def _encode_texts(title, starts: np.ndarray, ends: np.ndarray, encoder, cues=None) -> tuple:
    """(text vectors, has_text bool array) of a title's shots from its subtitles."""
    texts = shot_texts(title, starts, ends, cues)
    return encoder.encode(texts), np.array([bool(t) for t in texts], dtype=bool)


def build_tables(title_id, n, vectors: dict, has_text, glob, layout, profile: str) -> dict:
    """In-memory tables of the contracts; each carries the layout and its encoder identity."""
    keys = {
        "title_id": pa.array([title_id] * n, pa.string()),
        "shot_index": pa.array(np.arange(n, dtype=np.int64)),
    }
    flag = pa.array(has_text, pa.bool_())
    common = {"mediafm.profile": profile, LAYOUT_KEY.decode(): layout.to_json()}
    slots = {s.modality: s.encoder_json() for s in layout.slots}
    tables = {
        m: _vector_table(
            keys,
            "vector",
            vectors[m],
            {**common, "mediafm.encoder": slots[m]},
            **({"has_text": flag} if m == "text" else {}),
        )
        for m in slots
    }
    tables["fused"] = _vector_table(keys, "fused", vectors["fused"], common, has_text=flag)
    title_col = {"title_id": pa.array([title_id], pa.string())}
    meta = {**common, "mediafm.encoder": slots["text"]}
    tables["globals"] = _vector_table(title_col, "vector", glob, meta)
    return tables


def with_thumbnails(table: pa.Table, thumbnails: list[bytes]) -> pa.Table:
    """`table` plus a `thumbnail` binary column (one WebP picture per shot, in shot order)."""
    return table.append_column(THUMBNAIL_FIELD, pa.array(thumbnails, pa.binary()))


def write_all(tables: dict[str, pa.Table], out_dir: Path) -> dict[str, Path]:
    """Write every table into a staging folder, then move them into out_dir together."""
    import pyarrow.parquet as pq

    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".encode-staging-", dir=out_dir))
    try:
        for name, table in tables.items():
            pq.write_table(table, staging / f"{name}.parquet")
        files = {}
        for name in tables:
            files[name] = out_dir / f"{name}.parquet"
            os.replace(staging / f"{name}.parquet", files[name])
        return files
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _encode_shot_media(
    title,
    table,
    encoders: dict,
    n_frames: int,
    size: int,
    chunk: int,
    timings,
    thumbnails: list | None = None,
) -> dict:
    """{"video"|"audio": encoder} -> vectors, decoding shots in one pass and encoding `chunk`
    shots at a time, so a title with thousands of shots never holds all its frames in memory.
    `thumbnails`, when given, receives each shot's WebP thumbnail (bytes) from the same frames."""
    from mediafm_core.media.decode import iter_shot_inputs
    from mediafm_core.progress import progress_bar

    out: dict[str, list] = {m: [] for m in encoders}
    shots = iter_shot_inputs(title, table, n_frames, size)
    with progress_bar(f"encode {title.title_id}", table.num_rows, unit="shot") as bar:
        n = _encode_batches(shots, encoders, chunk, timings, thumbnails, out, bar)
    if n != table.num_rows:
        raise TitleError(
            title.title_id, f"decoder returned inputs for {n} of {table.num_rows} shots"
        )
    return {m: np.concatenate(v) for m, v in out.items()}


def _encode_batches(shots, encoders: dict, chunk: int, timings, thumbnails, out: dict, bar) -> int:
    """Encode `chunk` shots at a time into `out` (modality -> list of arrays); returns the
    number of shots the decoder gave."""
    from mediafm_core.media.thumbnails import shot_thumbnail

    n, done = 0, False
    while not done:
        batch = []
        with _timed(timings, "frames"):
            for item in shots:
                batch.append(item)
                if len(batch) == chunk:
                    break
            else:
                done = True
        n += len(batch)
        if not batch:
            break
        for m, enc in encoders.items():
            with _timed(timings, m):
                out[m].append(enc.encode([getattr(b, _INPUT[m]) for b in batch]))
        if thumbnails is not None:
            with _timed(timings, "thumbnails"):
                thumbnails.extend(shot_thumbnail(b.frames) for b in batch)
        bar.update(len(batch))
    return n


_INPUT = {"video": "frames", "audio": "audio"}  # ShotInputs field each encoder reads


def encode_title(
    title_dir,
    shots,
    out_dir,
    profile="offline",
    encoders=None,
    frames_per_shot: int | None = None,
    device: str | None = None,
    landing_root=None,
    shot_chunk: int = 64,
    inputs: TitleInputs | None = None,
) -> EncodeResult:
    """Encode one title into out_dir/{video,audio,text,fused,globals}.parquet.

    `shots` is a shots Parquet path or table (rows of other titles are ignored); `encoders` an
    `Encoders` bundle to reuse (else one is loaded from `profile`, after the title, its shots
    and its subtitles were read and checked); `inputs` the title already read by
    `read_title_inputs` (then `title_dir`, `shots` and `landing_root` are not read again);
    `shot_chunk` shots are decoded and encoded at a time."""
    from mediafm_core.encoders.profiles import Encoders

    timings: dict[str, float] = {}
    with _timed(timings, "open"):  # before the models: a bad title fails in milliseconds
        inputs = inputs or read_title_inputs(title_dir, shots, landing_root)
    with _timed(timings, "load_encoders"):
        enc = encoders or Encoders.from_profile(profile, device=device)
    title, table = inputs.title, inputs.shots
    n = table.num_rows
    n_frames = frames_per_shot or enc.profile.frames_per_shot
    starts, ends = table["start_s"].to_numpy(), table["end_s"].to_numpy()
    try:
        with _timed(timings, "text"):
            text_vectors, has_text = _encode_texts(title, starts, ends, enc.text, inputs.cues)
            vectors = {"text": text_vectors}
            glob = global_vector(enc.text, title.metadata)  # (1, D_text)
        media = {"video": enc.video, "audio": enc.audio}
        size = enc.profile.frame_size
        thumbs: list[bytes] = []
        vectors.update(
            _encode_shot_media(title, table, media, n_frames, size, shot_chunk, timings, thumbs)
        )
    except ValueError as exc:  # encoder input checks (NaN audio, empty shots, bad widths)
        raise TitleError(title.title_id, str(exc)) from exc
    layout = FusionLayout.from_infos(enc.infos())
    with _timed(timings, "fusion"):
        vectors["fused"] = fuse(title.title_id, layout, vectors)
    with _timed(timings, "write"):
        tables = build_tables(title.title_id, n, vectors, has_text, glob, layout, enc.profile.name)
        tables["video"] = with_thumbnails(tables["video"], thumbs)
        files = write_all(tables, Path(out_dir))
    logger.info("title %r: %d shots encoded into %s", title.title_id, n, out_dir)
    return EncodeResult(
        title.title_id, n, Path(out_dir), files, layout, timings, int(np.sum(has_text))
    )


@dataclass
class ModalityResult:
    """What encode_modality wrote."""

    title_id: str
    modality: str  # "video" | "audio" | "text" | "globals"
    path: Path
    n_rows: int  # shots (or 1 for globals)
    seconds: float  # wall time of decode + encode + write
    n_with_text: int = 0  # text only: shots with timed text


def encode_modality(
    modality: str,
    title_dir,
    shots,
    encoder,
    out_path,
    frames_per_shot: int = 8,
    frame_size: int = 224,
    landing_root=None,
    shot_chunk: int = 64,
) -> ModalityResult:
    """One unimodal table (or globals) of a title, for pipelines that keep each modality as
    its own asset; `fuse_tables` joins them. `shots` is ignored for "globals"."""
    from mediafm_core.media.titles import open_title

    if modality not in ("globals", "text", *_INPUT):
        raise ValueError(f"unknown modality {modality!r}; use video, audio, text or globals")
    t0 = time.perf_counter()
    title = open_title(title_dir, landing_root)
    flags: dict = {}
    if modality == "globals":
        vectors, keys = global_vector(encoder, title.metadata), None
    else:
        table = load_shots(shots, title.title_id)
        keys = np.arange(table.num_rows, dtype=np.int64)
        vectors, flags = _one_modality(
            title, table, modality, encoder, frames_per_shot, frame_size, shot_chunk
        )
    meta = {"mediafm.encoder": json.dumps(encoder.info.to_dict())}
    cols = {"title_id": pa.array([title.title_id] * len(vectors), pa.string())}
    if keys is not None:
        cols["shot_index"] = pa.array(keys)
    table_out = _vector_table(cols, "vector", vectors, meta, **flags)
    path = Path(out_path)
    write_table_atomic(table_out, path)
    n_text = sum(flags["has_text"].to_pylist()) if "has_text" in flags else 0
    return ModalityResult(
        title.title_id, modality, path, len(vectors), time.perf_counter() - t0, n_text
    )


def _one_modality(title, table, modality, encoder, n_frames, size, chunk):
    """-> (vectors, extra columns) of one shot modality; input errors name the title."""
    try:
        if modality == "text":
            starts, ends = table["start_s"].to_numpy(), table["end_s"].to_numpy()
            vectors, has_text = _encode_texts(title, starts, ends, encoder)
            return vectors, {"has_text": pa.array(has_text, pa.bool_())}
        if modality in _INPUT:
            thumbs: list[bytes] | None = [] if modality == "video" else None
            out = _encode_shot_media(
                title, table, {modality: encoder}, n_frames, size, chunk, {}, thumbs
            )
            extra = {"thumbnail": pa.array(thumbs, pa.binary())} if thumbs is not None else {}
            return out[modality], extra
    except ValueError as exc:
        raise TitleError(title.title_id, str(exc)) from exc
