"""Video encoders. This module: an open_clip vision tower over frames sampled in a shot,
mean-pooled per shot.

Weights come from (in order) a local checkpoint file, an open_clip pretrained tag (e.g. "openai",
downloaded only when the user configured it), or a seeded random init of the named or custom
architecture. Only the vision tower is built for a random init (no text tower to pay for).
Frames are resized (shorter side), centre-cropped and normalised like open_clip's preprocess,
batched across shots, and the frame embeddings of each shot are averaged (`pool_shots`, shared
with the packaged EfficientNet-Lite0 of `video_efficientnet`; `make_video_encoder` picks one).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import numpy as np

from mediafm_core.encoders.base import (
    EncoderInfo,
    as_float32_rows,
    file_sha256,
    resolve_device,
    seeded_init,
    warn_random_init,
)

logger = logging.getLogger(__name__)

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class VideoEncoderConfig:
    """Which vision model to run and how."""

    kind: str = "open_clip"  # "open_clip" or "efficientnet-lite0" (weights shipped in a package)
    model_name: str = "ViT-B-32"  # open_clip architecture name (ignored when vision_cfg is set)
    pretrained: str | None = None  # open_clip pretrained tag ("openai", ...); None = no download
    checkpoint: str | None = None  # local checkpoint file (.pt/.safetensors); wins
    vision_cfg: dict | None = None  # custom CLIPVisionCfg fields for a random-init small tower
    embed_dim: int = 512  # projection width when vision_cfg is custom and project=True
    project: bool = False  # True: CLIP joint-space output (embed_dim); False: pooled width
    seed: int = 0  # seed of the random init
    batch_size: int = 32  # frames per forward pass
    device: str | None = None  # None/"auto" = CUDA when present, else CPU
    extra: dict = field(default_factory=dict)  # spare knobs forwarded to open_clip.create_model


def _preprocess(
    frames: np.ndarray,
    size: int,
    device: str,
    mean=OPENAI_MEAN,
    std=OPENAI_STD,
    mode: str = "bicubic",
):
    """uint8 (N, H, W, 3) -> normalised (N, 3, size, size): shorter side resized (`mode`),
    centre crop, then (x - mean) / std per channel."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device)  # (N, H, W, 3)
    x = x.permute(0, 3, 1, 2).float().div_(255.0)  # (N, 3, H, W)
    h, w = x.shape[-2:]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    if (nh, nw) != (h, w):
        x = F.interpolate(x, size=(nh, nw), mode=mode, antialias=True, align_corners=False)
    top, left = (nh - size) // 2, (nw - size) // 2
    x = x[:, :, top : top + size, left : left + size].clamp_(0.0, 1.0)
    m = torch.tensor(mean, device=device).view(1, 3, 1, 1)
    s = torch.tensor(std, device=device).view(1, 3, 1, 1)
    return (x - m) / s


def pool_shots(encode_frames, shots: list[np.ndarray], info: EncoderInfo) -> np.ndarray:
    """Per-shot frames [(n_i, H, W, 3) uint8] -> (len(shots), info.dim): the mean of each shot's
    frame embeddings. All shots' frames go through `encode_frames` together (it batches)."""
    counts = [len(f) for f in shots]
    if any(n == 0 for n in counts):
        raise ValueError("every shot needs at least one frame")
    if not shots:
        return np.zeros((0, info.dim), np.float32)
    per_frame = encode_frames(np.concatenate(shots))  # (sum n_i, dim)
    bounds = np.cumsum([0, *counts])
    pooled = [per_frame[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:])]
    return as_float32_rows(np.stack(pooled), len(shots), info.dim, info.name)


def make_video_encoder(cfg: VideoEncoderConfig | None = None):
    """The video encoder a config names: open_clip (default) or the packaged EfficientNet-Lite0."""
    cfg = cfg or VideoEncoderConfig()
    if cfg.kind == "open_clip":
        return VideoEncoder(cfg)
    if cfg.kind == "efficientnet-lite0":
        from mediafm_core.encoders.video_efficientnet import EfficientNetLiteVideoEncoder

        return EfficientNetLiteVideoEncoder(cfg)
    raise ValueError(
        f"unknown video encoder kind {cfg.kind!r}; use open_clip or efficientnet-lite0"
    )


