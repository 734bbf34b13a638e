"""`mediafm synth | embed | probe | evaluate` end to end on files, and bad input -> exit 2."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from mediafm_core.cli import main
from mediafm_core.model.configuration_mediafm import config_for
from mediafm_core.model.modeling_mediafm import MediaFMEncoder
from mediafm_core.tables import read_vectors, write_vectors
from mediafm_core.training.checkpoint import save_checkpoint


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    assert main(["synth", str(out), "--titles", "10", "--dims", "6", "4", "5", "--seed", "2"]) == 0
    return out


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    model = MediaFMEncoder(config_for("tiny", fused_dim=15, global_dim=5, max_shots=64))
    out = tmp_path_factory.mktemp("ckpt") / "ckpt"
    save_checkpoint(out, model, {"model": model.config.to_dict()}, {"val_loss": 0.5})
    return out


def _err_line(capsys):
    err = [ln for ln in capsys.readouterr().err.splitlines() if "error" in ln]
    assert len(err) == 1
    return err[0]


def test_synth_writes_the_contract(data):
    fused = read_vectors(data / "fused.parquet", column="fused", extra=("has_text",))
    assert fused.dim == 15 and len(set(fused.title_ids)) == 10 and "has_text" in fused.extra
    assert read_vectors(data / "video_only.parquet").dim == 6
    assert read_vectors(data / "globals.parquet", keys=("title_id",)).dim == 5
    for task, col in (
        ("ad_relevancy", "labels"),
        ("popularity", "score"),
        ("tone", "labels"),
        ("genre", "labels"),
        ("retrieval", "label"),
    ):
        names = pq.read_schema(data / f"clips_{task}.parquet").names
        assert {"title_id", "clip_id", "shot_start", "shot_end", col} <= set(names)


def test_embed_then_probe(data, ckpt, tmp_path, capsys):
    out = tmp_path / "emb.parquet"
    rc = main(
        [
            "embed",
            "--checkpoint",
            str(ckpt),
            "--fused",
            str(data / "fused.parquet"),
            "--globals",
            str(data / "globals.parquet"),
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    emb = read_vectors(out, extra=("model_version",))
    fused = read_vectors(data / "fused.parquet", column="fused")
    assert emb.dim == 2 * 15 and len(emb.title_ids) == len(fused.title_ids)  # auto: H > D
    np.testing.assert_array_equal(emb.shot_index, fused.shot_index)
    assert set(emb.extra["model_version"]) == {
        json.loads((ckpt / "config.json").read_text())["model_version"]
    }
    capsys.readouterr()
    js = tmp_path / "r.json"
    rc = main(
        [
            "probe",
            "--embeddings",
            str(out),
            "--clips",
            str(data / "clips_retrieval.parquet"),
            "--task",
            "retrieval",
            "--folds",
            "3",
            "--json",
            str(js),
        ]
    )
    assert rc == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["task"] == "retrieval" and line["metric"] == "ap" and len(line["folds"]) == 3
    assert 0 < line["mean"] <= 1 and line["n_clips"] > 0
    assert json.loads(js.read_text()) == line


def test_probe_on_fused_column(data, capsys):
    rc = main(
        [
            "probe",
            "--embeddings",
            str(data / "fused.parquet"),
            "--column",
            "fused",
            "--clips",
            str(data / "clips_popularity.parquet"),
            "--task",
            "popularity",
            "--folds",
            "2",
        ]
    )
    assert rc == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["metric"] == "kendall_tau" and -1 <= line["mean"] <= 1


def test_probe_method_logistic_is_the_sklearn_reference(data, capsys):
    """Issue 20: `--method logistic` keeps the per-label scikit-learn probe beside the default
    ridge; both score the same folds."""
    lines = {}
    for method in ("ridge", "logistic"):
        rc = main(
            [
                "probe",
                "--embeddings",
                str(data / "fused.parquet"),
                "--column",
                "fused",
                "--clips",
                str(data / "clips_tone.parquet"),
                "--task",
                "tone",
                "--folds",
                "2",
                "--method",
                method,
            ]
        )
        assert rc == 0
        lines[method] = json.loads(capsys.readouterr().out.strip())
    assert len(lines["ridge"]["folds"]) == len(lines["logistic"]["folds"]) == 2
    assert lines["ridge"]["n_clips"] == lines["logistic"]["n_clips"]
    assert 0 < lines["ridge"]["mean"] <= 1 and 0 < lines["logistic"]["mean"] <= 1
    with pytest.raises(SystemExit) as e:
        main(
            [
                "probe",
                "--embeddings",
                str(data / "fused.parquet"),
                "--clips",
                str(data / "clips_tone.parquet"),
                "--task",
                "tone",
                "--method",
                "svm",
            ]
        )
    assert e.value.code == 2


def test_evaluate_prints_the_ablation_table(data, ckpt, capsys):
    rc = main(["evaluate", str(data), "--checkpoint", str(ckpt), "--folds", "2"])
    assert rc == 0
    out = capsys.readouterr().out.strip()
    table, paired = out.split("\n\n")
    table = table.splitlines()
    assert table[0].startswith("| features | ad_relevancy (macro_ap) | popularity (kendall_tau)")
    assert [r.split("|")[1].strip() for r in table[2:]] == [
        "video_only",
        "fused",
        "contextual",
        "clip_alone",
    ]
    paired = paired.splitlines()
    assert paired[1].startswith("| minus fused, paired over folds | ad_relevancy |")
    assert [r.split("|")[1].strip() for r in paired[3:]] == [
        "video_only",
        "contextual",
        "clip_alone",
    ]


def _bad_files(tmp_path):
    nan = tmp_path / "nan.parquet"
    v = np.ones((3, 4), dtype=np.float32)
    v[1, 2] = np.nan
    write_vectors(nan, ["a"] * 3, [0, 1, 2], v)
    ragged = tmp_path / "ragged.parquet"
    pq.write_table(
        pa.table({"title_id": ["a", "a"], "shot_index": [0, 1], "vector": [[1.0, 2.0], [1.0]]}),
        ragged,
    )
    nocol = tmp_path / "nocol.parquet"
    pq.write_table(pa.table({"title_id": ["a"], "shot_index": [0]}), nocol)
    empty = tmp_path / "empty.parquet"
    write_vectors(empty, ["a"], [0], np.ones((1, 4), dtype=np.float32))
    pq.write_table(pq.read_table(empty).slice(0, 0), empty)
    return {"NaN or inf": nan, "ragged": ragged, "missing column": nocol, "empty": empty}


def test_bad_embeddings_exit_2_naming_file_and_problem(data, tmp_path, capsys):
    for problem, path in _bad_files(tmp_path).items():
        rc = main(
            [
                "probe",
                "--embeddings",
                str(path),
                "--clips",
                str(data / "clips_tone.parquet"),
                "--task",
                "tone",
            ]
        )
        assert rc == 2
        line = _err_line(capsys)
        assert str(path) in line and problem in line


def test_bad_task_and_bad_clips_exit_2(data, ckpt, tmp_path, capsys):
    rc = main(
        [
            "probe",
            "--embeddings",
            str(data / "video_only.parquet"),
            "--clips",
            str(data / "clips_tone.parquet"),
            "--task",
            "mood",
        ]
    )
    assert rc == 2 and "unknown task 'mood'" in _err_line(capsys)
    rc = main(
        [
            "probe",
            "--embeddings",
            str(data / "video_only.parquet"),
            "--clips",
            str(data / "clips_tone.parquet"),
            "--task",
            "retrieval",
        ]
    )
    assert rc == 2 and "clips_tone.parquet" in _err_line(capsys)
    bad_ckpt = tmp_path / "nockpt"
    bad_ckpt.mkdir()
    rc = main(
        [
            "embed",
            "--checkpoint",
            str(bad_ckpt),
            "--fused",
            str(data / "fused.parquet"),
            "--out",
            str(tmp_path / "e.parquet"),
        ]
    )
    assert rc == 2 and "not a MediaFM checkpoint" in _err_line(capsys)
    rc = main(
        [
            "embed",
            "--checkpoint",
            str(ckpt),
            "--fused",
            str(data / "video_only.parquet"),
            "--out",
            str(tmp_path / "e.parquet"),
        ]
    )
    assert rc == 2 and "missing column" in _err_line(capsys)


def test_streamed_evaluation_features_equal_the_in_memory_ones(data, ckpt):
    """Issue 17: `mediafm evaluate` pools clip vectors in a scan, a few titles at a time; the
    features equal the whole-table path's (to float rounding), and each title is read once."""
    from mediafm_core.evaluation import (
        ROWS,
        ablation_features,
        load_benchmark,
        open_benchmark,
        streamed_features,
    )
    from mediafm_core.inference import DEFAULT_REPRESENTATION
    from mediafm_core.training import load_checkpoint

    model, _ = load_checkpoint(ckpt)
    whole = ablation_features(load_benchmark(data), model, DEFAULT_REPRESENTATION, "cpu", 8, ROWS)
    bench = open_benchmark(data)
    streamed = streamed_features(
        bench.fused,
        bench.video,
        bench.globals_,
        bench.clips,
        model,
        DEFAULT_REPRESENTATION,
        chunk_titles=3,
    )
    assert set(streamed) == set(whole) == set(ROWS)
    for row in ROWS:
        for task, x in whole[row].items():
            np.testing.assert_allclose(streamed[row][task], x, atol=2e-5, err_msg=f"{row} {task}")
    assert set(bench.fused.reads.values()) == {1}  # one read per title, never the whole table
