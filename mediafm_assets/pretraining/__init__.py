"""Domain `pretraining` of the MediaFM asset graph (see definitions.py)."""
