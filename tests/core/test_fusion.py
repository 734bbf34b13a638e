"""Fusion: per-modality L2 norm, concatenation, unit norm, zero-padded text, errors, layout."""

import json

import numpy as np
import pytest

from mediafm_core.encoders.base import EncoderInfo
from mediafm_core.errors import TitleError
from mediafm_core.fusion import FusionLayout, fuse, l2_normalise

INFOS = {
    "video": EncoderInfo("video", "open_clip:x", 4, "random-init-seed0", True),
    "audio": EncoderInfo("audio", "wav2vec2:y", 3, "random-init-seed0", True),
    "text": EncoderInfo("text", "st:z", 2, "local", False),
}
LAYOUT = FusionLayout.from_infos(INFOS)


def parts(n=3, seed=0):
    rng = np.random.default_rng(seed)
    return {m: rng.standard_normal((n, i.dim)).astype(np.float32) * 5 for m, i in INFOS.items()}


def test_fused_is_unit_norm_with_equal_modality_weight():
    p = parts()
    out = fuse("t", LAYOUT, p)
    assert out.shape == (3, 9) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    for m, (a, b) in LAYOUT.offsets().items():
        np.testing.assert_allclose(np.linalg.norm(out[:, a:b], axis=1), 1 / np.sqrt(3), atol=1e-6)
        np.testing.assert_allclose(out[:, a:b] * np.sqrt(3), l2_normalise(p[m]), atol=1e-6)


def test_missing_text_is_zero_padded():
    p = parts()
    p["text"][1] = 0
    out = fuse("t", LAYOUT, p)
    a, b = LAYOUT.offsets()["text"]
    assert np.all(out[1, a:b] == 0)
    np.testing.assert_allclose(np.linalg.norm(out[1, :a]), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(out[1, :4]), 1 / np.sqrt(2), atol=1e-6)


@pytest.mark.parametrize(
    "mutate, problem",
    [
        (lambda p: p["video"].__setitem__((0, 1), np.nan), "video vectors have NaN or inf"),
        (lambda p: p["audio"].__setitem__((2, 0), np.inf), "audio vectors have NaN or inf"),
        (lambda p: p.__setitem__("audio", np.ones((3, 5), np.float32)), r"expected \(n, 3\)"),
        (lambda p: p.__setitem__("text", np.ones((2, 2), np.float32)), "2 rows, expected 3"),
        (lambda p: p.pop("text"), "missing modality vectors: text"),
        (lambda p: p["video"].__setitem__(0, 0.0), "video vector is all zeros"),
    ],
)
def test_bad_parts_raise_naming_the_title(mutate, problem):
    p = parts()
    mutate(p)
    with pytest.raises(TitleError, match=problem) as exc:
        fuse("title-42", LAYOUT, p)
    assert "title-42" in str(exc.value)


def test_layout_round_trips_through_json():
    text = LAYOUT.to_json()
    data = json.loads(text)
    assert data["dim"] == 9
    assert [s["modality"] for s in data["slots"]] == ["video", "audio", "text"]
    assert data["slots"][0]["random_init"] is True
    assert FusionLayout.from_json(text) == LAYOUT
    assert LAYOUT.offsets() == {"video": (0, 4), "audio": (4, 7), "text": (7, 9)}
