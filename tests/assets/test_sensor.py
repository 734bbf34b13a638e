"""title_arrival_sensor ticked against a real instance: one run per new title, exactly once."""

import json
import warnings

from dagster import AssetKey

from tests.assets.conftest import write_ready_marker

warnings.filterwarnings("ignore")


def seen_on_root(root, cursor: str) -> dict:
    """{title_id: (fingerprint, runs)} of the snapshot the arrival sensor's cursor names."""
    from mediafm_core.storage import fingerprints

    token = json.loads(cursor)["fingerprints"]
    return fingerprints.load(str(root), "title_arrival", token)


def _defs(root):
    from mediafm_assets.definitions import build_definitions

    return build_definitions(root=str(root))


def test_new_titles_get_one_run_each_and_half_copied_folders_wait(tmp_path, instance):
    from mediafm_assets.local_runner import tick_sensor

    landing = tmp_path / "storage" / "landing"
    for tid in ("t_a", "t_b"):
        (landing / tid).mkdir(parents=True)
        (landing / tid / "video.mp4").write_bytes(b"x")
        write_ready_marker(landing / tid)
    (landing / "t_half").mkdir()
    (landing / "t_half" / "video.mp4").write_bytes(b"still copying")  # no metadata.json yet
    defs = _defs(tmp_path / "storage")

    first = tick_sensor(defs, instance)
    assert sorted(first.added_partitions) == ["t_a", "t_b"]
    assert sorted(r.partition_key for r in first.run_requests) == ["t_a", "t_b"]
    assert sorted(r.run_key.rsplit(":", 1)[0] for r in first.run_requests) == [
        "cold-start:t_a:1",
        "cold-start:t_b:1",
    ]  # then the fingerprint
    assert sorted(instance.get_dynamic_partitions("titles")) == ["t_a", "t_b"]
    # No checkpoint yet: the cold start stops at fused_shots (automation embeds later).
    selection = set(first.run_requests[0].asset_selection)
    assert AssetKey("fused_shots") in selection
    assert AssetKey("contextual_embeddings") not in selection
    assert first.run_requests[0].tags["mediafm/kind"] == "cold_start"  # GPU run tags too
    cursor = json.loads(first.cursor)
    assert (cursor["known"], cursor["last"], cursor["seen"]) == (2, "t_b", 2)
    assert sorted(seen_on_root(tmp_path / "storage", first.cursor)) == ["t_a", "t_b"]

    again = tick_sensor(defs, instance, cursor=first.cursor)
    assert again.run_requests == [] and again.added_partitions == []
    assert "no new or changed ready titles" in again.skip_reason

    write_ready_marker(landing / "t_half")  # the upload finished
    third = tick_sensor(defs, instance, cursor=first.cursor)
    assert [r.partition_key for r in third.run_requests] == ["t_half"]


def test_with_a_checkpoint_the_cold_start_reaches_lancedb(tmp_path, instance):
    from mediafm_assets.local_runner import tick_sensor
    from mediafm_assets.resources import StorageResource

    landing = tmp_path / "storage" / "landing"
    (landing / "t_new").mkdir(parents=True)
    write_ready_marker(landing / "t_new")
    StorageResource(root=str(tmp_path / "storage")).set_current("run-abc")
    tick = tick_sensor(_defs(tmp_path / "storage"), instance)
    keys = {k.to_user_string() for k in tick.run_requests[0].asset_selection}
    assert {"contextual_embeddings", "title_embeddings", "titles"} <= keys


def test_a_burst_of_200_titles_is_neither_missed_nor_doubled(tmp_path, instance):
    from mediafm_assets.local_runner import tick_sensor

    landing = tmp_path / "storage" / "landing"
    ids = [f"burst_{i:03d}" for i in range(200)]
    for tid in ids:
        (landing / tid).mkdir(parents=True)
        write_ready_marker(landing / tid)
    defs = _defs(tmp_path / "storage")

    first = tick_sensor(defs, instance)
    keys = [r.partition_key for r in first.run_requests]
    assert sorted(keys) == ids and len(set(keys)) == 200
    assert len({r.run_key for r in first.run_requests}) == 200
    assert sorted(instance.get_dynamic_partitions("titles")) == ids

    second = tick_sensor(defs, instance, cursor=first.cursor)
    assert second.run_requests == []
    assert len(instance.get_dynamic_partitions("titles")) == 200


