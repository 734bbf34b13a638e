"""Decoding with PyAV: small frames for shot detection, and per-shot model inputs in one pass.

`iter_small` (shot detection) cuts titles longer than two segments at keyframes and decodes the
segments in parallel worker processes, one single-threaded decoder each; `iter_shot_inputs`
(encoders) demuxes video and audio in one pass with FFmpeg's frame threading for larger pictures.
Both let one cached swscale context, run on one thread, shrink each picture as it leaves the
decoder, so nothing full-size is kept. Decoder failures, and files that stop well short of the
frame count their container announces (truncated payload), become a `TitleError` naming the title.

Time comes from timestamps (issue 11): `FrameClock` keeps each decoded frame's pts, and shot
times are those pts on the title's presentation timeline (`Title.start_s` is its 0), so variable
frame rates and streams that do not start at zero keep pictures, audio and cues together. The
encoders see frames as a player shows them: display-matrix rotation and pixel aspect applied.
"""

from __future__ import annotations

import bisect
import logging
import os
import queue
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from mediafm_core.errors import TitleError
from mediafm_core.media.titles import Title

log = logging.getLogger(__name__)

AUDIO_RATE = 16_000  # Hz, the audio encoders' input rate
# An audio frame stamped further than this from where the audio so far ends starts a new run
# at its own timestamp (a hole is silence, an overlap is dropped); nearer, samples run on. Below
# one AAC (21 ms) or AC-3 (32 ms) frame, so one lost packet is a hole, not a shift.
AUDIO_SYNC_S = 0.02
# A stream that decodes to fewer than this share of its announced frames is called truncated.
MIN_DECODED_SHARE = 0.9
# Parallel decode segments (see _segmented_frames): about 4 per worker, each between these bounds
# in seconds of video (the keyframe interval is the real lower bound).
SEGMENT_S = (4.0, 60.0)
# ... and at least this many frames: a segment costs ~7 ms of CPU to set up (container opened,
# seek, decoder started, a thread), as much as ~80 frames of a serial 160x90 decode, so shorter
# titles (under two such segments) decode serially (issue 19: short fast-motion titles).
SEGMENT_MIN_FRAMES = 500
# Workers decoding segments of one title; MEDIAFM_DECODE_WORKERS overrides (1 = serial). Unless
# it is set, `idle_workers` lowers the count to the cores other work leaves idle.
DECODE_WORKERS = int(os.environ.get("MEDIAFM_DECODE_WORKERS", min(os.cpu_count() or 1, 4)))
# Segments decode in worker processes (1) or threads (0); MEDIAFM_DECODE_PROCESSES overrides.
DECODE_PROCESSES = os.environ.get("MEDIAFM_DECODE_PROCESSES", "1") != "0"
# Starting the worker processes costs ~0.3 s (about 4000 frames of decoding at 160x90) and they
# save ~20 %, so titles shorter than this use threads unless the processes are already running.
PROCESS_MIN_FRAMES = 20_000
# FFmpeg frame threading from this picture size up (see _thread_type); MEDIAFM_THREADED_MIN_PIXELS
# overrides it.
THREADED_MIN_PIXELS = int(os.environ.get("MEDIAFM_THREADED_MIN_PIXELS", 320 * 180))


@dataclass
class ShotInputs:
    """What the encoders need for one shot."""

    shot_index: int
    start_s: float
    end_s: float
    frames: np.ndarray  # (N, size, size, 3) uint8 RGB, sampled uniformly inside the shot
    audio: np.ndarray  # (round(end_s*16k) - round(start_s*16k),) float32 mono at 16 kHz
    sample_rate: int = AUDIO_RATE


