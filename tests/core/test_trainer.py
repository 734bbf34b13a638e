"""Pre-training: schedule, windows, determinism, checkpoints, resume after SIGKILL, CLI."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from mediafm_core.cli import main as cli_main
from mediafm_core.errors import InputError
from mediafm_core.model.msm import baseline_losses
from mediafm_core.tables import VectorTable, write_vectors
from mediafm_core.training import TrainConfig, load_checkpoint, pretrain
from mediafm_core.training.checkpoint import weights_version
from mediafm_core.training.data import TitleWindows, split_titles, step_generator
from mediafm_core.training.trainer import Trainer, lr_factor

ROOT = Path(__file__).resolve().parents[2]
D, G = 10, 4


def make_titles(n_titles: int = 8, seed: int = 0, lo: int = 4, hi: int = 30) -> VectorTable:
    """Titles whose shots are noisy copies of a slowly drifting title state."""
    rng = np.random.default_rng(seed)
    ids, idx, vecs = [], [], []
    for t in range(n_titles):
        n = int(rng.integers(lo, hi))
        state = rng.normal(size=D) + np.cumsum(0.2 * rng.normal(size=(n, D)), axis=0)
        vecs.append(state + 0.3 * rng.normal(size=(n, D)))
        ids += [f"title-{t:02d}"] * n
        idx += list(range(n))
    return VectorTable(
        np.array(ids, dtype=object), np.array(idx), np.concatenate(vecs).astype(np.float32), {}
    )


def make_globals(fused: VectorTable, skip: int = 1) -> VectorTable:
    titles = list(fused.by_title())[skip:]  # the first title(s) have no metadata vector
    rng = np.random.default_rng(1)
    return VectorTable(
        np.array(titles, dtype=object),
        np.zeros(len(titles), dtype=np.int64),
        rng.normal(size=(len(titles), G)).astype(np.float32),
        {},
    )


def tiny_cfg(**over) -> TrainConfig:
    base = dict(
        size="tiny",
        steps=8,
        batch_size=3,
        window=12,
        warmup=2,
        eval_every=4,
        checkpoint_every=4,
        log_every=2,
        val_fraction=0.25,
        seed=0,
    )
    return TrainConfig(**{**base, **over})


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_lr_schedule_warms_up_then_decays():
    f = [lr_factor(s, 100, 10, 0.1) for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(f[:9], f[1:10]))
    assert all(a >= b for a, b in zip(f[10:], f[11:]))
    assert f[-1] == pytest.approx(0.1)
    assert lr_factor(0, 10, 100, 0.1) == pytest.approx(0.5)  # warm-up capped at steps / 5


def test_split_is_by_title_id_and_order_free():
    ids = [f"t{i}" for i in range(20)]
    train, val = split_titles(ids, 0.2)
    assert len(val) == 4 and not set(train) & set(val)
    assert set(split_titles(list(reversed(ids)), 0.2)[1]) == set(val)
    assert split_titles(ids, 0.0)[1] == []
    assert split_titles(ids, 0.5, val_titles=["t3"])[1] == ["t3"]


def test_windows_padding_and_random_offsets():
    fused = make_titles(3, lo=40, hi=60)
    data = TitleWindows(fused, make_globals(fused), window=16, val_fraction=0.0)
    b = data.train_batch(6, 0.2, step_generator(0, 0))
    assert b.shots.shape == (6, 16, D) and b.shot_mask.all()
    assert not (b.mask & ~b.shot_mask).any()
    titles = fused.by_title()
    starts = set()
    for step in range(5):
        g = step_generator(0, step)
        picks = torch.randint(3, (6,), generator=g).tolist()
        bb = data.train_batch(6, 0.2, step_generator(0, step))
        for i, p in enumerate(picks):
            x = titles[data.train_ids[p]]
            off = int(np.flatnonzero(np.all(np.isclose(x, bb.shots[i, 0].numpy()), axis=1))[0])
            np.testing.assert_array_equal(bb.shots[i].numpy(), x[off : off + 16])
            starts.add(off)
    assert len(starts) > 3  # random offsets, not always the start
    short = TitleWindows(make_titles(4, lo=3, hi=12), None, window=16, val_fraction=0.0)
    sb = short.train_batch(4, 0.2, step_generator(0, 0))
    lengths = sb.shot_mask.sum(1)
    assert sb.shots.shape[1] == int(lengths.max()) and (lengths < sb.shots.shape[1]).any()
    assert (sb.shots[~sb.shot_mask] == 0).all()


def test_globals_attached_with_fallback_flag():
    fused = make_titles(4)
    data = TitleWindows(fused, make_globals(fused), window=12, val_fraction=0.0)
    b = data.collate([fused.vectors[:3]] * 2, ["title-00", "title-02"], 0.2, step_generator(0, 0))
    assert b.has_global.tolist() == [False, True]
    assert (b.globals_[0] == 0).all() and (b.globals_[1] != 0).any()


def test_same_seed_same_weights_other_seed_differs(tmp_path):
    fused = make_titles()
    runs = []
    for i, seed in enumerate((0, 0, 1)):
        tr = Trainer(tiny_cfg(seed=seed), fused, make_globals(fused), tmp_path / f"r{i}")
        tr.fit()
        runs.append(weights(tr.model))
    assert_same_weights(runs[0], runs[1])
    assert not torch.equal(runs[0]["blocks.0.attn.q.weight"], runs[2]["blocks.0.attn.q.weight"])


def test_checkpoint_round_trip_and_metrics(tmp_path):
    fused = make_titles()
    calls = []
    tr = Trainer(
        tiny_cfg(),
        fused,
        make_globals(fused),
        tmp_path / "ck",
        callback=lambda step, m: calls.append((step, m)),
    )
    out = tr.fit()
    model, meta = load_checkpoint(out)
    assert_same_weights(weights(model), weights(tr.model))
    assert not model.training
    assert meta["model"]["fused_dim"] == D and meta["global_dim"] == G
    assert meta["train"]["steps"] == 8 and meta["fused_dim"] == D
    assert meta["model_version"] == weights_version(tr.model.state_dict())
    m = meta["metrics"]
    for key in (
        "train_loss",
        "val_loss",
        "steps",
        "optimizer",
        "baseline_mean_shot",
        "baseline_neighbour",
        "curve",
    ):
        assert m[key] is not None, key
    assert m["steps"] == 8 and m["optimizer"] == "muon"
    assert [p["step"] for p in m["curve"]] == [4, 8]
    # baselines are scored on the fixed validation masks
    tot, n = {"mean_shot": 0.0, "neighbour": 0.0}, 0
    for b in tr.data.val_batches(3, 0.2, 1234):
        k = int(b.mask.sum())
        for name, v in baseline_losses(b.shots, b.shot_mask, b.mask).items():
            tot[name] += v * k
        n += k
    assert m["baseline_mean_shot"] == pytest.approx(tot["mean_shot"] / n)
    assert m["baseline_neighbour"] == pytest.approx(tot["neighbour"] / n)
    assert tr.evaluate() == pytest.approx(m["val_loss"]) == tr.evaluate()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]  # no temp folders left
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json",
        "metrics.json",
        "model.safetensors",
        "trainer_state.pt",
    ]
    assert [s for s, _ in calls] == [2, 4, 6, 8]
    assert calls[1][1]["checkpoint"] and "val_loss" in calls[1][1]
    assert calls[1][1]["baseline_mean_shot"] == pytest.approx(m["baseline_mean_shot"])


def test_load_checkpoint_rejects_non_checkpoint(tmp_path):
    with pytest.raises(InputError, match="not a MediaFM checkpoint"):
        load_checkpoint(tmp_path)


KILLED_RUN = r"""
import json, sys, time, torch
torch.set_num_threads(1)
from mediafm_core.training import TrainConfig, pretrain
cfg = TrainConfig(**json.loads(sys.argv[1]))
marker = sys.argv[4]
def hang_after_checkpoint(step, m):
    if m["checkpoint"] and step == 4:
        open(marker, "w").write(str(step))
        time.sleep(600)  # the test SIGKILLs us here
