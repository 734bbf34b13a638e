"""Embedding spaces: which LanceDB tables `similar`, `similar-titles` and `mediafm sql` read.

An embedding space is one encoder checkpoint's output over one fused layout: its id is the
`model_version` plus the vector width (the checkpoint was trained on one fused layout, so the two
pin it; the width is what a table's schema can check). Vectors of two spaces must never be
compared, so each space has its own pair of tables:

| space | tables |
|---|---|
| the first one written (or an existing store's) | `shot_embeddings`, `title_embeddings` |
| any later one | `shot_embeddings__<slug>`, `title_embeddings__<slug>` (slug from the id) |

`<lancedb>/spaces.json` names the serving space and its tables (plus the one it replaced, for a
rollback). Rows of the serving space replace a title's rows in place; rows of another space (a
new checkpoint, `MEDIAFM_ENCODER_PROFILE` with another width) go to that space's tables while the
serving one keeps answering. When the new space holds every title the serving space holds, in
both tables, the store switches: ONE write of `spaces.json` (write + rename locally, one PUT on
S3), after the new tables' ANN index is brought current. Readers resolve the serving tables when
they open, so a query sees the old space or the new one, never a mix (issue 12, part 5).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field

from mediafm_core.storage.layout import is_remote
from mediafm_core.storage.schemas import SHOT_EMBEDDINGS, TITLE_EMBEDDINGS

SPACES_FILE = "spaces.json"  # under the LanceDB folder
LOGICAL_TABLES = (SHOT_EMBEDDINGS, TITLE_EMBEDDINGS)
SEP = "__"  # <logical>__<slug>: a table of a non-first space


@dataclass(frozen=True)
class Space:
    """One embedding space and the physical tables holding it."""

    model_version: str  # encoder checkpoint id
    width: int  # vector width (fused layout of that checkpoint)
    tables: dict[str, str] = field(default_factory=dict, compare=False)  # logical -> physical

    @property
    def id(self) -> str:
        return f"{self.model_version}/d{self.width}"

    def slug(self) -> str:
        """Table-name-safe id (LanceDB names allow letters, digits, '_', '-', '.')."""
        return re.sub(r"[^A-Za-z0-9_.-]", "-", self.model_version) + f"_d{self.width}"

    def table(self, logical: str) -> str:
        return self.tables.get(logical) or f"{logical}{SEP}{self.slug()}"

    def with_tables(self, first: bool) -> Space:
        """This space with its physical tables: the plain names for the store's first space."""
        names = {t: (t if first else f"{t}{SEP}{self.slug()}") for t in LOGICAL_TABLES}
        return Space(self.model_version, self.width, names)

    def to_json(self) -> dict:
        return {"model_version": self.model_version, "width": self.width, "tables": self.tables}

    @classmethod
    def from_json(cls, d: dict) -> Space:
        return cls(str(d["model_version"]), int(d["width"]), dict(d.get("tables") or {}))


def logical_name(table: str) -> str:
    """`shot_embeddings__run-1_d896` -> `shot_embeddings` (schemas and keys are per logical)."""
    return table.split(SEP, 1)[0]


def spaces_path(lancedb_uri: str) -> str:
    return lancedb_uri.rstrip("/") + "/" + SPACES_FILE


def read_spaces(lancedb_uri: str) -> dict:
    """The parsed spaces.json ({} when absent: a store from before spaces, or an empty one)."""
    path = spaces_path(lancedb_uri)
    if is_remote(path):
        from upath import UPath

        p = UPath(path)
        return json.loads(p.read_text()) if p.exists() else {}
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def serving_space(lancedb_uri: str) -> Space | None:
    """The space readers use, or None when spaces.json does not exist yet."""
    doc = read_spaces(lancedb_uri)
    return Space.from_json(doc["serving"]) if doc.get("serving") else None


def serving_tables(lancedb_uri: str) -> dict[str, str]:
    """logical table -> physical table read by `similar` and the SQL views (plain names when no
    space was recorded yet)."""
    space = serving_space(lancedb_uri)
    return {t: (space.table(t) if space else t) for t in LOGICAL_TABLES}


def write_serving(lancedb_uri: str, space: Space, previous: Space | None) -> None:
    """Make `space` the serving one in ONE step (atomic rename locally, one PUT on S3)."""
    doc = {"serving": space.to_json(), "previous": previous.to_json() if previous else None}
    text = json.dumps(doc, indent=2)
    path = spaces_path(lancedb_uri)
    if is_remote(path):
        from upath import UPath

        UPath(path).write_text(text)
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
