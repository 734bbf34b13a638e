"""Domain `serving` of the MediaFM asset graph (see definitions.py)."""
