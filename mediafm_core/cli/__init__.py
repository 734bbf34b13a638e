"""The `mediafm` command line. Subcommands live in domain modules, each with `register(subparsers)`.

Handlers import heavy libraries inside themselves, so `mediafm --help` and `mediafm shots` never pay
for torch or lancedb unless they use them. An `InputError` becomes one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from mediafm_core.errors import InputError

# Each module defines register(subparsers) adding its commands; handlers return an exit code.
COMMAND_MODULES = (
    "mediafm_core.cli.model_commands",
    "mediafm_core.cli.media_commands",
    "mediafm_core.cli.encode_commands",
    "mediafm_core.cli.store_commands",
    "mediafm_core.cli.catalogue_commands",
    "mediafm_core.cli.train_commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mediafm", description="MediaFM: tri-modal shot embeddings for long-form video."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"mediafm {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mediafm {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