class FrameClock:
    """Presentation timestamps of the decoded video frames, filled in by the decoders.

    `times()` gives (N + 1,) float64 seconds on the title's presentation timeline: when each of
    the N frames appears, then when the last one ends (see `_last_span`; 1 / fps for a single
    frame without a duration). Frames without a timestamp get the previous one plus 1 / fps; times
    are made strictly increasing so every frame span is non-empty.
    """

    def __init__(self, title: Title):
        self.title = title
        self.pts: list[int | None] = []  # stream time-base units, one per decoded frame
        self.last_duration: int | None = None  # of the last frame, time-base units
        self._times: np.ndarray | None = None  # times() until the next add

    def add(self, pts: list[int | None], last_duration: int | None) -> None:
        self.pts += pts
        if pts:
            self.last_duration = last_duration
            self._times = None

    def times(self) -> np.ndarray:
        if self._times is None:
            self._times = self._compute_times()
        return self._times

    def _compute_times(self) -> np.ndarray:
        title, n = self.title, len(self.pts)
        step = 1.0 / title.fps
        tb = float(title.time_base) if title.time_base else None
        if tb is None:
            t = np.full(n, np.nan)
        else:  # None -> NaN
            t = np.array(self.pts, np.float64).reshape(n) * tb
        t -= title.start_s  # (N,)
        for i in np.flatnonzero(np.isnan(t)):  # no timestamp: one frame after the previous
            t[i] = (t[i - 1] + step) if i else 0.0
        t = np.append(t, t[-1] + self._last_span(t, step) if n else 0.0)  # (N+1,)
        eps = 1e-6 * np.arange(n + 1)  # strictly increasing by at least 1 us per frame
        return np.maximum.accumulate(t - eps) + eps

    def _last_span(self, t: np.ndarray, step: float) -> float:
        """How long the last frame shows: as long as its neighbours do (the median of the last
        three frame intervals), or longer when its own duration says so (a held picture).

        Not the title's typical interval, nor a muxer's default duration: after a switch to a
        slower rate (issue 19, case 9: 25 fps, then 5 fps) both say 1/25 s."""
        gaps = np.diff(t[-4:])
        gaps = gaps[gaps > 0]
        tb = float(self.title.time_base) if self.title.time_base else 0.0
        own = (self.last_duration or 0) * tb
        near = float(np.median(gaps)) if len(gaps) else 0.0
        return max(own, near) if max(own, near) > 0 else step


def _open(title: Title) -> Any:
    import av

    try:
        return av.open(str(title.video_path))
    except (av.FFmpegError, OSError) as exc:
        raise TitleError(
            title.title_id, f"{title.video_path.name} cannot be opened ({exc})"
        ) from exc


def decode_small(
    title: Title, width: int = 48, height: int = 27, clock: FrameClock | None = None
) -> np.ndarray:
    """Every frame of the video stream as (N, height, width, 3) uint8 RGB (area-averaged);
    `clock` (optional) receives the frames' timestamps.

    Memory: width * height * 3 bytes per frame (3.9 kB at 48x27, ~0.7 GB for a 2 h film); shot
    detection streams `iter_small` chunks instead.
    """
    chunks = list(iter_small(title, width, height, clock=clock))
    return np.concatenate(chunks) if chunks else np.zeros((0, height, width, 3), np.uint8)


def iter_small(
    title: Title,
    width: int = 48,
    height: int = 27,
    chunk: int = 2048,
    workers: int | None = None,
    clock: FrameClock | None = None,
) -> Iterator[np.ndarray]:
    """Decode every frame once, yielding (<=chunk, height, width, 3) uint8 RGB arrays in order.

    Titles longer than two segments (SEGMENT_S) are cut at keyframes and the segments decoded
    by `workers` processes (default `idle_workers()`), see `_segmented_frames`; shorter titles, or
    streams without seekable keyframes, decode serially. `clock` (optional) receives every
    frame's timestamp. Raises TitleError on decoder failure or when the stream ends well short
    of its frame count and of its duration.
    """
    workers = idle_workers() if workers is None else max(1, workers)
    starts = _segment_starts(title, _segment_seconds(title, workers)) if workers > 1 else []
    clock = FrameClock(title) if clock is None else clock
    if starts:
        frames = _segmented_frames(title, width, height, starts, workers, clock)
    else:
        frames = _serial_frames(title, width, height, clock)
    n = 0
    buf: list[np.ndarray] = []
    for small in frames:
        buf.append(small)
        n += 1
        if len(buf) == chunk:
            yield np.stack(buf)
            buf = []
    _check_complete(title, n, _span_s(clock))
    if buf:
        yield np.stack(buf)


