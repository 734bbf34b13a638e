"""Per-shot inputs (frames + 16 kHz mono audio) and decoder failures, on real MP4 files."""

import numpy as np
import pyarrow as pa
import pytest

from mediafm_core.errors import TitleError
from mediafm_core.media.decode import (
    AUDIO_RATE,
    decode_small,
    extract_shot_inputs,
    iter_shot_inputs,
    sample_frame_indices,
)
from mediafm_core.media.shots import shots_table
from mediafm_core.media.titles import open_title
from tests.core.media_fixtures import truncate, write_plain_title, write_test_title


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return open_title(write_test_title(tmp_path_factory.mktemp("dec"), "dec", seconds=5, seed=4))


@pytest.fixture(scope="module")
def tone(tmp_path_factory):
    """2 s of video, 1 s of 440 Hz tone at amplitude 0.3."""
    root = tmp_path_factory.mktemp("tone")
    tdir = write_plain_title(root, "tone", seconds=2.0, audio_seconds=1.0)
    return open_title(tdir)


def test_sample_frame_indices_are_uniform_and_inside():
    assert sample_frame_indices(10, 18, 4).tolist() == [11, 13, 15, 17]
    assert sample_frame_indices(5, 7, 4).tolist() == [5, 5, 6, 6]  # short shot: repeats
    assert sample_frame_indices(3, 4, 2).tolist() == [3, 3]


def test_shapes_sample_rate_and_audio_lengths(synth):
    table = shots_table(synth.title_id, [(0, 40), (40, 41), (41, synth.n_frames)], synth.fps)
    items = extract_shot_inputs(synth, table, frames_per_shot=6, size=32)
    assert [x.shot_index for x in items] == [0, 1, 2]
    for x, (a, b) in zip(items, [(0, 40), (40, 41), (41, synth.n_frames)]):
        assert x.frames.shape == (6, 32, 32, 3) and x.frames.dtype == np.uint8
        assert x.sample_rate == AUDIO_RATE == 16000
        n = round(b / synth.fps * AUDIO_RATE) - round(a / synth.fps * AUDIO_RATE)
        assert x.audio.shape == (n,) and x.audio.dtype == np.float32
        assert np.abs(x.audio).max() > 0.01  # the synthetic title has sound everywhere


def test_frames_come_from_the_sampled_indices(synth):
    small = decode_small(synth, 32, 32)  # (N, 32, 32, 3) reference, full-frame squash
    table = shots_table(synth.title_id, [(0, synth.n_frames)], synth.fps)
    (item,) = extract_shot_inputs(synth, table, frames_per_shot=5, size=54)
    idx = sample_frame_indices(0, synth.n_frames, 5)
    # centre crop of a 96x54 picture at 54 px: compare the colour of the middle region
    ref = small[idx][:, :, 7:25].reshape(5, -1, 3).mean(axis=1)
    got = item.frames.reshape(5, -1, 3).mean(axis=1)
    assert np.abs(ref - got).max() < 12


def test_extraction_is_deterministic(synth):
    table = shots_table(synth.title_id, [(0, 30), (30, synth.n_frames)], synth.fps)
    a = extract_shot_inputs(synth, table, frames_per_shot=3, size=24)
    b = list(iter_shot_inputs(synth, table, frames_per_shot=3, size=24))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.frames, y.frames)
        np.testing.assert_array_equal(x.audio, y.audio)


def test_audio_is_resampled_aligned_and_zero_padded(tone):
    table = shots_table(tone.title_id, [(0, 12), (12, 38), (38, 50)], tone.fps)
    items = extract_shot_inputs(tone, table, frames_per_shot=2, size=16)
    first, middle, last = (x.audio for x in items)
    rms = float(np.sqrt(np.mean(first[800:] ** 2)))  # skip the encoder's first ramp
    assert rms == pytest.approx(0.3 / np.sqrt(2), rel=0.1)
    spectrum = np.abs(np.fft.rfft(first))
    assert np.argmax(spectrum) * AUDIO_RATE / len(first) == pytest.approx(440, abs=5)
    assert len(last) == round(2.0 * AUDIO_RATE) - round(38 / 25 * AUDIO_RATE)
    assert np.abs(last).max() == 0.0  # no audio after 1 s: zeros of the right length
    assert np.abs(middle[:6000]).max() > 0.1 and np.abs(middle[-3000:]).max() == 0.0


