"""bench/media_ablation.py end to end on four tiny scene titles: synth-media -> shots -> encode ->
pretrain -> embed -> probe and evaluate, the same argument lists as the CLI (in process, so the
test does not spend its time importing torch for every command)."""

import json
import sys
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import media_ablation  # noqa: E402 - bench/media_ablation.py, a script module

TASKS = ("tone", "popularity", "retrieval", "genre", "ad_relevancy")


def test_media_bench_runs_every_stage_and_prints_the_paired_table(tmp_path, capsys):
    work = tmp_path / "work"
    rc = media_ablation.main(
        [
            "--titles",
            "4",
            "--seconds",
            "14",
            "--size",
            "48x28",
            "--profile",
            "test-tiny",
            "--frames-per-shot",
            "1",
            "--steps",
            "20",
            "--folds",
            "2",
            "--speech",
            "bursts",
            "--work",
            str(work),
            "--json",
            str(tmp_path / "summary.json"),
            "--in-process",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    data = work / "data"
    shots = sum(pq.read_metadata(p).num_rows for p in (work / "shots").glob("*.parquet"))
    fused = pq.read_table(data / "fused.parquet")
    assert fused.num_rows == shots and fused.column("fused").type.list_size == 32 + 32 + 384
    assert pq.read_table(data / "globals.parquet").num_rows == 4
    emb = pq.read_table(work / "contextual.parquet")
    # the default representation ("auto"): compact-centred 2 H + 1 floats where that is no wider
    # than fused, else centred+masked (2 x fused)
    hidden = json.loads((work / "ckpt" / "config.json").read_text())["model"]["hidden"]
    want = 2 * hidden + 1 if 2 * hidden + 1 <= 448 else 2 * 448
    assert emb.num_rows == shots and emb.column("vector").type.list_size == want
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["titles"] == 4 and summary["shots"] == shots
    for task in TASKS:
        clips = pq.read_table(data / f"clips_{task}.parquet")
        labels = pq.read_table(work / "landing" / "labels" / f"clips_{task}.parquet")
        assert clips.num_rows == labels.num_rows == summary["summary"][task]["n_clips"]
        per_title = {t: n for t, n in zip(*_counts(fused))}
        assert all(
            e <= per_title[t]
            for t, e in zip(clips["title_id"].to_pylist(), clips["shot_end"].to_pylist())
        )
        row = summary["summary"][task]
        assert set(row) >= {"video_only", "fused", "contextual", "clip_alone", "vs_fused"}
        assert row["vs_fused"]["folds"] <= 2
        assert f"| {task} | {row['n_clips']} |" in out
    assert set(summary["timings"]) == {
        "synth-media",
        "shots",
        "encode",
        "gather",
        "pretrain",
        "embed",
        "probe",
        "evaluate",
    }
    assert "contextual beats fused with t >= 2 on" in out and "| total |" in out


def _counts(table):
    import numpy as np

    tids, counts = np.unique(table["title_id"].to_numpy(zero_copy_only=False), return_counts=True)
    return tids, counts
