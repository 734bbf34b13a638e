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

The two embedding views read the serving embedding space's tables (`spaces.py`); the variables
`shot_embeddings_lance` / `title_embeddings_lance` hold their paths, and the table macros
`nearest_shots(q, k)` / `nearest_titles(q, k)` search them with `lance_vector_search`, adding
`distance` = cosine distance (1 - cos), the convention of `mediafm similar` too. A view whose source
does not exist yet is left out (and listed by the session's `missing`). Every value put into SQL
(paths, the root) is a quoted literal or a bound parameter, so a root such as `/data/o'brien`
works.

`SqlSession` runs each statement on a fresh cursor of one in-memory database, re-reading the
serving space first: the lance extension caches a dataset per path and per connection, so a
long-lived connection never sees later commits (lance-format/lance-duckdb#224), while a fresh
cursor does (~0.1 ms). Views, tables and macros live in the database and persist; `SET VARIABLE`
values are carried from one statement to the next; TEMP tables do not persist (issue 12, part 7).
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

from mediafm_core.errors import InputError
from mediafm_core.storage.layout import StorageLayout, is_remote, join
from mediafm_core.storage.schemas import SHOT_EMBEDDINGS, TITLE_EMBEDDINGS
from mediafm_core.storage.spaces import serving_tables

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
    con.execute(f"LOAD {literal(lance_extension_path())}")
    return con


def literal(value: str) -> str:
    """A SQL string literal: single quotes doubled (DuckDB table functions and replacement
    scans take no bound parameters for paths)."""
    return "'" + str(value).replace("'", "''") + "'"


def lance_paths(layout: StorageLayout) -> dict[str, str]:
    """logical embedding table -> `.lance` folder of the serving space's table."""
    return {
        name: join(layout.lancedb, f"{table}.lance")
        for name, table in serving_tables(layout.lancedb).items()
    }


def view_sources(layout: StorageLayout) -> dict[str, tuple[str, str]]:
    """view name -> (path that must exist, SELECT defining the view)."""
    titles = layout.artefact("titles")
    shots = layout.artefact("shots")
    lance = lance_paths(layout)
    return {
        "titles": (
            titles,
            f"SELECT * FROM read_parquet({literal(titles + '/*.parquet')}, union_by_name=true)",
        ),
        "shots": (
            shots,
            f"SELECT * FROM read_parquet({literal(shots + '/*.parquet')}, union_by_name=true)",
        ),
        "shot_embeddings": (
            lance[SHOT_EMBEDDINGS],
            f"SELECT * FROM {literal(lance[SHOT_EMBEDDINGS])}",
        ),
        "title_embeddings": (
            lance[TITLE_EMBEDDINGS],
            f"SELECT * FROM {literal(lance[TITLE_EMBEDDINGS])}",
        ),
        "probe_scores": (layout.probe_scores, f"SELECT * FROM {literal(layout.probe_scores)}"),
    }


# Table macros over the serving tables: `distance` is cosine distance (1 - cos), as in
# `mediafm similar`; lance_vector_search's own `_distance` depends on the index (squared L2
# without one), so it is dropped.
NEAREST_MACROS = {
    "nearest_shots": (SHOT_EMBEDDINGS, "title_id, shot_index, start_s, end_s, model_version"),
    "nearest_titles": (TITLE_EMBEDDINGS, "title_id, name, genres, model_version"),
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
    con.register(
        f"_{name}_arrow", ds.dataset(bucket_key, filesystem=filesystem(), format="parquet")
    )
    return f"SELECT * FROM _{name}_arrow"


def open_session(root: str):
    """Connection with the storage root's views; returns (connection, missing view names)."""
    con = connect()
    return con, create_views(con, root)


def create_views(con, root: str) -> list[str]:
    """(Re)create the views, macros and variables of `root` on `con`; returns missing views."""
    layout = StorageLayout(root)
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
            con.execute(f"DROP VIEW IF EXISTS {name}")
            continue
        try:
            if remote:
                select = _s3_parquet_view(con, name, path, select, filesystem)
            con.execute(f"CREATE OR REPLACE VIEW {name} AS {select}")
        except Exception as exc:  # duckdb raises IOException/BinderException for bad sources
            log.warning("view %s left out: %s", name, exc)
            missing.append(name)
    root_uri = root if remote else os.path.abspath(root)
    con.execute("SET VARIABLE mediafm_root = ?", [root_uri])  # getvariable('mediafm_root')
    lance = lance_paths(layout)
    for table, path in lance.items():
        con.execute(f"SET VARIABLE {table}_lance = ?", [path])
    for macro, (table, cols) in NEAREST_MACROS.items():
        con.execute(
            f"CREATE OR REPLACE MACRO {macro}(q, k) AS TABLE SELECT {cols}, "
            f"list_cosine_distance(CAST(vector AS FLOAT[]), CAST(q AS FLOAT[])) AS distance "
            f"FROM lance_vector_search({literal(lance[table])}, 'vector', CAST(q AS FLOAT[]), "
            f"k := k) ORDER BY distance"
        )
    return missing


class SqlSession:
    """An analyst's DuckDB session over a storage root that sees the latest committed data.

    Each `sql` call runs on a fresh cursor of one in-memory database (the lance extension keeps
    a dataset snapshot per connection), after re-reading the serving embedding space (a switch
    re-points the views). `SET VARIABLE` values carry over between statements.
    """

    def __init__(self, root: str):
        self.root = root
        self._db, self.missing = open_session(root)
        self._tables = serving_tables(StorageLayout(root).lancedb)
        self._cursor = self._db

    def refresh(self) -> None:
        """A fresh cursor for the next statement; views re-pointed if the space switched."""
        tables = serving_tables(StorageLayout(self.root).lancedb)
        previous = self._cursor
        self._cursor = self._db.cursor()
        _copy_variables(previous, self._cursor)
        if tables != self._tables:
            self.missing = create_views(self._cursor, self.root)
            self._tables = tables

    def sql(self, query: str):
        """Run one statement on the latest committed data; a relation or None."""
        self.refresh()
        return self._cursor.sql(query)


def _copy_variables(src, dst) -> None:
    """Carry `SET VARIABLE` values from one cursor to another (variables are per connection)."""
    for name, typ in src.execute("SELECT name, type FROM duckdb_variables()").fetchall():
        value = src.execute("SELECT getvariable(?)", [name]).fetchone()[0]
        quoted = '"' + name.replace('"', '""') + '"'
        dst.execute(f"SET VARIABLE {quoted} = CAST(? AS {typ})", [value])
