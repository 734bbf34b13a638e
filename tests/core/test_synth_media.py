"""Synthetic media titles: decodable MP4s with both streams, truth that matches the picture,
subtitles, metadata written last, clip labels in the clips contract, and the CLI."""

import json
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from mediafm_core.cli import main
from mediafm_core.media.decode import decode_small
from mediafm_core.media.titles import GENRES, open_title
from mediafm_core.synthetic.media import SynthMediaConfig, write_synthetic_titles
from tests.core.media_fixtures import read_truth, write_test_title


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    cfg = SynthMediaConfig(n_titles=2, seconds=8, seed=5, width=96, height=54, speech="auto")
    dirs = write_synthetic_titles(root, cfg)
    return root, dirs


def test_writes_decodable_titles_with_video_and_audio(landing):
    import av

    _, dirs = landing
    assert [d.name for d in dirs] == ["synth_5_000", "synth_5_001"]
    for d in dirs:
        with av.open(str(d / "video.mp4")) as c:
            assert c.streams.video[0].codec_context.name == "h264"
            assert c.streams.audio[0].codec_context.name == "aac"
            assert c.streams.audio[0].codec_context.sample_rate == 16000
        title = open_title(d)
        truth = read_truth(d)
        assert title.n_frames == truth["n_frames"]
        assert title.duration_s == pytest.approx(8, abs=2.5)
        assert set(title.metadata.genres) <= set(GENRES)


def test_truth_is_consistent_and_matches_the_picture(landing):
    _, dirs = landing
    for d in dirs:
        truth = read_truth(d)
        frames = decode_small(open_title(d), 48, 27).astype(np.float32)
        assert len(frames) == truth["n_frames"]
        shots = truth["shots"]
        assert shots[0]["start_frame"] == 0 and shots[-1]["end_frame"] == truth["n_frames"]
        assert all(a["end_frame"] == b["start_frame"] for a, b in zip(shots, shots[1:]))
        assert len(truth["transitions"]) == len(shots) - 1
        step = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))  # (N-1,) frame-to-frame
        flash = set(truth["flashes"]) | {f + 1 for f in truth["flashes"]}
        quiet = np.median(step)
        for t in truth["transitions"]:
            if t["type"] == "cut":
                assert step[t["frame"] - 1] > 4 * quiet  # a real jump at the cut
            else:
                assert t["end"] - t["start"] >= 5
                # inside a gradual no single step is as big as the total change
                total = np.abs(frames[t["end"] + 1] - frames[t["start"] - 1]).mean()
                assert step[t["start"] - 1 : t["end"] + 1].max() < 0.6 * total
        for f in truth["flashes"]:
            assert frames[f].mean() > frames[f - 1].mean() + 30  # flashes are bright
        assert not flash & {t.get("frame") for t in truth["transitions"]}


def test_subtitles_match_the_shots_with_lines(landing):
    import webvtt

    _, dirs = landing
    for d in dirs:
        truth = read_truth(d)
        lines = [s["line"] for s in truth["shots"] if s["line"]]
        cues = webvtt.read(str(d / "subtitles.vtt"))
        assert [c.text for c in cues] == lines


def test_metadata_is_written_last(landing):
    _, dirs = landing
    d = dirs[0]
    files = ["video.mp4", "subtitles.vtt", "truth/boundaries.json"]
    meta_time = (d / "metadata.json").stat().st_mtime_ns
    assert all((d / f).stat().st_mtime_ns <= meta_time for f in files)
    assert json.loads((d / "metadata.json").read_text())["name"]


def test_clip_labels_follow_the_contract(landing):
    root, dirs = landing
    kinds = {
        "ad_relevancy": "labels",
        "tone": "labels",
        "genre": "labels",
        "popularity": "score",
        "retrieval": "label",
    }
    n_shots = {d.name: len(read_truth(d)["shots"]) for d in dirs}
    for task, col in kinds.items():
        table = pq.read_table(root / "labels" / f"clips_{task}.parquet")
        for c in ("title_id", "clip_id", "shot_start", "shot_end", col):
            assert c in table.column_names
        rows = table.to_pylist()
        assert {r["title_id"] for r in rows} == set(n_shots)
        for r in rows:
            assert 0 <= r["shot_start"] < r["shot_end"] <= n_shots[r["title_id"]]
        if task == "genre":
            for r in rows:
                assert r["labels"] == read_truth(root / r["title_id"])["genres"]
    assert (
        str(pq.read_table(root / "labels" / "clips_popularity.parquet")["score"].type) == "double"
    )
    assert str(pq.read_table(root / "labels" / "clips_retrieval.parquet")["label"].type) == "bool"


def test_same_seed_same_truth(tmp_path, landing):
    _, dirs = landing
    again = write_synthetic_titles(
        tmp_path,
        SynthMediaConfig(n_titles=1, seconds=8, seed=5, width=96, height=54, speech="auto"),
    )
    assert read_truth(again[0]) == read_truth(dirs[0])


def test_speech_is_in_the_audio_of_subtitled_shots(tmp_path):
    from mediafm_core.media.decode import extract_shot_inputs
    from mediafm_core.media.shots import shots_table

    d = write_test_title(tmp_path, "talk", seconds=8, seed=2, subtitle_prob=1.0, speech="bursts")
    truth = read_truth(d)
    title = open_title(d)
    spans = [(s["start_frame"], s["end_frame"]) for s in truth["shots"]]
    items = extract_shot_inputs(title, shots_table("talk", spans, title.fps), 1, 16)
    silent = write_test_title(
        tmp_path, "quiet", seconds=8, seed=2, subtitle_prob=0.0, topic_prob=0.0
    )
    quiet = extract_shot_inputs(open_title(silent), shots_table("quiet", spans, title.fps), 1, 16)
    louder = [np.abs(a.audio).mean() > np.abs(b.audio).mean() for a, b in zip(items, quiet)]
    assert all(s["line"] for s in truth["shots"])
    assert np.mean(louder) >= 0.8


def test_espeak_speech_or_a_clear_refusal(tmp_path):
    """espeak-ng speaks the lines when installed (CI installs it); asking for it without it fails
    loudly instead of silently falling back."""
    if shutil.which("espeak-ng") is None:
        with pytest.raises(RuntimeError, match="espeak-ng is not on PATH"):
            write_test_title(tmp_path, "es", seconds=4, seed=1, speech="espeak")
        return
    a = write_test_title(tmp_path, "es", seconds=4, seed=1, subtitle_prob=1.0, speech="espeak")
    b = write_test_title(tmp_path, "bu", seconds=4, seed=1, subtitle_prob=1.0, speech="bursts")
    assert (a / "video.mp4").read_bytes() != (b / "video.mp4").read_bytes()


def test_cli_synth_media(tmp_path, capsys):
    rc = main(
        [
            "synth-media",
            str(tmp_path / "lz"),
            "--titles",
            "1",
            "--seconds",
            "3",
            "--seed",
            "9",
            "--size",
            "64x36",
            "--speech",
            "bursts",
        ]
    )
    assert rc == 0
    title = open_title(tmp_path / "lz" / "synth_9_000")
    assert (title.width, title.height) == (64, 36)
    assert (tmp_path / "lz" / "labels" / "clips_genre.parquet").exists()
    assert "synth_9_000" in capsys.readouterr().out