pretrain(cfg, sys.argv[2], None, sys.argv[3], callback=hang_after_checkpoint)
"""


def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path):
    fused = make_titles()
    path = tmp_path / "fused.parquet"
    write_vectors(path, fused.title_ids, fused.shot_index, fused.vectors, column="fused")
    cfg = tiny_cfg(checkpoint_every=4, eval_every=4)
    full = Trainer(cfg, path, None, tmp_path / "full")
    full.fit()
    out, marker = tmp_path / "killed", tmp_path / "at_checkpoint"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            KILLED_RUN,
            json.dumps(cfg.to_dict()),
            str(path),
            str(out),
            str(marker),
        ],
        env=env,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "no checkpoint written in time"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL
    proc.stderr.close()
    assert json.loads((out / "metrics.json").read_text())["steps"] == 4
    resumed = Trainer(TrainConfig(**{**cfg.to_dict(), "resume": True}), path, None, out)
    assert resumed.step == 4
    resumed.fit()
    assert_same_weights(weights(resumed.model), weights(full.model))
    full_m = json.loads((tmp_path / "full" / "metrics.json").read_text())
    res_m = json.loads((out / "metrics.json").read_text())

    def no_time(curve):
        return [{k: v for k, v in p.items() if k != "elapsed_s"} for p in curve]

    assert no_time(res_m["curve"]) == no_time(full_m["curve"]) and res_m["steps"] == 8
    times = [p["elapsed_s"] for p in res_m["curve"]]
    assert times == sorted(times)  # wall clock accumulates across the resume


def test_resume_rejects_other_model(tmp_path):
    fused = make_titles()
    pretrain(tiny_cfg(steps=2, checkpoint_every=0), fused, None, tmp_path / "ck")
    with pytest.raises(InputError, match="model config"):
        Trainer(tiny_cfg(layers=1, resume=True), fused, None, tmp_path / "ck")


def test_resume_accepts_a_checkpoint_from_before_the_contrastive_head_field(tmp_path):
    fused = make_titles()
    pretrain(tiny_cfg(steps=2, checkpoint_every=0), fused, None, tmp_path / "ck")
    path = tmp_path / "ck" / "config.json"
    meta = json.loads(path.read_text())
    assert meta["model"].pop("contrastive_head") is False  # as written before issue 20's term
    path.write_text(json.dumps(meta))
    tr = Trainer(tiny_cfg(steps=4, resume=True, checkpoint_every=0), fused, None, tmp_path / "ck")
    assert tr.step == 2


def test_cli_pretrain_end_to_end(tmp_path, capsys):
    fused = make_titles()
    glob = make_globals(fused)
    fp, gp = tmp_path / "fused.parquet", tmp_path / "globals.parquet"
    write_vectors(fp, fused.title_ids, fused.shot_index, fused.vectors, column="fused")
    write_vectors(gp, glob.title_ids, None, glob.vectors)
    out = tmp_path / "ckpt"
    rc = cli_main(
        [
            "pretrain",
            "--fused",
            str(fp),
            "--globals",
            str(gp),
            "--out",
            str(out),
            "--size",
            "tiny",
            "--steps",
            "6",
            "--batch-size",
            "2",
            "--window",
            "12",
            "--optimizer",
            "adamw",
            "--layers",
            "1",
            "--val-fraction",
            "0.25",
        ]
    )
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    metrics = json.loads((out / "metrics.json").read_text())
    assert summary["checkpoint"] == str(out) and summary["steps"] == metrics["steps"] == 6
    assert metrics["optimizer"] == "adamw"
    model, meta = load_checkpoint(out)
    assert meta["model"]["layers"] == 1 and meta["global_dim"] == G


def test_cli_pretrain_contrastive_flags_reach_the_config(tmp_path, capsys):
    fused = make_titles()
    fp = tmp_path / "fused.parquet"
    write_vectors(fp, fused.title_ids, fused.shot_index, fused.vectors, column="fused")
    out = tmp_path / "ckpt"
    common = ["pretrain", "--fused", str(fp), "--size", "tiny", "--steps", "3", "--layers", "1"]
    common += ["--batch-size", "2", "--window", "12", "--val-fraction", "0.25"]
    flags = ["--contrastive-weight", "0.5", "--contrastive-temperature", "0.2"]
    assert cli_main([*common, "--out", str(out), *flags]) == 0
    train = json.loads((out / "config.json").read_text())["train"]
    assert train["contrastive_weight"] == 0.5 and train["contrastive_temperature"] == 0.2
    assert cli_main([*common, "--out", str(tmp_path / "plain"), "--contrastive-weight", "0"]) == 0
    plain = json.loads((tmp_path / "plain" / "metrics.json").read_text())
    with_term = json.loads((out / "metrics.json").read_text())
    assert with_term["train_loss"] > plain["train_loss"]  # the InfoNCE nats are added
    assert (
        json.loads((tmp_path / "plain" / "config.json").read_text())["train"]["contrastive_weight"]
        == 0.0
    )


@pytest.mark.parametrize("problem", ["nan", "missing"])
def test_cli_pretrain_bad_file_exits_2_with_one_line(tmp_path, capsys, problem):
    fused = make_titles(3)
    fp = tmp_path / "fused.parquet"
    vectors = fused.vectors.copy()
    if problem == "nan":
        vectors[5, 2] = np.nan
    column = "fused" if problem == "nan" else "vector"
    write_vectors(fp, fused.title_ids, fused.shot_index, vectors, column=column)
    rc = cli_main(
        [
            "pretrain",
            "--fused",
            str(fp),
            "--out",
            str(tmp_path / "o"),
            "--size",
            "tiny",
            "--steps",
            "2",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    errors = [line for line in err if "error:" in line]
    assert len(errors) == 1 and str(fp) in errors[0]
    assert ("NaN" in errors[0]) if problem == "nan" else ("missing column" in errors[0])
    assert not (tmp_path / "o").exists()


def test_validation_windows_cover_long_titles_evenly():
    fused = make_titles(6, lo=25, hi=40)
    data = TitleWindows(fused, None, window=12, val_fraction=0.5)
    batches = list(data.val_batches(4, 0.2, seed=7))
    lengths = [int(n) for b in batches for n in b.shot_mask.sum(1)]
    titles = fused.by_title()
    assert sum(lengths) == sum(len(titles[t]) for t in data.val_ids)
    assert max(lengths) <= 12 and min(lengths) >= 8  # e.g. 25 shots -> 8 + 9 + 8, never 12+12+1
    again = list(data.val_batches(4, 0.2, seed=7))
    assert len(batches) == len(again) > 0
    assert all(torch.equal(a.mask, b.mask) for a, b in zip(batches, again))


def test_cuda_request_without_gpu_is_one_line_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    fused = make_titles(3)
    fp = tmp_path / "fused.parquet"
    write_vectors(fp, fused.title_ids, fused.shot_index, fused.vectors, column="fused")
    rc = cli_main(
        [
            "pretrain",
            "--fused",
            str(fp),
            "--out",
            str(tmp_path / "o"),
            "--size",
            "tiny",
            "--device",
            "cuda",
        ]
    )
    assert rc == 2
    assert "no CUDA device" in capsys.readouterr().err


def test_single_title_with_validation_is_an_input_error():
    with pytest.raises(InputError, match="none left for training"):
        TitleWindows(make_titles(1), None, window=12, val_fraction=0.1)
    assert TitleWindows(make_titles(1), None, window=12, val_fraction=0.0).val_ids == []


def test_checkpoint_swap_interrupted_between_renames_recovers(tmp_path):
    fused = make_titles()
    out = pretrain(tiny_cfg(steps=2, checkpoint_every=0), fused, None, tmp_path / "ck")
    version = json.loads((out / "config.json").read_text())["model_version"]
    os.replace(out, tmp_path / ".ck.old-12345")  # killed after moving the old folder aside
    model, meta = load_checkpoint(tmp_path / "ck")
    assert meta["model_version"] == version == weights_version(model.state_dict())


def _scripted_val(monkeypatch, losses):
    """Trainer.evaluate returns `losses` in turn and snapshots the weights it was asked about,
    so a test knows exactly which weights the best evaluation saw."""
    seen: dict[int, dict] = {}
    it = iter(losses)

    def evaluate(self):
        seen[self.step] = weights(self.model)
        return next(it)

    monkeypatch.setattr(Trainer, "evaluate", evaluate)
    return seen


def test_best_validation_weights_are_kept_and_early_stopping_ends_the_run(tmp_path, monkeypatch):
    seen = _scripted_val(monkeypatch, [0.9, 0.5, 0.6, 0.55, 0.7, 0.8])
    cfg = tiny_cfg(steps=24, eval_every=2, checkpoint_every=0, patience=3)
    tr = Trainer(cfg, make_titles(), None, tmp_path / "ck")
    tr.fit()
    m = json.loads((tmp_path / "ck" / "metrics.json").read_text())
    # evaluations at steps 2, 4, 6, 8, 10: best at 4, then 3 without a better one -> stop at 10
    assert (m["best_step"], m["best_val_loss"], m["steps"]) == (4, 0.5, 10)
    assert m["stopped_early"] is True and m["val_loss"] == 0.7
    model, _ = load_checkpoint(tmp_path / "ck")
    assert_same_weights(weights(model), seen[4])
    with pytest.raises(AssertionError):
        assert_same_weights(weights(model), seen[10])  # the last weights are not what is served


def test_last_flag_keeps_the_last_weights(tmp_path, monkeypatch):
    seen = _scripted_val(monkeypatch, [0.5, 0.9])
    pretrain(
        tiny_cfg(steps=4, eval_every=2, checkpoint_every=0, keep_best=False),
        make_titles(),
        None,
        tmp_path / "ck",
    )
    model, meta = load_checkpoint(tmp_path / "ck")
    assert meta["metrics"]["best_step"] == 2
    assert_same_weights(weights(model), seen[4])


def test_resume_continues_from_the_last_weights_not_the_best(tmp_path, monkeypatch):
    """Killed after a checkpoint whose best is older: resuming must reach the uninterrupted
    run's weights and the same best step (the best and last weights both travel)."""
    cfg = tiny_cfg(steps=8, eval_every=2, checkpoint_every=2)
    _scripted_val(monkeypatch, [0.5, 0.9, 0.8, 0.7])
    full = Trainer(cfg, make_titles(), None, tmp_path / "full")
    full.fit()
    _scripted_val(monkeypatch, [0.5, 0.9])

    class Killed(Exception):
        pass

    def kill_at_4(step, _metrics):
        if step == 4:  # called after the step-4 checkpoint is on disk
            raise Killed

    with pytest.raises(Killed):
        Trainer(cfg, make_titles(), None, tmp_path / "part", callback=kill_at_4).fit()
    _scripted_val(monkeypatch, [0.8, 0.7])
    resumed = Trainer(
        TrainConfig(**{**cfg.to_dict(), "resume": True}), make_titles(), None, tmp_path / "part"
    )
    assert resumed.step == 4 and resumed.best_step == 2
    resumed.fit()
    assert_same_weights(weights(resumed.model), weights(full.model))
    a, _ = load_checkpoint(tmp_path / "full")
    b, meta = load_checkpoint(tmp_path / "part")
    assert_same_weights(weights(a), weights(b))
    assert meta["metrics"]["best_step"] == 2


def test_real_validation_selects_a_checkpoint_no_worse_than_the_last(tmp_path):
    """Unscripted: the saved weights score the recorded best validation loss, <= the last."""
    cfg = tiny_cfg(steps=40, eval_every=4, checkpoint_every=0, lr=3e-2, optimizer="adamw")
    tr = Trainer(cfg, make_titles(16), None, tmp_path / "ck")
    tr.fit()
    m = json.loads((tmp_path / "ck" / "metrics.json").read_text())
    assert m["best_val_loss"] == min(p["val_loss"] for p in m["curve"]) <= m["val_loss"]
    model, _ = load_checkpoint(tmp_path / "ck")
    tr.model.load_state_dict(model.state_dict())
    assert tr.evaluate() == pytest.approx(m["best_val_loss"], abs=1e-6)