def idle_workers(load: float | None = None, cores: int | None = None) -> int:
    """Segment workers for a decode started now: DECODE_WORKERS, capped by the cores that other
    work leaves idle (the 1-minute load average, less this process's own 1), at least 1.
    MEDIAFM_DECODE_WORKERS, when set, is taken as it is.

    Segments buy wall time with CPU (a seek, a decoder and a hand-off each): the 212 s music
    video decoded at 11.5k frames per CPU-second serially and 9.0k in 2 segment workers beside
    one other busy process (issue 19), so on cores other work already uses (a backfill running
    titles side by side) they only slow everything down."""
    if "MEDIAFM_DECODE_WORKERS" in os.environ:
        return DECODE_WORKERS
    cores = cores or os.cpu_count() or 1
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):  # no load average on this platform
            return DECODE_WORKERS
    return max(1, min(DECODE_WORKERS, round(cores - max(0.0, load - 1.0))))


def _span_s(clock: FrameClock) -> float:
    """Seconds of video the decoded frames cover (0 when none)."""
    return float(np.ptp(clock.times())) if clock.pts else 0.0


def _configure(stream: Any, thread_type: str) -> None:
    stream.thread_type = thread_type
    # Deblocking is invisible at 48x27; skipping it speeds H.264 decoding up by ~10 %.
    stream.codec_context.options = {"skip_loop_filter": "all", "flags2": "fast"}


def _small(scaler: Any, frame: Any, width: int, height: int) -> np.ndarray:
    # threads=1: swscale's default slice threading costs ~70 us of set-up per call, 5x the
    # conversion itself at these sizes (PyAV 18 passes threads=0, "auto", to sws_scale_frame).
    from av.video.reformatter import Interpolation

    return scaler.reformat(
        frame,
        width=width,
        height=height,
        format="rgb24",
        interpolation=Interpolation.AREA,
        threads=1,
    ).to_ndarray()


def _serial_frames(
    title: Title, width: int, height: int, clock: FrameClock
) -> Iterator[np.ndarray]:
    import av
    from av.video.reformatter import VideoReformatter

    pts: list[int | None] = []
    frame = None
    with _open(title) as container:
        stream = container.streams[title.video_stream]
        _configure(stream, _thread_type(title))
        scaler = VideoReformatter()  # one cached swscale context
        try:
            for frame in container.decode(stream):
                pts.append(frame.pts)
                yield _small(scaler, frame, width, height)
        except av.FFmpegError as exc:
            raise TitleError(
                title.title_id, f"corrupt or truncated: decoding failed at frame {len(pts)} ({exc})"
            ) from exc
        finally:
            clock.add(pts, frame.duration if frame is not None else None)


def _segment_seconds(title: Title, workers: int) -> float:
    lo, hi = SEGMENT_S
    seconds = min(hi, max(lo, title.duration_s / (4 * workers)))
    return max(seconds, SEGMENT_MIN_FRAMES / title.fps) if title.fps > 0 else seconds


def _segment_starts(title: Title, seconds: float) -> list[int]:
    """Presentation timestamps of keyframes about every `seconds`, in order.

    Found by seeking (the container's index), so nothing is decoded. Empty when the title is
    shorter than two segments or the stream has no usable keyframe index.
    """
    import av

    if title.duration_s < 2 * seconds:
        return []
    starts: list[int] = []
    with _open(title) as container:
        stream = container.streams[title.video_stream]
        if stream.time_base is None:
            return []
        tb, t0 = float(stream.time_base), stream.start_time or 0
        for t in np.arange(seconds, title.duration_s - seconds / 2, seconds):
            try:
                container.seek(t0 + int(t / tb), stream=stream, backward=True, any_frame=False)
                packet = next(iter(container.demux(stream)), None)
            except av.FFmpegError:
                return []
            if packet is None or packet.pts is None or not packet.is_keyframe:
                continue
            if packet.pts > (starts[-1] if starts else t0):
                starts.append(int(packet.pts))
    return starts


