"""Per-statement cost of `mediafm sql` seeing the present: `SqlSession` (a fresh DuckDB cursor per
statement, spaces.json re-read, SET VARIABLE values carried) against one long-lived connection
(which never sees later commits), on a 10,000-row x 256 shot_embeddings table.

    OMP_NUM_THREADS=1 .venv/bin/python bench/sql_refresh.py
"""

import tempfile
import time

import numpy as np
import pyarrow as pa

from mediafm_core.storage.lance_store import LanceStore
from mediafm_core.storage.layout import StorageLayout
from mediafm_core.storage.sql import SqlSession, open_session
from mediafm_core.tables import vector_array


def run(f, n: int = 300) -> float:
    """Median milliseconds of n calls."""
    t = []
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        t.append(time.perf_counter() - t0)
    return float(np.median(t) * 1000)


def main() -> None:
    root = tempfile.mkdtemp()
    v = np.random.default_rng(0).normal(size=(10000, 256)).astype(np.float32)
    LanceStore(StorageLayout(root).lancedb).replace_titles(
        "shot_embeddings",
        pa.table(
            {
                "title_id": [f"t{i // 100}" for i in range(10000)],
                "shot_index": np.arange(10000) % 100,
                "start_s": np.zeros(10000),
                "end_s": np.ones(10000),
                "vector": vector_array(v),
                "model_version": ["m"] * 10000,
            }
        ),
    )
    q = "SELECT count(*) FROM shot_embeddings"
    session = SqlSession(root)
    session.sql("SET VARIABLE x = 1")
    session.sql(q).fetchall()
    con, _ = open_session(root)
    con.sql(q).fetchall()
    a = run(lambda: con.sql(q).fetchall())
    b = run(lambda: session.sql(q).fetchall())
    r = run(session.refresh)
    print(
        f"per statement, median of 300: long-lived connection {a:.2f} ms, SqlSession "
        f"{b:.2f} ms, refresh alone {r:.2f} ms"
    )


if __name__ == "__main__":
    main()
