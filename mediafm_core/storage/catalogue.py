"""Retiring a title: it leaves every table and every answer (DESIGN.md "A catalogue that changes").

`retire_title` removes the title's rows from LanceDB `shot_embeddings` and `title_embeddings`
(one delete commit per table, under the table's write lock), moves its Parquet artefacts out of
`artefacts/` (where the SQL views read) to `retired/<title_id>/<asset>.parquet`, and writes
`retired/<title_id>/RETIRED.json` last, as the record that retirement finished. Nothing is
destroyed that a mistaken retirement would need: the Parquet files and the landing folder stay.
Re-running is safe (every step is idempotent). In Dagster, `title_retirement_sensor` reads these
records (and `leftovers`) and requests a `retirement` run, which retires and deletes the
partition (mediafm_assets/ingest/retirement.py); the arrival sensor ignores a retired title
until it lands again with other content (issue 12).
"""

from __future__ import annotations

import json
import logging
import os
import time

from mediafm_core.errors import InputError
from mediafm_core.media.titles import TITLE_ID_RE
from mediafm_core.storage.layout import StorageLayout
from mediafm_core.storage.schemas import SHOT_EMBEDDINGS, TITLE_EMBEDDINGS

log = logging.getLogger(__name__)

RETIRED_MARKER = "RETIRED.json"


def _upath(uri: str):
    from upath import UPath

    from mediafm_core.storage.s3 import S3Settings, is_s3

    return UPath(uri, **S3Settings.from_env().fsspec_options()) if is_s3(uri) else UPath(uri)


def retire_title(
    root: str,
    title_id: str,
    reason: str = "retired",
    landing: str | None = None,
    must_exist: bool = True,
) -> dict:
    """Retire `title_id` under the storage `root`; returns what was removed:
    {"title_id", "rows": {table: n}, "artefacts": [asset, ...], "already_retired": bool}.

    The record keeps the title's landing-folder fingerprint (`landing`, default $MEDIAFM_LANDING
    or <root>/landing; None when the folder is gone): the arrival sensor re-admits the title
    only when it lands again with another one. Raises InputError for an invalid id, or (with
    `must_exist`) for a root that does not exist or a title the store holds nothing of."""
    if not TITLE_ID_RE.match(title_id or ""):
        raise InputError(f"title {title_id!r}", "is not a valid title id")
    if must_exist and not _upath(root).exists():  # a mistyped --root: create nothing there
        raise InputError(f"title {title_id!r}", f"storage root {root} does not exist")
    from mediafm_core.storage.lance_store import LanceStore

    layout = StorageLayout(root)
    marker = _upath(layout.retired) / title_id / RETIRED_MARKER
    store = LanceStore(layout.lancedb)
    rows = {t: store.delete_titles(t, [title_id]) for t in (SHOT_EMBEDDINGS, TITLE_EMBEDDINGS)}
    moved = _move_artefacts(layout, title_id)
    already = marker.exists()
    if must_exist and not already and not moved and not any(rows.values()):
        raise InputError(f"title {title_id!r}", f"is not in the store under {root}")
    if not already:
        from mediafm_core.storage.landing import scan_landing

        landing = landing or os.environ.get("MEDIAFM_LANDING") or layout.landing
        landed = scan_landing(landing).get(title_id)
        fingerprint = landed.fingerprint if landed else None
        record = {
            "title_id": title_id,
            "reason": reason,
            "retired_at": time.time(),
            "rows": rows,
            "artefacts": moved,
            "fingerprint": fingerprint,
        }
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps(record))
    log.info("retired %s (%s): rows %s, artefacts %s", title_id, reason, rows, moved)
    return {"title_id": title_id, "rows": rows, "artefacts": moved, "already_retired": already}


def _move_artefacts(layout: StorageLayout, title_id: str) -> list[str]:
    """Move artefacts/<asset>/<title_id>.parquet to retired/<title_id>/<asset>.parquet."""
    base = _upath(layout.artefacts)
    if not base.exists():
        return []
    moved = []
    for src in sorted(base.glob(f"*/{title_id}.parquet")):
        asset = src.parent.name
        dst = _upath(layout.retired) / title_id / f"{asset}.parquet"
        dst.parent.mkdir(parents=True, exist_ok=True)
        src.rename(dst)
        moved.append(asset)
    return moved


def retired_titles(root: str) -> dict[str, dict]:
    """title_id -> its RETIRED.json record, for every retired title (one listing)."""
    base = _upath(StorageLayout(root).retired)
    if not base.exists():
        return {}
    out = {}
    for marker in base.glob(f"*/{RETIRED_MARKER}"):
        try:
            out[marker.parent.name] = json.loads(marker.read_text())
        except (OSError, ValueError) as exc:
            log.warning("unreadable retirement record %s: %s", marker, exc)
    return out


def readmit_title(root: str, title_id: str) -> None:
    """Forget a retirement (the title landed again): its RETIRED.json goes; the moved Parquet
    files stay beside it until the new run writes fresh artefacts."""
    marker = _upath(StorageLayout(root).retired) / title_id / RETIRED_MARKER
    if marker.exists():
        marker.unlink()


def leftovers(root: str, title_ids) -> list[str]:
    """Those of `title_ids` (retired titles) that something wrote again since: a Parquet
    artefact under artefacts/ or rows in any LanceDB embedding table (every space's). Read
    only: for a sensor deciding whether a sweep is needed (a run in flight at retirement)."""
    title_ids = sorted(set(title_ids))
    if not title_ids:
        return []
    layout = StorageLayout(root)
    base = _upath(layout.artefacts)
    found = {t for t in title_ids if base.exists() and any(base.glob(f"*/{t}.parquet"))}
    from mediafm_core.storage.lance_store import LanceStore, title_filter
    from mediafm_core.storage.spaces import LOGICAL_TABLES, logical_name

    store = LanceStore(layout.lancedb)
    if _upath(layout.lancedb).exists():
        for name in store.db.table_names():
            if logical_name(name) in LOGICAL_TABLES:
                ids = (
                    store.db.open_table(name)
                    .to_lance()
                    .to_table(columns=["title_id"], filter=title_filter(title_ids))["title_id"]
                )
                found |= set(ids.to_pylist())
    return sorted(found)
