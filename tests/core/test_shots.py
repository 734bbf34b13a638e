"""Shot boundary detection: synthetic titles with known cuts, graduals, flashes and fast pans."""

import random

import numpy as np
import pyarrow.parquet as pq
import pytest

from mediafm_core.cli import main
from mediafm_core.media.decode import decode_small
from mediafm_core.media.shots import (
    FastDetector,
    PySceneDetectDetector,
    Transition,
    TransNetV2Detector,
    detect_shots,
    detect_transitions,
    shots_from_transitions,
)
from mediafm_core.media.titles import open_title
from tests.core.media_fixtures import read_truth, write_mp4, write_test_title

TOL = 2  # frames


@pytest.fixture(scope="module")
def title_dir(tmp_path_factory):
    # seed 14: 3 cuts, 5 dissolves, 2 fades, 8 flash frames and 2 fast-pan shots
    root = tmp_path_factory.mktemp("shots")
    return write_test_title(
        root, "shots", seconds=20, seed=14, p_dissolve=0.3, p_fade=0.2, flash_prob=0.5
    )


@pytest.fixture(scope="module")
def detected(title_dir):
    found, n = detect_transitions(open_title(title_dir))
    assert n == read_truth(title_dir)["n_frames"]
    return found


def _static(n: int, colour) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = np.empty((n, 27, 48, 3), np.float32)
    base[:] = np.asarray(colour, np.float32)
    base[:, :, :16] *= 0.5  # some structure
    return np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)


def test_finds_every_cut_within_two_frames(title_dir, detected):
    truth = read_truth(title_dir)
    cuts = [t["frame"] for t in truth["transitions"] if t["type"] == "cut"]
    found = [t.boundary for t in detected if t.kind == "cut"]
    assert len(cuts) >= 3
    assert len(found) == len(cuts)
    assert all(min(abs(f - c) for f in found) <= TOL for c in cuts)


def test_finds_every_gradual_with_its_span(title_dir, detected):
    truth = read_truth(title_dir)
    graduals = [(t["start"], t["end"]) for t in truth["transitions"] if t["type"] != "cut"]
    found = [(t.start, t.end) for t in detected if t.kind == "gradual"]
    assert {t["type"] for t in truth["transitions"]} == {"cut", "dissolve", "fade"}
    assert len(found) == len(graduals)
    for s, e in graduals:
        assert any(fs <= e + TOL and fe >= s - TOL for fs, fe in found)


def test_flashes_and_fast_pans_make_no_false_cuts(title_dir, detected):
    truth = read_truth(title_dir)
    assert len(truth["flashes"]) >= 4 and any(s["kind"] == "pan" for s in truth["shots"])
    cut_frames = [t.boundary for t in detected if t.kind == "cut"]
    true_cuts = {t["frame"] for t in truth["transitions"] if t["type"] == "cut"}
    for f in truth["flashes"]:
        near = [c for c in cut_frames if abs(c - f) <= 3]
        assert all(c in true_cuts for c in near)


def test_hand_made_flash_is_not_a_cut_but_a_cut_is():
    frames = np.concatenate([_static(30, (40, 90, 160)), _static(30, (200, 60, 30))])
    frames[10:12] = 250  # a two-frame camera flash
    found = FastDetector().detect(frames, 25.0)
    assert found == [Transition("cut", 30, 30)]


def test_fast_pan_is_not_a_cut():
    rng = np.random.default_rng(1)
    wide = rng.uniform(0, 255, (27, 48 * 12, 3)).astype(np.float32)
    wide = (wide + np.roll(wide, 1, 1) + np.roll(wide, 2, 1)) / 3  # some smoothness
    frames = np.stack([wide[:, 8 * k : 8 * k + 48] for k in range(60)]).astype(np.uint8)
    assert FastDetector().detect(frames, 25.0) == []


def test_chunked_detection_matches_one_pass(title_dir, detected):
    """Small chunks with overlap find exactly what one pass over all frames finds."""
    title = open_title(title_dir)
    whole = FastDetector().detect(decode_small(title), title.fps)
    chunked, _ = detect_transitions(title, chunk=100, overlap=40)
    assert chunked == whole == detected


