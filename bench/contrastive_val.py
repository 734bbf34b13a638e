"""How identifiable a masked shot is among its title's shots: validation InfoNCE of checkpoints.

For each checkpoint folder: on its held-out titles with the fixed validation masks (the trainer's),
the masked-only MSM, the InfoNCE of the MSM prediction against the window's real shots
(msm.contrastive_loss, temperature 0.1), its chance level (mean ln n_real over masked shots) and
the top-1 accuracy (the masked shot's own fused vector is the nearest of the window's shots),
beside the same for the two trivial predictors (title mean shot, nearest visible shot).

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 .venv/bin/python bench/contrastive_val.py \
        --data /tmp/contrast/suite/narrative_s11_240t_80-320_n1.5 CKPT [CKPT ...]

Never part of the tests. Source: issue 20 (the contrastive lever beside MSM).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="suite cell folder (fused/globals.parquet)")
    p.add_argument("checkpoints", nargs="+")
    p.add_argument("--temperature", type=float, default=0.1)
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from mediafm_core.model.msm import (
        contrastive_loss,
        mean_shot_prediction,
        msm_loss,
        neighbour_prediction,
    )
    from mediafm_core.training import TrainConfig
    from mediafm_core.training.checkpoint import load_checkpoint
    from mediafm_core.training.trainer import Trainer

    d = Path(a.data)
    print(
        f"| checkpoint ({d.name}) | predictor | val MSM | val InfoNCE (nats) | chance ln n "
        "| top-1 |\n|---|---|---|---|---|---|"
    )
    for ck in a.checkpoints:
        meta = json.loads((Path(ck) / "config.json").read_text())
        cfg = TrainConfig.from_dict({**meta["train"], "device": "cpu", "resume": False})
        tr = Trainer(cfg, d / "fused.parquet", d / "globals.parquet", tempfile.mkdtemp())
        model, _ = load_checkpoint(ck)
        model.eval()
        sums: dict[str, list[float]] = {}
        n_tot, chance = 0, 0.0
        with torch.no_grad():
            for b in tr.validation_batches():
                out = model(b.shots, b.shot_mask, b.globals_, b.has_global, mask_positions=b.mask)
                k = int(b.mask.sum())
                n_real = b.shot_mask.sum(1, keepdim=True).expand_as(b.mask)[b.mask].float()
                chance += float(n_real.log().sum())
                preds = {
                    "model": out.pred,
                    "mean shot": mean_shot_prediction(b.shots, b.shot_mask, b.mask),
                    "neighbour": neighbour_prediction(b.shots, b.shot_mask, b.mask),
                }
                pn = torch.nn.functional.normalize(b.shots, dim=-1)
                for name, pred in preds.items():
                    sim = torch.einsum(
                        "bid,bjd->bij", torch.nn.functional.normalize(pred, dim=-1), pn
                    )
                    sim = sim.masked_fill(~b.shot_mask[:, None, :], -2.0)
                    own = sim.argmax(-1) == torch.arange(sim.shape[1])[None, :]
                    s = sums.setdefault(name, [0.0, 0.0, 0.0])
                    s[0] += float(msm_loss(pred, b.shots, b.mask)) * k
                    nce = contrastive_loss(pred, b.shots, b.mask, b.shot_mask, a.temperature)
                    s[1] += float(nce) * k
                    s[2] += float((own & b.mask).sum())
                n_tot += k
        for name, (msm, nce, top1) in sums.items():
            print(
                f"| {Path(ck).name} | {name} | {msm / n_tot:.4f} | {nce / n_tot:.3f} | "
                f"{chance / n_tot:.3f} | {top1 / n_tot:.3f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
