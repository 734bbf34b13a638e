"""Run a command, pass its stderr through, and keep its last lines for the failure message.

`python -m mediafm_assets.pretraining.stderr_tail TAIL_FILE -- COMMAND...` is how
`encoder_checkpoint` launches the trainer through Pipes: the trainer's stderr still reaches the
step's logs line by line, and when it fails (an out-of-memory traceback, a torchrun error, a
crash) its last `TAIL_LINES` lines are in TAIL_FILE, which the asset puts into the step's
failure message; Pipes alone says only "External execution process failed with code 1"
(issue 12). Exits with the command's exit code; stdout and the environment pass through.
SIGINT and SIGTERM sent to this wrapper (Dagster's Pipes client sends SIGINT when a run is
cancelled) are forwarded to the command, so a cancelled run stops the trainer too.
"""

from __future__ import annotations

import collections
import signal
import subprocess
import sys

TAIL_LINES = 20  # stderr lines kept for the failure message
FORWARDED = (signal.SIGINT, signal.SIGTERM)  # passed on to the command


def run(tail_file: str, command: list[str]) -> int:
    """Run `command`, forward its stderr and SIGINT/SIGTERM, write its last TAIL_LINES stderr
    lines to `tail_file`; returns its exit code."""
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True, errors="replace") as proc:
        previous = {s: signal.signal(s, lambda sig, _: proc.send_signal(sig)) for s in FORWARDED}
        try:
            for line in proc.stderr:
                sys.stderr.write(line)
                sys.stderr.flush()
                tail.append(line.rstrip("\n"))
            proc.wait()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
    with open(tail_file, "w") as f:
        f.write("\n".join(tail))
    return proc.returncode


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 3 or argv[1] != "--":
        sys.stderr.write("usage: stderr_tail TAIL_FILE -- COMMAND...\n")
        return 2
    return run(argv[0], argv[2:])


if __name__ == "__main__":
    sys.exit(main())
