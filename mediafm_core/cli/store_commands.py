"""Analyst commands over the storage root: `sql`, `similar`, `similar-titles`.

The root is `--root`, else `$MEDIAFM_ROOT`, else `./.demo/storage` (what `make demo` writes).
A missing root, a bad `-k`, or SQL DuckDB refuses is one line on stderr and exit 2 (`InputError`).
`distance` is cosine distance (1 - cos) in every answer, as in the SQL macros `nearest_shots`
and `nearest_titles`; `similar` leaves the clip's own shots out.
"""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    """Add `sql`, `similar` and `similar-titles` to the `mediafm` parser."""
    p = sub.add_parser(
        "sql",
        help="DuckDB over the store (views: titles, shots, shot_embeddings, title_embeddings, "
        "probe_scores); interactive without a query",
    )
    _add_root(p)
    p.add_argument("query", nargs="?", help="SQL to run; omit for an interactive prompt")
    p.set_defaults(func=run_sql)

    p = sub.add_parser("similar", help="shots most similar to a clip, embedded in context")
    _add_root(p)
    p.add_argument("--title", required=True, help="title id of the clip")
    p.add_argument("--start", type=float, default=None, help="clip start, seconds")
    p.add_argument("--end", type=float, default=None, help="clip end, seconds")
    p.add_argument("-k", type=int, default=10, help="number of results (>= 1)")
    _add_html(p)
    p.set_defaults(func=run_similar)

    p = sub.add_parser("similar-titles", help="titles most similar to a title")
    _add_root(p)
    p.add_argument("--title", required=True, help="title id")
    p.add_argument("-k", type=int, default=10, help="number of results (>= 1)")
    _add_html(p)
    p.set_defaults(func=run_similar_titles)


def _add_html(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--html",
        metavar="OUT.html",
        default=None,
        help="also write the answer as one self-contained HTML page with thumbnails",
    )


def _add_root(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--root",
        default=None,
        help="storage root (folder or s3://bucket/prefix); default $MEDIAFM_ROOT or .demo/storage",
    )


def _root(args) -> str:
    """The storage root; a local one must exist (InputError otherwise)."""
    import os

    from mediafm_core.errors import InputError
    from mediafm_core.storage.layout import default_root, is_remote

    root = args.root or default_root()
    if not is_remote(root) and not os.path.isdir(root):
        raise InputError(root, "storage root does not exist (pass --root or set MEDIAFM_ROOT)")
    return root


def _k(args) -> int:
    from mediafm_core.errors import InputError

    if args.k < 1:
        raise InputError("-k", f"must be a positive number of results, got {args.k}")
    return args.k


def _store(args):
    from mediafm_core.storage.lance_store import LanceStore
    from mediafm_core.storage.layout import StorageLayout

    return LanceStore(StorageLayout(_root(args)).lancedb)


def _print_table(table) -> None:
    """Print an Arrow table or DuckDB relation as aligned text."""
    print(table.to_pandas().to_string(index=False) if hasattr(table, "to_pandas") else table)


def run_sql(args) -> int:
    from mediafm_core.storage.sql import SqlSession

    session = SqlSession(_root(args))
    if session.missing and not args.query:
        print(f"(views not available yet: {', '.join(session.missing)})", file=sys.stderr)
    if args.query:
        _print_sql(session, args.query)
        return 0
    return _repl(session)


def _print_sql(session, query: str) -> None:
    """Run one statement; DuckDB's error becomes one InputError line (exit 2)."""
    import duckdb

    from mediafm_core.errors import InputError

    try:
        rel = session.sql(query)
        text = None if rel is None else rel.df().to_string(index=False)
    except duckdb.Error as exc:
        problem = " ".join(str(exc).split())  # DuckDB messages span lines
        if session.missing and isinstance(exc, duckdb.CatalogException):
            problem += f" (views not available yet under this root: {', '.join(session.missing)})"
        raise InputError("query", problem) from None
    if text is not None:  # None for statements without a result (CREATE, SET, ...)
        print(text)


def _repl(session) -> int:
    """A minimal prompt: statements end with ';', `.quit` or EOF leaves. Each statement sees
    the latest committed data (`SqlSession`)."""
    from mediafm_core.errors import InputError

    tty = sys.stdin.isatty()  # piped SQL (mediafm sql < file.sql) runs without prompts
    if tty:
        print(
            "mediafm sql — DuckDB with views titles, shots, shot_embeddings, title_embeddings, "
            "probe_scores; each statement sees the latest commit. End statements with ';', "
            ".quit to leave."
        )
    buf: list[str] = []
    while True:
        try:
            line = input(("sql> " if not buf else "...> ") if tty else "")
        except EOFError:
            return 0
        if line.strip() in (".quit", ".exit", "\\q"):
            return 0
        buf.append(line)
        if not line.rstrip().endswith(";"):
            continue
        query, buf = "\n".join(buf), []
        try:
            _print_sql(session, query)
        except InputError as exc:
            print(f"error: {exc.problem}", file=sys.stderr)


def run_similar(args) -> int:
    from mediafm_core.storage.queries import similar_shots

    k = _k(args)
    store = _store(args)
    found = similar_shots(store, args.title, args.start, args.end, k=k)
    _print_table(found)
    if args.html:
        from mediafm_core.similarity_page import similar_shots_page, write_page

        page = similar_shots_page(store, args.title, args.start, args.end, found)
        print(f"page: {write_page(page, args.html)}")
    return 0


def run_similar_titles(args) -> int:
    from mediafm_core.storage.queries import similar_titles

    k = _k(args)
    store = _store(args)
    found = similar_titles(store, args.title, k=k)
    _print_table(found)
    if args.html:
        from mediafm_core.similarity_page import similar_titles_page, write_page

        print(f"page: {write_page(similar_titles_page(store, args.title, found), args.html)}")
    return 0
