"""bench/suite.py --reuse: a checkpoint counts only if it was trained with today's recipe."""

import json
import sys
from pathlib import Path

from mediafm_core.training import TrainConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import suite  # noqa: E402


def _checkpoint(folder: Path, train: dict) -> Path:
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"")  # presence is all _reused looks at
    (folder / "metrics.json").write_text(json.dumps({"best_val_loss": 0.5, "curve": []}))
    (folder / "config.json").write_text(json.dumps({"train": train}))
    return folder


def test_reuse_skips_a_checkpoint_of_another_recipe(tmp_path):
    job = {"optimizer": "muon", "seed": 11}
    now = TrainConfig(**job).to_dict() | {"device": "cpu", "checkpoint_every": 0}
    same = _checkpoint(tmp_path / "same", now)
    assert suite._reused(str(same), job)["best_val_loss"] == 0.5
    # the tag names only the overrides: a default that changed since must not be reused
    old = _checkpoint(tmp_path / "old", now | {"contrastive_temperature": 0.1})  # the old default
    assert suite._reused(str(old), job) is None
    # a setting the checkpoint predates (absent from its config) is another recipe too
    older = {k: v for k, v in now.items() if k != "contrastive_negatives"}
    assert suite._reused(str(_checkpoint(tmp_path / "older", older)), job) is None
    assert suite._reused(str(old)) is not None  # without a job: presence alone, as before
