"""The benchmark suite's families (issue 9): determinism, the data contract, the structure each
story promises, and labels that really live beyond the clip (pooling neighbours must help)."""

import json

import numpy as np
import pytest

from mediafm_core.cli import main as cli_main
from mediafm_core.probes import clip_features, clips_from_columns, run_probe
from mediafm_core.synthetic.families import FAMILIES, FamilyConfig, generate
from mediafm_core.synthetic.narrative import TASKS

SMALL = dict(n_titles=60, dims=(8, 6, 10), min_shots=60, max_shots=160)


@pytest.fixture(scope="module", params=FAMILIES)
def family(request):
    return request.param, generate(FamilyConfig(family=request.param, seed=5, **SMALL))


def test_same_seed_same_data_other_seed_differs(family):
    name, ds = family
    again = generate(FamilyConfig(family=name, seed=5, **SMALL))
    other = generate(FamilyConfig(family=name, seed=6, **SMALL))
    for a, b in zip(ds.titles, again.titles):
        np.testing.assert_array_equal(a.fused, b.fused)
    assert ds.clips == again.clips
    assert not np.array_equal(ds.titles[0].globals_, other.titles[0].globals_)


def test_contract_shapes_lengths_and_text_padding(family):
    _, ds = family
    for t in ds.titles:
        assert 60 <= t.n_shots <= 160 and t.fused.shape == (t.n_shots, 24)
        np.testing.assert_allclose(np.linalg.norm(t.fused, axis=1), 1.0, atol=1e-5)
        assert np.all(t.fused[~t.has_text, 14:] == 0)
        assert t.globals_.shape == (10,) and t.video.shape == (t.n_shots, 8)
    n = {t.title_id: t.n_shots for t in ds.titles}
    for task in TASKS:
        c = ds.clips[task]
        assert len(c["title_id"]) >= len(ds.titles)
        for tid, a, b in zip(c["title_id"], c["shot_start"], c["shot_end"]):
            assert 0 <= a < b <= n[tid]
    assert 0.15 < np.mean(ds.clips["retrieval"]["label"]) < 0.35  # 1:3


def test_drift_has_no_scene_cuts_and_recurring_shares_sets_across_titles():
    drift = generate(FamilyConfig(family="drift", seed=1, **SMALL))
    for t in drift.titles[:10]:
        step = np.linalg.norm(np.diff(t.latent["state"], axis=0), axis=1)
        assert step.max() < 4 * np.median(step)  # no jumps: the state drifts
    rec = generate(FamilyConfig(family="recurring", seed=1, **SMALL))
    sets = [set(t.latent["gid"].tolist()) for t in rec.titles]
    shared = sum(any(s & o for j, o in enumerate(sets) if j != i) for i, s in enumerate(sets))
    assert shared / len(sets) > 0.9  # a set seen in one title appears in others
    revisits = [len(t.latent["gid"]) - len(set(t.latent["gid"].tolist())) for t in rec.titles]
    assert np.mean(revisits) > 3  # and recurs within its title


def _pooled(ds, k):
    """Each shot's fused vector averaged with its +-k neighbours (an oracle-free smoother)."""
    out = {}
    for t in ds.titles:
        c = np.cumsum(np.r_[np.zeros((1, t.fused.shape[1])), t.fused], axis=0)
        i = np.arange(t.n_shots)
        lo, hi = np.maximum(0, i - k), np.minimum(t.n_shots, i + k + 1)
        out[t.title_id] = (c[hi] - c[lo]) / (hi - lo)[:, None]
    return out


@pytest.mark.parametrize("name", FAMILIES)
def test_labels_live_beyond_the_clip(name):
    """Pooling a shot's neighbours beats the shot alone on the context tasks: what a
    contextual encoder can earn exists in every family."""
    ds = generate(
        FamilyConfig(
            family=name,
            seed=2,
            n_titles=150,
            dims=(16, 16, 16),
            min_shots=80,
            max_shots=200,
            view_noise=1.5,
        )
    )
    raw = {t.title_id: t.fused for t in ds.titles}
    pooled = _pooled(ds, 6)
    gains = {}
    for task in ("tone", "retrieval", "popularity"):
        clips = clips_from_columns(task, ds.clips[task])
        a = run_probe(clip_features(raw, clips), clips, folds=3, seed=0).mean
        b = run_probe(clip_features(pooled, clips), clips, folds=3, seed=0).mean
        gains[task] = b - a
    assert sum(g > 0 for g in gains.values()) >= 2, gains


def test_cli_synth_family_writes_the_contract(tmp_path, capsys):
    out = tmp_path / "drift"
    rc = cli_main(
        [
            "synth",
            str(out),
            "--family",
            "drift",
            "--titles",
            "6",
            "--dims",
            "4",
            "4",
            "4",
            "--min-shots",
            "40",
            "--max-shots",
            "80",
            "--noise",
            "2.0",
        ]
    )
    assert rc == 0
    paths = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"fused", "globals", "video_only", *(f"clips_{t}" for t in TASKS)} <= set(paths)
    import pyarrow.parquet as pq

    fused = pq.read_table(out / "fused.parquet")
    assert fused.num_rows >= 6 * 40 and len(set(fused["title_id"].to_pylist())) == 6


def test_cli_synth_unknown_family_is_refused(tmp_path):
    with pytest.raises(SystemExit) as e:
        cli_main(["synth", str(tmp_path), "--family", "sitcom"])
    assert e.value.code == 2
