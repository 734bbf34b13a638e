"""bench/evaluate_split.py: the CPU split of `mediafm evaluate` runs the CLI's steps, so its
probe results are the CLI's, and the table's total is the sum of its steps."""

import sys
from pathlib import Path

import numpy as np
import torch

from mediafm_core.cli import main
from mediafm_core.evaluation import open_benchmark, run_ablation, streamed_features
from mediafm_core.model.configuration_mediafm import config_for
from mediafm_core.model.modeling_mediafm import MediaFMEncoder
from mediafm_core.training import load_checkpoint
from mediafm_core.training.checkpoint import save_checkpoint

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import evaluate_split  # noqa: E402 - bench/evaluate_split.py, a script module


def test_split_runs_evaluates_steps_with_its_results(tmp_path, capsys):
    data = tmp_path / "b"
    assert main(["synth", str(data), "--titles", "12", "--dims", "6", "4", "5", "--seed", "2"]) == 0
    torch.manual_seed(0)
    model = MediaFMEncoder(config_for("tiny", fused_dim=15, global_dim=5, max_shots=64))
    ckpt = tmp_path / "ck"
    save_checkpoint(ckpt, model, {"model": model.config.to_dict()}, {"val_loss": 0.5})
    capsys.readouterr()
    assert evaluate_split.main([str(data), "--checkpoint", str(ckpt), "--folds", "3"]) == 0
    out = capsys.readouterr().out
    steps, results = evaluate_split.split(str(data), str(ckpt), folds=3)
    assert list(steps)[2:] == [
        "features: video_only + fused",
        "features: contextual",
        "features: clip_alone",
        "probes: 4 rows x 5 tasks, 3 folds",
    ]
    assert all(v >= 0 for v in steps.values())
    total = float(out.split("| total | ")[1].split(" |")[0])
    shown = [float(ln.rsplit("|", 2)[1]) for ln in out.splitlines()[2:8]]
    # each figure is printed to 0.1 s, so the total and the six steps differ by their rounding
    assert len(shown) == 6 and abs(total - sum(shown)) <= 0.05 * (len(shown) + 1) + 1e-9
    bench = open_benchmark(data)
    m, _ = load_checkpoint(ckpt)
    feats = streamed_features(bench.fused, bench.video, bench.globals_, bench.clips, m, "auto")
    cli = run_ablation(bench.as_data(), m, folds=3, features=feats)
    assert list(results) == list(cli) == ["video_only", "fused", "contextual", "clip_alone"]
    for row in cli:
        for task in cli[row]:
            np.testing.assert_allclose(results[row][task].folds, cli[row][task].folds, atol=1e-6)
