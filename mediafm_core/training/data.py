"""Titles as training windows: the held-out split, window sampling, padding and fixed val masks.

Every random choice of a training step comes from a generator seeded by (seed, step, rank), so a
step's batch depends on nothing but those three numbers: a resumed run sees exactly the batches an
uninterrupted one would have seen, without replaying any RNG.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np
import torch

from mediafm_core.errors import InputError
from mediafm_core.model.msm import sample_mask
from mediafm_core.tables import VectorTable, read_vectors


@dataclass
class Batch:
    shots: torch.Tensor  # (B, T, D) float32, zero at padding
    shot_mask: torch.Tensor  # (B, T) bool, True = real shot
    globals_: torch.Tensor | None  # (B, G) float32, zero where a title has none; None if G == 0
    has_global: torch.Tensor | None  # (B,) bool
    mask: torch.Tensor  # (B, T) bool, MSM positions (real shots only)

    def to(self, device: torch.device) -> "Batch":
        def mv(t):
            return None if t is None else t.to(device, non_blocking=True)

        return Batch(
            *(
                mv(t)
                for t in (self.shots, self.shot_mask, self.globals_, self.has_global, self.mask)
            )
        )

    @property
    def n_tokens(self) -> int:
        return int(self.shot_mask.sum())


def step_generator(seed: int, step: int, rank: int = 0) -> torch.Generator:
    """A CPU generator determined by (seed, step, rank) alone."""
    state = np.random.SeedSequence([seed, step, rank]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 31 ^ int(state[1]))


def load_fused(fused: VectorTable | str | os.PathLike) -> VectorTable:
    if isinstance(fused, VectorTable):
        return fused
    return read_vectors(fused, column="fused")


def load_globals(globals_: VectorTable | str | os.PathLike | None) -> VectorTable | None:
    if globals_ is None or isinstance(globals_, VectorTable):
        return globals_
    return read_vectors(globals_, column="vector", keys=("title_id",))


def split_titles(
    title_ids: list[str], val_fraction: float, val_titles: list[str] | None = None
) -> tuple[list[str], list[str]]:
    """(train, val) title ids. Val = explicit list, else the titles whose sha1(title_id) ranks
    lowest (at least one when val_fraction > 0): deterministic, independent of seed and order."""
    if val_titles is not None:
        val = set(val_titles)
    elif val_fraction > 0:
        n_val = max(1, int(round(val_fraction * len(title_ids))))
        ranked = sorted(title_ids, key=lambda t: hashlib.sha1(t.encode()).hexdigest())
        val = set(ranked[:n_val])
    else:
        val = set()
    train = [t for t in title_ids if t not in val]
    return train, [t for t in title_ids if t in val]


class TitleWindows:
    """Training and validation windows over titles (fused vectors + optional globals)."""

    def __init__(
        self,
        fused: VectorTable,
        globals_: VectorTable | None,
        window: int,
        val_fraction: float,
        val_titles: list[str] | None = None,
        source: str = "fused",
    ):
        self.titles = fused.by_title()  # title_id -> (n, D)
        self.fused_dim = fused.dim
        self.window = window
        self.global_dim = globals_.dim if globals_ is not None else 0
        self.globals: dict[str, np.ndarray] = {}
        if globals_ is not None:
            self.globals = {str(t): v for t, v in zip(globals_.title_ids, globals_.vectors)}
        ids = list(self.titles)
        self.train_ids, self.val_ids = split_titles(ids, val_fraction, val_titles)
        if not self.train_ids:
            raise InputError(
                source,
                f"{len(ids)} title(s): none left for training after holding out {self.val_ids} "
                "for validation (use val_fraction 0 / --val-fraction 0 to train on all)",
            )
        if val_titles is not None and len(self.val_ids) != len(set(val_titles)):
            missing = sorted(set(val_titles) - set(ids))
            raise InputError(source, f"held-out titles not in the table: {missing[:5]}")

    def collate(
        self,
        windows: list[np.ndarray],
        title_ids: list[str],
        mask_ratio: float,
        generator: torch.Generator,
        mask_span: int = 1,
    ) -> Batch:
        """Pad windows to the longest, attach globals, draw MSM masks with `generator`."""
        B, T = len(windows), max(len(w) for w in windows)
        shots = np.zeros((B, T, self.fused_dim), dtype=np.float32)
        shot_mask = np.zeros((B, T), dtype=bool)
        for i, w in enumerate(windows):
            shots[i, : len(w)] = w
            shot_mask[i, : len(w)] = True
        g = h = None
        if self.global_dim:
            g = np.zeros((B, self.global_dim), dtype=np.float32)
            h = np.zeros(B, dtype=bool)
            for i, t in enumerate(title_ids):
                if t in self.globals:
                    g[i], h[i] = self.globals[t], True
            g, h = torch.from_numpy(g), torch.from_numpy(h)
        sm = torch.from_numpy(shot_mask)
        mask = sample_mask(sm, mask_ratio, generator=generator, span=mask_span)
        return Batch(torch.from_numpy(shots), sm, g, h, mask)

    def train_batch(
        self, batch_size: int, mask_ratio: float, generator: torch.Generator, mask_span: int = 1
    ) -> Batch:
        """Titles drawn uniformly with replacement; a long title gives a window at a random
        offset."""
        picks = torch.randint(len(self.train_ids), (batch_size,), generator=generator).tolist()
        ids = [self.train_ids[i] for i in picks]
        windows = []
        for t in ids:
            x = self.titles[t]
            if len(x) > self.window:
                off = int(torch.randint(len(x) - self.window + 1, (1,), generator=generator))
                x = x[off : off + self.window]
            windows.append(x)
        return self.collate(windows, ids, mask_ratio, generator, mask_span)

    def val_batches(self, batch_size: int, mask_ratio: float, seed: int) -> list[Batch]:
        """Every held-out title cut into near-equal consecutive windows (no 1-shot tail window);
        masks fixed by `seed`, so every evaluation scores the same positions."""
        gen = torch.Generator().manual_seed(seed)
        items = []
        for t in self.val_ids:
            x = self.titles[t]
            k = -(-len(x) // self.window)  # ceil
            bounds = np.linspace(0, len(x), k + 1).round().astype(int)
            items += [(t, x[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
        return [
            self.collate([w for _, w in chunk], [t for t, _ in chunk], mask_ratio, gen)
            for chunk in (items[i : i + batch_size] for i in range(0, len(items), batch_size))
        ]


def corrupt_inputs(
    shots: torch.Tensor,  # (B, T, D) original fused vectors
    shot_mask: torch.Tensor,  # (B, T) bool, True = real shot
    selected: torch.Tensor,  # (B, T) bool, MSM positions (real shots only)
    generator: torch.Generator,
    p_mask: float = 0.8,
    p_random: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's 80/10/10 corruption of the selected shots -> (inputs (B, T, D), [MASK] at (B, T)).

    Each selected shot independently becomes `[MASK]` (p_mask), a random other real shot of the
    batch (p_random; the analogue of BERT's random vocabulary token), or stays unchanged. With the
    loss on every selected position the encoder cannot tell a kept shot from an unselected one, so
    its outputs at ordinary, visible positions are trained to be contextual predictions too - the
    frozen features the probes read. Random draws come from `generator` (CPU), so a step stays a
    function of (seed, step, rank).
    """
    B, T, D = shots.shape
    u = torch.rand(B, T, generator=generator).to(selected.device)
    to_mask = selected & (u < p_mask)
    to_random = selected & (u >= p_mask) & (u < p_mask + p_random)
    inputs = shots.clone()
    flat_real = shot_mask.reshape(-1).nonzero().squeeze(1)  # (N,) flat indices of real shots
    n_real = flat_real.numel()
    dst = to_random.reshape(-1).nonzero().squeeze(1)  # (R,) flat indices to replace
    if dst.numel() and n_real > 1:
        # rank of each destination among the real shots, then a uniform draw over the others
        rank = torch.searchsorted(flat_real, dst)
        draw = torch.randint(n_real - 1, (dst.numel(),), generator=generator).to(dst.device)
        src = flat_real[draw + (draw >= rank).long()]
        flat = inputs.view(B * T, D)
        flat[dst] = shots.reshape(B * T, D)[src]
    elif dst.numel():
        to_mask = to_mask | to_random  # a single real shot: nothing else to swap in
    return inputs, to_mask
