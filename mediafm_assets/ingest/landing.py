"""Listing the landing zone (local folder or S3 prefix) for titles whose ready marker is present.

One `glob` of `<landing>/*/metadata.json` per tick: a single listing call on S3, however many
titles are waiting. Folders without the marker (still being copied) are not listed; folder names
that cannot be title ids are skipped with a warning.
"""

from __future__ import annotations

import logging
import re

from mediafm_core.storage.layout import is_remote

log = logging.getLogger(__name__)

READY_MARKER = "metadata.json"
_TITLE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,199}$")  # same rule as media.titles


def _filesystem(landing: str):
    import fsspec

    if is_remote(landing):
        protocol = landing.split("://", 1)[0]
        return fsspec.filesystem(protocol), landing.split("://", 1)[1]
    return fsspec.filesystem("file"), landing


def ready_titles(landing: str) -> list[str]:
    """Sorted ids of the titles whose `metadata.json` ready marker exists."""
    fs, base = _filesystem(landing)
    if not fs.exists(base):
        return []
    fs.invalidate_cache()  # S3 listings are cached by s3fs; every tick must see new objects
    found = []
    for path in fs.glob(f"{base.rstrip('/')}/*/{READY_MARKER}"):
        title_id = path.rstrip("/").split("/")[-2]
        if _TITLE_ID.match(title_id):
            found.append(title_id)
        else:
            log.warning("landing folder %r is not a valid title id; skipped", title_id)
    return sorted(set(found))