def test_truncated_payload_is_a_title_error(tmp_path):
    tdir = write_plain_title(tmp_path, "cut_short", seconds=2.0, faststart=True)
    truncate(tdir / "video.mp4", 0.5)  # header intact (faststart), half the frames missing
    title = open_title(tdir)
    with pytest.raises(TitleError, match="'cut_short'.*truncated: decoded"):
        decode_small(title)
    table = pa.table(
        {"shot_index": [0], "start_frame": [0], "end_frame": [50], "start_s": [0.0], "end_s": [2.0]}
    )
    with pytest.raises(TitleError, match="'cut_short'.*(corrupt or )?truncated"):
        extract_shot_inputs(title, table)


def test_one_frame_shots_cover_the_audio_exactly(tone):
    spans = [(k, k + 1) for k in range(tone.n_frames)]  # every frame its own shot
    items = extract_shot_inputs(tone, shots_table(tone.title_id, spans, tone.fps), 2, 8)
    assert len(items) == tone.n_frames == 50
    assert sum(len(x.audio) for x in items) == round(tone.n_frames / tone.fps * AUDIO_RATE)
    joined = np.concatenate([x.audio for x in items])
    whole = extract_shot_inputs(tone, shots_table(tone.title_id, [(0, 50)], tone.fps), 1, 8)
    np.testing.assert_array_equal(joined, whole[0].audio)


def test_shot_past_the_last_frame_repeats_the_last_picture(tone):
    table = shots_table(tone.title_id, [(0, 40), (40, 80)], tone.fps)  # video has 50 frames
    last = extract_shot_inputs(tone, table, frames_per_shot=4, size=16)[1]
    assert last.frames.shape == (4, 16, 16, 3)
    assert np.array_equal(last.frames[-1], last.frames[-2])  # slots past the end repeat
    assert len(last.audio) == round(80 / 25 * AUDIO_RATE) - round(40 / 25 * AUDIO_RATE)


@pytest.mark.parametrize(
    "gop",
    [
        "keyint=10:min-keyint=10:scenecut=0:bframes=3",  # closed GOPs with B-frames
        "keyint=10:min-keyint=10:scenecut=0:bframes=3:open-gop=1",  # leading pictures
    ],
)
@pytest.mark.parametrize("processes", [True, False], ids=["processes", "threads"])
def test_segmented_decode_equals_serial(tmp_path, monkeypatch, gop, processes):
    """Keyframe segments decoded by two workers give the serial decode, frame for frame."""
    import mediafm_core.media.decode as decode

    monkeypatch.setattr(decode, "DECODE_PROCESSES", processes)
    monkeypatch.setattr(decode, "PROCESS_MIN_FRAMES", 0)  # a 4 s title: processes if enabled
    title = open_title(write_plain_title(tmp_path, "gop", seconds=4.0, x264_params=gop))
    monkeypatch.setattr(decode, "SEGMENT_S", (0.5, 0.5))
    monkeypatch.setattr(decode, "SEGMENT_MIN_FRAMES", 0)
    starts = decode._segment_starts(title, 0.5)
    assert len(starts) >= 4 and starts == sorted(set(starts))
    serial = np.concatenate(list(decode.iter_small(title, workers=1)))
    parallel = np.concatenate(list(decode.iter_small(title, 48, 27, chunk=7, workers=2)))
    assert serial.shape == parallel.shape == (100, 27, 48, 3)
    np.testing.assert_array_equal(serial, parallel)


def test_segment_that_loses_its_first_frame_is_decoded_again(tmp_path, monkeypatch):
    """A segment whose decode does not start at its keyframe is redone from the boundary before."""
    import mediafm_core.media.decode as decode

    title = open_title(write_plain_title(tmp_path, "gop", seconds=4.0, x264_params="keyint=10"))
    monkeypatch.setattr(decode, "SEGMENT_S", (0.5, 0.5))
    monkeypatch.setattr(decode, "SEGMENT_MIN_FRAMES", 0)
    monkeypatch.setattr(decode, "DECODE_PROCESSES", False)  # the patched function stays in-process
    serial = np.concatenate(list(decode.iter_small(title, workers=1)))
    real, calls, victim = decode._decode_range, [], decode._segment_starts(title, 0.5)[0]

    def lossy(title, w, h, lo, hi, seek_to):
        calls.append((lo, seek_to))
        seg = real(title, w, h, lo, hi, seek_to)
        if lo == seek_to == victim:  # segment 1, decoded from its own keyframe, loses it
            return seg._replace(frames=seg.frames[1:], pts=seg.pts[1:])
        return seg

    monkeypatch.setattr(decode, "_decode_range", lossy)
    parallel = np.concatenate(list(decode.iter_small(title, workers=2)))
    np.testing.assert_array_equal(serial, parallel)
    redo = [c for c in calls if c[0] is not None and c[1] != c[0]]
    assert redo == [(victim, None)]  # segment 1 again, from the start of the file


