"""Domain `evaluation` of the MediaFM asset graph (see definitions.py)."""
