"""Domain `ingest` of the MediaFM asset graph (see definitions.py)."""