def test_truncated_payload_fails_the_segmented_decode_too(tmp_path, monkeypatch):
    import mediafm_core.media.decode as decode

    tdir = write_plain_title(
        tmp_path, "cut_short", seconds=4.0, faststart=True, x264_params="keyint=10"
    )
    truncate(tdir / "video.mp4", 0.5)
    monkeypatch.setattr(decode, "SEGMENT_S", (0.5, 0.5))
    monkeypatch.setattr(decode, "SEGMENT_MIN_FRAMES", 0)
    title = open_title(tdir)
    assert decode._segment_starts(title, 0.5)
    with pytest.raises(TitleError, match="'cut_short'.*truncated"):
        list(decode.iter_small(title, workers=2))


def test_prefetch_keeps_order_raises_in_the_consumer_and_stops_early():
    import threading

    from mediafm_core.media.decode import prefetch

    assert list(prefetch(iter(range(50)), depth=2)) == list(range(50))

    def failing():
        yield 1
        raise TitleError("t9", "corrupt or truncated: boom")

    got = []
    with pytest.raises(TitleError, match="'t9'.*boom"):
        for x in prefetch(failing()):
            got.append(x)
    assert got == [1]

    produced, closed = [], threading.Event()

    def endless():
        try:
            i = 0
            while True:
                produced.append(i)
                yield i
                i += 1
        finally:
            closed.set()  # the producer's generator is closed (its `with` blocks end)

    it = prefetch(endless(), depth=2)
    assert [next(it) for _ in range(3)] == [0, 1, 2]
    it.close()
    assert closed.wait(5) and len(produced) <= 3 + 2 + 2  # stopped within depth + in-flight
    assert not any(t.name == "mediafm-decode" for t in threading.enumerate())


def test_dead_decode_worker_falls_back_to_decoding_in_process(tmp_path, monkeypatch):
    """A pool whose worker died (BrokenProcessPool from submit or from a result): the segments
    are decoded in-process and the broken pool is dropped. The pool is a stand-in: killing a
    real worker can hang CPython 3.11's ProcessPoolExecutor at interpreter exit."""
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    import mediafm_core.media.decode as decode

    title = open_title(write_plain_title(tmp_path, "gop", seconds=4.0, x264_params="keyint=10"))
    monkeypatch.setattr(decode, "SEGMENT_S", (0.5, 0.5))
    monkeypatch.setattr(decode, "SEGMENT_MIN_FRAMES", 0)
    monkeypatch.setattr(decode, "DECODE_PROCESSES", True)
    monkeypatch.setattr(decode, "PROCESS_MIN_FRAMES", 0)
    serial = np.concatenate(list(decode.iter_small(title, workers=1)))

    class DyingPool:
        submitted = 0

        def submit(self, fn, *args):
            self.submitted += 1
            if self.submitted > 3:  # the pool is broken by now: submit refuses
                raise BrokenProcessPool("a child process terminated abruptly")
            fut = Future()
            if self.submitted == 2:  # this segment's worker died
                fut.set_exception(BrokenProcessPool("a child process terminated abruptly"))
            else:
                fut.set_result(fn(*args))
            return fut

    pool, dropped = DyingPool(), []
    monkeypatch.setattr(decode, "_process_pool", lambda workers: pool)
    monkeypatch.setattr(decode, "_drop_process_pool", dropped.append)
    parallel = np.concatenate(list(decode.iter_small(title, workers=2)))
    np.testing.assert_array_equal(serial, parallel)
    assert pool.submitted > 3 and dropped and set(dropped) == {2}


