"""Dagster at catalogue size (issue 17 part 4): the arrival sensor, the automation evaluation and
the UI's asset page with N titles, and Dagster's overhead per title against the CLI.

Every figure comes from a real SQLite instance in a temp DAGSTER_HOME (the repo's dagster.yaml):
1. Arrival sensor: N synthetic landing folders (`metadata.json` + a 1-byte `video.mp4`; the
   sensor only lists names, sizes and mtimes). Ticks through `build_sensor_context` +
   `evaluate_tick`, then its partition requests are committed as the daemon commits them
   (`add_dynamic_partitions`). First tick: nothing known (it requests MAX_TITLES_PER_TICK runs).
   Steady tick: all N titles are partitions and the cursor has seen them; then one new title.
   Cursor bytes: the cursor string the tick returns (Dagster stores it with every tick).
2. Automation: N `titles` partitions, a materialisation of every partition of every upstream of
   `contextual_embeddings` / `title_embeddings` and of those two (bulk-written into the event
   log in one transaction, as `store_event` writes each), one evaluation (the previous tick),
   then a new `encoder_checkpoint` materialisation: one `evaluate_automation_conditions` of the
   re-embed sensor's selection with every partition stale (Dagster's test entry point, which
   queries the instance's partition keys uncached while it writes the cursor), and the same
   evaluation as the sensor daemon runs it (`AutomationTickEvaluationContext`: cached queries,
   the backfill or run requests built, evaluations serialised).
3. UI: `dagster-webserver` on 127.0.0.1 over that instance; headless Chromium (a fresh profile,
   DevTools protocol) opens `contextual_embeddings`' partitions page: seconds until the
   partition count and a partition key have rendered.
4. Overhead per title (`--overhead`): 8 synthetic 6 s titles, the ingest chain (titles ->
   shots -> video/audio/text -> fused_shots) with the `test-tiny` encoder profile, as one
   Dagster run of the 8 partitions (in a fresh process, as a launched run) against `mediafm
   shots` + `mediafm encode` per title; seconds per title of each.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 .venv/bin/python bench/dagster_scale.py \
        --titles 1000 10000 50000 [--skip ui automation] [--overhead]

`dagster_rows(n_titles)` returns the rows for bench/catalogue_scale.py
(`from dagster_scale import dagster_rows` when run from bench/).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PARTS = ("sensor", "automation", "ui")
# Upstreams of the eager assets and the eager assets themselves: what must be materialised so
# that the new checkpoint is the only reason a partition is stale.
MATERIALISED = (
    "titles",
    "shots",
    "video_embeddings",
    "fused_shots",
    "title_metadata_embedding",
    "contextual_embeddings",
    "title_embeddings",
)
ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "HF_HUB_OFFLINE": "1",
    "PYTHONPATH": str(REPO),
}


def title_ids(n: int, start: int = 0) -> list[str]:
    return [f"cat_{i:06d}" for i in range(start, start + n)]


def land_placeholders(landing: Path, ids: list[str]) -> None:
    """A ready landing folder per title: a 1-byte video and metadata.json (the ready marker)."""
    for tid in ids:
        d = landing / tid
        d.mkdir(parents=True, exist_ok=True)
        (d / "video.mp4").write_bytes(b"v")
        (d / "metadata.json").write_text('{"name": "t"}')


@contextlib.contextmanager
def fresh_instance(work: Path):
    """A persistent SQLite instance in work/dagster_home (the repo's dagster.yaml)."""
    from dagster import DagsterInstance

    home = work / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    old = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        with DagsterInstance.get() as instance:
            yield instance
    finally:
        os.environ.pop("DAGSTER_HOME") if old is None else os.environ.update(DAGSTER_HOME=old)


def timed_tick(defs, instance, cursor: str | None) -> tuple[float, object]:
    """Seconds of one arrival-sensor tick (evaluation + committing its partition requests)."""
    from dagster import build_sensor_context, partition_loading_context

    sensor = defs.get_sensor_def("title_arrival_sensor")
    t0 = time.perf_counter()
    ctx = build_sensor_context(
        instance=instance,
        instance_ref=instance.get_ref(),
        cursor=cursor,
        definitions=defs,
        resources=defs.resources,
    )
    with partition_loading_context(dynamic_partitions_store=instance):
        data = sensor.evaluate_tick(ctx)
    for req in data.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
    return time.perf_counter() - t0, data


def sensor_row(n: int, work: Path) -> dict:
    from mediafm_assets.definitions import build_definitions

    root = work / "storage"
    ids = title_ids(n)
    land_placeholders(root / "landing", ids)
    defs = build_definitions(root=str(root))
    with fresh_instance(work) as instance:
        first_s, first = timed_tick(defs, instance, None)
        # Steady state: every title a partition and fingerprinted (the cursor after the burst
        # drained: a tick over known partitions adopts them all).
        instance.add_dynamic_partitions("titles", ids)
        _, adopted = timed_tick(defs, instance, first.cursor)
        steady_s, steady = timed_tick(defs, instance, adopted.cursor)
        land_placeholders(root / "landing", title_ids(1, start=n))
        one_s, one = timed_tick(defs, instance, steady.cursor)
    assert not steady.run_requests and len(one.run_requests) == 1, "sensor misbehaved"
    return {
        "sensor_first_tick_s": first_s,
        "sensor_first_runs": len(first.run_requests),
        "sensor_steady_tick_s": steady_s,
        "sensor_one_new_tick_s": one_s,
        "cursor_bytes": len((steady.cursor or "").encode()),
    }


def bulk_materialise(instance, assets: tuple[str, ...], partitions: list[str]) -> None:
    """Runless materialisations of every (asset, partition), written as `store_event` writes
    each (event row, tags, asset-key row in the index shard) but in one transaction: 10 ms per
    event through `report_runless_asset_event` would take an hour at 50k titles."""
    from dagster import AssetKey, AssetMaterialization, DagsterEvent, DagsterEventType
    from dagster._core.events import StepMaterializationData
    from dagster._core.events.log import EventLogEntry
    from dagster._core.storage.sqlalchemy_compat import db_result

    storage = instance.event_log_storage
    now = time.time()
    with storage.index_transaction() as conn:
        for asset in assets:
            for key in partitions:
                event = EventLogEntry(
                    user_message="",
                    level=20,
                    job_name="",
                    run_id="",
                    error_info=None,
                    timestamp=now,
                    step_key=None,
                    dagster_event=DagsterEvent(
                        event_type_value=DagsterEventType.ASSET_MATERIALIZATION.value,
                        event_specific_data=StepMaterializationData(
                            AssetMaterialization(AssetKey(asset), partition=key)
                        ),
                        job_name="",
                    ),
                )
                with db_result(conn, storage.prepare_insert_event(event)) as result:
                    event_id = result.inserted_primary_key[0]
                storage._store_asset_event_tags(conn, [event], [event_id])
                storage._store_asset_event(conn, event, event_id)


def stale_partitions(result) -> int:
    from dagster import AssetKey

    return sum(
        r.true_subset.size for r in result.results if r.key == AssetKey("contextual_embeddings")
    )


def automation_row(n: int, work: Path, ui: bool) -> dict:
    from dagster import AssetKey, AssetMaterialization, evaluate_automation_conditions

    from mediafm_assets.definitions import build_definitions

    defs = build_definitions(root=str(work / "storage"))
    selection = defs.get_sensor_def("reembed_on_new_checkpoint").asset_selection
    ids = title_ids(n)
    row = {}
    with fresh_instance(work) as instance:
        instance.add_dynamic_partitions("titles", ids)
        instance.report_runless_asset_event(AssetMaterialization(AssetKey("encoder_checkpoint")))
        t0 = time.perf_counter()
        bulk_materialise(instance, MATERIALISED, ids)
        row["setup_events_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        quiet = evaluate_automation_conditions(
            defs=defs, instance=instance, asset_selection=selection
        )
        row["automation_quiet_s"] = time.perf_counter() - t0
        instance.report_runless_asset_event(AssetMaterialization(AssetKey("encoder_checkpoint")))
        t0 = time.perf_counter()
        stale = evaluate_automation_conditions(
            defs=defs, instance=instance, asset_selection=selection, cursor=quiet.cursor
        )
        row["automation_all_stale_s"] = time.perf_counter() - t0
        row["automation_stale"] = stale_partitions(stale)
        t0 = time.perf_counter()
        requests = daemon_evaluation(defs, instance, selection, quiet.cursor)
        row["automation_daemon_s"] = time.perf_counter() - t0
        row["automation_daemon_requests"] = requests
        if ui:
            row["ui_partitions_page_s"] = ui_seconds(n, ids, work)
    return row


def daemon_evaluation(defs, instance, selection, cursor) -> int:
    """One evaluation as the automation sensor's daemon runs it (`AutomationTickEvaluationContext`:
    cached instance queries, run requests or a backfill built, evaluations serialised); returns
    the number of requests (one backfill when the sensor emits backfills, its default)."""
    import logging

    from dagster._core.definitions.automation_tick_evaluation_context import (
        AutomationTickEvaluationContext,
    )

    sensor = defs.get_sensor_def("reembed_on_new_checkpoint")
    requests, _, _ = AutomationTickEvaluationContext(
        evaluation_id=cursor.evaluation_id + 1,
        instance=instance,
        asset_graph=defs.resolve_asset_graph(),
        cursor=cursor,
        materialize_run_tags={},
        observe_run_tags={},
        auto_observe_asset_keys=set(),
        asset_selection=selection,
        logger=logging.getLogger("dagster_scale"),
        emit_backfills=sensor.emit_backfills,
    ).evaluate()
    return len(requests)


def ui_seconds(n: int, ids: list[str], work: Path) -> float:
    """Seconds from navigating to contextual_embeddings' partitions page until it shows
    "Materialized (N)" and the first partition key (webserver up, code location loaded)."""
    if str(REPO) not in sys.path:  # run as a script from bench/ or imported by another bench
        sys.path.insert(0, str(REPO))
    from tests.e2e.browser import DevToolsPage
    from tests.e2e.servers import BIN, free_port, graphql, start, stop, wait_http

    port, log = free_port(), work / "webserver.log"
    env = {**ENV, "DAGSTER_HOME": os.environ["DAGSTER_HOME"], "MEDIAFM_ROOT": str(work / "storage")}
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
        wait_http(port, "/server_info", proc, log, timeout=180)
        graphql(port, "{ assetNodes { id } }", timeout=300)  # code location loaded
        shown = " || ".join(f"t.includes('Materialized ({c})')" for c in {f"{n}", f"{n:,}"})
        text = "(document.body ? document.body.innerText : '')"
        done = f"(t => ({shown}) && t.includes('{ids[0]}'))({text})"
        url = f"http://127.0.0.1:{port}/assets/contextual_embeddings?view=partitions"
        with DevToolsPage(work / "chromium-profile") as page:
            t0 = time.perf_counter()
            page.goto(url)
            page.wait_for(done, timeout=300)
            return time.perf_counter() - t0
    finally:
        stop(proc)


def overhead_row(work: Path, n_titles: int = 8) -> dict:
    """Seconds per title of the ingest chain: one Dagster run of n_titles partitions in a fresh
    process, against `mediafm shots` + `mediafm encode` (two processes) per title."""
    from mediafm_core.synthetic.media import SynthMediaConfig, write_synthetic_titles

    landing = work / "storage" / "landing"
    cfg = SynthMediaConfig(n_titles=n_titles, seconds=6.0, seed=3, speech="bursts")
    ids = [p.name for p in write_synthetic_titles(landing, cfg)]
    env = {**os.environ, **ENV, "MEDIAFM_ENCODER_PROFILE": "test-tiny"}
    cli = [str(Path(sys.executable).parent / "mediafm")]
    t0 = time.perf_counter()
    for tid in ids:
        out = work / "cli" / tid
        out.mkdir(parents=True)
        subprocess.run(
            [*cli, "shots", str(landing / tid), "--out", str(out / "shots.parquet")],
            env=env,
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                *cli,
                "encode",
                str(landing / tid),
                "--shots",
                str(out / "shots.parquet"),
                "--out",
                str(out),
                "--profile",
                "test-tiny",
            ],
            env=env,
            check=True,
            capture_output=True,
        )
    cli_s = time.perf_counter() - t0
    home = work / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, __file__, "--dagster-run", str(work / "storage"), *ids],
        env={**env, "DAGSTER_HOME": str(home)},
        check=True,
    )
    dagster_s = time.perf_counter() - t0
    return {
        "overhead_titles": n_titles,
        "dagster_s_per_title": dagster_s / n_titles,
        "cli_s_per_title": cli_s / n_titles,
    }


