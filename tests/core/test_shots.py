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


def test_camera_move_search_equals_a_brute_force_search_and_ignores_batching():
    """`_moved_diffs` (16-bit integer sums over a strided view) gives, for every shift and
    zoom, the mean absolute difference a plain loop over shifts computes on the same grey
    pictures; `_Moves` gives the same values whether pairs are searched together or alone."""
    from mediafm_core.media import shots as S

    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (6, 27, 48, 3), dtype=np.uint8)
    frames[3] = np.roll(frames[2], 4, axis=1)  # a pan: frame 3 is frame 2 shifted by 4 px
    grey = S._grey(frames)
    ref = frames[:, :26].reshape(6, 13, 2, 24, 2, 3).astype(np.int64).sum(axis=(2, 4))
    ref = ref @ np.array(S.GREY_WEIGHTS)
    assert np.array_equal(grey, ref)
    r, ry = 10, 3
    d, zoom = S._moved_diffs(grey[:-1], grey[1:], r, ry)
    x, y = grey[:-1].astype(np.float64), grey[1:].astype(np.float64)
    h, w = x.shape[1:]
    for dy in range(-ry, ry + 1):
        for dx in range(-r, r + 1):
            # y[row + dy, col + dx] against x[row, col], over the pixels both hold
            xr, xc = slice(max(0, -dy), min(h, h - dy)), slice(max(0, -dx), min(w, w - dx))
            yr, yc = slice(max(0, dy), min(h, h + dy)), slice(max(0, dx), min(w, w + dx))
            want = np.abs(y[:, yr, yc] - x[:, xr, xc]).mean(axis=(1, 2)) / S.GREY_MAX
            np.testing.assert_allclose(d[:, dy + ry, dx + r], want, rtol=1e-12)
    assert d[2, ry, r + 2] < 1e-12  # the pan: half-resolution shift by 2 explains it all
    assert zoom.shape == (5,) and np.all(zoom > 0)
    together = S._Moves(frames, r, ry)
    together.need([(0, 1), (1, 2), (2, 3), (4, 5)])
    for a, b in [(0, 1), (1, 2), (2, 3), (4, 5)]:
        alone = S._Moves(frames, r, ry)
        assert alone.get(a, b, ry) == together.get(a, b, ry)


def test_batched_flash_test_equals_the_per_candidate_test():
    """`_content_returns` over many candidates at once (edges included) answers as the test
    of one candidate at a time on its own slices of frames."""
    from mediafm_core.media import shots as S

    rng = np.random.default_rng(5)
    base = rng.integers(0, 256, (3, 27, 48, 3), dtype=np.uint8)
    frames = np.repeat(base, 10, axis=0)  # three takes of 10 frames: cuts at 10 and 20
    frames[5] = 255  # a flash inside the first take
    frames[25] = np.clip(frames[25].astype(int) + 60, 0, 255)  # a strobe inside the third
    det = FastDetector()
    blocks, _ = det._features(frames)
    unit = S._unit(blocks)
    pix = S._mad(blocks[1:], blocks[:-1])
    steps = np.arange(len(frames) - 1)
    got = det._content_returns(blocks, unit, steps, pix)
    for i in steps:
        sub = np.array([i])
        assert got[i] == det._content_returns(blocks, unit, sub, pix[sub])[0]
    assert got[4] and got[5]  # into and out of the flash: the old picture comes back
    assert not got[9] and not got[19]  # the cuts: nothing comes back