def test_invalid_folder_names_are_skipped(tmp_path):
    from mediafm_core.storage.landing import ready_titles

    for name in ("good_1", ".hidden", "has space"):
        (tmp_path / name).mkdir()
        write_ready_marker(tmp_path / name)
    assert ready_titles(str(tmp_path)) == ["good_1"]
    assert ready_titles(str(tmp_path / "missing")) == []


def test_object_store_landing_zone_is_listed_with_one_glob():
    """The same listing code serves s3:// prefixes; fsspec's in-memory store stands in here."""
    import fsspec

    from mediafm_core.storage.landing import ready_titles

    fs = fsspec.filesystem("memory")
    fs.pipe("/landing-test/t_ready/video.mp4", b"x")
    fs.pipe("/landing-test/t_ready/metadata.json", b"{}")
    fs.pipe("/landing-test/t_copying/video.mp4", b"x")
    assert ready_titles("memory://landing-test") == ["t_ready"]


def test_after_a_burst_one_changed_title_gets_exactly_one_run(tmp_path, instance):
    import os

    from mediafm_assets.local_runner import tick_sensor

    landing = tmp_path / "storage" / "landing"
    ids = [f"burst_{i:03d}" for i in range(200)]
    for tid in ids:
        (landing / tid).mkdir(parents=True)
        (landing / tid / "video.mp4").write_bytes(b"v1")
        write_ready_marker(landing / tid)
    defs = _defs(tmp_path / "storage")
    first = tick_sensor(defs, instance)
    assert len(first.run_requests) == 200
    (landing / "burst_042" / "video.mp4").write_bytes(b"v2, longer")  # re-landed
    os.utime(landing / "burst_117" / "metadata.json", (1, 1))  # touched: mtime changed
    second = tick_sensor(defs, instance, cursor=first.cursor)
    assert [r.partition_key for r in second.run_requests] == ["burst_042", "burst_117"]
    assert second.added_partitions == []
    third = tick_sensor(defs, instance, cursor=second.cursor)
    assert third.run_requests == []


def test_settle_time_holds_a_folder_that_is_still_being_written(tmp_path, instance):
    from mediafm_assets.definitions import build_definitions
    from mediafm_assets.local_runner import tick_sensor
    from mediafm_assets.resources import StorageResource

    root = tmp_path / "storage"
    (root / "landing" / "t_fresh").mkdir(parents=True)
    write_ready_marker(root / "landing" / "t_fresh")
    defs = build_definitions(
        root=str(root), resources={"storage": StorageResource(root=str(root), settle_s=3600)}
    )
    assert tick_sensor(defs, instance).run_requests == []
    assert tick_sensor(_defs(root), instance).run_requests[0].partition_key == "t_fresh"


def land(landing, ids, video: bytes = b"v1"):
    for tid in ids:
        (landing / tid).mkdir(parents=True, exist_ok=True)
        (landing / tid / "video.mp4").write_bytes(video)
        write_ready_marker(landing / tid)


CURSOR_BOUND = 300  # bytes: a token, three counts and the last title id