class Segment(NamedTuple):
    """What `_decode_range` returns: plain values, so it runs in a worker process as well."""

    frames: np.ndarray  # (k, height, width, 3) uint8 RGB
    pts: list[int]  # timestamp of each frame, stream time-base units
    problem: str | None  # the decoder's problem, or None
    last_duration: int | None = None  # of the last frame kept

    @property
    def first(self) -> int | None:
        return self.pts[0] if self.pts else None


def _decode_range(
    title: Title, width: int, height: int, lo: int | None, hi: int | None, seek_to: int | None
) -> Segment:
    """Frames with lo <= pts < hi (None: open end), decoding from the keyframe at `seek_to`
    (None: the start)."""
    import av
    from av.video.reformatter import VideoReformatter

    frames: list[np.ndarray] = []
    kept: list[int] = []
    problem, duration = None, None
    with _open(title) as container:
        stream = container.streams[title.video_stream]
        _configure(stream, "NONE")  # the segments are the parallelism
        if seek_to is not None:
            container.seek(seek_to, stream=stream, backward=True, any_frame=False)
        scaler = VideoReformatter()
        try:
            for frame in container.decode(stream):
                pts = frame.pts
                if pts is None:
                    problem = "a frame has no timestamp"
                    break
                if lo is not None and pts < lo:
                    continue
                if hi is not None and pts >= hi:
                    break
                kept.append(pts)
                duration = frame.duration
                frames.append(_small(scaler, frame, width, height))
        except av.FFmpegError as exc:
            problem = str(exc)
    out = np.stack(frames) if frames else np.zeros((0, height, width, 3), np.uint8)
    return Segment(out, kept, problem, duration)


_POOLS: dict[int, Any] = {}
_POOLS_LOCK = threading.Lock()


