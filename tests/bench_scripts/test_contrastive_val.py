"""bench/contrastive_val.py on a tiny synthetic cell: one table row per predictor, the chance level
and the trivial predictors' scores checked against values computed here."""

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import contrastive_val  # noqa: E402 - bench/contrastive_val.py, a script module

from mediafm_core.model.msm import contrastive_loss, neighbour_prediction  # noqa: E402
from mediafm_core.synthetic.families import FamilyConfig, generate  # noqa: E402
from mediafm_core.synthetic.narrative import write  # noqa: E402
from mediafm_core.training import TrainConfig, pretrain  # noqa: E402
from mediafm_core.training.trainer import Trainer  # noqa: E402


def test_table_rows_chance_and_neighbour_values(tmp_path, capsys):
    data = tmp_path / "cell"
    cfg = FamilyConfig(n_titles=12, dims=(8, 8, 8), seed=3, min_shots=12, max_shots=30)
    write(generate(cfg), data)
    train = TrainConfig(
        size="tiny",
        steps=3,
        batch_size=2,
        window=32,
        eval_every=0,
        checkpoint_every=0,
        val_fraction=0.25,
        device="cpu",
        prefetch=0,
    )
    ck = pretrain(train, data / "fused.parquet", data / "globals.parquet", tmp_path / "ck")
    assert contrastive_val.main(["--data", str(data), str(ck)]) == 0
    rows = [r for r in capsys.readouterr().out.splitlines() if r.startswith("| ck |")]
    assert [r.split(" | ")[1] for r in rows] == ["model", "mean shot", "neighbour"]
    # the same validation batches, scored here
    tr = Trainer(train, data / "fused.parquet", data / "globals.parquet", tmp_path / "x")
    logs, nce, k_tot = 0.0, 0.0, 0
    for b in tr.validation_batches():
        k = int(b.mask.sum())
        n = b.shot_mask.sum(1, keepdim=True).expand_as(b.mask)[b.mask].float()
        logs += float(n.log().sum())
        pred = neighbour_prediction(b.shots, b.shot_mask, b.mask)
        nce += float(contrastive_loss(pred, b.shots, b.mask, b.shot_mask)) * k
        k_tot += k
    cells = {r.split(" | ")[1]: r.strip(" |").split(" | ") for r in rows}
    for name in cells:
        assert float(cells[name][4]) == pytest.approx(logs / k_tot, abs=1e-3)  # chance ln n
    assert float(cells["neighbour"][3]) == pytest.approx(nce / k_tot, abs=1e-3)
    # a copied neighbour is always nearest to that neighbour, never to the masked shot itself
    assert float(cells["neighbour"][5]) == 0.0
    assert math.isfinite(float(cells["model"][3]))
