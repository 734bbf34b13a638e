"""title_retirement_sensor against a real instance: a landing zone that is itself missing (an
unmounted volume, a mistyped $MEDIAFM_LANDING) retires nothing; a folder gone from a present zone
is still retired (the neighbour case)."""

import warnings

from tests.assets.conftest import retirement_tick, write_ready_marker

warnings.filterwarnings("ignore")


def _defs(root, **storage):
    from mediafm_assets.definitions import build_definitions
    from mediafm_assets.resources import StorageResource

    return build_definitions(
        root=str(root), resources={"storage": StorageResource(root=str(root), **storage)}
    )


def test_a_missing_landing_zone_retires_nothing(tmp_path, instance):
    from mediafm_assets.local_runner import tick_sensor

    root = tmp_path / "storage"
    landing = root / "landing"
    for tid in ("t_a", "t_b"):
        (landing / tid).mkdir(parents=True)
        (landing / tid / "video.mp4").write_bytes(b"x")
        write_ready_marker(landing / tid)
    assert sorted(tick_sensor(_defs(root), instance).added_partitions) == ["t_a", "t_b"]
    defs = _defs(root, retire_after_s=0)

    landing.rename(root / "landing.unmounted")  # the whole zone goes, not one title
    tick, runs = retirement_tick(defs, instance)
    assert runs == []
    assert "landing zone" in tick.skip_reason and "itself is missing" in tick.skip_reason
    assert sorted(instance.get_dynamic_partitions("titles")) == ["t_a", "t_b"]
    assert not (root / "retired").exists()  # no retirement record written

    (root / "landing.unmounted").rename(landing)  # back; now one title really is gone
    for f in (landing / "t_b").iterdir():
        f.unlink()
    (landing / "t_b").rmdir()
    tick, (run,) = retirement_tick(defs, instance, cursor=tick.cursor)
    assert run.success and tick.run_requests[0].run_config == {
        "ops": {"retire_titles": {"config": {"titles": {"t_b": "landing folder vanished"}}}}
    }
    assert sorted(instance.get_dynamic_partitions("titles")) == ["t_a"]
    assert (root / "retired" / "t_b" / "RETIRED.json").exists()
    assert not (root / "retired" / "t_a").exists()
