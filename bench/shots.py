"""Shot boundary detectors side by side on synthetic titles with ground truth.

    OMP_NUM_THREADS=1 .venv/bin/python bench/shots.py [--titles 4] [--seconds 60] [--seed 100]

Writes synthetic titles (mediafm_core.synthetic.media) into a temp folder, decodes each once at
48x27 and runs every detector on the same frames. Scoring (per truth type):
- hard cuts: a detection matches a truth cut when its boundary frame is within 2 frames;
- gradual transitions (dissolves, fades): a detection matches when its span overlaps the truth
  span, with 2 frames of tolerance; detectors that report only boundaries (PySceneDetect) match
  when the boundary lies in the span.
Matching is one-to-one; unmatched detections are false positives of the kind they claim
(boundary-only detectors claim cuts). frames/s = frames / (shared decode + detection), one thread.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from mediafm_core.media.decode import decode_small  # noqa: E402
from mediafm_core.media.shots import DECODE_SIZE, DETECTORS, Transition, get_detector  # noqa: E402
from mediafm_core.media.titles import open_title  # noqa: E402
from mediafm_core.synthetic.media import SynthMediaConfig, write_synthetic_titles  # noqa: E402

TOL = 2  # frames


def truth_transitions(truth: dict) -> list[Transition]:
    out = []
    for t in truth["transitions"]:
        if t["type"] == "cut":
            out.append(Transition("cut", t["frame"], t["frame"]))
        else:
            out.append(Transition("gradual", t["start"], t["end"]))
    return out


def _matches(d: Transition, t: Transition) -> bool:
    if t.kind == "cut":
        return abs(d.boundary - t.start) <= TOL
    if d.kind == "cut":
        return t.start - TOL <= d.start <= t.end + TOL
    return d.start <= t.end + TOL and d.end >= t.start - TOL


def score(dets: list[Transition], truths: list[Transition]) -> dict[str, list[int]]:
    """{kind: [tp, fp, fn]} with one-to-one greedy matching by boundary distance."""
    pairs = sorted(
        (abs(d.boundary - t.boundary), i, j)
        for i, d in enumerate(dets) for j, t in enumerate(truths) if _matches(d, t)
    )  # fmt: skip
    used_d, used_t = set(), set()
    counts = {"cut": [0, 0, 0], "gradual": [0, 0, 0]}
    for _, i, j in pairs:
        if i not in used_d and j not in used_t:
            used_d.add(i)
            used_t.add(j)
            counts[truths[j].kind][0] += 1
    for i, d in enumerate(dets):
        if i not in used_d:
            counts[d.kind][1] += 1
    for j, t in enumerate(truths):
        if j not in used_t:
            counts[t.kind][2] += 1
    return counts


def f1(c: list[int]) -> float:
    tp, fp, fn = c
    return 2 * tp / max(1, 2 * tp + fp + fn)


def run(titles: int, seconds: float, seed: int, detectors: list[str], verbose: bool) -> None:
    import json

    with tempfile.TemporaryDirectory() as tmp:
        dirs = write_synthetic_titles(
            tmp, SynthMediaConfig(n_titles=titles, seconds=seconds, seed=seed))
        totals = {n: {"cut": [0, 0, 0], "gradual": [0, 0, 0], "s": 0.0} for n in detectors}
        dets = {n: get_detector(n) for n in detectors}
        n_frames, decode_s = 0, 0.0
        for d in dirs:
            title = open_title(d)
            truth = truth_transitions(json.loads((d / "truth" / "boundaries.json").read_text()))
            t0 = time.perf_counter()
            frames = decode_small(title, *DECODE_SIZE)
            decode_s += time.perf_counter() - t0
            n_frames += len(frames)
            for name, det in dets.items():
                t0 = time.perf_counter()
                found = det.detect(frames, title.fps)
                totals[name]["s"] += time.perf_counter() - t0
                c = score(found, truth)
                for k in ("cut", "gradual"):
                    totals[name][k] = [a + b for a, b in zip(totals[name][k], c[k])]
                if verbose:
                    print(name, title.title_id, c, file=sys.stderr)
    print(f"\n{titles} synthetic titles x {seconds:.0f} s, seed {seed}, {n_frames} frames; "
          f"shared decode at 48x27: {n_frames / decode_s:.0f} frames/s\n")
    print("| detector | cut F1 | cut tp/fp/fn | gradual F1 | gradual tp/fp/fn | "
          "detect frames/s | decode+detect frames/s |")
    print("|---|---|---|---|---|---|---|")
    for name, t in totals.items():
        print(f"| {name} | {f1(t['cut']):.3f} | {'/'.join(map(str, t['cut']))} | "
              f"{f1(t['gradual']):.3f} | {'/'.join(map(str, t['gradual']))} | "
              f"{n_frames / t['s']:.0f} | {n_frames / (t['s'] + decode_s):.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--titles", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=100)
    ap.add_argument("--detectors", default=",".join(DETECTORS))
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    np.seterr(all="ignore")
    run(a.titles, a.seconds, a.seed, a.detectors.split(","), a.verbose)


if __name__ == "__main__":
    main()
