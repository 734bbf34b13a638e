"""Distributed data parallel plumbing for runs under `torchrun` (gloo on CPU, nccl on CUDA).

Outside torchrun (no WORLD_SIZE in the environment) everything here is a no-op on one process.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclass
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    owns_group: bool = False  # we called init_process_group, so we destroy it

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device_type: str) -> DistInfo:
    """Join the torchrun process group if launched by torchrun; else a single-process DistInfo."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    owns = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
        owns = True
    info = DistInfo(
        dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0")), dist.get_world_size(), owns
    )
    log.info("DDP rank %d/%d (backend %s)", info.rank, info.world_size, dist.get_backend())
    return info


def all_mean(values: list[float], info: DistInfo, device: torch.device) -> list[float]:
    """Average a few floats over ranks (identity on one process)."""
    if not info.enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return (t / info.world_size).tolist()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.owns_group and dist.is_initialized():
        dist.destroy_process_group()
