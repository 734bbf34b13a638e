"""Training-step throughput of the MediaFM encoder against this machine's matmul peak.

For one config (default: base, 12 x 768, 12 heads, 512 shots, batch 1, fused 2304) it measures:
- fp32 matmul FLOP/s of the machine (square matmuls, best of several) = the "peak";
- our training step (forward + backward, MSM loss) tokens/s and achieved FLOP/s / peak (MFU),
  with FLOPs counted analytically: 6 * params_in_matmuls * tokens + attention 12 * L * S^2 * H;
- the step time ratio against torch.nn.TransformerEncoder of the same shape (norm_first,
  batch_first, GELU MLP, same input/output projections and loss);
- the optimiser step time of Muon (+AdamW for the rest) against AdamW on everything;
- on CUDA (when present): the same step in bf16 autocast and its MFU against bf16 matmul peak.

Run: OMP_NUM_THREADS=2 .venv/bin/python bench/train_throughput.py [--size base] [--threads 2]
Prints a markdown table. Timings depend on machine load; run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from contextlib import nullcontext

import torch
from torch import nn

from mediafm_core.model.configuration_mediafm import config_for
from mediafm_core.model.modeling_mediafm import N_SPECIAL, MediaFMEncoder
from mediafm_core.model.msm import msm_loss, sample_mask
from mediafm_core.optim.muon import build_optimizer, cpu_has_fast_bf16, ns_dtype_for


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


CLOCK = time.perf_counter  # --clock cpu swaps in time.process_time


def timeit(fn, device: torch.device, reps: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(reps):
        t = CLOCK()
        fn()
        sync(device)
        times.append(CLOCK() - t)
    return times


def matmul_flops(device: torch.device, dtype: torch.dtype, shapes, reps: int = 5) -> float:
    """Best FLOP/s over (m, k, n) matmul shapes, best of `reps` each."""
    best = 0.0
    inner = 1 if device.type == "cpu" else 20
    for m, k, n in shapes:
        a = torch.randn(m, k, device=device, dtype=dtype)
        b = torch.randn(k, n, device=device, dtype=dtype)
        times = timeit(lambda a=a, b=b: [a @ b for _ in range(inner)], device, reps)
        best = max(best, 2 * m * k * n * inner / min(times))
    return best


def model_gemm_shapes(cfg, tokens: int) -> list[tuple[int, int, int]]:
    """The forward GEMM shapes of one block: QKV, O, fc1, fc2."""
    H, M = cfg.hidden, cfg.mlp_hidden
    return [(tokens, H, 3 * H), (tokens, H, H), (tokens, H, M), (tokens, M, H)]


class TorchBaseline(nn.Module):
    """nn.TransformerEncoder of the same shape with the same input/output projections."""

    def __init__(self, cfg):
        super().__init__()
        self.input_proj = nn.Linear(cfg.fused_dim, cfg.hidden)
        self.specials = nn.Parameter(torch.zeros(N_SPECIAL, cfg.hidden))
        self.positions = nn.Parameter(torch.zeros(cfg.max_shots + N_SPECIAL, cfg.hidden))
        layer = nn.TransformerEncoderLayer(
            cfg.hidden,
            cfg.heads,
            cfg.mlp_hidden,
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.final_norm = nn.LayerNorm(cfg.hidden)
        self.output_proj = nn.Linear(cfg.hidden, cfg.fused_dim)

    def forward(self, shots, mask_positions):
        B, T, _ = shots.shape
        x = self.input_proj(shots)
        sp = self.specials.unsqueeze(0).expand(B, -1, -1)
        x = torch.cat([sp, x], 1) + self.positions[: T + N_SPECIAL]
        x = self.final_norm(self.encoder(x))
        return self.output_proj(x[:, N_SPECIAL:])


def matmul_params(cfg) -> int:
    """Parameters that take part in a matmul per token (weights of every Linear on the path)."""
    body = cfg.layers * (4 * cfg.hidden**2 + 2 * cfg.hidden * cfg.mlp_hidden)
    return body + 2 * cfg.fused_dim * cfg.hidden


def step_flops(cfg, batch: int, shots: int) -> float:
    """The usual convention (6 N T + attention). It counts the input projection's input gradient,
    which autograd skips, and S = shots + 2 for the projections: ~0.7 % generous at base size."""
    S = shots + N_SPECIAL
    return 6 * matmul_params(cfg) * batch * S + 12 * cfg.layers * S**2 * cfg.hidden * batch


def train_step_fn(model, shots, mask, device, ours: bool):
    def step():
        model.zero_grad(set_to_none=True)
        cuda = device.type == "cuda"
        with torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext():
            pred = model(shots, mask_positions=mask).pred if ours else model(shots, mask)
        msm_loss(pred, shots, mask).backward()

    return step


def optimizer_step_time(model, kind: str, device, reps: int, ns_dtype=None) -> float:
    opt = build_optimizer(model, kind, ns_dtype=ns_dtype)
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 1e-3
    return min(timeit(opt.step, device, reps, warmup=1))


def cpu_bf16_rows(model, shots, mask, flops, to, reps) -> list[tuple[str, str]]:
    """Informational: the same step under CPU bf16 autocast (AMX), not used by the trainer."""
    dev = torch.device("cpu")
    peak = matmul_flops(dev, torch.bfloat16, [(2048, 2048, 2048), (514, 768, 3072)])

    def step():
        model.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            pred = model(shots, mask_positions=mask).pred
        msm_loss(pred, shots, mask).backward()

    t = min(timeit(step, dev, reps))
    return [
        ("(info) CPU bf16 matmul peak (AMX)", f"{peak / 1e9:.0f} GFLOP/s"),
        (
            "(info) ours with CPU bf16 autocast: step time, speed-up vs fp32",
            f"{t:.3f} s, {to / t:.1f}x (MFU vs bf16 peak {100 * flops / t / peak:.1f} %)",
        ),
    ]


def run(args) -> list[tuple[str, str]]:
    device = torch.device(args.device)
    torch.manual_seed(0)
    cfg = config_for(
        args.size,
        args.fused_dim,
        args.global_dim,
        layers=args.layers,
        hidden=args.hidden,
        heads=args.heads,
    )
    rows: list[tuple[str, str]] = []
    rows.append(
        ("device / threads / clock", f"{device} / {torch.get_num_threads()} / {args.clock}")
    )
    rows.append(
        (
            "config",
            f"{cfg.layers} x {cfg.hidden}, {cfg.heads} heads, {args.shots} shots, "
            f"batch {args.batch}, fused {cfg.fused_dim}",
        )
    )
    sq = matmul_flops(device, torch.float32, [(2048, 2048, 2048)])
    tokens = args.batch * (args.shots + N_SPECIAL)
    peak = max(
        sq,
        matmul_flops(
            device,
            torch.float32,
            [(n, n, n) for n in (1024, 4096)] + model_gemm_shapes(cfg, tokens),
        ),
    )
    rows.append(("fp32 matmul 2048^3 (best of 5)", f"{sq / 1e9:.1f} GFLOP/s"))
    rows.append(
        (
            "fp32 matmul peak = best of 1024^3, 2048^3, 4096^3 and the model's GEMM shapes",
            f"{peak / 1e9:.1f} GFLOP/s",
        )
    )

    shots = torch.randn(args.batch, args.shots, cfg.fused_dim, device=device)
    mask = sample_mask(
        torch.ones(args.batch, args.shots, dtype=torch.bool, device=device),
        generator=torch.Generator(device=device).manual_seed(0),
    )
    flops = step_flops(cfg, args.batch, args.shots)

    ours = MediaFMEncoder(cfg).to(device)
    base = TorchBaseline(cfg).to(device)
    ours_fn = train_step_fn(ours, shots, mask, device, ours=True)
    base_fn = train_step_fn(base, shots, mask, device, ours=False)
    # Interleave the two so drifting machine load hits both alike.
    t_ours, t_base = [], []
    ours_fn(), base_fn()
    for _ in range(args.reps):
        t_ours += timeit(ours_fn, device, 1, warmup=0)
        t_base += timeit(base_fn, device, 1, warmup=0)
    to, tb = min(t_ours), min(t_base)
    rows.append(("step FLOPs (analytic)", f"{flops / 1e9:.1f} GFLOP"))
    rows.append(
        ("ours: step time (best / median)", f"{to:.3f} s / {statistics.median(t_ours):.3f} s")
    )
    rows.append(("ours: tokens/s", f"{tokens / to:.0f}"))
    rows.append(("ours: achieved FLOP/s", f"{flops / to / 1e9:.1f} GFLOP/s"))
    rows.append(
        ("ours: MFU vs fp32 matmul peak (target >= 65 %)", f"{100 * flops / to / peak:.1f} %")
    )
    rows.append(
        (
            "nn.TransformerEncoder: step time (best / median)",
            f"{tb:.3f} s / {statistics.median(t_base):.3f} s",
        )
    )
    rows.append(("nn.TransformerEncoder: MFU", f"{100 * flops / tb / peak:.1f} %"))
    rows.append(("step time ratio ours / nn.TransformerEncoder (target <= 1.0)", f"{to / tb:.3f}"))
    del base

    if device.type == "cpu" and cpu_has_fast_bf16() and not args.no_cpu_bf16:
        rows += cpu_bf16_rows(ours, shots, mask, flops, to, args.reps)

    t_adam = optimizer_step_time(ours, "adamw", device, args.opt_reps)
    t_muon = optimizer_step_time(ours, "muon", device, args.opt_reps)
    ns = str(ns_dtype_for(device)).replace("torch.", "")
    rows.append(("optimiser step: AdamW (all params)", f"{t_adam:.3f} s"))
    rows.append(
        (f"optimiser step: Muon body + AdamW rest (Newton-Schulz in {ns})", f"{t_muon:.3f} s")
    )
    rows.append(("optimiser step ratio Muon / AdamW", f"{t_muon / t_adam:.1f}"))
    rows.append(("Muon step / training step (fwd+bwd)", f"{t_muon / to:.2f}"))
    if ns != "float32":
        t_fp32 = optimizer_step_time(ours, "muon", device, 1, ns_dtype=torch.float32)
        rows.append(
            (
                "optimiser step: Muon with Newton-Schulz forced to float32",
                f"{t_fp32:.3f} s ({t_fp32 / t_adam:.1f}x AdamW)",
            )
        )

    if torch.cuda.is_available() and device.type == "cpu" and not args.no_cuda:
        rows += cuda_rows(args, cfg)
    elif device.type == "cpu":
        rows.append(("bf16 MFU on CUDA", "no GPU"))
    return rows


def cuda_rows(args, cfg) -> list[tuple[str, str]]:
    """bf16 autocast step MFU against the GPU's bf16 matmul peak."""
    dev = torch.device("cuda")
    peak = matmul_flops(dev, torch.bfloat16, [(8192, 8192, 8192)])
    batch = args.cuda_batch
    model = MediaFMEncoder(cfg).to(dev)
    shots = torch.randn(batch, args.shots, cfg.fused_dim, device=dev)
    mask = sample_mask(torch.ones(batch, args.shots, dtype=torch.bool, device=dev))
    fn = train_step_fn(model, shots, mask, dev, ours=True)
    t = min(timeit(fn, dev, 10, warmup=3))
    flops = step_flops(cfg, batch, args.shots)
    return [
        ("CUDA: bf16 matmul peak (8192^3)", f"{peak / 1e12:.1f} TFLOP/s"),
        (
            f"CUDA: ours bf16 step, batch {batch}",
            f"{t * 1e3:.1f} ms, {batch * (args.shots + N_SPECIAL) / t:.0f} tokens/s",
        ),
        ("CUDA: bf16 MFU (target >= 40 %)", f"{100 * flops / t / peak:.1f} %"),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", default="base")
    ap.add_argument("--layers", type=int)
    ap.add_argument("--hidden", type=int)
    ap.add_argument("--heads", type=int)
    ap.add_argument("--fused-dim", type=int, default=2304)
    ap.add_argument("--global-dim", type=int, default=768)
    ap.add_argument("--shots", type=int, default=512)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3, help="timed training steps per model")
    ap.add_argument("--opt-reps", type=int, default=2, help="timed optimiser steps")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--cuda-batch", type=int, default=16)
    ap.add_argument("--no-cuda", action="store_true", help="skip the CUDA rows even with a GPU")
    ap.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: elapsed time (needs a quiet machine); cpu: this process's CPU time, which "
        "ignores time spent descheduled by other processes (use with --threads 1)",
    )
    ap.add_argument("--no-cpu-bf16", action="store_true", help="skip the CPU bf16 (AMX) rows")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    global CLOCK
    if args.clock == "cpu":
        CLOCK = time.process_time
    load0 = os.getloadavg()[0]
    rows = run(args)
    rows.append(
        (
            "machine load average (1 min) at start / end",
            f"{load0:.2f} / {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs",
        )
    )
    print("| measure | value |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")


if __name__ == "__main__":
    main()
