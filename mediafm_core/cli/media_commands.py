"""Subcommands (placeholder module: commands are added here by their domain)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add this domain's subcommands to the `mediafm` parser."""
