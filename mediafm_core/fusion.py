"""Fusion of unimodal shot vectors (DESIGN.md "Data contracts", fused row).

Each modality is L2-normalised on its own, the parts are concatenated in layout order, and the
result is unit-normalised again. A modality row that is all zeros (missing timed text) stays
zeros: it is zero-padded, not normalised into noise. The layout (width and encoder identity per
modality) travels with the output as Parquet schema metadata under `mediafm.layout`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

from mediafm_core.errors import TitleError

LAYOUT_KEY = b"mediafm.layout"
EPS = 1e-12  # rows with a norm below this are treated as missing (zero) vectors


@dataclass(frozen=True)
class ModalitySlot:
    """One modality's place in the fused vector."""

    modality: str  # "video" | "audio" | "text"
    dim: int  # width of this modality's part
    encoder: str  # encoder name, e.g. "open_clip:ViT-B-32:pooled"
    weights: str  # weights identity (pretrained tag, checkpoint sha, random-init seed)
    random_init: bool  # True when the encoder weights are a seeded random init
    package: str = ""  # distribution shipping the weights ("" when none)
    version: str = ""  # its version
    sha256: str = ""  # SHA-256 of the weight file
    licence: str = ""  # licence of the weights

    def encoder_json(self) -> str:
        """The `mediafm.encoder` metadata of a unimodal table (EncoderInfo.to_dict's keys)."""
        info = {"modality": self.modality, "name": self.encoder, "dim": self.dim}
        return json.dumps(
            {**info, "weights": self.weights, "random_init": self.random_init, **self.provenance()}
        )

    def provenance(self) -> dict[str, str]:
        return dict(
            package=self.package, version=self.version, sha256=self.sha256, licence=self.licence
        )

    @classmethod
    def from_info(cls, modality: str, info: dict, dim: int | None = None) -> ModalitySlot:
        """From an `EncoderInfo.to_dict()` (as stored in a unimodal table's metadata)."""
        return cls(
            modality,
            int(info["dim"] if dim is None else dim),
            info.get("name") or info.get("encoder", "?"),
            info.get("weights", "?"),
            bool(info.get("random_init", False)),
            **{k: str(info.get(k, "")) for k in PROVENANCE_KEYS},
        )


PROVENANCE_KEYS = ("package", "version", "sha256", "licence")


@dataclass(frozen=True)
class FusionLayout:
    """Order and widths of the modalities in a fused vector."""

    slots: tuple[ModalitySlot, ...]

    @property
    def dim(self) -> int:
        return sum(s.dim for s in self.slots)

    def offsets(self) -> dict[str, tuple[int, int]]:
        """modality -> (start, stop) column range in the fused vector."""
        out, pos = {}, 0
        for s in self.slots:
            out[s.modality] = (pos, pos + s.dim)
            pos += s.dim
        return out

    def to_json(self) -> str:
        return json.dumps({"dim": self.dim, "slots": [asdict(s) for s in self.slots]})

    @classmethod
    def from_json(cls, text: str | bytes) -> FusionLayout:
        data = json.loads(text)
        return cls(tuple(ModalitySlot(**s) for s in data["slots"]))

    @classmethod
    def from_infos(cls, infos: dict) -> FusionLayout:
        """From {modality: EncoderInfo} in fusion order."""
        return cls(tuple(ModalitySlot.from_info(m, i.to_dict()) for m, i in infos.items()))


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm; all-zero rows stay zero."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.where(norms > EPS, x / np.maximum(norms, EPS), 0.0).astype(np.float32)


def _check_part(title_id: str, slot: ModalitySlot, part, n: int) -> np.ndarray:
    arr = np.asarray(part, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[1] != slot.dim:
        raise TitleError(
            title_id, f"{slot.modality} vectors have shape {arr.shape}, expected (n, {slot.dim})"
        )
    if arr.shape[0] != n:
        raise TitleError(title_id, f"{slot.modality} has {arr.shape[0]} rows, expected {n} shots")
    if not np.isfinite(arr).all():
        row = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise TitleError(title_id, f"{slot.modality} vectors have NaN or inf (shot row {row})")
    return arr


def fuse(
    title_id: str, layout: FusionLayout, parts: dict[str, np.ndarray], required=("video", "audio")
) -> np.ndarray:
    """Fused (n, layout.dim) float32 unit vectors from {modality: (n, dim_m)} parts.

    Modalities in `required` must be non-zero in every row (audio and video are always
    present); others (text) may be zero rows and are zero-padded."""
    missing = [s.modality for s in layout.slots if s.modality not in parts]
    if missing:
        raise TitleError(title_id, f"missing modality vectors: {', '.join(missing)}")
    n = len(next(iter(parts.values())))
    if n == 0:
        raise TitleError(title_id, "no shots to fuse")
    normed = []
    for slot in layout.slots:
        arr = _check_part(title_id, slot, parts[slot.modality], n)
        if slot.modality in required:
            zero = np.linalg.norm(arr, axis=1) <= EPS
            if zero.any():
                row = int(np.flatnonzero(zero)[0])
                raise TitleError(title_id, f"{slot.modality} vector is all zeros (shot row {row})")
        normed.append(l2_normalise(arr))
    return l2_normalise(np.concatenate(normed, axis=1))  # (n, sum dims)


def _slot_from_table(path, modality: str) -> ModalitySlot:
    """The encoder identity stored in a unimodal table's schema metadata."""
    import pyarrow.parquet as pq

    from mediafm_core.errors import InputError

    meta = pq.read_schema(str(path)).metadata or {}
    if b"mediafm.encoder" not in meta:
        raise InputError(str(path), "no mediafm.encoder metadata (not written by mediafm?)")
    return ModalitySlot.from_info(modality, json.loads(meta[b"mediafm.encoder"]))


def fuse_tables(paths: dict, out_path) -> FusionLayout:
    """Fuse unimodal Parquet tables {"video": p, "audio": p, "text": p} (same title(s) and
    shots) into `out_path` (title_id, shot_index, fused, has_text) with the layout attached."""
    import pyarrow as pa

    from mediafm_core.errors import InputError
    from mediafm_core.tables import read_vectors, vector_array, write_table_atomic

    layout = FusionLayout(tuple(_slot_from_table(paths[m], m) for m in ("video", "audio", "text")))
    tabs = {m: read_vectors(paths[m], extra=("has_text",)) for m in paths}
    ref = tabs["video"]
    for m, t in tabs.items():
        if not (
            np.array_equal(t.title_ids, ref.title_ids)
            and np.array_equal(t.shot_index, ref.shot_index)
        ):
            raise InputError(str(paths[m]), "shots differ from the video table's shots")
    fused = np.zeros((len(ref.title_ids), layout.dim), np.float32)
    start = 0
    for title_id, rows in ref.by_title().items():
        sl = slice(start, start + len(rows))
        fused[sl] = fuse(title_id, layout, {m: t.vectors[sl] for m, t in tabs.items()})
        start += len(rows)
    has_text = tabs["text"].extra.get("has_text")
    if has_text is None:
        has_text = np.linalg.norm(tabs["text"].vectors, axis=1) > EPS
    table = pa.table(
        {
            "title_id": pa.array([str(t) for t in ref.title_ids], pa.string()),
            "shot_index": pa.array(ref.shot_index),
            "fused": vector_array(fused),
            "has_text": pa.array(np.asarray(has_text, dtype=bool)),
        }
    )
    table = table.replace_schema_metadata({LAYOUT_KEY: layout.to_json().encode()})
    write_table_atomic(table, out_path)
    return layout
