"""Progress of long work (encode, pretrain, embed, synth-media, the demo): a tqdm bar when stderr
is a terminal, otherwise a plain `logging` line at most every LOG_EVERY_S seconds plus one at the
end, so logs captured by Dagster or written to files never fill up line by line (issue 13).

`MEDIAFM_PROGRESS=0` turns the bars off everywhere (the log lines stay).
"""

from __future__ import annotations

import logging
import os
import sys
import time

log = logging.getLogger("mediafm_core.progress")

LOG_EVERY_S = 10.0  # seconds between plain progress lines when stderr is not a terminal


def bars_enabled() -> bool:
    """True when a tqdm bar would reach a person: stderr is a terminal and bars are not off."""
    return os.environ.get("MEDIAFM_PROGRESS", "1") != "0" and sys.stderr.isatty()


class ProgressBar:
    """`update(n)` / `close()`; a tqdm bar on a terminal, else throttled log lines."""

    def __init__(self, label: str, total: int | None, unit: str = "it"):
        self.label, self.total, self.unit = label, total, unit
        self.done, self._last, self._closed = 0, time.monotonic(), False
        self._bar = None
        if bars_enabled() and total != 0:  # total 0: a silent bar (e.g. torchrun ranks > 0)
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=label, unit=unit, leave=False, dynamic_ncols=True)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            return
        now = time.monotonic()
        if self.total != 0 and now - self._last >= LOG_EVERY_S:
            self._last = now
            log.info("%s: %s", self.label, self._count())

    def set(self, done: int, total: int | None = None) -> None:
        """Move to an absolute position (for callbacks that report (done, total))."""
        if total is not None and total != self.total:
            self.total = total
            if self._bar is not None:
                self._bar.total = total
        self.update(done - self.done)

    def _count(self) -> str:
        return f"{self.done}/{self.total} {self.unit}" if self.total else f"{self.done} {self.unit}"

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.total == 0:
            return
        if self._bar is not None:
            self._bar.close()
        elif self.total is None or self.done >= self.total:
            log.info("%s: done, %s", self.label, self._count())
        else:  # closed early: the work failed or stopped
            log.info("%s: stopped at %s", self.label, self._count())

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress_bar(label: str, total: int | None, unit: str = "it") -> ProgressBar:
    """A ProgressBar over `total` units of work named `label`."""
    return ProgressBar(label, total, unit)


def progress_callback(label: str, unit: str = "it"):
    """A `(done, total)` callback (the shape `embed_titles` and `run_probe` take) backed by a
    ProgressBar; the bar closes when done reaches total."""
    state: dict[str, ProgressBar] = {}

    def report(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = ProgressBar(label, total, unit)
        bar.set(done, total)
        if done >= total:
            bar.close()
            state.pop("bar")

    return report