def test_detect_shots_table_covers_the_title(title_dir):
    title = open_title(title_dir)
    table = detect_shots(title)
    assert table.column_names == [
        "title_id",
        "shot_index",
        "start_frame",
        "end_frame",
        "start_s",
        "end_s",
    ]
    d = table.to_pydict()
    assert d["shot_index"] == list(range(table.num_rows))
    assert d["start_frame"][0] == 0 and d["end_frame"][-1] == title.n_frames
    assert d["start_frame"][1:] == d["end_frame"][:-1]
    assert np.allclose(d["start_s"], np.array(d["start_frame"]) / title.fps)
    assert table.num_rows == len(read_truth(title_dir)["shots"])


def test_min_shot_length_drops_close_boundaries():
    ts = [Transition("cut", 10, 10), Transition("cut", 14, 14), Transition("cut", 40, 40)]
    assert shots_from_transitions(ts, 50, 25.0, min_shot_s=0.4, max_shot_s=0) == [
        (0, 10),
        (10, 40),
        (40, 50),
    ]
    # a boundary that would leave a too-short last shot goes too
    assert shots_from_transitions(ts, 44, 25.0, 0.4, 0) == [(0, 10), (10, 44)]


def test_long_takes_are_split_at_the_maximum():
    spans = shots_from_transitions([Transition("gradual", 20, 30)], 1000, 25.0, 0.4, 10.0)
    assert spans[0] == (0, 25)
    assert all(e - s <= 250 for s, e in spans)
    assert spans[-1][1] == 1000 and len(spans) == 1 + 4  # 975 frames -> 4 parts
    assert [s for s, _ in spans[1:]] == [e for _, e in spans[:-1]]


def test_single_shot_title_gives_one_shot():
    assert shots_from_transitions([], 30, 25.0, 0.4, 30.0) == [(0, 30)]


def test_pyscenedetect_adapter_finds_a_plain_cut():
    frames = np.concatenate([_static(30, (40, 90, 160)), _static(30, (200, 60, 30))])
    found = PySceneDetectDetector("content").detect(frames, 25.0)
    assert [t.boundary for t in found] == [30]


def test_transnetv2_finds_a_cut_and_leaves_global_state_alone():
    import torch

    torch.manual_seed(123)
    np.random.seed(5)
    random.seed(7)
    before = (torch.are_deterministic_algorithms_enabled(), torch.random.get_rng_state())
    np_before, py_before = np.random.get_state()[1].copy(), random.getstate()
    frames = np.concatenate([_static(40, (40, 90, 160)), _static(40, (200, 60, 30))])
    found = TransNetV2Detector().detect(frames, 25.0)
    assert any(abs(t.boundary - 40) <= TOL for t in found)
    assert torch.are_deterministic_algorithms_enabled() == before[0]
    assert torch.equal(torch.random.get_rng_state(), before[1])
    assert np.array_equal(np.random.get_state()[1], np_before)
    assert random.getstate() == py_before


def test_cli_writes_shots(title_dir, tmp_path, capsys):
    out = tmp_path / "shots.parquet"
    assert main(["shots", str(title_dir), "--out", str(out), "--max-shot-s", "2"]) == 0
    table = pq.read_table(out)
    assert table.num_rows >= len(read_truth(title_dir)["shots"])
    assert (
        max(e - s for s, e in zip(table["start_frame"].to_pylist(), table["end_frame"].to_pylist()))
        <= 50
    )
    assert "shots" in capsys.readouterr().out


def test_cli_detector_choices_match_the_registry():
    from mediafm_core.cli.media_commands import DETECTOR_NAMES
    from mediafm_core.media.shots import DETECTORS

    assert set(DETECTOR_NAMES) == set(DETECTORS)


def test_cli_bad_title_exits_2_with_one_line(tmp_path, capsys):
    tdir = tmp_path / "broken"
    write_mp4(tdir / "video.mp4", audio=False)
    (tdir / "metadata.json").write_text('{"name": "broken"}')
    assert main(["shots", str(tdir), "--out", str(tmp_path / "s.parquet")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'broken'" in err[0] and "no audio stream" in err[0]
    assert not (tmp_path / "s.parquet").exists()
