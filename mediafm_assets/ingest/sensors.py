"""Landing-zone sensors: arrivals (new or changed titles) and retirements (vanished titles).

`title_arrival_sensor`: a newly landed or changed title becomes ONE cold-start run.
1. A title is identified by its id and fingerprinted by what landed (`landing.scan_landing`: its
   files' names, sizes and modification times). What the sensor has seen, `{id: (fingerprint,
   n)}` (n = runs requested so far), is a snapshot on the storage root
   (storage/fingerprints.py); the cursor holds only its token, so it stays ~100 bytes whatever
   the catalogue's size (issue 17: Dagster stores the cursor with every tick). A ready title gets
   a run when it is not a `titles` partition (new, or its partition was deleted) or its
   fingerprint changed (re-landed video, a copy that finished after metadata.json); an untouched
   folder gets none.
2. Its run key is `cold-start:<id>:<n>:<fingerprint>`: a retried tick (same cursor) repeats the
   key and the daemon launches nothing twice; a changed title or a re-added partition gets a new
   key, so Dagster never skips it as "already completed" (issue 12). The re-run replaces the
   title's artefacts and LanceDB rows (one commit per table, `LanceStore.replace_titles`).
3. New partitions and run requests go out in one `SensorResult`, committed with the cursor (a
   tick that never committed leaves the cursor naming the old snapshot: the retry repeats the
   same run keys); at most `MAX_TITLES_PER_TICK` runs per tick, a larger burst drains over the
   next ticks (sorted order).
4. A known partition without a recorded fingerprint (added by hand, or its snapshot is gone) is
   adopted without a run. A retired title (storage/catalogue.py) is ignored until it lands again
   with another fingerprint.
Titles whose `metadata.json` ready marker is missing (half-copied folders) are not touched.

`title_retirement_sensor` requests a `retirement` run (ingest/retirement.py) and does no
storage work itself, so a preview of the sensor changes nothing (issue 18). It asks to retire a
`titles` partition whose landing folder has been gone for `StorageResource.retire_after_s`
seconds (never while the landing zone itself is missing: an unmounted volume is not an emptied
catalogue), a title retired by hand (`mediafm retire`) whose partition is still here, and, for
`SWEEP_S` after a retirement, a title that a run in flight at retirement wrote rows or artefacts
for since (`catalogue.leftovers`). The run retires each title (rows leave both LanceDB tables,
Parquet artefacts move to retired/) and deletes its partition. The cursor keeps
`missing_since: {id: epoch s}` and `requested: {id: epoch s}` (no second run for a title within
RETRY_S while its run is under way).
"""

from __future__ import annotations

import json
import time

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from mediafm_assets.ingest.retirement import retire_titles_job
from mediafm_assets.jobs import COLD_START_TAGS, cold_start_selection, cold_start_targets
from mediafm_assets.partitions import titles_partitions
from mediafm_assets.resources import StorageResource
from mediafm_core.storage import fingerprints
from mediafm_core.storage.landing import landing_exists, scan_landing

MAX_TITLES_PER_TICK = 1000  # run requests per tick; a larger burst takes more ticks
SEEN_STATE = "title_arrival"  # <root>/sensors/title_arrival/<token>.parquet: what it has seen
SWEEP_S = 3600.0  # retired this recently: swept again when something wrote it again since
RETRY_S = 600.0  # a title whose retirement run was requested this recently is not requested again


def titles_to_run(seen: dict, known: set, landed: dict, retired: dict, settle_s: float) -> list:
    """(title_id, fingerprint, n) of every ready title that needs a run, sorted, at most
    MAX_TITLES_PER_TICK; adopts known partitions without a cursor entry into `seen` in place."""
    now, out = time.time(), []
    for tid in sorted(landed):
        t = landed[tid]
        if not t.ready or now - t.newest < settle_s:
            continue
        if tid in retired and retired[tid].get("fingerprint") == t.fingerprint:
            continue  # retired, and not landed again since
        prev = seen.get(tid)
        if tid in known and prev is None:
            seen[tid] = (t.fingerprint, 0)  # adopt: no record of what its run saw
            continue
        if tid in known and prev[0] == t.fingerprint:
            continue
        out.append((tid, t.fingerprint, (prev[1] if prev else 0) + 1))
        if len(out) >= MAX_TITLES_PER_TICK:
            break
    return out


