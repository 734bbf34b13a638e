"""mediafm_core.checks (issue 18): the per-title checks that run before anything is served."""

import numpy as np
import pyarrow as pa
import pytest

from mediafm_core.checks import beats_baselines, contextual_vectors, shot_coverage
from tests.store_rows import shot_rows


def shots_of(spans, fps=25.0) -> pa.Table:
    """A shots table from (start_frame, end_frame) spans."""
    s = np.array([a for a, _ in spans], np.int64)
    e = np.array([b for _, b in spans], np.int64)
    return pa.table(
        {
            "title_id": ["t"] * len(spans),
            "shot_index": np.arange(len(spans)),
            "start_frame": s,
            "end_frame": e,
            "start_s": s / fps,
            "end_s": e / fps,
        }
    )


@pytest.mark.parametrize(
    "spans, duration, passed, problem",
    [
        ([(0, 50), (50, 120), (120, 250)], 10.0, True, ""),
        ([(0, 50), (60, 120), (120, 250)], 10.0, False, "1 gaps"),
        ([(0, 50), (40, 120), (120, 250)], 10.0, False, "1 overlaps"),
        ([(10, 50), (50, 250)], 10.0, False, "1 gaps"),  # the first frames belong to no shot
        ([(0, 50), (50, 125)], 10.0, False, "shots end 5.00 s before the title's 10.00 s"),
        ([(0, 50), (50, 240)], 10.0, True, ""),  # 0.4 s short: container slack
    ],
)
def test_shot_coverage(spans, duration, passed, problem):
    out = shot_coverage(shots_of(spans), duration)
    assert out.passed is passed and problem in out.problem
    assert out.metadata["shots"] == len(spans)


def test_contextual_vectors_name_each_problem():
    good = shot_rows("t", 5, d=8)
    assert all(o.passed for o in contextual_vectors(good, good))
    vec = np.stack(good["vector"].to_pylist()).astype(np.float32)
    vec[1] = np.nan
    vec[3] *= 2.0
    bad = good.set_column(
        good.schema.get_field_index("vector"),
        "vector",
        pa.FixedSizeListArray.from_arrays(pa.array(vec.ravel()), 8),
    )
    bad = bad.set_column(
        bad.schema.get_field_index("model_version"),
        "model_version",
        pa.array(["m1", "m1", "m2", "m1", "m1"]),
    )
    got = {o.name: o for o in contextual_vectors(bad, good)}
    assert got["rows_match_shots"].passed
    assert got["finite_vectors"].problem == "1 rows with NaN/inf"
    assert not got["unit_norm"].passed and not got["one_model_version"].passed
    fewer = contextual_vectors(good.slice(0, 4), good)[0]
    assert not fewer.passed and fewer.problem == "4 rows for 5 shots"


@pytest.mark.parametrize(
    "metrics, passed",
    [
        ({"best_val_loss": 0.20, "baseline_mean_shot": 0.40, "baseline_neighbour": 0.30}, True),
        ({"best_val_loss": 0.35, "baseline_mean_shot": 0.40, "baseline_neighbour": 0.30}, False),
        ({"best_val_loss": 0.45, "baseline_mean_shot": 0.40, "baseline_neighbour": 0.50}, False),
        ({"best_val_loss": 0.20}, False),  # no baselines reported: nothing to compare with
        (
            {"best_val_loss": float("nan"), "baseline_mean_shot": 0.4, "baseline_neighbour": 0.3},
            False,
        ),
    ],
)
def test_beats_baselines(metrics, passed):
    out = beats_baselines(metrics)
    assert out.passed is passed
    assert (out.problem == "") is passed
