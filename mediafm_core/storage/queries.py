"""Similarity queries over the store: clips embedded in context, and whole titles.

A clip's vector is the mean of its title's contextual shot vectors over the clip span, unit-normed
("embedding in context", DESIGN.md Model); the clip is never re-encoded alone.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from mediafm_core.errors import InputError
from mediafm_core.storage.lance_store import LanceStore, sql_quote
from mediafm_core.storage.schemas import SHOT_EMBEDDINGS, TITLE_EMBEDDINGS


def clip_span(shots: pa.Table, start_s: float | None, end_s: float | None) -> np.ndarray:
    """Indices (rows of `shots`) of the shots overlapping [start_s, end_s); all when unset."""
    starts = shots["start_s"].to_numpy()
    ends = shots["end_s"].to_numpy()
    lo = -np.inf if start_s is None else start_s
    hi = np.inf if end_s is None else end_s
    return np.flatnonzero((ends > lo) & (starts < hi))


def clip_vector(store: LanceStore, title_id: str, start_s=None, end_s=None):
    """(unit vector (D,), shot_index array of the span) for a clip of a stored title."""
    shots = store.read(SHOT_EMBEDDINGS, title_id)
    if shots.num_rows == 0:
        raise InputError(f"title {title_id!r}", "has no shot embeddings in the store")
    rows = clip_span(shots, start_s, end_s)
    if len(rows) == 0:
        raise InputError(f"title {title_id!r}", f"no shots overlap [{start_s}, {end_s}) s")
    vectors = np.stack(shots["vector"].to_numpy(zero_copy_only=False)[rows]).astype(np.float32)
    mean = vectors.mean(axis=0)  # (D,)
    return mean / max(float(np.linalg.norm(mean)), 1e-12), shots["shot_index"].to_numpy()[rows]


def similar_shots(store: LanceStore, title_id: str, start_s=None, end_s=None, k: int = 10):
    """Top-k shots nearest to the clip, leaving out the clip's own shots; `distance` is cosine
    distance (1 - cos). Raises `InputError` for an unknown title, an empty span or k < 1."""
    query, span = clip_vector(store, title_id, start_s, end_s)
    own = (
        f"NOT (title_id = {sql_quote(title_id)} AND shot_index >= {int(span.min())} "
        f"AND shot_index <= {int(span.max())})"
    )
    cols = ["title_id", "shot_index", "start_s", "end_s", "model_version", "distance"]
    return store.search(SHOT_EMBEDDINGS, query, k=k, where=own).select(cols)


def similar_titles(store: LanceStore, title_id: str, k: int = 10):
    """Top-k other titles nearest to `title_id`'s title embedding."""
    own = store.read(TITLE_EMBEDDINGS, title_id)
    if own.num_rows == 0:
        raise InputError(f"title {title_id!r}", "has no title embedding in the store")
    query = np.asarray(own["vector"][0].as_py(), np.float32)
    where = f"title_id != {sql_quote(title_id)}"
    cols = ["title_id", "name", "genres", "model_version", "distance"]
    return store.search(TITLE_EMBEDDINGS, query, k=k, where=where).select(cols)
