"""DuckDB session over the storage root: the `lance` extension plus ready views.

The extension file ships in the `duckdb-extension-lance` wheel (pinned to duckdb 1.5.5) and is
LOADed by its path, so nothing is downloaded. Views:

| view | source |
|---|---|
| titles | artefacts/titles/*.parquet (name, synopsis, tags, genres, duration) |
| shots | artefacts/shots/*.parquet |
| shot_embeddings | lancedb/shot_embeddings.lance |
| title_embeddings | lancedb/title_embeddings.lance |
| probe_scores | probes/probe_scores.parquet |

A view whose source does not exist yet is left out (and listed by `missing_views`). Vector search
from SQL: `SELECT * FROM lance_vector_search('<root>/lancedb/shot_embeddings.lance', 'vector',
[...]::FLOAT[], k := 10)`.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

from mediafm_core.errors import InputError
from mediafm_core.storage.layout import StorageLayout, is_remote
from mediafm_core.storage.schemas import SHOT_EMBEDDINGS, TITLE_EMBEDDINGS

log = logging.getLogger(__name__)


def lance_extension_path() -> str:
    """Path of the lance extension inside the duckdb-extension-lance package."""
    import duckdb
    import duckdb_extension_lance

    base = Path(duckdb_extension_lance.__file__).parent / "extensions"
    path = base / f"v{duckdb.__version__}" / "lance.duckdb_extension"
    if not path.exists():
        found = sorted(base.glob("*/lance.duckdb_extension"))
        raise InputError(
            str(path),
            f"no lance extension for duckdb {duckdb.__version__} (package has "
            f"{[p.parent.name for p in found]}); "
            f"install duckdb-extension-lance=={duckdb.__version__}",
        )
    return str(path)


def connect(database: str = ":memory:"):
    """A DuckDB connection with the lance extension loaded."""
    import duckdb

    con = duckdb.connect(database, config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{lance_extension_path()}'")
    return con


def view_sources(layout: StorageLayout) -> dict[str, tuple[str, str]]:
    """view name -> (path that must exist, SELECT defining the view)."""
    titles = layout.artefact("titles")
    shots = layout.artefact("shots")
    shot_lance = layout.lance_table(SHOT_EMBEDDINGS)
    title_lance = layout.lance_table(TITLE_EMBEDDINGS)
    return {
        "titles": (titles, f"SELECT * FROM read_parquet('{titles}/*.parquet', union_by_name=true)"),
        "shots": (shots, f"SELECT * FROM read_parquet('{shots}/*.parquet', union_by_name=true)"),
        "shot_embeddings": (shot_lance, f"SELECT * FROM '{shot_lance}'"),
        "title_embeddings": (title_lance, f"SELECT * FROM '{title_lance}'"),
        "probe_scores": (layout.probe_scores, f"SELECT * FROM '{layout.probe_scores}'"),
    }


def _exists(path: str) -> bool:
    if is_remote(path):
        return True  # cannot cheaply check; DuckDB reports a missing object when the view binds
    p = Path(path)
    return p.is_file() or (p.is_dir() and any(p.iterdir()))


def _s3_parquet_view(con, name: str, path: str, select: str, filesystem) -> str:
    """For an s3:// root: Parquet is read through pyarrow's S3 filesystem (DuckDB's httpfs
    extension is not bundled offline) and registered as an Arrow dataset; Lance tables are read
    by the lance extension itself (it takes AWS_* from the environment). `filesystem` returns
    the session's `pyarrow.fs.S3FileSystem` (built once). Returns the SELECT."""
    if path.endswith(".lance"):
        return select  # a .lance table (every other view source is Parquet)
    import pyarrow.dataset as ds

    bucket_key = path.split("://", 1)[1]
    con.register(f"_{name}_arrow", ds.dataset(bucket_key, filesystem=filesystem(),
                                              format="parquet"))  # fmt: skip
    return f"SELECT * FROM _{name}_arrow"


def open_session(root: str):
    """Connection with the storage root's views; returns (connection, missing view names)."""
    layout = StorageLayout(root)
    con = connect()
    missing = []
    remote = is_remote(root)
    filesystem = None
    if remote:
        from mediafm_core.storage.s3 import S3Settings, arrow_filesystem

        filesystem = functools.cache(arrow_filesystem)  # built once, at the first Parquet view
        if S3Settings.from_env().allow_http:  # the lance extension refuses plain HTTP otherwise
            os.environ.setdefault("AWS_ALLOW_HTTP", "true")
    for name, (path, select) in view_sources(layout).items():
        if not _exists(path):
            missing.append(name)
            continue
        try:
            if remote:
                select = _s3_parquet_view(con, name, path, select, filesystem)
            con.execute(f"CREATE OR REPLACE VIEW {name} AS {select}")
        except Exception as exc:  # duckdb raises IOException/BinderException for bad sources
            log.warning("view %s left out: %s", name, exc)
            missing.append(name)
    root_uri = root if remote else os.path.abspath(root)
    con.execute(f"SET VARIABLE mediafm_root = '{root_uri}'")  # getvariable('mediafm_root') in SQL
    return con, missing
