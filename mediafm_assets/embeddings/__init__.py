"""Domain `embeddings` of the MediaFM asset graph (see definitions.py)."""
