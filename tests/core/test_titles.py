"""Landing-zone titles: probing a good title, one clear TitleError per bad input (real files)."""

import json
import shutil
from pathlib import Path

import pytest

from mediafm_core.errors import TitleError
from mediafm_core.media.titles import GENRES, TitleNotReadyError, open_title, parse_metadata
from tests.core.media_fixtures import truncate, write_metadata, write_mp4, write_test_title


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    return write_test_title(tmp_path_factory.mktemp("landing"), "good_title", seconds=4.0, seed=3)


@pytest.fixture
def landing(tmp_path, good) -> Path:
    """A fresh landing zone holding a copy of the good title as `t1`."""
    root = tmp_path / "landing"
    root.mkdir()
    shutil.copytree(good, root / "t1")
    return root


def _error(path, landing_root=None) -> str:
    with pytest.raises(TitleError) as info:
        open_title(path, landing_root)
    return str(info.value)


def test_good_title_is_probed(good):
    title = open_title(good)
    truth = json.loads((good / "truth" / "boundaries.json").read_text())
    assert title.title_id == "good_title"
    assert title.fps == pytest.approx(25.0)
    assert (title.width, title.height) == (96, 54)
    assert title.n_frames == truth["n_frames"]
    assert title.duration_s == pytest.approx(truth["n_frames"] / 25, abs=0.05)
    assert title.has_audio and title.audio_sample_rate == 16000
    assert title.subtitles_path == good.resolve() / "subtitles.vtt"
    assert title.metadata.name.startswith("Synthetic")
    assert set(title.metadata.genres) <= set(GENRES) and title.metadata.genres


def test_title_id_relative_to_landing_root(landing):
    assert open_title("t1", landing).title_id == "t1"


def test_metadata_schema_canonicalises_genres_and_keeps_extra():
    meta = parse_metadata(
        {"name": " X ", "genres": ["sci-fi", "DRAMA", "Drama"], "tags": ["a", " "], "year": 1},
        "t",
    )
    assert meta.name == "X"
    assert meta.genres == ("Sci-fi", "Drama")
    assert meta.tags == ("a",)
    assert meta.extra == {"year": 1}


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda d: truncate(d / "video.mp4", 0.6), "corrupt or truncated"),
        (lambda d: (d / "video.mp4").write_bytes(b"\x00garbage" * 5000), "corrupt or truncated"),
        (lambda d: (d / "video.mp4").write_bytes(b""), "empty (0 bytes)"),
        (lambda d: write_mp4(d / "video.mp4", n_frames=0), "zero-length"),
        (lambda d: write_mp4(d / "video.mp4", audio=False), "no audio stream"),
        (lambda d: write_mp4(d / "video.mp4", video=False), "no video stream (audio-only"),
        (lambda d: (d / "video.mp4").unlink(), "no video file"),
        (lambda d: shutil.copy(d / "video.mp4", d / "video.mkv"), "multiple video files"),
        (lambda d: write_metadata(d, '{"name": "x", '), "not valid JSON"),
        (lambda d: write_metadata(d, "[1, 2]"), "must hold a JSON object"),
        (lambda d: write_metadata(d, {"synopsis": "no name"}), "missing the required field 'name'"),
        (lambda d: write_metadata(d, {"name": ""}), "'name' must be a non-empty string"),
        (lambda d: write_metadata(d, {"name": "x", "genres": ["Western"]}), "unknown genre"),
        (lambda d: write_metadata(d, {"name": "x", "tags": "a,b"}), "'tags' must be a list"),
        (lambda d: (d / "subtitles.srt").write_text("1\n"), "both subtitles.vtt and subtitles.srt"),
    ],
)
def test_bad_title_raises_clear_error(landing, make, expected):
    make(landing / "t1")
    message = _error(landing / "t1")
    assert "'t1'" in message and expected in message


def test_missing_metadata_means_not_ready(landing):
    (landing / "t1" / "metadata.json").unlink()
    with pytest.raises(TitleNotReadyError, match="not ready"):
        open_title(landing / "t1")


def test_symlinked_video_outside_landing_zone_is_refused(landing, tmp_path):
    outside = tmp_path / "outside.mp4"
    shutil.move(landing / "t1" / "video.mp4", outside)
    (landing / "t1" / "video.mp4").symlink_to(outside)
    assert "outside the landing zone" in _error(landing / "t1")


def test_symlinked_metadata_outside_landing_zone_is_refused(landing, tmp_path):
    outside = tmp_path / "meta.json"
    shutil.move(landing / "t1" / "metadata.json", outside)
    (landing / "t1" / "metadata.json").symlink_to(outside)
    assert "outside the landing zone" in _error(landing / "t1")


def test_symlinked_title_folder_outside_landing_zone_is_refused(landing, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    shutil.move(landing / "t1", elsewhere)
    (landing / "t1").symlink_to(elsewhere, target_is_directory=True)
    assert "outside landing zone" in _error("t1", landing)


@pytest.mark.parametrize("title_id", ["../t1", "t1/..", "a/b", ".", ".hidden"])
def test_title_ids_that_escape_are_refused(landing, title_id):
    (landing / "a").mkdir()
    shutil.copytree(landing / "t1", landing / "a" / "b")
    assert "single folder name" in _error(title_id, landing)


def test_dotdot_path_escaping_landing_root_is_refused(landing, tmp_path):
    shutil.copytree(landing / "t1", tmp_path / "t2")
    assert "outside landing zone" in _error(landing / ".." / "t2", landing)


def test_missing_title_folder(landing):
    assert "does not exist" in _error("nope", landing)