def dagster_run(root: str, ids: list[str]) -> None:
    """The ingest chain of `ids` as one run (child process of `overhead_row`)."""
    from dagster import DagsterInstance

    from mediafm_assets import local_runner as lr
    from mediafm_assets.definitions import build_definitions
    from mediafm_assets.jobs import INGEST_CHAIN

    defs = build_definitions(root=root)
    with DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("titles", ids)
        out = lr.materialize_titles(defs, instance, list(INGEST_CHAIN), ids, quiet=True)
    if not out.success:
        raise SystemExit(f"dagster run failed: {out.error}")


def dagster_rows(
    n_titles: int, parts: tuple[str, ...] = PARTS, overhead: bool = False, work: Path | None = None
) -> list[dict]:
    """One row of Dagster figures at `n_titles` titles (seconds, bytes): sensor_*, cursor_bytes,
    automation_*, ui_partitions_page_s, and with `overhead` the per-title Dagster/CLI seconds."""
    warnings.filterwarnings("ignore")
    base = Path(work or tempfile.mkdtemp(prefix=f"mediafm-dagster-{n_titles}-"))
    row: dict = {"titles": n_titles}
    try:
        if "sensor" in parts:
            row |= sensor_row(n_titles, base / "sensor")
        if "automation" in parts or "ui" in parts:
            row |= automation_row(n_titles, base / "automation", ui="ui" in parts)
        if overhead:
            row |= overhead_row(base / "overhead")
    finally:
        if work is None:
            shutil.rmtree(base, ignore_errors=True)
    return [row]


