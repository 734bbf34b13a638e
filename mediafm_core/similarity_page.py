"""Similarity answers as one self-contained HTML page (issue 13): the query's thumbnails, then
each result's thumbnails with its title name, times and distance. Images are inline data URLs, so
the file opens anywhere (no server, no network); `mediafm similar --html` and `mediafm
similar-titles --html` write it, and so does the demo.

Thumbnails come from the `thumbnail` column of LanceDB `shot_embeddings` (see
`mediafm_core.media.thumbnails`); a shot stored without one shows a grey box.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import numpy as np
import pyarrow as pa

from mediafm_core.media.thumbnails import data_url
from mediafm_core.pictures import sheet_rows
from mediafm_core.storage.lance_store import LanceStore, sql_quote
from mediafm_core.storage.schemas import SHOT_EMBEDDINGS, TITLE_EMBEDDINGS

STRIP_SHOTS = 8  # thumbnails shown per title (spread evenly over it)

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin: 20px 0 6px; }
.row { display: flex; gap: 12px; align-items: flex-start; padding: 10px 0;
       border-top: 1px solid #ddd; }
.meta { width: 300px; flex: none; font-size: 13px; }
.meta b { font-size: 14px; } .dist { font-family: monospace; }
.thumbs { display: flex; flex-wrap: wrap; gap: 4px; }
figure { margin: 0; text-align: center; font-size: 11px; color: #555; }
figure img, figure .none { width: 120px; height: auto; display: block; }
figure .none { height: 68px; background: #ccc; }
"""


def _rows(store: LanceStore, where: str, columns: list[str]) -> pa.Table:
    """Rows of `shot_embeddings`; a store written before thumbnails gives a null column."""
    ds = store.open(SHOT_EMBEDDINGS).to_lance()
    have = [c for c in columns if c in ds.schema.names]
    t = ds.to_table(columns=have, filter=where)
    for c in columns:
        if c not in have:
            t = t.append_column(c, pa.nulls(t.num_rows, pa.binary()))
    return t


def shot_thumbnails(store: LanceStore, keys) -> dict[tuple[str, int], bytes | None]:
    """(title_id, shot_index) -> thumbnail bytes (None when stored without one)."""
    by_title: dict[str, list[int]] = {}
    for tid, idx in keys:
        by_title.setdefault(str(tid), []).append(int(idx))
    out: dict[tuple[str, int], bytes | None] = {}
    for tid, idx in by_title.items():
        where = (
            f"title_id = {sql_quote(tid)} AND shot_index IN "
            f"({', '.join(str(i) for i in sorted(set(idx)))})"
        )
        t = _rows(store, where, ["shot_index", "thumbnail"])
        out.update(
            {
                (tid, int(i)): b
                for i, b in zip(t["shot_index"].to_pylist(), t["thumbnail"].to_pylist())
            }
        )
    return out


def title_strip(
    store: LanceStore, title_id: str, n: int = STRIP_SHOTS, start_s=None, end_s=None
) -> list[dict]:
    """Up to `n` shots of a title (optionally those overlapping [start_s, end_s)), spread evenly:
    [{"shot_index", "start_s", "end_s", "thumbnail"}] in shot order."""
    t = _rows(
        store, f"title_id = {sql_quote(title_id)}", ["shot_index", "start_s", "end_s", "thumbnail"]
    ).sort_by("shot_index")
    rows = t.to_pylist()
    if start_s is not None or end_s is not None:
        lo = -np.inf if start_s is None else start_s
        hi = np.inf if end_s is None else end_s
        rows = [r for r in rows if r["end_s"] > lo and r["start_s"] < hi]
    if len(rows) > n:
        rows = [rows[i] for i in sheet_rows(len(rows), n)]
    return rows


def title_names(store: LanceStore) -> dict[str, str]:
    """title_id -> name, from `title_embeddings` (empty when the table does not exist yet)."""
    if not store.has_table(TITLE_EMBEDDINGS):
        return {}
    t = store.open(TITLE_EMBEDDINGS).to_lance().to_table(columns=["title_id", "name"])
    return {a: b or a for a, b in zip(t["title_id"].to_pylist(), t["name"].to_pylist())}


