"""What assigning subtitle cues to shots costs on huge caption files (issue 19, case 7): a 3 h
title with 5,000 shots and live-caption feeds of 12k roll-up cues (each overlapping the two
before) or 24k word-level cues, against the dense cues x shots computation it replaced.

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python bench/cue_assignment.py [--no-dense]

Peak memory is what tracemalloc counts during the call (numpy reports its buffers to it); time
is the median of --repeat runs. Prints markdown.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

from mediafm_core.media.subtitles import assign_cues_to_shots, read_subtitles
from tests.core.media_fixtures import shot_bounds, write_caption_feed
from tests.core.test_subtitles import dense_assignment

SECONDS = 3 * 3600.0


def measure(fn, repeat: int) -> tuple[float, float]:
    """(median seconds, peak MB added) of fn()."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    try:
        fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return statistics.median(times), peak / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shots", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-dense", action="store_true", help="skip the dense reference (1.8 GB)")
    args = ap.parse_args()
    starts, ends = shot_bounds(args.shots, SECONDS)
    print("| cues | kind | shots | method | seconds | peak MB |")
    print("|---:|---|---:|---|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for mode, n in (("roll-up", 12_000), ("words", 24_000)):
            path = write_caption_feed(Path(tmp) / f"{mode}.srt", n, SECONDS, mode)
            cues = read_subtitles(path, "bench")
            methods = {"sorted intervals (now)": assign_cues_to_shots}
            if not args.no_dense:
                methods["dense cues x shots (before)"] = dense_assignment
            results = {}
            for name, fn in methods.items():
                secs, mb = measure(lambda f=fn, c=cues: f(c, starts, ends), args.repeat)
                results[name] = fn(cues, starts, ends)
                print(f"| {n} | {mode} | {args.shots} | {name} | {secs:.3f} | {mb:.1f} |")
            assert len({tuple(r) for r in results.values()}) == 1, "methods disagree"


if __name__ == "__main__":
    main()