class VideoEncoder:
    """open_clip vision tower; `encode(list of (n_i, H, W, 3) uint8)` -> (len, dim) float32."""

    def __init__(self, cfg: VideoEncoderConfig | None = None):
        self.cfg = cfg or VideoEncoderConfig()
        self.device = resolve_device(self.cfg.device)
        self.model, weights, random_init = self._load()
        self.model.eval().to(self.device)
        if not self.cfg.project:
            self.model.proj = None  # pooled token width instead of the CLIP joint space
        self.image_size = int(np.atleast_1d(self.model.image_size)[0])
        dim = self._output_dim()
        name = "custom-vit" if self.cfg.vision_cfg else self.cfg.model_name
        suffix = "" if self.cfg.project else ":pooled"
        self.info = EncoderInfo("video", f"open_clip:{name}{suffix}", dim, weights, random_init)
        warn_random_init(self.info)

    def _load(self):
        """-> (vision tower, weights identity, random_init)."""
        import open_clip
        from open_clip.model import _build_vision_tower

        c = self.cfg
        if c.checkpoint or c.pretrained:
            if c.vision_cfg:
                raise ValueError("vision_cfg is for random init; use model_name with weights")
            if c.checkpoint and not os.path.isfile(c.checkpoint):
                raise FileNotFoundError(f"video checkpoint not found: {c.checkpoint}")
            # A tag trained with QuickGELU (e.g. "openai") needs it, or activations are wrong.
            tag_cfg = (
                open_clip.get_pretrained_cfg(c.model_name, c.pretrained) if c.pretrained else {}
            )
            quick = bool((tag_cfg or {}).get("quick_gelu", False))
            kwargs = {"force_quick_gelu": quick, **c.extra}
            model = open_clip.create_model(
                c.model_name, pretrained=c.checkpoint or c.pretrained, **kwargs
            )
            ident = f"sha256:{file_sha256(c.checkpoint)}" if c.checkpoint else c.pretrained
            return model.visual, f"open_clip:{c.model_name}:{ident}", False
        if c.vision_cfg:
            embed_dim, vision_cfg, quick = c.embed_dim, dict(c.vision_cfg), False
        else:
            mc = open_clip.get_model_config(c.model_name)
            if mc is None:
                raise ValueError(f"unknown open_clip model {c.model_name!r}")
            embed_dim, vision_cfg = mc["embed_dim"], mc["vision_cfg"]
            quick = bool(mc.get("quick_gelu", False))
        with seeded_init(c.seed):
            model = _build_vision_tower(embed_dim, vision_cfg, quick_gelu=quick)
        name = "custom-vit" if c.vision_cfg else c.model_name
        return model, f"open_clip:{name}:random-init-seed{c.seed}", True

    def _output_dim(self) -> int:
        import torch

        with torch.inference_mode():
            x = torch.zeros(1, 3, self.image_size, self.image_size, device=self.device)
            return int(self.model(x).shape[-1])

    def encode_frames(self, frames: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, 3) -> per-frame embeddings (N, dim) float32, in batches."""
        import torch

        out = []
        with torch.inference_mode():
            for i in range(0, len(frames), self.cfg.batch_size):
                x = _preprocess(frames[i : i + self.cfg.batch_size], self.image_size, self.device)
                out.append(self.model(x).float().cpu().numpy())  # (b, dim)
        if not out:
            return np.zeros((0, self.info.dim), np.float32)
        return np.concatenate(out)

    def encode(self, shots: list[np.ndarray]) -> np.ndarray:
        """Per-shot frames [(n_i, H, W, 3) uint8] -> (len(shots), dim): mean over each shot's
        frames. All shots' frames go through the model together, in fixed-size batches."""
        return pool_shots(self.encode_frames, shots, self.info)
