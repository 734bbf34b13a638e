"""What the arrival sensor has seen, kept on the storage root instead of in its cursor (issue 17).

Dagster stores a sensor's cursor with every tick, so a cursor holding one fingerprint per title
grows with the catalogue (2.2 MB at 50 k titles, written every 10 s). Instead each state
`{title_id: (fingerprint, runs requested)}` is one Parquet snapshot under
`<root>/sensors/<sensor>/<token>.parquet`, named by a hash of its content, and the cursor holds
only the token:
1. A tick reads the snapshot its cursor names, and writes a new one only when something changed
   (atomically: temp file + rename locally, one PUT on S3).
2. The cursor and the run requests commit together; a tick that never committed leaves the
   cursor naming the old snapshot, so the retried tick recomputes the same runs and run keys
   (the daemon launches nothing twice). Same content, same token: a retry rewrites the same file.
3. Snapshots other than the one read and the one written are removed once older than `KEEP_S`
   (a tick in flight may still read the one before).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
import time

from mediafm_core.storage.layout import join

log = logging.getLogger(__name__)

KEEP_S = 3600.0  # older snapshots than this, neither read nor written by the tick, are removed

Seen = dict[str, tuple[str, int]]  # title_id -> (fingerprint, runs requested so far)


def _upath(uri: str):
    from upath import UPath

    from mediafm_core.storage.s3 import S3Settings, is_s3

    return UPath(uri, **S3Settings.from_env().fsspec_options()) if is_s3(uri) else UPath(uri)


def folder(root: str, sensor: str) -> str:
    """Where the sensor's snapshots live under the storage root."""
    return join(root, "sensors", sensor)


def token_of(seen: Seen) -> str:
    """16 hex digits of sha256 over the sorted entries: equal states share a token."""
    digest = hashlib.sha256()
    for tid in sorted(seen):
        fingerprint, runs = seen[tid]
        digest.update(f"{tid}\t{fingerprint}\t{runs}\n".encode())
    return digest.hexdigest()[:16]


def load(root: str, sensor: str, token: str | None) -> Seen:
    """The snapshot named `token` ({} for None). A missing or unreadable snapshot is logged and
    read as {}: the sensor then adopts known partitions without runs, as for a reset cursor."""
    import pyarrow.parquet as pq

    if not token:
        return {}
    path = _upath(folder(root, sensor)) / f"{token}.parquet"
    try:
        table = pq.read_table(io.BytesIO(path.read_bytes())).to_pydict()
    except (OSError, ValueError) as exc:
        log.warning("sensor state %s unreadable (%s); known titles are adopted again", path, exc)
        return {}
    return dict(zip(table["title_id"], zip(table["fingerprint"], table["runs"])))


def save(root: str, sensor: str, seen: Seen, previous: str | None = None) -> str:
    """Write `seen` as a snapshot (atomically) and return its token; removes old snapshots
    other than `previous` (the one this tick read)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    token = token_of(seen)
    ids = sorted(seen)
    table = pa.table(
        {
            "title_id": pa.array(ids, pa.string()),
            "fingerprint": pa.array([seen[t][0] for t in ids], pa.string()),
            "runs": pa.array([seen[t][1] for t in ids], pa.int32()),
        }
    )
    buf = io.BytesIO()
    pq.write_table(table, buf)
    base = _upath(folder(root, sensor))
    _write_atomic(base, f"{token}.parquet", buf.getvalue())
    _remove_old(base, keep={token, previous})
    return token


def _write_atomic(base, name: str, data: bytes) -> None:
    """Local: temp file beside the target, then rename. Object stores: one PUT (atomic)."""
    base.mkdir(parents=True, exist_ok=True)
    if base.protocol not in ("", "file", "local"):
        (base / name).write_bytes(data)
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=str(base))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, str(base / name))
    except BaseException:
        os.unlink(tmp) if os.path.exists(tmp) else None
        raise


def _remove_old(base, keep: set) -> None:
    now = time.time()
    for path in base.glob("*.parquet"):
        if path.stem in keep:
            continue
        try:
            mtime = path.stat().st_mtime
            if now - _seconds(mtime) > KEEP_S:
                path.unlink()
        except Exception as exc:  # best effort: removed by another tick, a transient S3 error
            log.debug("could not remove old sensor state %s: %s", path, exc)


def _seconds(value) -> float:
    return value.timestamp() if hasattr(value, "timestamp") else float(value)
