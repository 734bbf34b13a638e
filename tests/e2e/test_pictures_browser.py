"""Pictures render in a real browser (issue 13). A real instance materialises the graph on tiny
synthetic titles; `dagster-webserver` serves it; Debian's headless Chromium, driven over the
DevTools protocol, opens the asset pages of `shots`, `encoder_checkpoint`, `linear_probes` and
`contextual_embeddings`, opens each picture's "[Show Markdown]" dialog (Dagster 1.13 shows
Markdown metadata longer than 1000 characters behind that button) and checks that the image has
decoded (naturalWidth > 0). Then it opens the `mediafm similar --html` page and checks that every
result has its picture. Screenshots land in the test's tmp folder (paths printed)."""

import os
import time
import warnings

import pytest

from tests.e2e.browser import CHROMIUM, DATA_IMAGES_JS, DevToolsPage
from tests.e2e.servers import BIN, REPO, free_port, start, stop, wait_http

warnings.filterwarnings("ignore")
TINY_TRAIN = {
    "ops": {
        "encoder_checkpoint": {
            "config": {
                "size": "tiny",
                "steps": 10,
                "eval_every": 5,
                "log_every": 5,
                "device": "cpu",
                "publish_below_baselines": True,
            }
        }
    }
}

# JavaScript: click the "[Show Markdown]" button in the metadata row named %r; true once clicked.
CLICK_ROW_JS = """(() => {
  const key = %r;
  for (const b of document.querySelectorAll('button, a, span, div')) {
    if (b.children.length || b.textContent.trim() !== '[Show Markdown]') continue;
    const row = b.closest('tr');
    if (row && row.textContent.includes(key)) { b.click(); return true; }
  }
  return false;
})()"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A materialised instance (3 titles) behind dagster-webserver; yields (base URL, root)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (see .ci/run)")
    from dagster import DagsterInstance

    from mediafm_assets import local_runner as lr
    from mediafm_assets.definitions import build_definitions
    from tests.assets.conftest import write_tiny_titles
    from tests.conftest import make_dagster_home

    base = tmp_path_factory.mktemp("pictures")
    home = make_dagster_home(base)
    (home / ".nux").mkdir()
    (home / ".nux" / "nux.yaml").write_text("seen: 1\n")
    root = base / "storage"
    old = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        good = write_tiny_titles(root / "landing", 3, seconds=6.0)
        defs = build_definitions(root=str(root))
        with DagsterInstance.get() as instance:
            tick = lr.tick_sensor(defs, instance)
            outs = [lr.execute_request(defs, instance, r, quiet=True) for r in tick.run_requests]
            outs.append(
                lr.materialize_unpartitioned(
                    defs, instance, "encoder_checkpoint", TINY_TRAIN, quiet=True
                )
            )
            outs.append(
                lr.materialize_titles(
                    defs, instance, ["contextual_embeddings", "title_embeddings"], good, quiet=True
                )
            )
            outs.append(lr.materialize_unpartitioned(defs, instance, "linear_probes", quiet=True))
        assert all(o.success for o in outs), [o.error for o in outs if not o.success]
    finally:
        if old is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = old
    port, log = free_port(), base / "webserver.log"
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
        {"DAGSTER_HOME": str(home), "MEDIAFM_ROOT": str(root)},
        log,
    )
    try:
        wait_http(port, "/server_info", proc, log, timeout=120)
        yield f"http://127.0.0.1:{port}", root, good
    finally:
        stop(proc)


PAGES = [  # (asset page, metadata key, alt text of the picture)
    ("/assets/shots?view=events", "contact_sheet", "contact sheet"),
    ("/assets/encoder_checkpoint", "loss_curve_plot", "MSM loss curve"),
    ("/assets/linear_probes", "ablation_chart", "probe scores per task"),
    ("/assets/contextual_embeddings", "shot_map", "PCA of contextual vectors"),
]


def test_asset_pages_render_their_pictures(served, tmp_path):
    base, _, _ = served
    with DevToolsPage(tmp_path / "profile") as page:
        for i, (path, key, alt) in enumerate(PAGES):
            page.goto(base + path)
            page.wait_for(CLICK_ROW_JS % key)  # the code location may still be loading
            drawn = page.wait_for(
                f"(() => {{ const d = {DATA_IMAGES_JS}; "
                "return d.length && d.every(x => x[1] > 0) ? d : null })()"
            )
            png = page.screenshot(tmp_path / f"{i}_{key}.png")
            print(f"{path}: {drawn} -> {png}")
            assert len(drawn) == 1 and alt in drawn[0][0], drawn
            assert drawn[0][1] > 100 and drawn[0][2] > 50  # decoded, a real picture
            if key == "ablation_chart":  # beside the chart: the table and the paired differences
                text = page.js("document.body.innerText")
                assert "minus fused, paired over folds" in text and "contextual" in text


def test_similar_html_page_shows_every_result_with_its_picture(served, tmp_path):
    from mediafm_core.cli import main

    _, root, good = served
    out = tmp_path / "similar.html"
    assert (
        main(["similar", "--root", str(root), "--title", good[0], "-k", "4", "--html", str(out)])
        == 0
    )
    with DevToolsPage(tmp_path / "profile") as page:
        page.goto(out.as_uri())
        page.wait_for("document.readyState === 'complete'")
        time.sleep(0.5)
        results = page.js(
            "[...document.querySelectorAll('.result')].map(r => "
            "[...r.querySelectorAll('img')].map(i => i.naturalWidth))"
        )
        query = page.js(
            "[...document.querySelectorAll('.row:not(.result) img')].map(i => i.naturalWidth)"
        )
        png = page.screenshot(tmp_path / "similar.png")
        print(f"{out}: query {query}, results {results} -> {png}")
    assert len(results) == 4 and all(len(r) == 1 and r[0] > 0 for r in results)
    assert query and all(w > 0 for w in query)
