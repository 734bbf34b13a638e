"""title_arrival_sensor ticked against a real instance: one run per new title, exactly once."""

import json
import warnings

from dagster import AssetKey

from tests.assets.conftest import write_ready_marker

warnings.filterwarnings("ignore")


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
        "cold-start:t_a:1", "cold-start:t_b:1"]  # then the fingerprint
    assert sorted(instance.get_dynamic_partitions("titles")) == ["t_a", "t_b"]
    # No checkpoint yet: the cold start stops at fused_shots (automation embeds later).
    selection = set(first.run_requests[0].asset_selection)
    assert AssetKey("fused_shots") in selection
    assert AssetKey("contextual_embeddings") not in selection
    assert first.run_requests[0].tags["mediafm/kind"] == "cold_start"  # GPU run tags too
    cursor = json.loads(first.cursor)
    assert (cursor["known"], cursor["last"], sorted(cursor["titles"])) == (2, "t_b", ["t_a", "t_b"])

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
    defs = build_definitions(root=str(root), resources={
        "storage": StorageResource(root=str(root), settle_s=3600)})  # fmt: skip
    assert tick_sensor(defs, instance).run_requests == []
    assert tick_sensor(_defs(root), instance).run_requests[0].partition_key == "t_fresh"
