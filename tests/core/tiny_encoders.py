"""Tiny random-init encoder architectures for fast CPU tests (test_encoders, test_pipeline)."""

# open_clip vision tower: 32 px, 8 px patches, one layer; pooled width 32.
TINY_VIT = dict(image_size=32, layers=1, width=32, patch_size=8, head_width=16)


def tiny_w2v(hidden_size: int = 32) -> dict:
    """Wav2Vec2Config fields of a one-layer wav2vec2; output width `hidden_size`."""
    return dict(
        hidden_size=hidden_size,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=2 * hidden_size,
        conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
    )


TINY_W2V = tiny_w2v()
