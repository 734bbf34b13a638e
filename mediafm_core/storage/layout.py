"""Where everything lives under the storage root, for a local folder and for `s3://` alike.

```
<root>/landing/<title_id>/            landing zone (video.*, subtitles, metadata.json last)
<root>/artefacts/<asset>/<title>.parquet   per-title Parquet artefacts (Dagster IO manager)
<root>/labels/clips_<task>.parquet    probe labels in the clips contract
<root>/checkpoints/<model_version>/   encoder checkpoints (safetensors + JSON)
<root>/probes/probe_scores.parquet    the ablation table; probes/weights/ holds probe weights
<root>/lancedb/                       LanceDB tables shot_embeddings, title_embeddings
<root>/retired/<title_id>/            a retired title: RETIRED.json + its moved Parquet artefacts
<root>/sensors/title_arrival/<token>.parquet   what the arrival sensor has seen (fingerprints.py)
```
The root defaults to `$MEDIAFM_ROOT`, else `./.demo/storage`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_ROOT = ".demo/storage"  # used when neither --root nor $MEDIAFM_ROOT is given


def default_root() -> str:
    """The storage root from the environment, else the demo's local folder."""
    return os.environ.get("MEDIAFM_ROOT") or DEFAULT_ROOT


def is_remote(uri: str) -> bool:
    """True for object-store URIs (s3://, gs://, ...) that must not go through os.path."""
    return "://" in uri and not uri.startswith("file://")


def join(root: str, *parts: str) -> str:
    """Join URI parts with '/', keeping `s3://` roots intact; local roots become absolute."""
    base = root.rstrip("/") if is_remote(root) else os.path.abspath(root)
    return "/".join([base, *[p.strip("/") for p in parts if p]])


@dataclass(frozen=True)
class StorageLayout:
    """Paths of every stored thing under one root."""

    root: str  # local folder or s3://bucket/prefix

    @property
    def landing(self) -> str:
        return join(self.root, "landing")

    @property
    def lancedb(self) -> str:
        return join(self.root, "lancedb")

    @property
    def artefacts(self) -> str:
        return join(self.root, "artefacts")

    @property
    def labels(self) -> str:
        return join(self.root, "labels")

    @property
    def checkpoints(self) -> str:
        return join(self.root, "checkpoints")

    @property
    def probes(self) -> str:
        return join(self.root, "probes")

    @property
    def retired(self) -> str:
        return join(self.root, "retired")

    def artefact(self, asset: str, title_id: str | None = None) -> str:
        """Parquet path of a per-title artefact, or the asset's folder when title_id is None."""
        folder = join(self.artefacts, asset)
        return folder if title_id is None else join(folder, f"{title_id}.parquet")

    def clips(self, task: str) -> str:
        return join(self.labels, f"clips_{task}.parquet")

    @property
    def probe_scores(self) -> str:
        return join(self.probes, "probe_scores.parquet")

    def lance_table(self, name: str) -> str:
        """The `.lance` folder of a LanceDB table (what DuckDB's lance extension scans)."""
        return join(self.lancedb, f"{name}.lance")
