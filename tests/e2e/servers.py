"""Start Dagster processes for tests from Python: `subprocess.Popen` with default signal handling
(a shell's background job inherits an ignored SIGINT and then ignores SIGTERM), stopped by PID."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    """Launch a Dagster CLI process in its own session, logging to `log`."""
    out = open(log, "wb")
    return subprocess.Popen(
        args,
        cwd=REPO,
        env={**os.environ, **env},
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        restore_signals=True,
    )


def stop(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """SIGTERM the process group by PID; SIGKILL if it does not exit in time."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def graphql(port: int, query: str, timeout: float = 30.0) -> dict:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def wait_http(port: int, path: str, proc: subprocess.Popen, log: Path, timeout: float) -> str:
    """Poll until the server answers `path`; fail with its log if it dies or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                return r.read().decode()
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"no answer on port {port} in {timeout} s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def dagster_webserver(tmp_path: Path, nux_seen: bool = False):
    """dagster-webserver on a free loopback port over a temp DAGSTER_HOME (the repo's
    dagster.yaml) and workspace.yaml; yields (port, proc, log) once /server_info answers.
    `nux_seen` marks the first-visit "Join the Dagster community" dialog as seen."""
    from tests.conftest import make_dagster_home

    home = make_dagster_home(tmp_path)
    if nux_seen:
        (home / ".nux").mkdir()
        (home / ".nux" / "nux.yaml").write_text("seen: 1\n")
    port = free_port()
    log = tmp_path / "webserver.log"
    env = {"DAGSTER_HOME": str(home), "MEDIAFM_ROOT": str(tmp_path / "storage")}
    proc = start(
        [
            str(BIN / "dagster-webserver"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-w",
            str(REPO / "workspace.yaml"),
        ],
        env,
        log,
    )
    try:
        wait_http(port, "/server_info", proc, log, timeout=120)
        yield port, proc, log
    finally:
        stop(proc)
