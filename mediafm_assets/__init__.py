"""The MediaFM Dagster code location: thin assets over `mediafm_core`, one folder per domain.

Entry point: `mediafm_assets.definitions:defs` (workspace.yaml, `[tool.dagster]`).
"""