COLUMNS = [
    ("titles", "titles", "{:,}"),
    ("sensor_first_tick_s", "sensor 1st tick s", "{:.2f}"),
    ("sensor_first_runs", "1st tick runs", "{}"),
    ("sensor_steady_tick_s", "steady tick s", "{:.2f}"),
    ("sensor_one_new_tick_s", "+1 title tick s", "{:.2f}"),
    ("cursor_bytes", "cursor bytes", "{:,}"),
    ("setup_events_s", "setup: events written s", "{:.0f}"),
    ("automation_quiet_s", "automation quiet s", "{:.2f}"),
    ("automation_all_stale_s", "automation all stale s", "{:.2f}"),
    ("automation_stale", "stale partitions", "{:,}"),
    ("automation_daemon_s", "daemon evaluation s", "{:.2f}"),
    ("automation_daemon_requests", "daemon requests", "{}"),
    ("ui_partitions_page_s", "UI partitions page s", "{:.2f}"),
    ("dagster_s_per_title", "Dagster s/title (8)", "{:.2f}"),
    ("cli_s_per_title", "CLI s/title (8)", "{:.2f}"),
]


def markdown(rows: list[dict]) -> str:
    cols = [c for c in COLUMNS if any(c[0] in r for r in rows)]
    lines = ["| " + " | ".join(c[1] for c in cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append(
            "| " + " | ".join(f.format(r[k]) if k in r else "–" for k, _, f in cols) + " |"
        )
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:2] == ["--dagster-run"]:
        return dagster_run(sys.argv[2], sys.argv[3:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--titles", type=int, nargs="+", default=[1000, 10000, 50000])
    ap.add_argument("--skip", nargs="*", default=[], choices=PARTS, help="parts to leave out")
    ap.add_argument("--overhead", action="store_true", help="also Dagster vs CLI per title")
    args = ap.parse_args()
    parts = tuple(p for p in PARTS if p not in args.skip)
    rows = []
    for i, n in enumerate(args.titles):
        t0 = time.perf_counter()
        rows += dagster_rows(n, parts, overhead=args.overhead and i == 0)
        print(f"{n:,} titles measured in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    print(markdown(rows))


if __name__ == "__main__":
    main()
