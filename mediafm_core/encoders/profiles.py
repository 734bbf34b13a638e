"""Encoder profiles (DESIGN.md "Encoders and profiles") and the `Encoders` bundle.

A profile names one configuration per modality. `Encoders.from_profile` loads the three models
once; the bundle is then reused for many titles (Dagster batches several titles per run).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

from mediafm_core.encoders.audio import AudioEncoder, AudioEncoderConfig
from mediafm_core.encoders.base import EncoderInfo
from mediafm_core.encoders.text import TextEncoderConfig, make_text_encoder
from mediafm_core.encoders.video import VideoEncoder, VideoEncoderConfig

logger = logging.getLogger(__name__)

# A small ViT for CPU speed in the offline profile: 224 px, 32 px patches (49 tokens), 4 layers.
SMALL_VIT = dict(image_size=224, layers=4, width=256, patch_size=32, head_width=64)


@dataclass
class EncoderProfile:
    """One encoder configuration per modality, plus how frames are sampled from a shot."""

    name: str  # profile name recorded in output metadata
    video: VideoEncoderConfig = field(default_factory=VideoEncoderConfig)
    audio: AudioEncoderConfig = field(default_factory=AudioEncoderConfig)
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    frames_per_shot: int = 8  # frames sampled uniformly inside each shot
    frame_size: int = 224  # decoded frame size (square, pixels) before the model's preprocess

    def with_device(self, device: str | None) -> EncoderProfile:
        """A copy with every model on `device` (None/"auto" = CUDA when present)."""
        return dataclasses.replace(
            self,
            video=dataclasses.replace(self.video, device=device),
            audio=dataclasses.replace(self.audio, device=device),
            text=dataclasses.replace(self.text, device=device),
        )


def offline_profile() -> EncoderProfile:
    """No network, no hub: small seeded random-init video/audio, packaged MiniLM text."""
    return EncoderProfile(
        name="offline",
        video=VideoEncoderConfig(vision_cfg=dict(SMALL_VIT), project=False),
        audio=AudioEncoderConfig(preset="small"),
        text=TextEncoderConfig(kind="sentence-transformers"),
    )


def offline_base_profile() -> EncoderProfile:
    """Full-size architectures with random init (ViT-B-32, wav2vec2-base): paper-like cost."""
    return EncoderProfile(
        name="offline-base",
        video=VideoEncoderConfig(model_name="ViT-B-32", project=False),
        audio=AudioEncoderConfig(preset="base"),
        text=TextEncoderConfig(kind="sentence-transformers"),
    )


def paper_profile() -> EncoderProfile:
    """The paper's encoders, 768 + 768 + 768 = 2304 fused dims. Downloads ViT-B-32 (openai)
    and facebook/wav2vec2-base once, and calls the OpenAI API (OPENAI_API_KEY)."""
    return EncoderProfile(
        name="paper",
        video=VideoEncoderConfig(model_name="ViT-B-32", pretrained="openai", project=False),
        audio=AudioEncoderConfig(model="facebook/wav2vec2-base", window_s=10.0, max_seconds=None),
        text=TextEncoderConfig(kind="openai", model="text-embedding-3-large", dimensions=768),
    )


PROFILES = {
    "offline": offline_profile,
    "offline-base": offline_base_profile,
    "paper": paper_profile,
}


def get_profile(profile: str | EncoderProfile) -> EncoderProfile:
    """A profile by name, or the given profile unchanged."""
    if isinstance(profile, EncoderProfile):
        return profile
    if profile not in PROFILES:
        raise ValueError(f"unknown encoder profile {profile!r}; choose from {sorted(PROFILES)}")
    return PROFILES[profile]()


class Encoders:
    """The three loaded encoders of one profile; load once, encode many titles."""

    def __init__(self, profile: EncoderProfile, video, audio, text):
        self.profile = profile
        self.video = video
        self.audio = audio
        self.text = text

    @classmethod
    def from_profile(
        cls, profile: str | EncoderProfile = "offline", device: str | None = None
    ) -> Encoders:
        p = get_profile(profile)
        if device is not None:
            p = p.with_device(device)
        logger.info("loading encoders of profile %r", p.name)
        return cls(p, VideoEncoder(p.video), AudioEncoder(p.audio), make_text_encoder(p.text))

    def infos(self) -> dict[str, EncoderInfo]:
        """Modality -> encoder identity, in fusion order (video, audio, text)."""
        return {"video": self.video.info, "audio": self.audio.info, "text": self.text.info}
