"""Catalogue commands: `retire` takes a title out of the store (issue 12).

`mediafm retire TITLE` removes the title's rows from both LanceDB tables, moves its Parquet
artefacts to `<root>/retired/<TITLE>/` and records the retirement; the Dagster partition goes at
the next tick of `title_retirement_sensor`. See `mediafm_core.storage.catalogue`.
"""

from __future__ import annotations

import argparse

from mediafm_core.cli.store_commands import _add_root


def register(sub: argparse._SubParsersAction) -> None:
    """Add `retire` to the `mediafm` parser."""
    p = sub.add_parser("retire", help="take a title out of the catalogue (tables, views, search)")
    p.add_argument("title", help="title id")
    p.add_argument("--reason", default="retired by hand", help="recorded in RETIRED.json")
    _add_root(p)
    p.set_defaults(func=run_retire)


def run_retire(args) -> int:
    from mediafm_core.storage.catalogue import retire_title
    from mediafm_core.storage.layout import default_root

    out = retire_title(args.root or default_root(), args.title, reason=args.reason)
    rows = ", ".join(f"{n} from {t}" for t, n in out["rows"].items())
    state = "was already retired; " if out["already_retired"] else ""
    print(
        f"retired {args.title}: {state}rows removed {rows}; "
        f"artefacts moved: {', '.join(out['artefacts']) or 'none'}"
    )
    return 0
