"""The trainer wrapper (mediafm_assets/pretraining/stderr_tail.py): a cancelled run stops the
trainer. Dagster's Pipes client sends SIGINT to the process it launched, which is the wrapper;
without forwarding, the trainer (holding the GPU) outlived the cancelled run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

TRAINER = (
    "import os, sys, time\n"
    "sys.stderr.write(f'pid {os.getpid()}\\n'); sys.stderr.flush()\n"
    "time.sleep(60)\n"
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sigint_to_the_wrapper_stops_the_trainer(tmp_path):
    tail = tmp_path / "tail.txt"
    wrapper = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mediafm_assets.pretraining.stderr_tail",
            str(tail),
            "--",
            sys.executable,
            "-c",
            TRAINER,
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    child = None
    try:
        line = wrapper.stderr.readline()  # forwarded by the wrapper: its handlers are in place
        assert line.startswith("pid "), line
        child = int(line.split()[1])
        assert _alive(child)
        wrapper.send_signal(signal.SIGINT)  # what PipesSubprocessClient does on cancellation
        rc = wrapper.wait(timeout=20)
        deadline = time.monotonic() + 5
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child), "the trainer outlived its cancelled wrapper"
        assert rc != 0
        assert "KeyboardInterrupt" in tail.read_text()  # the trainer's own last stderr lines
    finally:
        if child is not None and _alive(child):
            os.kill(child, signal.SIGKILL)
        wrapper.kill()
        wrapper.wait()