def test_the_cursor_stays_small_however_many_titles_landed(tmp_path, instance):
    """2,000 titles (two ticks of MAX_TITLES_PER_TICK): the fingerprints live on the storage
    root and the cursor only names them (issue 17: the cursor is stored with every tick)."""
    from mediafm_assets.local_runner import tick_sensor

    root = tmp_path / "storage"
    ids = [f"cat_{i:04d}" for i in range(2000)]
    land(root / "landing", ids)
    defs = _defs(root)
    first = tick_sensor(defs, instance)
    second = tick_sensor(defs, instance, cursor=first.cursor)
    third = tick_sensor(defs, instance, cursor=second.cursor)
    assert (len(first.run_requests), len(second.run_requests), third.run_requests) == (
        1000,
        1000,
        [],
    )
    assert sorted(r.partition_key for r in first.run_requests + second.run_requests) == ids
    assert max(len(t.cursor) for t in (first, second, third)) < CURSOR_BOUND
    seen = seen_on_root(root, third.cursor)
    assert sorted(seen) == ids and {n for _, n in seen.values()} == {1}
    snapshots = list((root / "sensors" / "title_arrival").glob("*.parquet"))
    assert len(snapshots) == 2  # the one read and the one written are kept; none is half-written
    assert not list((root / "sensors" / "title_arrival").glob(".*"))


def test_a_tick_that_never_committed_is_repeated_with_the_same_run_keys(tmp_path, instance):
    """The daemon commits the cursor with the run requests: a retried tick (same cursor) reads
    the same snapshot and asks for the same run keys, which the daemon launches once."""
    from mediafm_assets.local_runner import tick_sensor

    root = tmp_path / "storage"
    land(root / "landing", ["t_a", "t_b"])
    defs = _defs(root)
    first = tick_sensor(defs, instance)
    (root / "landing" / "t_a" / "video.mp4").write_bytes(b"v2, longer")
    changed = tick_sensor(defs, instance, cursor=first.cursor)  # its cursor is never committed
    retried = tick_sensor(defs, instance, cursor=first.cursor)
    keys = [r.run_key for r in changed.run_requests]
    assert keys == [r.run_key for r in retried.run_requests]
    assert len(keys) == 1 and keys[0].startswith("cold-start:t_a:2:")
    assert retried.cursor == changed.cursor
    assert tick_sensor(defs, instance, cursor=retried.cursor).run_requests == []


def test_fingerprints_survive_a_restart_and_a_changed_title_reruns_once(tmp_path, monkeypatch):
    """A new instance object, new definitions and only the committed cursor (what the daemon
    keeps): nothing re-runs; a changed and a new title get one run each."""
    from dagster import DagsterInstance

    from mediafm_assets.local_runner import tick_sensor
    from tests.conftest import make_dagster_home

    monkeypatch.setenv("DAGSTER_HOME", str(make_dagster_home(tmp_path)))
    root = tmp_path / "storage"
    land(root / "landing", [f"t_{i}" for i in range(5)])
    with DagsterInstance.get() as instance:
        cursor = tick_sensor(_defs(root), instance).cursor
    with DagsterInstance.get() as instance:  # the daemon restarted
        defs = _defs(root)
        assert tick_sensor(defs, instance, cursor=cursor).run_requests == []
        (root / "landing" / "t_3" / "video.mp4").write_bytes(b"re-landed")
        land(root / "landing", ["t_new"])
        tick = tick_sensor(defs, instance, cursor=cursor)
        assert [r.run_key.rsplit(":", 1)[0] for r in tick.run_requests] == [
            "cold-start:t_3:2",
            "cold-start:t_new:1",
        ]
        assert tick.added_partitions == ["t_new"]
        assert tick_sensor(defs, instance, cursor=tick.cursor).run_requests == []


def test_a_cursor_that_still_holds_fingerprints_is_moved_to_the_root(tmp_path, instance):
    """A cursor written before issue 17 (`titles` inside it): no title re-runs, and the next
    cursor is a small one naming a snapshot with the same fingerprints and run counts."""
    from mediafm_assets.local_runner import tick_sensor
    from mediafm_core.storage.landing import scan_landing

    root = tmp_path / "storage"
    land(root / "landing", ["t_a", "t_b"])
    instance.add_dynamic_partitions("titles", ["t_a", "t_b"])
    landed = scan_landing(str(root / "landing"))
    old = json.dumps(
        {"known": 2, "last": "t_b", "titles": {t: [landed[t].fingerprint, 3] for t in landed}}
    )
    tick = tick_sensor(_defs(root), instance, cursor=old)
    assert tick.run_requests == [] and "titles" not in json.loads(tick.cursor)
    assert seen_on_root(root, tick.cursor) == {t: (landed[t].fingerprint, 3) for t in landed}


