"""Video decode throughput per CPU thread at broadcast resolution: the input side of the scale
estimate in infra/README.md (shot detection decodes every frame of every title).

Writes a 10 s clip with libx264 (high-entropy content: a worst case for the decoder), then decodes
it with PyAV on one thread, (a) frames only and (b) frames downscaled to 48x27 RGB as the shot
detector uses them. With --iter-small, also (c) `mediafm_core.media.decode.iter_small` itself
(serial, one decoder thread) and (d) with 2 segment workers: the code `mediafm shots` runs,
timestamps kept (FrameClock) included. The clip then gets a silent AAC track (a title needs
one). Prints a markdown table.

    OMP_NUM_THREADS=1 .venv/bin/python bench/decode_throughput.py
    OMP_NUM_THREADS=1 .venv/bin/python bench/decode_throughput.py --width 1280 --height 720
    OMP_NUM_THREADS=1 .venv/bin/python bench/decode_throughput.py --width 640 --height 360 \
        --frames 1500 --iter-small
"""

import argparse
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np


def write_clip(
    path: Path, width: int, height: int, frames: int, fps: int = 25, audio: bool = False
) -> None:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "23"}
        aus = out.add_stream("aac", rate=16000, layout="mono") if audio else None
        base = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.roll(base, i * 7, axis=1), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        if aus is not None:  # silence over the clip's length
            silence = np.zeros((1, 16000 * frames // fps), np.float32)
            af = av.AudioFrame.from_ndarray(silence, format="fltp", layout="mono")
            af.sample_rate, af.pts, af.time_base = 16000, 0, Fraction(1, 16000)
            for packet in [*aus.encode(af), *aus.encode(None)]:
                out.mux(packet)


def iter_small_fps(title_dir: Path, workers: int) -> float:
    from mediafm_core.media.decode import iter_small
    from mediafm_core.media.titles import open_title

    title = open_title(title_dir)
    t0 = time.perf_counter()
    n = sum(len(chunk) for chunk in iter_small(title, 48, 27, chunk=256, workers=workers))
    return n / (time.perf_counter() - t0)


def decode_fps(path: Path, small: bool) -> float:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "NONE"
        stream.codec_context.thread_count = 1
        t0, n = time.perf_counter(), 0
        for frame in container.decode(stream):
            if small:
                frame.to_ndarray(width=48, height=27, format="rgb24")
            n += 1
        return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--frames", type=int, default=250)
    ap.add_argument("--repeats", type=int, default=3, help="best of N decodes")
    ap.add_argument("--iter-small", action="store_true", help="also time mediafm's iter_small")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        title_dir = Path(tmp) / "clip"
        title_dir.mkdir()
        clip = title_dir / "video.mp4"
        write_clip(clip, args.width, args.height, args.frames, audio=args.iter_small)
        (title_dir / "metadata.json").write_text('{"name": "clip"}')
        rows = {
            label: max(decode_fps(clip, small) for _ in range(args.repeats))
            for label, small in (("decode", False), ("decode + 48x27 RGB", True))
        }
        if args.iter_small:
            for label, workers in (("iter_small, serial", 1), ("iter_small, 2 workers", 2)):
                rows[label] = max(iter_small_fps(title_dir, workers) for _ in range(args.repeats))
    print(
        f"\n{args.width}x{args.height} H.264, {args.frames} frames, 1 decoder thread, "
        f"best of {args.repeats}\n"
    )
    print("| stage | frames/s per thread | core-hours per 10^9 frames |")
    print("|---|---:|---:|")
    for label, fps in rows.items():
        print(f"| {label} | {fps:.0f} | {1e9 / fps / 3600:,.0f} |")


if __name__ == "__main__":
    main()