@sensor(
    asset_selection=cold_start_targets,
    minimum_interval_seconds=10,
    default_status=DefaultSensorStatus.RUNNING,
    description="Adds a `titles` partition and requests one cold-start run per newly landed or "
    "changed title (ready marker: metadata.json; fingerprint: files' names, sizes, mtimes).",
)
def title_arrival_sensor(context: SensorEvaluationContext, storage: StorageResource):
    from mediafm_core.storage.catalogue import readmit_title, retired_titles

    state = json.loads(context.cursor) if context.cursor else {}
    seen = seen_titles(storage.root, state)
    before = dict(seen)
    known = set(context.instance.get_dynamic_partitions(titles_partitions.name))
    retired = retired_titles(storage.root)
    todo = titles_to_run(
        seen, known, scan_landing(storage.landing_root()), retired, storage.settle_s
    )
    selection = cold_start_selection(storage.has_checkpoint()) if todo else []
    requests, fresh = [], []
    for tid, fingerprint, n in todo:
        if tid in retired:
            readmit_title(storage.root, tid)  # landed again: it is a title once more
        seen[tid] = (fingerprint, n)
        fresh += [tid] if tid not in known else []
        requests.append(
            RunRequest(
                run_key=f"cold-start:{tid}:{n}:{fingerprint}",
                partition_key=tid,
                asset_selection=selection,
                tags={
                    **COLD_START_TAGS,
                    "mediafm/trigger": "title_arrival",
                    "mediafm/fingerprint": fingerprint,
                },
            )
        )
    token = state.get("fingerprints")
    if seen != before or (seen and not token):
        token = fingerprints.save(storage.root, SEEN_STATE, seen, previous=token)
    cursor = json.dumps(
        {
            "fingerprints": token,
            "seen": len(seen),
            "known": len(known) + len(fresh),
            "last": todo[-1][0] if todo else state.get("last"),
        }
    )
    if not requests:
        skip = f"no new or changed ready titles in {storage.landing_root()}"
        return SensorResult(skip_reason=skip, cursor=cursor)
    adds = [titles_partitions.build_add_request(fresh)] if fresh else []
    return SensorResult(run_requests=requests, dynamic_partitions_requests=adds, cursor=cursor)


def seen_titles(root: str, state: dict) -> dict:
    """{title_id: (fingerprint, n)} of the snapshot the cursor names; a cursor from before
    issue 17 carries them itself (`titles`)."""
    if "titles" in state:
        return {t: (f, int(n)) for t, (f, n) in state["titles"].items()}
    return fingerprints.load(root, SEEN_STATE, state.get("fingerprints"))


@sensor(
    job=retire_titles_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Requests a `retirement` run for titles whose landing folder has been gone "
    "for the grace period, titles retired with `mediafm retire` whose partition is still here, "
    "and recently retired titles something wrote again. Reads only: the run does the work.",
)
def title_retirement_sensor(context: SensorEvaluationContext, storage: StorageResource):
    from mediafm_core.storage.catalogue import leftovers, retired_titles

    state = json.loads(context.cursor) if context.cursor else {}
    known = set(context.instance.get_dynamic_partitions(titles_partitions.name))
    landing = storage.landing_root()
    now = time.time()
    zone = landing_exists(landing)  # gone itself (unmounted, mistyped): no title has vanished
    present = set(scan_landing(landing)) if zone else known
    since = {t: state.get("missing_since", {}).get(t, now) for t in sorted(known - present)}
    records = retired_titles(storage.root)
    recent = [t for t, r in records.items() if now - r.get("retired_at", 0) < SWEEP_S]
    todo = {
        t: "landing folder vanished" for t, s in since.items() if now - s >= storage.retire_after_s
    }
    todo |= {t: "retired by hand" for t in sorted((set(records) & known) - set(todo))}
    # a run still in flight at retirement may have written rows or artefacts since: sweep
    todo |= {
        t: "swept again after retirement" for t in leftovers(storage.root, set(recent) - set(todo))
    }
    requested = {t: at for t, at in state.get("requested", {}).items() if now - at < RETRY_S}
    todo = {t: why for t, why in todo.items() if t not in requested}  # its run is under way
    cursor = {
        "missing_since": {t: s for t, s in since.items() if t not in todo},
        "requested": requested | dict.fromkeys(todo, now),
        "n": state.get("n", 0),
    }
    if not todo:
        why = (
            f"{len(since)} titles missing, within the {storage.retire_after_s:g} s grace period"
            if zone
            else f"the landing zone {landing} itself is missing"
        )
        return SensorResult(skip_reason=f"nothing to retire ({why})", cursor=json.dumps(cursor))
    cursor["n"] += 1
    context.log.info(f"requesting the retirement of {sorted(todo)}")
    return SensorResult(
        run_requests=[
            RunRequest(
                run_key=f"retire:{cursor['n']}:{','.join(sorted(todo))}"[:200],
                run_config={"ops": {"retire_titles": {"config": {"titles": todo}}}},
                tags={"mediafm/kind": "retirement", "mediafm/titles": ",".join(sorted(todo))[:200]},
            )
        ],
        cursor=json.dumps(cursor),
    )
