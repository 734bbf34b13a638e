"""The prepared GPU check (issue 9): one script, one table, well under 8 minutes on one GPU.

On CUDA it measures, in order:
1. a base-size (12 x 768, 12 heads) MSM training step in bf16 autocast at 512 shots: step time,
   tokens/s and MFU against the device's measured bf16 matmul peak (FLOPs counted as in
   bench/train_throughput.py: 6 x matmul params x tokens + attention);
2. Muon's Newton-Schulz orthogonalisation in bf16 on a 768 x 3072 matrix (ms per call);
3. `embed_titles` of one 700-shot title (two overlapping 512-shot windows), base size, bf16;
4. the default profile's video and audio encoders on a batch (16 shots x 8 frames; 16 x 4 s audio).

Run (on the GPU machine, from the repo root, with the project installed):
    PYTHONUNBUFFERED=1 timeout 480 python bench/gpu_check.py [--steps 20] [--profile NAME]
Without CUDA it says so and exits 0 after a CPU smoke run of items 1-3 at tiny size (so the
script itself is tested here). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import nullcontext

import numpy as np
import torch


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def _time(fn, dev, reps: int, warmup: int = 2) -> float:
    """Median seconds per call."""
    for _ in range(warmup):
        fn()
    _sync(dev)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        _sync(dev)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def bf16_peak(dev: torch.device) -> float:
    """Best measured bf16 matmul FLOP/s (8192^2 squares) - the MFU denominator."""
    n = 8192 if dev.type == "cuda" else 512
    a = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
    s = _time(lambda: a @ b, dev, reps=10 if dev.type == "cuda" else 2)
    return 2 * n**3 / s


def train_step(size: str, shots: int, batch: int, steps: int, dev: torch.device) -> dict:
    from mediafm_core.model.configuration_mediafm import config_for
    from mediafm_core.model.modeling_mediafm import N_SPECIAL, MediaFMEncoder
    from mediafm_core.model.msm import msm_loss, sample_mask
    from mediafm_core.optim.muon import build_optimizer

    cfg = config_for(size, fused_dim=2304, global_dim=768)
    model = MediaFMEncoder(cfg).to(dev)
    opt = build_optimizer(model, "muon", lr=1e-3, muon_lr=0.02, weight_decay=0.01)
    x = torch.randn(batch, shots, cfg.fused_dim, device=dev)
    g = torch.randn(batch, cfg.global_dim, device=dev)
    sm = torch.ones(batch, shots, dtype=torch.bool, device=dev)
    mask = sample_mask(sm.cpu(), 0.2).to(dev)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else nullcontext()

    def step():
        with amp:
            out = model(x, sm, g, mask_positions=mask)
        loss = msm_loss(out.pred, x, mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    s = _time(step, dev, reps=steps)
    L, H, S = cfg.layers, cfg.hidden, shots + N_SPECIAL
    mm_params = L * (4 * H * H + 2 * H * cfg.mlp_hidden) + 2 * cfg.fused_dim * H
    flops = 6 * mm_params * batch * S + 12 * L * batch * S * S * H
    return {
        "s": s,
        "tokens_s": batch * shots / s,
        "flops": flops / s,
        "params": model.num_parameters(),
    }


def newton_schulz(dev: torch.device) -> float:
    from mediafm_core.optim.muon import zeropower_via_newtonschulz5

    G = torch.randn(768, 3072, device=dev)
    return _time(
        lambda: zeropower_via_newtonschulz5(G, steps=5, dtype=torch.bfloat16), dev, reps=20
    )


def embed_700(size: str, dev: torch.device) -> float:
    from mediafm_core.inference import embed_titles
    from mediafm_core.model.configuration_mediafm import config_for
    from mediafm_core.model.modeling_mediafm import MediaFMEncoder

    model = MediaFMEncoder(config_for(size, fused_dim=2304, global_dim=768)).to(dev).eval()
    titles = {"t": np.random.default_rng(0).normal(size=(700, 2304)).astype(np.float32)}
    return _time(lambda: embed_titles(model, titles, device=str(dev)), dev, reps=5, warmup=1)


def encoders(profile: str, dev: torch.device) -> dict:
    from mediafm_core.encoders.profiles import Encoders

    enc = Encoders.from_profile(profile, device=str(dev))
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, size=(8, 224, 224, 3), dtype=np.uint8) for _ in range(16)]
    audio = [rng.normal(scale=0.1, size=16000 * 4).astype(np.float32) for _ in range(16)]
    return {
        "video_s": _time(lambda: enc.video.encode(frames), dev, reps=3, warmup=1),
        "audio_s": _time(lambda: enc.audio.encode(audio), dev, reps=3, warmup=1),
        "profile": enc.profile.name,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20, help="timed training steps")
    p.add_argument("--profile", default=None, help="encoder profile (default: the default one)")
    a = p.parse_args()
    cuda = torch.cuda.is_available()
    dev = torch.device("cuda" if cuda else "cpu")
    if not cuda:
        print("no CUDA device: CPU smoke run at tiny size, not a GPU measurement", file=sys.stderr)
    size, shots, batch = ("base", 512, 8) if cuda else ("tiny", 64, 2)
    rows = []
    peak = bf16_peak(dev)
    rows.append(("bf16 matmul peak (measured)", f"{peak / 1e12:.1f} TFLOP/s"))
    tr = train_step(size, shots, batch, a.steps if cuda else 2, dev)
    rows += [
        (
            f"train step {size} ({tr['params'] / 1e6:.0f} M params), {batch} x {shots} shots, bf16",
            f"{tr['s'] * 1e3:.1f} ms",
        ),
        ("  tokens/s", f"{tr['tokens_s']:.0f}"),
        ("  MFU vs bf16 peak", f"{100 * tr['flops'] / peak:.1f} %"),
        ("Muon Newton-Schulz 768x3072, 5 iters, bf16", f"{newton_schulz(dev) * 1e3:.2f} ms"),
        (f"embed one 700-shot title ({size})", f"{embed_700(size, dev) * 1e3:.1f} ms"),
    ]
    if cuda or a.profile:
        from mediafm_core.encoders.profiles import DEFAULT_PROFILE

        e = encoders(a.profile or DEFAULT_PROFILE, dev)
        v, au = f"{e['video_s']:.3f} s", f"{e['audio_s']:.3f} s"
        rows += [
            (f"video encoder ({e['profile']}), 16 shots x 8 frames", v),
            (f"audio encoder ({e['profile']}), 16 x 4 s", au),
        ]
    name = torch.cuda.get_device_name(0) if cuda else "CPU (smoke run)"
    print(f"## GPU check on {name}, torch {torch.__version__}\n")
    print("| measure | value |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
