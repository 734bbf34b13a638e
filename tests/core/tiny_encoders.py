"""Tiny random-init encoder architectures for fast CPU tests (test_encoders, test_pipeline): the
towers of the `test-tiny` profile, plus a wav2vec2 of any width."""

from mediafm_core.encoders.profiles import TINY_VIT, TINY_W2V

__all__ = ["TINY_VIT", "TINY_W2V", "tiny_w2v"]


def tiny_w2v(hidden_size: int = 32) -> dict:
    """Wav2Vec2Config fields of a one-layer wav2vec2; output width `hidden_size`."""
    return {**TINY_W2V, "hidden_size": hidden_size, "intermediate_size": 2 * hidden_size}
