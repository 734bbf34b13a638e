"""Checkpoint folders: model.safetensors + config.json + metrics.json (+ trainer_state.pt).

A checkpoint is written whole into a temporary sibling folder and then swapped in by renames, so a
reader (or a run killed mid-write) sees either the previous checkpoint or the new one, never a mix.
Weights are safetensors (no pickle); the resume state (optimizer, step, RNG) is a torch file read
back with `weights_only=True`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import torch

from mediafm_core.errors import InputError
from mediafm_core.model.configuration_mediafm import MediaFMConfig
from mediafm_core.model.modeling_mediafm import MediaFMEncoder

log = logging.getLogger(__name__)

FORMAT = "mediafm-checkpoint/1"
WEIGHTS, CONFIG, METRICS, STATE = (
    "model.safetensors",
    "config.json",
    "metrics.json",
    "trainer_state.pt",
)


def weights_version(state: dict[str, torch.Tensor]) -> str:
    """A short content hash of the weights: the checkpoint's `model_version`."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().to("cpu").contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy())
    return "mediafm-" + h.hexdigest()[:16]


def _write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def _recover(out_dir: Path) -> None:
    """Finish a swap interrupted between its two renames: bring the old folder back."""
    if out_dir.exists():
        return
    olds = sorted(out_dir.parent.glob(f".{out_dir.name}.old-*"))
    if olds:
        os.replace(olds[-1], out_dir)


def save_checkpoint(
    out_dir: str | os.PathLike,
    model: MediaFMEncoder,
    config: dict,  # MediaFMConfig + train config + dims, written to config.json
    metrics: dict,
    trainer_state: dict | None = None,
    weights: dict[str, torch.Tensor] | None = None,
) -> str:
    """Write the folder atomically; returns the model_version.

    `weights` (a state dict) is what `model.safetensors` holds when given - the trainer passes the
    best-validation weights there and keeps the last weights in `trainer_state` for `--resume`.
    """
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    _recover(out)
    from safetensors.torch import save_file

    src = model.state_dict() if weights is None else weights
    state = {k: v.detach().to("cpu").contiguous() for k, v in src.items()}
    version = weights_version(state)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        save_file(state, str(tmp / WEIGHTS), metadata={"format": FORMAT, "model_version": version})
        _write_json(tmp / CONFIG, {**config, "format": FORMAT, "model_version": version})
        _write_json(tmp / METRICS, {**metrics, "model_version": version})
        if trainer_state is not None:
            torch.save(trainer_state, tmp / STATE)
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("checkpoint %s written to %s", version, out)
    return version


def read_meta(ckpt_dir: str | os.PathLike) -> dict:
    """config.json plus metrics.json under 'metrics'; InputError if not a checkpoint folder."""
    d = Path(ckpt_dir)
    _recover(d)
    for name in (WEIGHTS, CONFIG):
        if not (d / name).is_file():
            raise InputError(str(d), f"not a MediaFM checkpoint (missing {name})")
    try:
        meta = json.loads((d / CONFIG).read_text())
        metrics = json.loads((d / METRICS).read_text()) if (d / METRICS).is_file() else {}
    except json.JSONDecodeError as exc:
        raise InputError(str(d), f"unreadable checkpoint JSON ({exc})") from exc
    if "model" not in meta:
        raise InputError(str(d / CONFIG), "missing the 'model' section")
    meta["metrics"] = metrics
    return meta


def load_checkpoint(
    ckpt_dir: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[MediaFMEncoder, dict]:
    """(encoder in eval mode on `device`, meta) where meta is config.json plus 'metrics'."""
    from safetensors.torch import load_file

    meta = read_meta(ckpt_dir)
    model = MediaFMEncoder(MediaFMConfig.from_dict(meta["model"]))
    try:
        state = load_file(str(Path(ckpt_dir) / WEIGHTS), device="cpu")
        model.load_state_dict(state)
    except Exception as exc:  # safetensors and load_state_dict raise several types
        raise InputError(str(Path(ckpt_dir) / WEIGHTS), f"weights do not load ({exc})") from exc
    return model.to(device).eval(), meta


def load_trainer_state(ckpt_dir: str | os.PathLike) -> dict | None:
    """The resume state of a checkpoint folder, or None when it has none."""
    d = Path(ckpt_dir)
    _recover(d)
    if not (d / STATE).is_file():
        return None
    return torch.load(d / STATE, map_location="cpu", weights_only=True)
