"""Pre-training of the MediaFM encoder with Masked Shot Modelling.

`TrainConfig` is importable without torch; `pretrain` and `load_checkpoint` load it on first use.
"""

from __future__ import annotations

from mediafm_core.training.config import TrainConfig

__all__ = ["TrainConfig", "pretrain", "load_checkpoint"]


def __getattr__(name: str):
    if name == "pretrain":
        from mediafm_core.training.trainer import pretrain

        return pretrain
    if name == "load_checkpoint":
        from mediafm_core.training.checkpoint import load_checkpoint

        return load_checkpoint
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
