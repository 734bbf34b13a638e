"""Synthetic data: the narrative benchmark (shot vectors + probe labels) and synthetic media."""