def test_a_lost_snapshot_adopts_known_titles_and_still_runs_new_ones(tmp_path, instance):
    """The snapshot the cursor names is gone (sensors/ deleted): like a reset cursor, known
    partitions are adopted without runs, a new title still gets its run."""
    import shutil

    from mediafm_assets.local_runner import tick_sensor

    root = tmp_path / "storage"
    land(root / "landing", ["t_a", "t_b"])
    defs = _defs(root)
    cursor = tick_sensor(defs, instance).cursor
    shutil.rmtree(root / "sensors")
    land(root / "landing", ["t_c"])
    tick = tick_sensor(defs, instance, cursor=cursor)
    assert [r.partition_key for r in tick.run_requests] == ["t_c"]
    assert sorted(seen_on_root(root, tick.cursor)) == ["t_a", "t_b", "t_c"]


def test_old_snapshots_go_but_the_one_a_retried_tick_reads_stays(tmp_path, instance):
    import os
    import time

    from mediafm_assets.local_runner import tick_sensor

    root = tmp_path / "storage"
    state = root / "sensors" / "title_arrival"
    land(root / "landing", ["t_a"])
    defs = _defs(root)
    cursor = tick_sensor(defs, instance).cursor
    for body in (b"v2", b"v3, longer"):
        (root / "landing" / "t_a" / "video.mp4").write_bytes(body)
        cursor = tick_sensor(defs, instance, cursor=cursor).cursor
    assert len(list(state.glob("*.parquet"))) == 3
    read = json.loads(cursor)["fingerprints"]
    for snapshot in state.glob("*.parquet"):  # all of them two hours old
        os.utime(snapshot, (time.time() - 7200,) * 2)
    (root / "landing" / "t_a" / "video.mp4").write_bytes(b"v4, longer still")
    changed = tick_sensor(defs, instance, cursor=cursor)
    written = json.loads(changed.cursor)["fingerprints"]
    assert sorted(p.stem for p in state.glob("*.parquet")) == sorted([read, written])
    retried = tick_sensor(defs, instance, cursor=cursor)  # the tick is retried: same keys
    assert [r.run_key for r in retried.run_requests] == [r.run_key for r in changed.run_requests]


def test_the_local_listing_fingerprints_exactly_as_the_fsspec_listing(tmp_path):
    """A local landing zone is listed with os.scandir (issue 17: fsspec's local find took 5 s a
    tick at 50 k titles); every fingerprint equals fsspec's, so an upgrade re-runs nothing."""
    import os

    from mediafm_core.storage import landing as lz
    from tests.assets.conftest import write_tiny_titles

    ids = write_tiny_titles(tmp_path, 2, seconds=2.0, seed=7)  # subtitles, truth/ subfolder
    (tmp_path / ids[0] / "extra" / "deep").mkdir(parents=True)
    (tmp_path / ids[0] / "extra" / "deep" / "notes.txt").write_text("nested")
    (tmp_path / ids[0] / "empty_dir").mkdir()
    os.symlink(tmp_path / ids[0] / "video.mp4", tmp_path / ids[1] / "alias.mp4")
    (tmp_path / "t_only_folder").mkdir()
    (tmp_path / "stray.txt").write_text("not a title")
    local = lz._list_local(str(tmp_path))
    assert {t: sorted(e) for t, e in local.items()} == {
        t: sorted(e) for t, e in lz._list_fsspec(str(tmp_path)).items()
    }
    assert ("extra/deep/notes.txt", 6) in {(n, s) for n, s, _ in local[ids[0]]}
    assert local["t_only_folder"] == [] and "stray.txt" not in local
