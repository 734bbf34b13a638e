"""The asset graph page renders in a real browser: Debian's headless Chromium opens the Dagster UI
served by `dagster-webserver` on loopback, and the lineage graph it draws holds the same assets,
groups, kinds and edges that the webserver's GraphQL API reports for our code location."""

import re
import time

import pytest

from tests.e2e.browser import CHROMIUM, LineageGraph, dump_dom, screenshot
from tests.e2e.servers import dagster_webserver, graphql

ASSETS_QUERY = (
    "{ assetNodes { assetKey { path } groupName kinds isPartitioned dependencyKeys { path } } }"
)
GROUP = "serving"  # the group page drawn in full: contextual_embeddings and title_embeddings


def asset_graph(port: int) -> tuple[dict[str, dict], set[tuple[str, str]]]:
    """{asset: node} and the (upstream, downstream) edges, as the GraphQL API reports them."""
    nodes = {
        n["assetKey"]["path"][-1]: n for n in graphql(port, ASSETS_QUERY)["data"]["assetNodes"]
    }
    edges = {(d["path"][-1], a) for a, n in nodes.items() for d in n["dependencyKeys"]}
    return nodes, edges


def render_until(url: str, tmp_path, expected: set[str], timeout: float = 45.0):
    """Render `url` until the graph shows every name in `expected` (the code location may still
    be loading on the first try); returns (graph, DOM) or fails with what was drawn."""
    deadline, tries, graph = time.monotonic() + timeout, 0, None
    while time.monotonic() < deadline:
        tries += 1
        html = dump_dom(url, tmp_path / f"profile-{tries}")
        graph = LineageGraph(html)
        if expected <= set(graph.by_name()):
            return graph, html
        time.sleep(1)
    drawn = sorted(graph.by_name()) if graph else []
    raise AssertionError(f"{url}: after {tries} renders the graph shows {drawn}, not {expected}")


@pytest.fixture(scope="module")
def webserver(tmp_path_factory):
    """dagster-webserver on a free loopback port over a temp DAGSTER_HOME; yields its base URL
    and port. The first-visit "Join the Dagster community" dialog is marked seen so that it does
    not cover the graph in screenshots."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (see .ci/run)")
    with dagster_webserver(tmp_path_factory.mktemp("webserver"), nux_seen=True) as (port, _, _):
        yield f"http://127.0.0.1:{port}", port


def test_asset_group_page_draws_our_assets_with_their_lineage(webserver, tmp_path):
    base, port = webserver
    nodes, edges = asset_graph(port)
    members = {a for a, n in nodes.items() if n["groupName"] == GROUP}
    touching = {e for e in edges if e[0] in members or e[1] in members}
    neighbours = {a for e in touching for a in e} - members
    assert {"contextual_embeddings", "title_embeddings"} <= members
    assert {"fused_shots", "encoder_checkpoint", "linear_probes"} <= neighbours

    url = f"{base}/locations/mediafm/asset-groups/{GROUP}"
    graph, html = render_until(url, tmp_path, members | neighbours)
    assert "Join the Dagster community" not in html  # the first-visit dialog stays closed
    drawn = graph.by_name()
    assert set(drawn) == members | neighbours  # the group, plus one stub per outside neighbour
    assert graph.edges == len(touching)  # one arrow per dependency into or out of the group
    for asset in members:  # members are drawn in full: checks, partitions and kind tags
        text = drawn[asset].text
        assert text[0].startswith(asset[:6]) and "Asset checks" in text, text
        if nodes[asset]["isPartitioned"]:  # per title; `ann_index` is one table-wide asset
            assert "Partitions" in text and "0 partitions" in text, text
        assert {k.lower() for k in nodes[asset]["kinds"]} <= {t.lower() for t in text}, text
    for asset in neighbours:  # outside neighbours are name-only stubs
        assert drawn[asset].text == [asset]

    png = screenshot(url, tmp_path / "asset_group.png", tmp_path / "profile-shot")
    from PIL import Image

    with Image.open(png) as img:
        assert img.size == (1920, 1080)
        assert len(img.convert("RGB").getcolors(1 << 20)) > 50  # a drawn page, not a blank one
    print(f"screenshot of {url}: {png}")


def test_global_lineage_page_draws_every_group_with_its_asset_count(webserver, tmp_path):
    base, port = webserver
    nodes, _ = asset_graph(port)
    groups: dict[str, int] = {}
    for n in nodes.values():
        groups[n["groupName"]] = groups.get(n["groupName"], 0) + 1
    assert set(groups) == {"ingest", "embeddings", "pretraining", "serving", "evaluation"}

    graph, _ = render_until(f"{base}/asset-groups", tmp_path, set(groups))
    drawn = graph.by_name()
    assert set(drawn) == set(groups)
    for group, count in groups.items():  # collapsed group nodes: name and number of assets
        # (a group with an unpartitioned asset may split its count by status, e.g. ["2", "1"];
        # while the statuses load it reads "1 asset (fetching statuses)")
        text = drawn[group].text
        counts = [re.match(r"(\d+)\b", t) for t in text[1:]]
        assert text[0] == group and all(counts), text
        assert sum(int(m.group(1)) for m in counts) == count, text
    assert graph.edges >= len(groups) - 1  # the groups are joined into one lineage
