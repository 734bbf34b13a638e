"""Muon for the Transformer body's hidden matrices, AdamW for everything else.

Muon (Keller Jordan, 2024) replaces each 2-D update by its nearest semi-orthogonal matrix, computed
with a quintic Newton-Schulz iteration. `torch.optim.Muon` exists but always runs Newton-Schulz in
bfloat16; bf16 matmul on a CPU without AMX is ~35x slower than fp32 (a 12x768 step took ~850 s
stock against ~37 s in fp32), so here the orthogonalisation dtype follows the device: bf16 on
CUDA and on CPUs with AMX tiles (there bf16 matmul is the fast one: a 768x3072 Newton-Schulz ran
5.5x faster in bf16 than in fp32), fp32 on other CPUs. We subclass torch's Muon (keeping its
hyper-parameters, validation and state layout) and only replace the step.

The split between the two optimisers is derived from the model (`param_groups`): every 2-D weight
inside `blocks.*` goes to Muon; embeddings, special tokens, positions, norms, biases and the
input/output/global projections go to AdamW (weight decay only on the projection weights).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)  # quintic maximising the slope at zero (Keller Jordan)
BODY_PREFIX = "blocks."  # parameters under this module prefix are the Transformer body


def adjusted_lr(lr: float, adjust_lr_fn: str | None, shape: torch.Size) -> float:
    """Per-matrix learning rate, as torch.optim.Muon's `adjust_lr_fn` options: 'original'
    (Keller Jordan: sqrt(max(1, fan_out / fan_in))) or 'match_rms_adamw' (Moonshot:
    0.2 * sqrt(max(fan_out, fan_in)), so AdamW's learning rate can be shared)."""
    a, b = shape[:2]
    if adjust_lr_fn in (None, "original"):
        return lr * max(1.0, a / b) ** 0.5
    if adjust_lr_fn == "match_rms_adamw":
        return lr * 0.2 * max(a, b) ** 0.5
    if adjust_lr_fn == "spectral_unclamped":
        return lr * (a / b) ** 0.5
    raise ValueError(f"unknown adjust_lr_fn {adjust_lr_fn!r}")


def cpu_has_fast_bf16() -> bool:
    """True when this CPU has AMX tiles, where oneDNN's bf16 matmul outruns fp32 many times over."""
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(probe()) if probe is not None else False


def ns_dtype_for(device: torch.device | str) -> torch.dtype:
    """Orthogonalisation dtype: bf16 where bf16 matmul is fast (CUDA, AMX CPUs), fp32 elsewhere.

    A fixed function of the hardware, so a run and its resume on one machine pick the same."""
    kind = torch.device(device).type
    if kind == "cuda" or (kind == "cpu" and cpu_has_fast_bf16()):
        return torch.bfloat16
    return torch.float32


def zeropower_via_newtonschulz5(
    G: Tensor,  # (m, n)
    steps: int = 5,
    dtype: torch.dtype | None = None,
    eps: float = 1e-7,
    coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
) -> Tensor:
    """Approximate U V^T of G = U S V^T (singular values land in roughly [0.7, 1.2]).

    Runs in `dtype` (default: `ns_dtype_for(G.device)`) and returns that dtype; the caller casts.
    Works on the wide orientation so the Gram matrix is the smaller one.
    """
    if G.ndim != 2:
        raise ValueError(f"Newton-Schulz needs a 2-D matrix, got shape {tuple(G.shape)}")
    a, b, c = coefficients
    X = G.to(dtype or ns_dtype_for(G.device))
    tall = X.size(0) > X.size(1)
    if tall:
        X = X.T
    X = X / X.norm().clamp(min=eps)  # Frobenius norm >= spectral norm, so ||X||_2 <= 1
    for _ in range(steps):
        A = X @ X.T  # (m, m), m = min dim
        B = torch.addmm(A, A, A, beta=b, alpha=c)  # b A + c A^2
        X = torch.addmm(X, B, X, beta=a)  # a X + B X
    return X.T if tall else X


def muon_update(
    grad: Tensor,  # (m, n)
    momentum_buffer: Tensor,  # (m, n), updated in place
    momentum: float = 0.95,
    nesterov: bool = True,
    ns_steps: int = 5,
    dtype: torch.dtype | None = None,
    coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
    eps: float = 1e-7,
) -> Tensor:
    """Momentum (EMA, as torch.optim.Muon) then orthogonalisation; returns the update in grad's
    dtype, before learning-rate scaling."""
    momentum_buffer.lerp_(grad, 1 - momentum)
    update = grad.lerp(momentum_buffer, momentum) if nesterov else momentum_buffer
    return zeropower_via_newtonschulz5(update, ns_steps, dtype, eps, coefficients).to(grad.dtype)


class Muon(torch.optim.Muon):
    """`torch.optim.Muon` with the Newton-Schulz dtype chosen per device: bf16 on CUDA and on
    CPUs with AMX, fp32 elsewhere.

    `ns_dtype` forces a dtype for every parameter (None = follow each parameter's device).
    """

    def __init__(self, params, *args, ns_dtype: torch.dtype | None = None, **kwargs) -> None:
        super().__init__(params, *args, **kwargs)
        self.ns_dtype = ns_dtype

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params: list[Tensor] = []
            grads: list[Tensor] = []
            bufs: list[Tensor] = []
            self._init_group(group, params, grads, bufs)
            lr = float(group["lr"])
            for p, g, buf in zip(params, grads, bufs):
                update = muon_update(
                    g,
                    buf,
                    momentum=group["momentum"],
                    nesterov=group["nesterov"],
                    ns_steps=group["ns_steps"],
                    dtype=self.ns_dtype or ns_dtype_for(p.device),
                    coefficients=tuple(group["ns_coefficients"]),
                    eps=group["eps"],
                )
                p.mul_(1 - lr * group["weight_decay"])  # decoupled weight decay
                p.add_(update, alpha=-adjusted_lr(lr, group["adjust_lr_fn"], p.shape))
        return loss


def _projection_weight_names(model: nn.Module) -> set[str]:
    """Names of nn.Linear weights outside the body: the only AdamW parameters with weight decay."""
    return {
        f"{name}.weight" if name else "weight"
        for name, m in model.named_modules()
        if isinstance(m, nn.Linear) and not name.startswith(BODY_PREFIX)
    }


def param_groups(model: nn.Module) -> dict[str, list[tuple[str, nn.Parameter]]]:
    """Split trainable parameters into 'muon' (2-D weights of the body), 'adamw_decay' (projection
    weights outside the body) and 'adamw_no_decay' (tokens, positions, norms, biases).

    Derived from module structure, so new layers land in the right group without a hand list.
    """
    decay_names = _projection_weight_names(model)
    groups: dict[str, list[tuple[str, nn.Parameter]]] = {
        "muon": [],
        "adamw_decay": [],
        "adamw_no_decay": [],
    }
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.startswith(BODY_PREFIX) and p.ndim == 2:
            groups["muon"].append((name, p))
        elif name in decay_names:
            groups["adamw_decay"].append((name, p))
        else:
            groups["adamw_no_decay"].append((name, p))
    return groups


class CombinedOptimizer:
    """Several optimisers stepped together; `param_groups` spans all of them so one schedule
    (each group's `initial_lr` times a factor) drives both Muon and AdamW."""

    def __init__(self, optimizers: dict[str, torch.optim.Optimizer]):
        self.optimizers = optimizers
        for opt in optimizers.values():
            for g in opt.param_groups:
                g.setdefault("initial_lr", g["lr"])

    @property
    def param_groups(self) -> list[dict]:
        return [g for opt in self.optimizers.values() for g in opt.param_groups]

    def set_lr_factor(self, factor: float) -> None:
        for g in self.param_groups:
            g["lr"] = g["initial_lr"] * factor

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for opt in self.optimizers.values():
            opt.step()

    def state_dict(self) -> dict:
        return {name: opt.state_dict() for name, opt in self.optimizers.items()}

    def load_state_dict(self, state: dict) -> None:
        if set(state) != set(self.optimizers):
            raise ValueError(
                f"optimizer state has {sorted(state)}, expected {sorted(self.optimizers)}"
            )
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state[name])


