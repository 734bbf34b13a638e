"""The seed's ablation: which features make the best frozen clip representations?

Rows (feature sets), each probed on the five tasks with the same folds:
- video_only: the uncontextualised video vector of each shot (one modality).
- fused: the uncontextualised fused vector (three modalities, no Transformer).
- contextual: the encoder run on whole titles, clip = mean over the span ("embedding in context").
- clip_alone: the encoder run on the clip's shots only (same [GLOBAL]), then the mean.

A data folder holds the `mediafm synth` layout: fused.parquet, globals.parquet (optional),
video_only.parquet (optional: the row is left out without it), clips_<task>.parquet.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mediafm_core.errors import InputError
from mediafm_core.probes.linear import ProbeResult, run_probe
from mediafm_core.probes.tasks import TASKS, Clips, check_spans, read_clips, vectors_by_title

log = logging.getLogger(__name__)

ROWS = ("video_only", "fused", "contextual", "clip_alone")
# Opt-in baseline (issue 20): each shot's fused vector minus its title's mean fused vector, beside
# the fused vector itself (2 x D): the title context a probe cannot get from the clip alone, with
# no encoder. It says how much of a contextual row's margin a title mean alone would give.
EXTRA_ROWS = ("fused_title",)


@dataclass
class BenchmarkData:
    fused: dict[str, np.ndarray]  # title_id -> (n, D)
    video: dict[str, np.ndarray] | None  # title_id -> (n, Dv), None when absent
    globals_: dict[str, np.ndarray]  # title_id -> (G,)
    clips: dict[str, Clips]  # task -> clips


def read_task_clips(d: Path, tasks) -> dict[str, Clips]:
    """task -> clips of each clips_<task>.parquet in folder `d` (a missing task is left out with a
    warning); `InputError` when there is none."""
    clips = {}
    for task in tasks:
        path = d / f"clips_{task}.parquet"
        if not path.exists():
            log.warning("no %s: task %s left out", path, task)
            continue
        clips[task] = read_clips(path, task)
    if not clips:
        raise InputError(str(d), "no clips_<task>.parquet files")
    return clips


def load_benchmark(data_dir: str | Path, tasks=tuple(TASKS)) -> BenchmarkData:
    """Read a `mediafm synth`-style folder, validating every file."""
    from mediafm_core.tables import read_vectors

    d = Path(data_dir)
    if not d.is_dir():
        raise InputError(str(d), "not a folder")
    fused_t = read_vectors(d / "fused.parquet", column="fused")
    fused = vectors_by_title(fused_t, str(d / "fused.parquet"))
    video = None
    if (d / "video_only.parquet").exists():
        vpath = d / "video_only.parquet"
        video = vectors_by_title(read_vectors(vpath), str(vpath))
    globs = {}
    if (d / "globals.parquet").exists():
        gt = read_vectors(d / "globals.parquet", keys=("title_id",))
        globs = {str(t): v for t, v in zip(gt.title_ids, gt.vectors)}
    clips = read_task_clips(d, tasks)
    for task, c in clips.items():
        check_spans(fused, c, str(d / f"clips_{task}.parquet"))
    return BenchmarkData(fused, video, globs, clips)


@dataclass
class StreamedBenchmark:
    """A benchmark folder opened for a scan (`streamed_features`): title sources, not tables."""

    fused: object  # training.dataset title source of fused.parquet
    video: object | None  # of video_only.parquet, None when absent
    globals_: object | None  # of globals.parquet, None when absent
    clips: dict[str, Clips]  # task -> clips

    def as_data(self) -> BenchmarkData:
        """The clips alone, for `run_ablation(..., features=streamed_features(...))`."""
        return BenchmarkData({}, None, {}, self.clips)


def open_benchmark(data_dir: str | Path, tasks=tuple(TASKS)) -> StreamedBenchmark:
    """Open a `mediafm synth`-style folder for a scan: only Parquet footers and the clips are
    read here; vectors are read title by title later (issue 17)."""
    from mediafm_core.training.dataset import open_titles

    d = Path(data_dir)
    if not d.is_dir():
        raise InputError(str(d), "not a folder")
    fused = open_titles(str(d / "fused.parquet"), "fused")
    video = (
        open_titles(str(d / "video_only.parquet"), "vector")
        if (d / "video_only.parquet").exists()
        else None
    )
    globs = (
        open_titles(str(d / "globals.parquet"), "vector", per_shot=False)
        if (d / "globals.parquet").exists()
        else None
    )
    return StreamedBenchmark(fused, video, globs, read_task_clips(d, tasks))


def _progress(label: str):
    """A (done, total) callback: a tqdm bar on a terminal, throttled log lines otherwise."""
    from mediafm_core.progress import progress_callback

    return progress_callback(label, unit="batch")


def ablation_features(data: BenchmarkData, model, representation, device, batch_size, rows):
    """row -> task -> (N, F) clip features for the requested rows that apply."""
    from mediafm_core.inference import clip_vectors, embed_clips_alone, embed_titles

    per_row: dict[str, dict[str, np.ndarray]] = {}
    shots = {"fused": data.fused} if "fused" in rows else {}
    if "fused_title" in rows:
        shots["fused_title"] = {
            t: np.concatenate([x - x.mean(0, keepdims=True), x], axis=1)
            for t, x in data.fused.items()
        }
    if data.video is not None and "video_only" in rows:
        shots["video_only"] = data.video
    if model is not None and "contextual" in rows:
        shots["contextual"] = embed_titles(
            model,
            data.fused,
            data.globals_,
            representation,
            batch_size,
            device=device,
            progress=_progress("embed titles"),
        )
    for row, per_title in shots.items():
        per_row[row] = {
            t: clip_vectors(per_title, c.title_ids, c.shot_start, c.shot_end)
            for t, c in data.clips.items()
        }
    if model is not None and "clip_alone" in rows and data.clips:
        # every task's clips in one call: a span two tasks share is embedded once (issue 20)
        cs = list(data.clips.values())
        alone = embed_clips_alone(
            model,
            data.fused,
            np.concatenate([c.title_ids for c in cs]),
            np.concatenate([c.shot_start for c in cs]),
            np.concatenate([c.shot_end for c in cs]),
            data.globals_,
            representation,
            device=device,
            progress=_progress("embed clips alone"),
        )
        ends = np.cumsum([len(c) for c in cs])
        per_row["clip_alone"] = dict(zip(data.clips, np.split(alone, ends[:-1])))
    return per_row


def subset_clips(clips: Clips, keep: np.ndarray) -> Clips:
    """The clips at the boolean or index positions `keep`, targets and all."""
    return Clips(
        clips.task,
        clips.title_ids[keep],
        clips.shot_start[keep],
        clips.shot_end[keep],
        clips.y[keep],
        clips.label_names,
    )


def streamed_features(
    fused,  # title source (training.dataset.open_titles): file or folder, read title by title
    video,  # title source of the video vectors, or None
    globals_,  # title source of the [GLOBAL] vectors (one row per title), or None
    clips: dict[str, Clips],
    model=None,
    representation: str | None = None,
    device: str = "cpu",
    batch_size: int = 8,
    rows: tuple[str, ...] = ROWS,
    chunk_titles: int = 32,
) -> dict[str, dict[str, np.ndarray]]:
    """`ablation_features` in a scan over the stored tables (issue 17): titles are read
    `chunk_titles` at a time, embedded, pooled into their clips' rows, and dropped, so memory is
    the clip features (clips x F) plus one chunk of titles, never the catalogue. Equal to
    `ablation_features` on the whole `BenchmarkData` up to float rounding of the batching.
    Raises `InputError` for a clip whose title has no vectors or is shorter than the clip."""
    from mediafm_core.inference import DEFAULT_REPRESENTATION

    rep = representation or DEFAULT_REPRESENTATION
    wanted = sorted({str(t) for c in clips.values() for t in c.title_ids})
    missing = [t for t in wanted if t not in fused]
    if missing:
        raise InputError(
            getattr(fused, "uri", "fused"),
            f"no vectors for title(s) {missing[:5]} named by the clips",
        )
    out: dict[str, dict[str, np.ndarray]] = {}
    for i in range(0, len(wanted), chunk_titles):
        chunk = wanted[i : i + chunk_titles]
        data = _chunk_data(chunk, fused, video, globals_, clips)
        for row, per_task in ablation_features(
            data.bench, model, rep, device, batch_size, rows
        ).items():
            for task, x in per_task.items():
                full = out.setdefault(row, {}).get(task)
                if full is None:
                    full = out[row][task] = np.zeros((len(clips[task]), x.shape[1]), np.float32)
                full[data.positions[task]] = x
    return out


@dataclass
class _Chunk:
    bench: BenchmarkData  # the chunk's titles and their clips only
    positions: dict[str, np.ndarray]  # task -> (n,) positions of those clips in the full task


def _chunk_data(chunk: list[str], fused, video, globals_, clips: dict[str, Clips]) -> _Chunk:
    f = {t: fused.read(t) for t in chunk}
    v = {t: video.read(t) for t in chunk if t in video} if video is not None else None
    g = {t: globals_.read(t)[0] for t in chunk if t in globals_} if globals_ is not None else {}
    names = set(chunk)
    sub, positions = {}, {}
    for task, c in clips.items():
        pos = np.flatnonzero([str(t) in names for t in c.title_ids])
        if len(pos):
            sub[task], positions[task] = subset_clips(c, pos), pos
            check_spans(f, sub[task], f"clips_{task}")
    return _Chunk(BenchmarkData(f, v, g, sub), positions)


def run_ablation(
    data: BenchmarkData,
    model=None,  # MediaFMEncoder; None runs the uncontextualised rows only
    folds: int = 10,
    representation: str | None = None,
    device: str = "cpu",
    batch_size: int = 8,
    seed: int = 0,
    rows: tuple[str, ...] = ROWS,  # a subset of ROWS to run
    features: dict | None = None,  # precomputed ablation_features(...), to reuse them elsewhere
    method: str = "ridge",  # probes.linear.METHODS: "ridge" (all labels at once) | "logistic"
) -> dict[str, dict[str, ProbeResult]]:
    """row -> task -> ProbeResult, rows in ROWS order (those requested that apply)."""
    from mediafm_core.inference import DEFAULT_REPRESENTATION

    rep = representation or DEFAULT_REPRESENTATION
    feats = features or ablation_features(data, model, rep, device, batch_size, rows)
    results: dict[str, dict[str, ProbeResult]] = {}
    for row in (r for r in ROWS + EXTRA_ROWS if r in feats):
        results[row] = {}
        for task, clips in data.clips.items():
            res = run_probe(feats[row][task], clips, folds=folds, seed=seed, method=method)
            log.info("%s %s: %s %.4f ± %.4f", row, task, res.metric, res.mean, res.std)
            results[row][task] = res
    return results


def format_table(results: dict[str, dict[str, ProbeResult]]) -> str:
    """Markdown table: one row per feature set, one column per task (mean ± std over folds)."""
    tasks = list(next(iter(results.values())))
    metrics = {t: r.metric for t, r in next(iter(results.values())).items()}
    head = "| features | " + " | ".join(f"{t} ({metrics[t]})" for t in tasks) + " |"
    lines = [head, "|---|" + "---|" * len(tasks)]
    for row, per_task in results.items():
        cells = [f"{per_task[t].mean:.3f} ± {per_task[t].std:.3f}" for t in tasks]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired_differences(
    results: dict[str, dict[str, ProbeResult]], base: str = "fused"
) -> dict[str, dict[str, dict[str, float]]]:
    """Each row minus `base`, paired over the outer folds (every row uses the same title folds).

    Per row and task: mean difference, its t statistic (mean / (sd / sqrt(k))), and the number
    of folds the row wins. The fold std of a single row mixes in how hard each fold is; the
    paired difference removes that, so it says whether a gain is real.
    """
    out: dict[str, dict[str, dict[str, float]]] = {}
    for row, per_task in results.items():
        if row == base:
            continue
        out[row] = {}
        for task, r in per_task.items():
            a, b = np.array(r.folds), np.array(results[base][task].folds)
            if len(a) != len(b) or len(a) < 2:  # folds left out differently: not paired
                continue
            d = a - b
            sd = d.std(ddof=1)
            t = float(d.mean() / (sd / np.sqrt(len(d)))) if sd > 0 else float("inf")
            out[row][task] = {
                "diff": float(d.mean()),
                "t": t,
                "wins": int((d > 0).sum()),
                "folds": len(d),
            }
    return out


def format_paired(
    results: dict[str, dict[str, ProbeResult]], base: str = "fused", prefix: str = ""
) -> str:
    """Markdown table of `paired_differences` for the rows starting with `prefix`:
    "+0.032 (t +6.8, 10/10)" per row and task."""
    diffs = paired_differences(results, base)
    tasks = list(results[base])
    lines = [
        f"| minus {base}, paired over folds | " + " | ".join(tasks) + " |",
        "|---|" + "---|" * len(tasks),
    ]
    for row, per_task in diffs.items():
        if not row.startswith(prefix):
            continue
        cells = [
            f"{v['diff']:+.3f} (t {v['t']:+.1f}, {v['wins']}/{v['folds']})" if v else "n/a"
            for v in (per_task.get(t) for t in tasks)
        ]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def results_json(results: dict[str, dict[str, ProbeResult]]) -> dict:
    return {row: {t: r.to_dict() for t, r in per.items()} for row, per in results.items()}
