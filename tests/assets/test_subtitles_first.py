"""Issue 11 case 8 in the Dagster graph: a title whose subtitles no parser can read fails its
`unimodal_embeddings` step before the encoders load (the offline profile takes 7-12 s to load),
on a real (SQLite) instance, and nothing is written for it."""

import pytest
from dagster import AssetKey

from tests.assets.conftest import write_tiny_titles
from tests.conftest import make_dagster_home

EMBEDDINGS = ["video_embeddings", "audio_embeddings", "text_embeddings"]
BAD = "WEBVTT\n\n00:00:xx.000 --> 00:00:01.000\nno readable cue\n"


@pytest.mark.parametrize("bad_index", [0, 1])  # the bad title first or after a good one
def test_unreadable_subtitles_fail_the_title_before_the_encoders_load(
    tmp_path, monkeypatch, bad_index
):
    from dagster import DagsterInstance

    from mediafm_assets import local_runner as lr
    from mediafm_assets.definitions import build_definitions
    from mediafm_assets.resources import EncoderResource, StorageResource

    monkeypatch.setenv("DAGSTER_HOME", str(make_dagster_home(tmp_path)))
    root = tmp_path / "storage"
    ids = write_tiny_titles(root / "landing", 2, seconds=6.0, seed=7)
    bad = ids[bad_index]
    (root / "landing" / bad / "subtitles.vtt").write_text(BAD)
    loaded = []

    def load(self, text):
        loaded.append(self.profile)
        raise RuntimeError("encoders loaded before every title's subtitles were checked")

    monkeypatch.setattr(EncoderResource, "load", load)
    defs = build_definitions(root=str(root), resources={"storage": StorageResource(root=str(root))})
    with DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("titles", ids)
        assert lr.materialize_titles(defs, instance, ["shots"], ids, quiet=True).success
        out = lr.materialize_titles(defs, instance, EMBEDDINGS, ids, quiet=True)
        assert not out.success
        assert f"title '{bad}'" in out.error and "malformed vtt subtitles" in out.error, out.error
        assert loaded == []
        assert instance.get_materialized_partitions(AssetKey("video_embeddings")) == set()
    assert not (root / "artefacts" / "video_embeddings").exists() or not any(
        (root / "artefacts" / "video_embeddings").iterdir()
    )
