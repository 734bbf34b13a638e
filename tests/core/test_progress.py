"""Progress of long commands (issue 13): a tqdm bar when stderr is a terminal, plain log lines at
most every LOG_EVERY_S seconds otherwise (never one line per item)."""

import fcntl
import logging
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

from mediafm_core import progress

REPO = Path(__file__).resolve().parents[2]
SYNTH = [
    "-m",
    "mediafm_core",
    "synth-media",
    "--titles",
    "3",
    "--seconds",
    "2",
    "--size",
    "64x36",
    "--fps",
    "10",
    "--speech",
    "bursts",
]


def run_cli(args: list[str], stderr_tty: bool) -> str:
    """Run `python -m mediafm_core ...`; returns what it wrote to stderr (a pty or a pipe)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if not stderr_tty:
        proc = subprocess.run([sys.executable, *args], capture_output=True, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr.decode()[-2000:]
        return proc.stderr.decode()
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # 120 columns
    proc = subprocess.Popen(
        [sys.executable, *args], stdout=subprocess.DEVNULL, stderr=child, env=env
    )
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(120) == 0
    os.close(main)
    return b"".join(chunks).decode(errors="replace")


def test_synth_media_logs_plain_lines_when_stderr_is_not_a_terminal(tmp_path):
    err = run_cli([*SYNTH, str(tmp_path / "landing")], stderr_tty=False)
    assert "\r" not in err and "it/s" not in err and "%|" not in err  # no bar
    lines = [x for x in err.splitlines() if "mediafm_core.progress" in x]
    assert lines and lines[-1].endswith("synth-media: done, 3/3 title")
    assert len(lines) <= 2  # a 3-title run is far shorter than LOG_EVERY_S: no line per title
    assert len(list((tmp_path / "landing").glob("synth_*"))) == 3


def test_synth_media_draws_a_tqdm_bar_on_a_terminal(tmp_path):
    err = run_cli([*SYNTH, str(tmp_path / "landing")], stderr_tty=True)
    assert "synth-media:" in err and "%|" in err and "/3 [" in err  # a tqdm bar over 3 titles
    assert "\r" in err  # redrawn in place
    assert "mediafm_core.progress" not in err  # the bar replaces the log lines


def test_progress_bar_logs_at_most_every_interval(caplog, monkeypatch):
    monkeypatch.setattr(progress, "LOG_EVERY_S", 3600.0)
    with caplog.at_level(logging.INFO, logger="mediafm_core.progress"):
        with progress.progress_bar("encode x", 1000, unit="shot") as bar:
            for _ in range(1000):
                bar.update()
    assert [r.getMessage() for r in caplog.records] == ["encode x: done, 1000/1000 shot"]


def test_progress_callback_follows_done_and_total(caplog, monkeypatch):
    monkeypatch.setattr(progress, "LOG_EVERY_S", 0.0)  # every update logs
    report = progress.progress_callback("embed", unit="batch")
    with caplog.at_level(logging.INFO, logger="mediafm_core.progress"):
        for done in (2, 4, 5):
            report(done, 5)
    msgs = [r.getMessage() for r in caplog.records]
    assert msgs == [
        "embed: 2/5 batch",
        "embed: 4/5 batch",
        "embed: 5/5 batch",
        "embed: done, 5/5 batch",
    ]
