"""Run a command, pass its stderr through, and keep its last lines for the failure message.

`python -m mediafm_assets.pretraining.stderr_tail TAIL_FILE -- COMMAND...` is how
`encoder_checkpoint` launches the trainer through Pipes: the trainer's stderr still reaches the
step's logs line by line, and when it fails (an out-of-memory traceback, a torchrun error, a
crash) its last `TAIL_LINES` lines are in TAIL_FILE, which the asset puts into the step's
failure message; Pipes alone says only "External execution process failed with code 1"
(issue 12). Exits with the command's exit code; stdout and the environment pass through.
"""

from __future__ import annotations

import collections
import subprocess
import sys

TAIL_LINES = 20  # stderr lines kept for the failure message


def run(tail_file: str, command: list[str]) -> int:
    """Run `command`, forward its stderr, write its last TAIL_LINES lines to `tail_file`."""
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True, errors="replace") as proc:
        for line in proc.stderr:
            sys.stderr.write(line)
            sys.stderr.flush()
            tail.append(line.rstrip("\n"))
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
