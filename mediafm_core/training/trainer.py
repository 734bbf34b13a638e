"""Masked Shot Modelling pre-training loop: one process, or DDP ranks under `torchrun`.

Determinism: the model is initialised from `seed`; each step's batch and masks come from a
generator seeded by (seed, step, rank); the optimiser state, step and torch's global RNG (dropout)
are checkpointed. Hence, on CPU, the same config gives bit-identical weights, and a run killed
after a checkpoint and resumed ends exactly where an uninterrupted run ends.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch

from mediafm_core.errors import InputError
from mediafm_core.model.configuration_mediafm import MediaFMConfig, auto_size, config_for
from mediafm_core.model.modeling_mediafm import MediaFMEncoder
from mediafm_core.model.msm import baseline_losses, contrastive_loss, cosine_distance
from mediafm_core.optim.muon import CombinedOptimizer, build_optimizer
from mediafm_core.tables import VectorTable, read_vectors
from mediafm_core.training import checkpoint as ckpt
from mediafm_core.training.config import TrainConfig
from mediafm_core.training.data import (
    Batch,
    Prefetcher,
    TitleWindows,
    corrupt_inputs,
    load_fused,
    load_globals,
    step_generator,
)
from mediafm_core.training.ddp import DistInfo, all_mean, barrier, init_distributed, shutdown

log = logging.getLogger(__name__)

MetricsCallback = Callable[[int, dict], None]


def lr_factor(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """Multiplier of the peak LR for 0-based `step`: linear warm-up (capped at total/5 steps), then
    cosine decay to `min_ratio` at the last step."""
    warm = min(warmup, total // 5)
    if step < warm:
        return (step + 1) / warm
    span = max(1, total - warm - 1)
    progress = min(1.0, (step - warm) / span)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def resolve_device(name: str, info: DistInfo | None = None) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError("--device", "cuda requested but no CUDA device is available")
        if name == "cuda" and info is not None and info.enabled:
            name = f"cuda:{info.local_rank}"
    return torch.device(name)


def model_config(
    cfg: TrainConfig, fused_dim: int, global_dim: int, n_shots: int = 0
) -> MediaFMConfig:
    """The model config of `cfg`; size "auto" picks by the training shots (auto_size)."""
    size = auto_size(n_shots) if cfg.size == "auto" else cfg.size
    try:
        return config_for(
            size,
            fused_dim,
            global_dim,
            layers=cfg.layers,
            hidden=cfg.hidden,
            heads=cfg.heads,
            dropout=cfg.dropout,
            contrastive_head=cfg.contrastive_weight > 0 and cfg.contrastive_on == "head",
        )
    except ValueError as exc:
        raise InputError("model config", str(exc)) from exc


class Trainer:
    """Owns the data, model, optimiser and loop; `fit()` trains and returns the checkpoint dir."""

    def __init__(
        self,
        cfg: TrainConfig,
        fused: VectorTable | str | os.PathLike,
        globals_: VectorTable | str | os.PathLike | None,
        out_dir: str | os.PathLike,
        callback: MetricsCallback | None = None,
    ):
        self.cfg, self.out_dir, self.callback = cfg, Path(out_dir), callback
        src = str(fused) if not isinstance(fused, VectorTable) else "fused"
        self.device = resolve_device(cfg.device)
        self.dist = init_distributed(self.device.type)
        self.device = resolve_device(cfg.device, self.dist)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        if cfg.in_memory and not isinstance(fused, VectorTable):  # the pre-issue-17 path
            fused = read_vectors(fused, column="fused")
        self.data = TitleWindows(
            load_fused(fused, cfg.cache_mb),
            load_globals(globals_, cfg.cache_mb),
            cfg.window,
            cfg.val_fraction,
            cfg.val_titles,
            source=src,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
        )
        n_train = self.data.n_shots(self.data.train_ids)
        self.model_cfg = model_config(cfg, self.data.fused_dim, self.data.global_dim, n_train)
        torch.manual_seed(cfg.seed)  # init is identical on every rank
        self.model = MediaFMEncoder(self.model_cfg).to(self.device)
        self.opt: CombinedOptimizer = build_optimizer(
            self.model,
            cfg.optimizer,
            lr=cfg.lr,
            muon_lr=cfg.muon_lr,
            weight_decay=cfg.weight_decay,
        )
        self.step = 0
        self.curve: list[dict] = []
        self.baselines = self._baselines() if self.dist.is_main else {}
        self.last_val: float | None = None
        self.train_losses: list[float] = []  # since the last log line (this rank)
        self.shots_seen = 0  # real shots trained on by this rank in this process
        self.read_audit: dict = {}  # _audit_reads() at the last checkpoint
        self.train_seconds = 0.0  # wall clock inside training steps in this process
        self.last_train: float | None = None
        # Checkpoint selection (issue 9): model.safetensors holds the weights of the evaluation
        # with the lowest validation MSM; training stops after `patience` evaluations without a
        # new best. The last weights travel in trainer_state.pt so --resume continues exactly.
        self.best_val: float | None = None
        self.best_step: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.bad_evals = 0
        self.stopped_early = False
        self.elapsed_before = 0.0  # training seconds before a resume
        if cfg.resume:
            self._resume()
        self.step_model = self.model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.step_model = DDP(self.model, device_ids=ids)
        if cfg.compile:
            self.step_model = torch.compile(self.step_model)

    # ---- state
    def _config_json(self) -> dict:
        return {
            "model": self.model_cfg.to_dict(),
            "train": self.cfg.to_dict(),
            "fused_dim": self.data.fused_dim,
            "global_dim": self.data.global_dim,
            "val_titles": self.data.val_ids,
        }

    def _metrics(self) -> dict:
        return {
            "steps": self.step,
            "optimizer": self.cfg.optimizer,
            "train_loss": self.last_train,
            "val_loss": self.last_val,
            "baseline_mean_shot": self.baselines.get("mean_shot"),
            "baseline_neighbour": self.baselines.get("neighbour"),
            "best_step": self.best_step,
            "best_val_loss": self.best_val,
            "stopped_early": self.stopped_early,
            "n_train_titles": len(self.data.train_ids),
            "n_val_titles": len(self.data.val_ids),
            "n_train_shots": self.data.n_shots(self.data.train_ids),
            "fused_dim": self.data.fused_dim,
            # this rank's training steps alone (batch wait + step), evaluations left out
            "train_shots_per_s": round(self.shots_seen / max(self.train_seconds, 1e-9), 1),
            **self.read_audit,
            "world_size": self.dist.world_size,
            "curve": self.curve,
        }

    def _resume(self) -> None:
        state = ckpt.load_trainer_state(self.out_dir)
        if state is None:
            log.info("no resumable checkpoint in %s: starting from scratch", self.out_dir)
            return
        meta = ckpt.read_meta(self.out_dir)
        # through from_dict: a checkpoint written before a field existed has that field's default
        if MediaFMConfig.from_dict(meta["model"]).to_dict() != self.model_cfg.to_dict():
            raise InputError(str(self.out_dir), "checkpoint model config differs from this run's")
        if state.get("optimizer_kind") != self.cfg.optimizer:
            raise InputError(
                str(self.out_dir),
                f"checkpoint was trained with "
                f"{state.get('optimizer_kind')}, not {self.cfg.optimizer}",
            )
        from safetensors.torch import load_file

        best = load_file(str(self.out_dir / ckpt.WEIGHTS), device="cpu")
        self.model.load_state_dict(state.get("model", best))
        self.opt.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng_cpu"])
        self.step = int(state["step"])
        m = meta["metrics"]
        self.curve = list(m.get("curve", []))
        self.last_train, self.last_val = m.get("train_loss"), m.get("val_loss")
        self.best_val, self.best_step = m.get("best_val_loss"), m.get("best_step")
        self.best_state = best if self.best_step is not None else None
        self.bad_evals = int(state.get("bad_evals", 0))
        self.stopped_early = bool(m.get("stopped_early", False))
        self.elapsed_before = float(self.curve[-1].get("elapsed_s", 0.0)) if self.curve else 0.0
        log.info("resumed from %s at step %d", self.out_dir, self.step)

    def _audit_reads(self) -> dict:
        """Which training titles each rank has read (every rank calls this): per-rank counts and
        the number of titles read by more than one rank, which DDP sharding keeps at 0."""
        mine = sorted(self.data.train_reads())
        if not self.dist.enabled:
            return {"titles_read_per_rank": [len(mine)], "titles_read_by_several_ranks": 0}
        import torch.distributed as dist

        every: list = [None] * self.dist.world_size
        dist.all_gather_object(every, mine)
        seen: dict[str, int] = {}
        for titles in every:
            for t in titles:
                seen[t] = seen.get(t, 0) + 1
        return {
            "titles_read_per_rank": [len(t) for t in every],
            "titles_read_by_several_ranks": sum(1 for n in seen.values() if n > 1),
        }

    def save(self) -> None:
        """Rank 0 writes the checkpoint folder (weights, config, metrics, resume state)."""
        self.read_audit = self._audit_reads()
        if self.dist.is_main:
            state = {
                "step": self.step,
                "optimizer": self.opt.state_dict(),
                "optimizer_kind": self.cfg.optimizer,
                "rng_cpu": torch.get_rng_state(),
                "bad_evals": self.bad_evals,
            }
            weights = None
            if self.cfg.keep_best and self.best_state is not None:
                state["model"] = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
                weights = self.best_state
            ckpt.save_checkpoint(
                self.out_dir, self.model, self._config_json(), self._metrics(), state, weights
            )
        barrier(self.dist)

    # ---- steps
    def _autocast(self):
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return nullcontext()

    def _forward_loss(
        self,
        model,
        b: Batch,
        inputs: torch.Tensor | None = None,  # (B, T, D) corrupted shots; None = b.shots
        mask_in: torch.Tensor | None = None,  # (B, T) [MASK] positions; None = b.mask
        unmasked_weight: float = 0.0,
        contrastive_weight: float = 0.0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean cosine distance at the MSM positions b.mask, number of them), plus
        `unmasked_weight` x the mean distance at the other real shots when that is > 0, plus
        `contrastive_weight` x the InfoNCE of the masked predictions against their title's real
        shots (msm.contrastive_loss) when that is > 0. The defaults are the validation loss."""
        x = b.shots if inputs is None else inputs
        m_in = b.mask if mask_in is None else mask_in
        with self._autocast():
            out = model(x, b.shot_mask, b.globals_, b.has_global, mask_positions=m_in)
        d = cosine_distance(out.pred, b.shots)  # (B, T) float32
        n = b.mask.sum()
        loss = (d * b.mask).sum() / n.clamp(min=1)
        if unmasked_weight > 0:
            rest = b.shot_mask & ~b.mask  # (B, T)
            loss = loss + unmasked_weight * (d * rest).sum() / rest.sum().clamp(min=1)
        if contrastive_weight > 0:  # skipped at 0: the default recipe's steps are unchanged
            scored = out.pred if out.contrastive is None else out.contrastive
            nce = contrastive_loss(
                scored,
                b.shots,
                b.mask,
                b.shot_mask,
                self.cfg.contrastive_temperature,
                self.cfg.contrastive_negatives,
            )
            loss = loss + contrastive_weight * nce
        return loss, n

    def make_batch(self, step: int) -> tuple[Batch, torch.Generator]:
        """The batch of `step` on this rank and the generator that drew it (it draws on)."""
        cfg = self.cfg
        gen = step_generator(cfg.seed, step, self.dist.rank)
        return self.data.train_batch(cfg.batch_size, cfg.mask_ratio, gen, cfg.mask_span), gen

    def train_step(self, prefetched: tuple[Batch, torch.Generator] | None = None) -> float:
        cfg = self.cfg
        b, gen = prefetched or self.make_batch(self.step)
        self.shots_seen += b.n_tokens  # counted on the CPU batch: no device sync per step
        b = b.to(self.device)
        self.opt.set_lr_factor(lr_factor(self.step, cfg.steps, cfg.warmup, cfg.min_lr_ratio))
        inputs = mask_in = None
        if cfg.corruption == "bert":  # extra draws only in this mode: "mask" runs are unchanged
            inputs, mask_in = corrupt_inputs(b.shots, b.shot_mask, b.mask, gen)
        self.model.train()
        loss, _ = self._forward_loss(
            self.step_model, b, inputs, mask_in, cfg.unmasked_weight, cfg.contrastive_weight
        )
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.opt.step()
        self.step += 1
        return float(loss.detach())

    def validation_batches(self):
        """The validation batches (read from the dataset anew each evaluation, same masks)."""
        return self.data.val_batches(self.cfg.batch_size, self.cfg.mask_ratio, self.cfg.val_seed)

    @torch.no_grad()
    def _baselines(self) -> dict[str, float]:
        """Trivial predictors on the fixed validation masks (weighted by masked positions)."""
        tot: dict[str, float] = {"mean_shot": 0.0, "neighbour": 0.0}
        n = 0
        for b in self.validation_batches():
            k = int(b.mask.sum())
            for name, v in baseline_losses(b.shots, b.shot_mask, b.mask).items():
                tot[name] += v * k
            n += k
        return {name: v / n for name, v in tot.items()} if n else {}

    @torch.no_grad()
    def evaluate(self) -> float | None:
        """MSM loss on the held-out titles with the fixed validation masks."""
        if not self.data.val_ids:
            return None
        self.model.eval()
        tot, n = 0.0, 0
        for b in self.validation_batches():
            loss, k = self._forward_loss(self.model, b.to(self.device))
            tot += float(loss) * int(k)
            n += int(k)
        return tot / max(n, 1)

    # ---- loop
    def _due(self, every: int) -> bool:
        return self.step == self.cfg.steps or (every > 0 and self.step % every == 0)

    def fit(self) -> Path:
        cfg = self.cfg
        log.info(
            "pre-training %s (%d params) with %s on %s: %d train / %d val titles, steps %d -> %d",
            cfg.size,
            self.model.num_parameters(),
            cfg.optimizer,
            self.device,
            len(self.data.train_ids),
            len(self.data.val_ids),
            self.step,
            cfg.steps,
        )
        if self.baselines:
            log.info(
                "val baselines: mean_shot %.4f neighbour %.4f",
                self.baselines["mean_shot"],
                self.baselines["neighbour"],
            )
        t0 = time.perf_counter()
        ahead = (
            Prefetcher(self.make_batch, self.step, cfg.steps, cfg.prefetch)
            if cfg.prefetch > 0
            else None
        )
        try:
            while self.step < cfg.steps and not self.stopped_early:
                t_step = time.perf_counter()
                batch = ahead.get(self.step) if ahead is not None else None
                self.train_losses.append(self.train_step(batch))
                self.train_seconds += time.perf_counter() - t_step
                self._after_step(t0)  # the last step always evaluates and checkpoints
            if not (self.out_dir / ckpt.WEIGHTS).exists():
                self.save()  # resumed past the end into an empty folder: still leave a checkpoint
        finally:
            if ahead is not None:
                ahead.close()
            shutdown(self.dist)
        return self.out_dir

    def _select(self, val: float | None) -> None:
        """Keep the weights of the lowest validation MSM so far (rank 0)."""
        if val is None:
            return
        if self.best_val is None or val < self.best_val - self.cfg.min_delta:
            self.best_val, self.best_step, self.bad_evals = val, self.step, 0
            self.best_state = {
                k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()
            }
        else:
            self.bad_evals += 1

    def _broadcast_stop(self, stop: bool) -> bool:
        """Rank 0's early-stopping decision, the same on every rank."""
        (flag,) = all_mean([1.0 if (stop and self.dist.is_main) else 0.0], self.dist, self.device)
        return flag * self.dist.world_size > 0.5

    def _after_step(self, t0: float) -> None:
        cfg = self.cfg
        eval_now, ckpt_now = self._due(cfg.eval_every), self._due(cfg.checkpoint_every)
        log_now = self._due(cfg.log_every) or eval_now or ckpt_now
        if not log_now:
            return
        (mean_loss,) = all_mean(
            [sum(self.train_losses) / len(self.train_losses)], self.dist, self.device
        )
        self.train_losses.clear()
        self.last_train = mean_loss
        point = {"step": self.step, "train_loss": mean_loss}
        if eval_now and self.dist.is_main:
            self.last_val = self.evaluate()
            point["val_loss"] = self.last_val
            self._select(self.last_val)
        if eval_now and self.cfg.patience > 0:
            self.stopped_early = self._broadcast_stop(self.bad_evals >= self.cfg.patience)
            ckpt_now = ckpt_now or self.stopped_early
        if eval_now:  # elapsed_s: training wall clock of this process (equal-time comparisons)
            elapsed = round(self.elapsed_before + time.perf_counter() - t0, 3)
            self.curve.append(
                {
                    "step": self.step,
                    "train_loss": mean_loss,
                    "val_loss": self.last_val,
                    "elapsed_s": elapsed,
                }
            )
        if ckpt_now:
            self.save()
        if self.dist.is_main:
            lr = self.opt.param_groups[0]["lr"]
            elapsed = time.perf_counter() - t0
            rate = self.shots_seen / max(elapsed, 1e-9)
            log.info(
                "step %d/%d train_loss %.4f%s lr %.2e %.0f shots/s/rank (%.1f s)",
                self.step,
                cfg.steps,
                mean_loss,
                f" val_loss {self.last_val:.4f}" if eval_now and self.last_val is not None else "",
                lr,
                rate,
                elapsed,
            )
            if self.callback is not None:
                self.callback(
                    self.step,
                    {
                        **point,
                        "lr": lr,
                        "checkpoint": ckpt_now,
                        "shots_per_s": rate,
                        **{f"baseline_{k}": v for k, v in self.baselines.items()},
                    },
                )


def pretrain(
    train_cfg: TrainConfig,
    fused: VectorTable | str | os.PathLike,
    globals: VectorTable | str | os.PathLike | None,  # noqa: A002 - public API name
    out_dir: str | os.PathLike,
    callback: MetricsCallback | None = None,
) -> Path:
    """Pre-train with Masked Shot Modelling; returns the checkpoint folder `out_dir`.

    Under `torchrun` every rank calls this; rank 0 writes checkpoints. `callback(step, metrics)` is
    called on rank 0 at each progress line (e.g. to report to Dagster Pipes).
    """
    return Trainer(train_cfg, fused, globals, out_dir, callback).fit()
