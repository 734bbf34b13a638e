"""Titles as training windows: the held-out split, window sampling, padding and fixed val masks.

Every random choice of a training step comes from a generator seeded by (seed, step, rank), so a
step's batch depends on nothing but those three numbers: a resumed run sees exactly the batches an
uninterrupted one would have seen, without replaying any RNG.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from mediafm_core.errors import InputError
from mediafm_core.model.msm import sample_mask
from mediafm_core.tables import read_vectors


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


def load_fused(fused, cache_mb: float | None = None):
    """The training title source of `fused`: a `VectorTable` (in memory), a Parquet file or a
    folder of them, local or `s3://` (streamed: `mediafm_core.training.dataset`)."""
    from mediafm_core.training.dataset import DEFAULT_CACHE_MB, open_titles

    return open_titles(fused, "fused", cache_mb=DEFAULT_CACHE_MB if cache_mb is None else cache_mb)


def load_globals(globals_, cache_mb: float | None = None):
    """The title-metadata source (one `vector` row per title), or None."""
    from mediafm_core.training.dataset import DEFAULT_CACHE_MB, open_titles

    if globals_ is None:
        return None
    if isinstance(globals_, (str, os.PathLike)) and str(globals_).endswith(".parquet"):
        globals_ = read_vectors(globals_, column="vector", keys=("title_id",))  # one small file
    mb = DEFAULT_CACHE_MB if cache_mb is None else cache_mb
    return open_titles(globals_, "vector", per_shot=False, cache_mb=mb)


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


def rank_shard(train_ids: list[str], rank: int, world_size: int) -> list[str]:
    """The training titles DDP rank `rank` reads: every `world_size`-th title of the sorted
    training ids, so shards are disjoint, cover every title and differ in size by at most one.
    One process reads them all (the same list, so single-process runs are unchanged)."""
    return train_ids[rank::world_size] if world_size > 1 else train_ids


class TitleWindows:
    """Training and validation windows over a title source (`training.dataset`): fused vectors
    plus optional globals, read window by window, so memory follows the batch, not the catalogue.

    Under DDP (`world_size` > 1) rank `rank` draws its windows only from its own shard
    (`rank_shard`); validation is read by whoever calls `val_batches` (rank 0).
    """

    def __init__(
        self,
        fused,
        globals_,
        window: int,
        val_fraction: float,
        val_titles: list[str] | None = None,
        source: str = "fused",
        rank: int = 0,
        world_size: int = 1,
    ):
        self.fused = load_fused(fused)
        self.globals = load_globals(globals_)
        self.fused_dim = self.fused.dim
        self.window = window
        self.global_dim = self.globals.dim if self.globals is not None else 0
        ids = self.fused.title_ids
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
        self.shard = rank_shard(self.train_ids, rank, world_size)
        if not self.shard:
            raise InputError(
                source,
                f"{len(self.train_ids)} training title(s) for "
                f"{world_size} ranks: rank {rank} has none",
            )

    def n_shots(self, title_ids) -> int:
        """Shots of these titles, from the index (no vectors read)."""
        return sum(self.fused.n_rows(t) for t in title_ids)

    def train_reads(self) -> dict[str, int]:
        """Window reads of training titles so far (title_id -> count) in this process."""
        val = set(self.val_ids)
        return {t: n for t, n in self.fused.reads.items() if t not in val}

    def _global(self, title_id: str) -> np.ndarray | None:
        if self.globals is None or title_id not in self.globals:
            return None
        return self.globals.read(title_id)[0]

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
                vec = self._global(t)
                if vec is not None:
                    g[i], h[i] = vec, True
            g, h = torch.from_numpy(g), torch.from_numpy(h)
        sm = torch.from_numpy(shot_mask)
        mask = sample_mask(sm, mask_ratio, generator=generator, span=mask_span)
        return Batch(torch.from_numpy(shots), sm, g, h, mask)

    def train_batch(
        self, batch_size: int, mask_ratio: float, generator: torch.Generator, mask_span: int = 1
    ) -> Batch:
        """Titles of this rank's shard drawn uniformly with replacement; a long title gives a
        window at a random offset. Only the window's rows are read."""
        picks = torch.randint(len(self.shard), (batch_size,), generator=generator).tolist()
        ids = [self.shard[i] for i in picks]
        windows = []
        for t in ids:
            n, off = self.fused.n_rows(t), 0
            if n > self.window:
                off = int(torch.randint(n - self.window + 1, (1,), generator=generator))
            windows.append(self.fused.read(t, off, off + min(n, self.window)))
        return self.collate(windows, ids, mask_ratio, generator, mask_span)

    def val_batches(self, batch_size: int, mask_ratio: float, seed: int) -> Iterator[Batch]:
        """Every held-out title cut into near-equal consecutive windows (no 1-shot tail window);
        masks fixed by `seed`, so every evaluation scores the same positions. A generator: the
        windows are read batch by batch, never all at once."""
        gen = torch.Generator().manual_seed(seed)
        chunk: list[tuple[str, int, int]] = []
        for item in self._val_windows():
            chunk.append(item)
            if len(chunk) == batch_size:
                yield self._val_batch(chunk, mask_ratio, gen)
                chunk = []
        if chunk:
            yield self._val_batch(chunk, mask_ratio, gen)

    def _val_windows(self) -> Iterator[tuple[str, int, int]]:
        for t in self.val_ids:
            n = self.fused.n_rows(t)
            k = -(-n // self.window)  # ceil
            bounds = np.linspace(0, n, k + 1).round().astype(int)
            yield from ((t, int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]))

    def _val_batch(self, chunk, mask_ratio: float, gen: torch.Generator) -> Batch:
        windows = [self.fused.read(t, a, b) for t, a, b in chunk]
        return self.collate(windows, [t for t, _, _ in chunk], mask_ratio, gen)


class Prefetcher:
    """Builds the batches of the next `depth` steps in a background thread (a step's batch is a
    function of (seed, step, rank) alone, so building ahead changes nothing): reading windows
    from storage overlaps the model's step. Holds at most `depth` batches."""

    def __init__(self, make: Callable[[int], tuple], first: int, last: int, depth: int = 2):
        import queue

        self._make, self._next, self._last = make, first, last
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mediafm-prefetch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        step = self._next
        while step < self._last and not self._stop.is_set():
            try:
                item = (step, self._make(step), None)
            except BaseException as exc:  # re-raised in the training thread
                item = (step, None, exc)
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except Exception:  # queue.Full: wait for the trainer
                    continue
            if item[2] is not None:
                return
            step += 1

    def get(self, step: int):
        """The batch of `step` (steps are consumed in order)."""
        got, value, exc = self._queue.get()
        if exc is not None:
            raise exc
        if got != step:
            raise RuntimeError(f"prefetch out of order: wanted step {step}, got {got}")
        return value

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


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
