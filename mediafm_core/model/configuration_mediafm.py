"""Configuration of the MediaFM shot encoder and the registry of named sizes.

No torch import here: configs are read by the CLI and by Dagster config without loading torch.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass


@dataclass
class MediaFMConfig:
    fused_dim: int = 2304  # width of a fused shot vector (768 video + 768 audio + 768 text)
    global_dim: int = 768  # width of the title-metadata vector feeding [GLOBAL]; 0 = none
    hidden: int = 768  # Transformer width
    layers: int = 12  # Transformer blocks
    heads: int = 12  # attention heads; hidden % heads == 0
    mlp_ratio: float = 4.0  # MLP hidden width = mlp_ratio * hidden
    max_shots: int = 512  # longest shot sequence; positions cover max_shots + 2 specials
    dropout: float = 0.0  # dropout on attention and residual branches (training only)
    norm_eps: float = 1e-5  # LayerNorm epsilon
    # A second linear head hidden -> fused_dim trained only by the contrastive term
    # (TrainConfig.contrastive_on="head"); never part of the features. False = the seed's model.
    contrastive_head: bool = False

    def __post_init__(self) -> None:
        if self.hidden % self.heads:
            raise ValueError(f"hidden={self.hidden} is not divisible by heads={self.heads}")
        for name in ("fused_dim", "hidden", "layers", "heads", "max_shots"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def mlp_hidden(self) -> int:
        return int(self.mlp_ratio * self.hidden)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "MediaFMConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# Named sizes: (layers, hidden, heads). fused_dim/global_dim always come from the data. Which to
# use when (README "Model sizes"): the capacity should follow the catalogue, not the hardware -
# a 240-title catalogue (~50k shots) overfits a 4 x 256 body within a few hundred steps.
SIZES: dict[str, dict] = {
    "tiny": dict(layers=2, hidden=64, heads=4),  # unit tests
    "small": dict(layers=2, hidden=128, heads=4),  # CPU; catalogues up to ~2k titles / 0.5M shots
    "medium": dict(layers=4, hidden=256, heads=4),  # CPU or one GPU; up to ~20k titles / 5M shots
    "base": dict(layers=12, hidden=768, heads=12),  # BERT-base shape, GPUs; 100k-title catalogues
    "large": dict(layers=24, hidden=1024, heads=16),
}
# size="auto" picks by the number of training shots: (upper bound, size), first that fits.
AUTO_SIZES: tuple[tuple[float, str], ...] = (
    (5e5, "small"),
    (5e6, "medium"),
    (float("inf"), "base"),
)


def auto_size(n_shots: int) -> str:
    """The named size for a catalogue of `n_shots` training shots (AUTO_SIZES)."""
    return next(name for bound, name in AUTO_SIZES if n_shots < bound)


def config_for(size: str, fused_dim: int, global_dim: int = 0, **overrides) -> MediaFMConfig:
    """A config of a named size for data of the given widths; `overrides` win."""
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; known: auto, {', '.join(SIZES)}")
    fields = {**SIZES[size], "fused_dim": fused_dim, "global_dim": global_dim}
    fields.update({k: v for k, v in overrides.items() if v is not None})
    return MediaFMConfig(**fields)