def _process_pool(workers: int) -> Any:
    """A process pool kept for the life of the process (forkserver: safe beside threads)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with _POOLS_LOCK:
        if workers not in _POOLS:
            ctx = multiprocessing.get_context("forkserver")
            _POOLS[workers] = ProcessPoolExecutor(workers, mp_context=ctx)
        return _POOLS[workers]


def _drop_process_pool(workers: int) -> None:
    with _POOLS_LOCK:
        pool = _POOLS.pop(workers, None)
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)


def _segmented_frames(
    title: Title, width: int, height: int, starts: list[int], workers: int, clock: FrameClock
) -> Iterator[np.ndarray]:
    """Decode [start_i, start_i+1) pts ranges in parallel; yield frames in order.

    Exact by construction: frames are counted, never derived from timestamps; FFmpeg outputs
    frames in presentation order, so the decoder of segment i stops at the first frame of
    segment i+1 after emitting every earlier frame (open-GOP leading pictures included). A
    segment whose first frame is not its keyframe (a decoder that drops pictures after a seek)
    is decoded again from the previous boundary. Memory: at most workers + 1 segments of small
    frames. Segments decode in worker processes (DECODE_PROCESSES; a persistent pool) for titles
    of PROCESS_MIN_FRAMES and up, or once the pool runs: PyAV's per-frame Python work holds the
    GIL, and measured on 2 cores, processes decode 17.6k frames/s where threads decode 14.5k
    (160x90). Otherwise threads do the work, and this thread does if the pool breaks.
    """
    from concurrent.futures import ThreadPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    bounds: list[int | None] = [None, *starts, None]
    ranges = list(zip(bounds[:-1], bounds[1:]))
    pool = threads = None
    if DECODE_PROCESSES and (title.n_frames >= PROCESS_MIN_FRAMES or workers in _POOLS):
        try:
            pool = _process_pool(workers)
        except (OSError, NotImplementedError) as exc:  # no semaphores / shared memory here
            log.warning("decode worker processes unavailable (%s); using threads", exc)
    if pool is None:
        pool = threads = ThreadPoolExecutor(workers, "mediafm-decode")
    pending: deque = deque()

    def submit(i: int) -> None:
        if i < len(ranges):
            lo, hi = ranges[i]
            try:
                pending.append(pool.submit(_decode_range, title, width, height, lo, hi, lo))
            except BrokenProcessPool:
                pending.append(None)  # decoded here when its turn comes

    def result(i: int) -> Segment:
        lo, hi = ranges[i]
        fut = pending.popleft()
        try:
            if fut is not None:
                return fut.result()
        except BrokenProcessPool:
            pass
        log.warning("%s: decode worker process died; decoding segment %d here", title.title_id, i)
        _drop_process_pool(workers)
        return _decode_range(title, width, height, lo, hi, lo)

    try:
        for i in range(workers + 1):
            submit(i)
        n = 0
        for i, (lo, hi) in enumerate(ranges):
            seg = result(i)
            submit(i + workers + 1)
            if seg.problem is None and lo is not None and seg.first != lo:
                log.debug(
                    "%s: segment %d starts at pts %s, not %s; re-decoding from the "
                    "previous boundary",
                    title.title_id,
                    i,
                    seg.first,
                    lo,
                )
                seg = _decode_range(title, width, height, lo, hi, ranges[i - 1][0])
            clock.add(seg.pts, seg.last_duration)
            yield from seg.frames
            n += len(seg.frames)
            if seg.problem is not None:
                raise TitleError(
                    title.title_id,
                    f"corrupt or truncated: decoding failed at frame {n} ({seg.problem})",
                )
    finally:
        for fut in pending:
            if fut is not None:
                fut.cancel()
        if threads is not None:
            threads.shutdown(wait=True, cancel_futures=True)


def _thread_type(title: Title) -> str:
    """FFmpeg frame threading for pictures of THREADED_MIN_PIXELS and up (serial decodes).

    Measured on 2 cores (one 48x27 decode of a synthetic title, swscale on one thread): at
    640x360 threaded decoding runs 2000 frames/s wall against 1480 on one thread; at 160x90 it
    gains nothing in wall time (10.4k against 10.8k) and costs 30 % more CPU, which the detector
    running beside the decoder (`prefetch`) then lacks. Segmented decodes (`_segmented_frames`)
    always run single-threaded decoders: the segments are the parallelism.
    """
    return "AUTO" if title.width * title.height >= THREADED_MIN_PIXELS else "NONE"


def prefetch(items: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """Run `items` in a background thread, up to `depth` items ahead of the consumer.

    FFmpeg and numpy release the GIL, so decoding the next chunk overlaps with analysing this
    one. Exceptions (a TitleError from the decoder) are raised in the consumer, in order; a
    consumer that stops early stops the producer at its next item.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                q.put((item, None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            q.put((None, exc))
            return
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # a generator's `with` blocks (the open container) end here
        q.put((done, None))

    worker = threading.Thread(target=produce, name="mediafm-decode", daemon=True)
    worker.start()
    try:
        while True:
            item, exc = q.get()
            if exc is not None:
                raise exc
            if item is done:
                return
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get(timeout=0.05)
            except queue.Empty:
                pass
        worker.join()


def _check_complete(title: Title, n_decoded: int, span_s: float) -> None:
    """Refuse a stream that decodes to well under both its announced frame count and its
    announced duration (`span_s`: seconds the decoded frames cover). Either suffices, since
    the count of a variable-frame-rate stream without one in its container is an estimate
    (duration x average rate) while a truncated file falls short of both."""
    if n_decoded == 0:
        raise TitleError(title.title_id, f"{title.video_path.name} decodes to zero frames")
    short_of_time = span_s < MIN_DECODED_SHARE * title.duration_s
    if n_decoded < MIN_DECODED_SHARE * title.n_frames and short_of_time:
        raise TitleError(
            title.title_id,
            f"{title.video_path.name} is truncated: decoded {n_decoded} of {title.n_frames} frames",
        )


def sample_frame_indices(start: int, end: int, n: int) -> np.ndarray:
    """`n` frame indices spread uniformly over [start, end) (centres of n equal parts)."""
    length = max(1, end - start)
    return start + np.minimum(((np.arange(n) + 0.5) * length / n).astype(np.int64), length - 1)


def _shot_spans(shots: Any) -> list[tuple[int, int, int, float, float]]:
    """(shot_index, start_frame, end_frame, start_s, end_s) from a shots table or dict of lists."""
    cols = shots.to_pydict() if hasattr(shots, "to_pydict") else dict(shots)
    keys = ("shot_index", "start_frame", "end_frame", "start_s", "end_s")
    return [tuple(row) for row in zip(*(cols[k] for k in keys))]


def extract_shot_inputs(
    title: Title, shots: Any, frames_per_shot: int = 8, size: int = 224
) -> list[ShotInputs]:
    """Per-shot frames and 16 kHz mono audio, decoded in one demux pass (see iter_shot_inputs)."""
    return list(iter_shot_inputs(title, shots, frames_per_shot, size))


def iter_shot_inputs(
    title: Title, shots: Any, frames_per_shot: int = 8, size: int = 224
) -> Iterator[ShotInputs]:
    """Yield ShotInputs in shot order as soon as the decode has passed each shot.

    `shots` is a shots table (pyarrow, or a dict of columns): frames are picked by decoded frame
    index (start_frame, end_frame), audio by time (start_s, end_s, on the presentation timeline,
    see `Title.start_s`), so audio before the first picture belongs to no shot. Frames are shown
    as a player shows them (rotation, pixel aspect; see `_square`), resized so the shorter side
    is `size`, then centre-cropped to size x size. Audio is resampled to 16 kHz mono float; any
    part of a shot not covered by audio samples is zeros, so lengths are always exact.
    """
    spans = _shot_spans(shots)
    if not spans:
        return
    pending = _FramePicker(spans, frames_per_shot, size, title.sample_aspect)
    audio = _AudioCollector(title.start_s)
    next_shot = 0
    for kind, item in _demux(title):
        if kind == "video":
            pending.add(item)
        else:
            audio.add(item)
        while (
            next_shot < len(spans)
            and pending.ready(next_shot)
            and audio.covers(spans[next_shot][4])
        ):
            yield _shot_inputs(spans[next_shot], pending, audio, next_shot)
            next_shot += 1
            if next_shot < len(spans):
                audio.drop_before(min(s[3] for s in spans[next_shot:]))
    audio.flush()
    _check_complete(title, pending.n_seen, pending.span_s())
    for k in range(next_shot, len(spans)):
        yield _shot_inputs(spans[k], pending, audio, k)


def _shot_inputs(
    span: tuple, picker: "_FramePicker", audio: "_AudioCollector", k: int
) -> ShotInputs:
    shot_index, _, _, start_s, end_s = span
    return ShotInputs(
        shot_index=int(shot_index),
        start_s=float(start_s),
        end_s=float(end_s),
        frames=picker.take(k),
        audio=audio.slice(start_s, end_s),
    )


def _demux(title: Title) -> Iterator[tuple[str, Any]]:
    """Decoded video frames and audio frames in file order, one pass over the packets."""
    import av

    with _open(title) as container:
        vs = container.streams[title.video_stream]
        vs.thread_type = _thread_type(title)
        streams = [vs, container.streams[title.audio_stream]]
        n = 0
        try:
            for packet in container.demux(streams):
                for frame in packet.decode():
                    if packet.stream.type == "video":
                        n += 1
                    yield packet.stream.type, frame
        except av.FFmpegError as exc:
            raise TitleError(
                title.title_id, f"corrupt or truncated: decoding failed near frame {n} ({exc})"
            ) from exc


class _FramePicker:
    """Keeps only the frames some shot samples, resized and cropped as they arrive.

    A shot's (n, size, size, 3) buffer is made when its first sampled frame arrives and handed
    over by `take`, so memory holds the shots in flight, not every shot of the title (issue 19:
    5,000 shots x 8 frames at 224 px would be 6 GB reserved up front)."""

    def __init__(self, spans: list[tuple], n: int, size: int, sample_aspect: float = 1.0):
        self.size, self.n, self.n_seen, self.sample_aspect = size, n, 0, sample_aspect
        self.first_s: float | None = None  # stream time of the first decoded frame
        # the last timed frame: (stream time, duration, time base); span_s() does the arithmetic
        self.last_timed: tuple[float, Any, Any] | None = None
        self.want: dict[int, list[tuple[int, int]]] = {}
        self.ends = [int(s[2]) for s in spans]
        self.out: list[np.ndarray | None] = [None] * len(spans)  # made on first use
        self.last = [-1] * len(spans)  # last slot filled per shot, to repeat past the end
        for k, (_, start, end, _, _) in enumerate(spans):
            for slot, idx in enumerate(sample_frame_indices(int(start), int(end), n)):
                self.want.setdefault(int(idx), []).append((k, slot))
        self.latest: np.ndarray | None = None
        self.scaler = None  # a cached swscale context, made on first use

    def _scaler(self) -> Any:
        if self.scaler is None:
            from av.video.reformatter import VideoReformatter

            self.scaler = VideoReformatter()
        return self.scaler

    def add(self, frame: Any) -> None:
        idx = self.n_seen
        self.n_seen += 1
        t = frame.time
        if t is not None:
            if self.first_s is None:
                self.first_s = t
            self.last_timed = (t, frame.duration, frame.time_base)
        if idx in self.want:
            img = _square(frame, self.size, self._scaler(), self.sample_aspect)
            for k, slot in self.want.pop(idx):
                self._buffer(k)[slot] = img
                self.last[k] = slot
            self.latest = img

    def span_s(self) -> float:
        """Seconds of video the decoded frames cover (0 without timestamps)."""
        if self.last_timed is None:
            return 0.0
        t, duration, time_base = self.last_timed
        return max(0.0, t + float((duration or 0) * (time_base or 0)) - self.first_s)

    def ready(self, k: int) -> bool:
        return self.n_seen >= self.ends[k]

    def _buffer(self, k: int) -> np.ndarray:
        if self.out[k] is None:
            self.out[k] = np.zeros((self.n, self.size, self.size, 3), np.uint8)
        return self.out[k]

    def take(self, k: int) -> np.ndarray:
        """The shot's frames; slots past the end of the stream repeat the last decoded frame."""
        frames, last = self._buffer(k), self.last[k]
        if last < len(frames) - 1:
            fill = frames[last] if last >= 0 else self.latest
            if fill is not None:
                frames[last + 1 :] = fill
        self.out[k] = np.zeros((0, self.size, self.size, 3), np.uint8)  # handed over
        return frames


def _square(frame: Any, size: int, scaler: Any = None, sample_aspect: float = 1.0) -> np.ndarray:
    """The picture as a player shows it, resized so the shorter side is `size` and centre-cropped
    to (size, size, 3) uint8 RGB.

    Shown as a player shows it (issue 11, cases 4-5): stored pixels `sample_aspect` (SAR) wide
    are resampled to square ones, then the display matrix's rotation (`frame.rotation`, degrees
    counter-clockwise, as ffprobe reports it) is applied, as ffmpeg's autorotate does.
    """
    w, h = frame.width * sample_aspect, frame.height  # stored orientation, square pixels
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    kw = {"width": nw, "height": nh, "format": "rgb24", "interpolation": "AREA", "threads": 1}
    img = frame.reformat(**kw) if scaler is None else scaler.reformat(frame, **kw)
    img = img.to_ndarray()  # (nh, nw, 3)
    turns = round((frame.rotation or 0) / 90) % 4
    if turns:
        img = np.rot90(img, turns)  # counter-clockwise quarter turns
    y0, x0 = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
    return np.ascontiguousarray(img[y0 : y0 + size, x0 : x0 + size])


class _AudioCollector:
    """Resamples the audio stream to 16 kHz mono float32, places it on the presentation
    timeline by its timestamps and answers slices by time (issue 19, cases 3-5).

    Each run of contiguous audio starts where its first frame's timestamp says; a frame stamped
    more than AUDIO_SYNC_S away from where the samples so far end starts a new run, so a hole
    in the timestamps stays silence and later audio is not pulled early; where runs overlap
    the samples placed first are kept (as FFmpeg's `aresample=async` drops them). A change of
    sample format, channel layout or rate mid-stream (spliced segments) flushes the resampler
    into place and builds a new one for the new format (PyAV's resampler refuses frames that
    differ from its first, PyAV#1048). Samples before the next pending shot are dropped as shots
    are served, so memory stays bounded by the longest shot plus the interleaving distance.
    """

    def __init__(self, origin_s: float = 0.0):
        self.origin_s = origin_s  # stream time of the presentation timeline's 0 (Title.start_s)
        self.resampler: Any = None
        self.setup: tuple | None = None  # (format, layout, rate) the resampler was built for
        self.starts: list[int] = []  # timeline sample index of each piece's first sample
        self.pieces: list[np.ndarray] = []  # disjoint runs of samples, in timeline order
        self.cursor: int | None = None  # where the resampler's next output sample goes
        self.end = -(2**62)  # timeline sample index after the last placed sample
        self.done = False

    def add(self, frame: Any) -> None:
        import av

        setup = (frame.format.name, frame.layout.name, frame.sample_rate)
        start = None if frame.time is None else round((frame.time - self.origin_s) * AUDIO_RATE)
        jump = start is not None and (
            self.cursor is None or abs(start - self.cursor) > AUDIO_SYNC_S * AUDIO_RATE
        )
        if setup != self.setup or jump:
            self._drain()
            self.resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
            self.setup = setup
        if jump or self.cursor is None:
            self.cursor = 0 if start is None else start
        for out in self.resampler.resample(frame):
            self._place(out.to_ndarray().reshape(-1))

    def _drain(self) -> None:
        """Flush the current resampler's delayed samples into place."""
        if self.resampler is not None:
            for out in self.resampler.resample(None):
                self._place(out.to_ndarray().reshape(-1))
            self.resampler = None

    def _place(self, x: np.ndarray) -> None:
        pos, self.cursor = self.cursor, self.cursor + len(x)
        skip = max(0, self.end - pos)  # overlap: what is already placed stays
        if skip < len(x):
            self.starts.append(pos + skip)
            self.pieces.append(x[skip:].astype(np.float32, copy=False))
            self.end = pos + len(x)

    def flush(self) -> None:
        self._drain()
        self.done = True

    def covers(self, end_s: float) -> bool:
        return self.done or (self.cursor is not None and self.cursor >= round(end_s * AUDIO_RATE))

    def slice(self, start_s: float, end_s: float) -> np.ndarray:
        """Samples for [start_s, end_s); zeros where the stream has none."""
        a, b = round(start_s * AUDIO_RATE), round(end_s * AUDIO_RATE)
        out = np.zeros(max(0, b - a), np.float32)
        first = max(0, bisect.bisect_right(self.starts, a) - 1)
        for p0, x in zip(self.starts[first:], self.pieces[first:]):
            if p0 >= b:
                break
            lo, hi = max(a, p0), min(b, p0 + len(x))
            if hi > lo:
                out[lo - a : hi - a] = x[lo - p0 : hi - p0]
        return out

    def drop_before(self, t_s: float) -> None:
        """Forget pieces that end before time `t_s` (no later shot starts earlier)."""
        cut = round(t_s * AUDIO_RATE)
        k = 0
        while k < len(self.pieces) and self.starts[k] + len(self.pieces[k]) <= cut:
            k += 1
        if k:
            del self.starts[:k], self.pieces[:k]
