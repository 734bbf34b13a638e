"""DDP under torchrun: two CPU ranks on gloo end with identical weights; rank 0 checkpoints."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from mediafm_core.tables import write_vectors
from mediafm_core.training.checkpoint import weights_version

ROOT = Path(__file__).resolve().parents[2]

RANK_SCRIPT = r"""
import json, os, sys, torch
torch.set_num_threads(1)
from mediafm_core.training import TrainConfig
from mediafm_core.training.checkpoint import weights_version
from mediafm_core.training.trainer import Trainer
cfg = TrainConfig(**json.loads(sys.argv[1]))
tr = Trainer(cfg, sys.argv[2], None, sys.argv[3])
assert tr.dist.world_size == 2, tr.dist
tr.fit()
out = os.path.join(sys.argv[4], f"rank{tr.dist.rank}.json")
first = tr.model.blocks[0].attn.q.weight.detach()
json.dump({"version": weights_version(tr.model.state_dict()), "q00": first[0, 0].item()},
          open(out, "w"))
"""


def test_two_gloo_ranks_end_with_identical_weights(tmp_path):
    rng = np.random.default_rng(0)
    n = [int(x) for x in rng.integers(5, 20, size=8)]
    ids = [f"t{i}" for i, k in enumerate(n) for _ in range(k)]
    idx = [j for k in n for j in range(k)]
    fp = tmp_path / "fused.parquet"
    write_vectors(fp, ids, idx, rng.normal(size=(len(ids), 8)).astype(np.float32), column="fused")
    cfg = dict(
        size="tiny",
        layers=1,
        steps=4,
        batch_size=2,
        window=12,
        warmup=1,
        eval_every=2,
        checkpoint_every=2,
        log_every=2,
        val_fraction=0.25,
    )
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    out, hashes = tmp_path / "ckpt", tmp_path / "hashes"
    hashes.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        str(script),
        json.dumps(cfg),
        str(fp),
        str(out),
        str(hashes),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = json.loads((hashes / "rank0.json").read_text())
    r1 = json.loads((hashes / "rank1.json").read_text())
    assert r0 == r1
    meta = json.loads((out / "config.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert meta["model_version"] == r0["version"]  # rank 0's checkpoint holds the shared weights
    assert metrics["world_size"] == 2 and metrics["steps"] == 4
    from mediafm_core.training import load_checkpoint

    model, _ = load_checkpoint(out)
    assert weights_version(model.state_dict()) == r0["version"]