def build_optimizer(
    model: nn.Module,
    kind: str = "muon",
    lr: float = 1e-3,  # AdamW learning rate
    muon_lr: float = 0.02,  # Muon learning rate (spectral-norm scale, Keller Jordan's default)
    weight_decay: float = 0.01,  # AdamW decay on projection weights; Muon decay on body weights
    betas: tuple[float, float] = (0.9, 0.98),
    momentum: float = 0.95,
    ns_steps: int = 5,
    ns_dtype: torch.dtype | None = None,
) -> CombinedOptimizer:
    """kind='muon': Muon on the body's matrices + AdamW on the rest; kind='adamw': AdamW on all."""
    if kind not in ("muon", "adamw"):
        raise ValueError(f"unknown optimizer {kind!r}; expected 'muon' or 'adamw'")
    groups = param_groups(model)
    decay = [p for _, p in groups["adamw_decay"]]
    no_decay = [p for _, p in groups["adamw_no_decay"]]
    if kind == "adamw":
        decay = decay + [p for _, p in groups["muon"]]
    adam_groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    # fused=True: one kernel per step on CPU and CUDA, ~5x faster than foreach on this CPU.
    opts: dict[str, torch.optim.Optimizer] = {
        "adamw": torch.optim.AdamW(
            [g for g in adam_groups if g["params"]], lr=lr, betas=betas, fused=True
        )
    }
    if kind == "muon" and groups["muon"]:
        opts["muon"] = Muon(
            [p for _, p in groups["muon"]],
            lr=muon_lr,
            weight_decay=weight_decay,
            momentum=momentum,
            ns_steps=ns_steps,
            ns_dtype=ns_dtype,
        )
    return CombinedOptimizer(opts)