def _figure(thumb: bytes | None, caption: str) -> str:
    img = (
        f'<img src="{data_url(thumb)}" alt="{html.escape(caption)}">'
        if thumb
        else '<div class="none"></div>'
    )
    return f"<figure>{img}<figcaption>{html.escape(caption)}</figcaption></figure>"


def _strip(rows: list[dict]) -> str:
    figs = "".join(_figure(r["thumbnail"], f"#{r['shot_index']} {r['start_s']:.1f}s") for r in rows)
    return f'<div class="thumbs">{figs}</div>'


def _page(title: str, query_html: str, results_html: list[str]) -> str:
    body = "\n".join(results_html) or "<p>No results.</p>"
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<h2>Query</h2>{query_html}<h2>Results</h2>{body}</body></html>"
    )


def similar_shots_page(store: LanceStore, title_id: str, start_s, end_s, results: pa.Table) -> str:
    """HTML for `similar_shots` results: the clip's shots, then one row per result shot."""
    names = title_names(store)
    span = (
        "whole title"
        if start_s is None and end_s is None
        else f"[{start_s or 0:g} s, {'end' if end_s is None else f'{end_s:g} s'})"
    )
    query = (
        f'<div class="row"><div class="meta"><b>{html.escape(names.get(title_id, title_id))}'
        f"</b><br>{html.escape(title_id)} {span}</div>"
        f"{_strip(title_strip(store, title_id, STRIP_SHOTS * 2, start_s, end_s))}</div>"
    )
    rows = results.to_pylist()
    thumbs = shot_thumbnails(store, [(r["title_id"], r["shot_index"]) for r in rows])
    out = []
    for rank, r in enumerate(rows, 1):
        caption = f"#{r['shot_index']} {r['start_s']:.1f}-{r['end_s']:.1f}s"
        out.append(
            f'<div class="row result"><div class="meta">{rank}. <b>'
            f"{html.escape(names.get(r['title_id'], r['title_id']))}</b><br>"
            f"{html.escape(r['title_id'])} shot {r['shot_index']}, "
            f"{r['start_s']:.2f}-{r['end_s']:.2f} s<br>distance "
            f"<span class='dist'>{r['distance']:.4f}</span></div><div class='thumbs'>"
            f"{_figure(thumbs.get((r['title_id'], r['shot_index'])), caption)}</div></div>"
        )
    return _page(f"Shots most similar to {title_id} {span}", query, out)


def similar_titles_page(store: LanceStore, title_id: str, results: pa.Table) -> str:
    """HTML for `similar_titles` results: the query title's strip, then one strip per result."""
    names = title_names(store)
    query = (
        f'<div class="row"><div class="meta"><b>{html.escape(names.get(title_id, title_id))}'
        f"</b><br>{html.escape(title_id)}</div>{_strip(title_strip(store, title_id))}</div>"
    )
    out = []
    for rank, r in enumerate(results.to_pylist(), 1):
        tid = r["title_id"]
        genres = ", ".join(r.get("genres") or [])
        out.append(
            f'<div class="row result"><div class="meta">{rank}. <b>'
            f"{html.escape(r.get('name') or names.get(tid, tid))}</b><br>{html.escape(tid)}"
            f"{'<br>' + html.escape(genres) if genres else ''}<br>distance "
            f"<span class='dist'>{r['distance']:.4f}</span></div>"
            f"{_strip(title_strip(store, tid))}</div>"
        )
    return _page(f"Titles most similar to {names.get(title_id, title_id)}", query, out)


def write_page(page: str, path: str | os.PathLike) -> Path:
    """Write the HTML atomically (a temp file beside it, then rename); returns the path.
    Raises InputError naming `path` when it cannot be written (a folder, no permission)."""
    from mediafm_core.errors import InputError

    out = Path(path)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(page, encoding="utf-8")
        os.replace(tmp, out)
    except OSError as exc:
        if tmp.is_file():
            tmp.unlink()
        raise InputError(str(out), f"cannot write the HTML page: {exc.strerror or exc}") from None
    return out
