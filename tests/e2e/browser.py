"""Debian's headless Chromium for UI tests: render a page to its final DOM or to a PNG, and read the
nodes and edges of a Dagster lineage graph out of that DOM.

The Dagster UI is a React app, so a plain HTTP GET returns an empty shell; `--dump-dom` with a
virtual-time budget lets the app fetch its GraphQL data and lay out the graph before the DOM is
printed (virtual time stands still while network fetches are pending)."""

import subprocess
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")

# Flags for a closed network, as root, without a screen: no sandbox (root), no GPU, and no
# background connections to Google's hosts (refused here, and they slow every start).
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1920,1080",  # wide enough that Dagster draws full asset nodes, not minimal ones
    "--virtual-time-budget=15000",  # ms of page time for the React app to fetch and lay out
]


def _chromium(args: list[str], profile: Path, timeout: float) -> subprocess.CompletedProcess:
    """Run one headless Chromium with a fresh, empty profile folder."""
    profile.mkdir(parents=True, exist_ok=False)
    cmd = [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args]
    proc = subprocess.run(cmd, capture_output=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"chromium exited {proc.returncode}:\n{proc.stderr.decode()[-2000:]}")
    return proc


def dump_dom(url: str, profile: Path, timeout: float = 60.0) -> str:
    """The DOM after the page's scripts ran (what the user sees, as HTML)."""
    return _chromium(["--dump-dom", url], profile, timeout).stdout.decode()


def screenshot(url: str, png: Path, profile: Path, timeout: float = 60.0) -> Path:
    """A 1920x1080 PNG of the rendered page."""
    _chromium([f"--screenshot={png}", url], profile, timeout)
    return png


@dataclass
class GraphNode:
    """One node drawn in the lineage graph: its visible text and the links inside it."""

    text: list[str] = field(default_factory=list)  # visible strings, in document order
    tooltip: str = ""  # full name of a node whose label may be truncated on screen

    @property
    def name(self) -> str:
        return self.tooltip or (self.text[0] if self.text else "")


class LineageGraph(HTMLParser):
    """Nodes and edges of the Dagster lineage SVG: each node is an SVG <foreignObject>, each
    edge a <path> with an arrow marker."""

    def __init__(self, html: str):
        super().__init__()
        self.nodes: list[GraphNode] = []
        self.edges = 0
        self._depth = 0  # >0 while inside a <foreignObject>
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "foreignobject":
            self._depth += 1
            if self._depth == 1:
                self.nodes.append(GraphNode())
        elif tag == "path" and (attrs.get("marker-end") or "").startswith("url(#arrow"):
            self.edges += 1
        elif self._depth and attrs.get("data-tooltip") and not self.nodes[-1].tooltip:
            self.nodes[-1].tooltip = attrs["data-tooltip"]

    def handle_endtag(self, tag):
        if tag == "foreignobject":
            self._depth -= 1

    def handle_data(self, data):
        if self._depth and data.strip():
            self.nodes[-1].text.append(data.strip())

    def by_name(self) -> dict[str, GraphNode]:
        return {n.name: n for n in self.nodes}


class DevToolsPage:
    """One headless Chromium tab driven over the DevTools protocol (websocket-client): navigate,
    run JavaScript (clicks, checks on images), and take screenshots. Used where a test must act
    on the page, e.g. open Dagster's "[Show Markdown]" dialog, which `--dump-dom` cannot."""

    def __init__(self, profile: Path, width: int = 1600, height: int = 1000):
        import json
        import time
        import urllib.request

        import websocket

        profile.mkdir(parents=True, exist_ok=False)
        flags = [f for f in FLAGS if not f.startswith(("--virtual-time-budget", "--window-size"))]
        self.proc = subprocess.Popen(
            [
                str(CHROMIUM),
                *flags,
                f"--window-size={width},{height}",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file, deadline = profile / "DevToolsActivePort", time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise AssertionError("chromium did not open its DevTools port")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            tab = next(t for t in json.loads(r.read()) if t["type"] == "page")
        self.ws = websocket.create_connection(
            tab["webSocketDebuggerUrl"], timeout=60, suppress_origin=True
        )
        self._id = 0

    def call(self, method: str, **params) -> dict:
        import json

        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def js(self, expression: str):
        """The value of a JavaScript expression (awaited when it is a promise)."""
        res = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in res:
            raise AssertionError(f"{expression[:80]}: {res['exceptionDetails']}")
        return res["result"].get("value")

    def goto(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def wait_for(self, expression: str, timeout: float = 45.0):
        """Poll a JavaScript expression until it is truthy; returns its value."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = self.js(expression)
            except AssertionError:
                value = None
            if value:
                return value
            time.sleep(0.5)
        raise AssertionError(f"not true after {timeout} s: {expression}")

    def screenshot(self, png: Path) -> Path:
        import base64

        png.write_bytes(base64.b64decode(self.call("Page.captureScreenshot")["data"]))
        return png

    def close(self) -> None:
        if getattr(self, "ws", None) is not None:
            self.ws.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self) -> "DevToolsPage":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# JavaScript: every image on the page drawn from a data URL, as [alt, naturalWidth, naturalHeight].
DATA_IMAGES_JS = (
    "[...document.querySelectorAll('img')].filter(i => i.src.startsWith('data:'))"
    ".map(i => [i.alt, i.naturalWidth, i.naturalHeight])"
)
