"""MediaFM core library: media, encoders, fusion, model, optimiser, training, inference, probes,
storage, synthetic data and the CLI. Never imports dagster.

Heavy libraries (torch, open_clip, transformers, lancedb) are imported lazily inside the code paths
that need them, so `import mediafm_core` and `mediafm --help` stay fast.
"""

__version__ = "0.1.0"
