"""Small LanceDB rows for the storage tests: unit vectors and `shot_embeddings` rows of one title
(shared by tests/assets/test_storage.py, tests/core/test_analyst_sql.py and
tests/core/test_embedding_spaces.py)."""

import numpy as np
import pyarrow as pa

from mediafm_core.tables import vector_array


def unit_rows(n: int, d: int, seed: int) -> np.ndarray:
    """(n, d) float32 rows of unit length, seeded."""
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def shot_rows(title_id: str, n: int, d: int = 16, seed: int = 0, version: str = "m1") -> pa.Table:
    """`n` shots of `title_id`, 2 s each, with seeded unit vectors of width `d`."""
    return pa.table(
        {
            "title_id": [title_id] * n,
            "shot_index": np.arange(n, dtype=np.int64),
            "start_s": np.arange(n, dtype=np.float64) * 2.0,
            "end_s": np.arange(n, dtype=np.float64) * 2.0 + 2.0,
            "vector": vector_array(unit_rows(n, d, seed)),
            "model_version": [version] * n,
        }
    )
