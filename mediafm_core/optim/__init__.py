"""Optimisers: Muon for the Transformer body's matrices, AdamW for the rest."""

from mediafm_core.optim.muon import Muon, build_optimizer, param_groups

__all__ = ["Muon", "build_optimizer", "param_groups"]