def test_short_titles_decode_segments_in_threads_unless_the_pool_runs(tmp_path, monkeypatch):
    import mediafm_core.media.decode as decode

    title = open_title(write_plain_title(tmp_path, "gop", seconds=4.0, x264_params="keyint=10"))
    monkeypatch.setattr(decode, "SEGMENT_S", (0.5, 0.5))
    monkeypatch.setattr(decode, "SEGMENT_MIN_FRAMES", 0)
    monkeypatch.setattr(decode, "DECODE_PROCESSES", True)
    monkeypatch.setattr(decode, "_POOLS", {})
    asked = []
    monkeypatch.setattr(decode, "_process_pool", lambda workers: asked.append(workers))
    assert title.n_frames < decode.PROCESS_MIN_FRAMES
    assert sum(map(len, decode.iter_small(title, workers=2))) == 100
    assert asked == []  # 100 frames: not worth starting worker processes


def test_frame_clock_fills_missing_timestamps_and_keeps_times_increasing(tone):
    """Times on the presentation timeline (stream time - Title.start_s); a frame without pts
    comes 1 / fps after the one before; repeated pts still give non-empty frame spans."""
    import dataclasses
    from fractions import Fraction

    from mediafm_core.media.decode import FrameClock

    title = dataclasses.replace(tone, start_s=1.0, time_base=Fraction(1, 100))  # 25 fps
    clock = FrameClock(title)
    clock.add([100, None, 110], None)
    clock.add([110, 130], 50)  # the last frame is held for 50 ticks, past its neighbours'
    t = clock.times()
    assert t[:3] == pytest.approx([0.0, 0.04, 0.1], abs=1e-5)
    assert t[3] == pytest.approx(0.1, abs=1e-5) and t[3] > t[2]
    assert t[4:] == pytest.approx([0.3, 0.8], abs=1e-5)
    assert np.all(np.diff(t) > 0)
    clock = FrameClock(title)
    clock.add([100, 104, 108], None)  # no duration: the median interval
    assert clock.times()[-1] == pytest.approx(0.12, abs=1e-5)
    clock = FrameClock(title)  # issue 19, case 9: a default duration shorter than the neighbours'
    clock.add([100, 104, 108, 128, 148, 168], 4)
    assert clock.times()[-1] == pytest.approx(0.88, abs=1e-5)


def test_titles_under_two_minimum_segments_decode_serially(tmp_path, monkeypatch):
    """Issue 19: a segment's set-up costs CPU, so a 100-frame title decodes in one pass even
    where its seconds would make several segments; with a lower frame minimum it is cut."""
    import mediafm_core.media.decode as decode

    title = open_title(write_plain_title(tmp_path, "gop", seconds=4.0, x264_params="keyint=10"))
    monkeypatch.setattr(decode, "SEGMENT_S", (0.5, 0.5))
    monkeypatch.setattr(decode, "DECODE_PROCESSES", False)
    real, calls = decode._decode_range, []
    monkeypatch.setattr(decode, "_decode_range", lambda *a: calls.append(a) or real(*a))
    serial = np.concatenate(list(decode.iter_small(title, workers=2)))
    assert calls == [] and serial.shape == (100, 27, 48, 3)
    monkeypatch.setattr(decode, "SEGMENT_MIN_FRAMES", 20)  # 0.8 s at 25 fps: 5 segments
    cut = np.concatenate(list(decode.iter_small(title, workers=2)))
    assert len(calls) >= 4
    np.testing.assert_array_equal(serial, cut)


def test_segment_workers_follow_the_idle_cores(monkeypatch):
    """Issue 19: segments cost CPU to save wall time, so a decode started beside busy cores
    takes fewer workers; an explicit MEDIAFM_DECODE_WORKERS is kept as it is."""
    from mediafm_core.media import decode

    monkeypatch.delenv("MEDIAFM_DECODE_WORKERS", raising=False)
    monkeypatch.setattr(decode, "DECODE_WORKERS", 4)
    assert decode.idle_workers(load=0.2, cores=8) == 4  # idle machine: all of them
    assert decode.idle_workers(load=1.0, cores=2) == 2  # only this process runs
    assert decode.idle_workers(load=2.0, cores=2) == 1  # one other busy process: serial
    assert decode.idle_workers(load=9.0, cores=4) == 1
    assert decode.idle_workers(load=3.0, cores=4) == 2
    monkeypatch.setenv("MEDIAFM_DECODE_WORKERS", "3")
    monkeypatch.setattr(decode, "DECODE_WORKERS", 3)
    assert decode.idle_workers(load=9.0, cores=4) == 3
