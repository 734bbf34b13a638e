"""Issue 19: media as real sources deliver it, each case built with Debian's ffmpeg CLI.

Stream choice (cases 1-2): the main audio mix, not audio description or commentary, unless
metadata.json names a track; the moving picture, never cover art, data or subtitle streams
listed before it. Audio that changes mid-stream (cases 3-4: layout, rate, codec parameters)
and audio with timestamp holes or overlaps (case 5) are placed on the picture's clock.
"""

import pytest

from mediafm_core.errors import TitleError
from mediafm_core.media.decode import extract_shot_inputs
from mediafm_core.media.shots import detect_shots
from mediafm_core.media.titles import open_title
from tests.core.media_fixtures import ffmpeg, reorder_moov, scene_video, write_metadata
from tests.core.test_media_clock import tone_share

X264 = ["-c:v", "libx264", "-preset", "ultrafast"]
RED_BLUE = scene_video(["red", "blue"], [3, 3])  # a cut at 3 s, 6 s in all


def sine(freq: float, seconds: float = 6, rate: int = 48000, layout: str = "mono") -> list[str]:
    """An ffmpeg lavfi input: a `freq` Hz tone in `layout` at `rate` Hz."""
    return ["-f", "lavfi", "-i",
            f"sine=f={freq}:d={seconds}:r={rate},aformat=channel_layouts={layout}"]  # fmt: skip


def title_dir(tmp_path, name="t", meta=None):
    tdir = tmp_path / name
    tdir.mkdir(parents=True, exist_ok=True)
    write_metadata(tdir, {"name": name, **(meta or {})})
    return tdir


def shot_tones(title, freqs=(440, 880)) -> list[int]:
    """The tone each detected shot hears (the one of `freqs` holding most of its power)."""
    shots = detect_shots(title)
    items = extract_shot_inputs(title, shots, frames_per_shot=1, size=16)
    return [max(freqs, key=lambda f: tone_share(it.audio, f)) for it in items]


# -- case 1: audio track choice -----------------------------------------------------------------
def two_track_mkv(tdir, dispositions=("visual_impaired", "default"), langs=("eng", "eng")):
    """MKV: the red/blue cut, audio 0 = 440 Hz, audio 1 = 880 Hz with these dispositions."""
    ffmpeg("-f", "lavfi", "-i", RED_BLUE, *sine(440), *sine(880),
           "-map", "0:v", "-map", "1:a", "-map", "2:a", *X264, "-c:a", "aac",
           "-disposition:a:0", dispositions[0], "-disposition:a:1", dispositions[1],
           "-metadata:s:a:0", f"language={langs[0]}", "-metadata:s:a:1", f"language={langs[1]}",
           str(tdir / "video.mkv"))  # fmt: skip


@pytest.mark.parametrize(
    "dispositions",
    [
        ("visual_impaired", "default"),
        ("comment", "0"),
        ("hearing_impaired+default", "0"),
        ("visual_impaired+default", "0"),
    ],
    ids=["description-first", "commentary-first-no-default", "hi-default", "ad-marked-default"],
)
def test_the_main_mix_is_chosen_over_description_and_commentary(tmp_path, dispositions):
    tdir = title_dir(tmp_path)
    two_track_mkv(tdir, dispositions)
    title = open_title(tdir)
    assert title.audio_stream == 2
    assert shot_tones(title) == [880, 880]


@pytest.mark.parametrize(
    "track, tone", [("fre", 440), ("fr", 440), ("eng", 880), (1, 440), (2, 880), ("a:0", 440)]
)
def test_metadata_names_the_audio_track_by_language_or_index(tmp_path, track, tone):
    """Audio 0 (stream #1) French 440 Hz, audio 1 (stream #2) English 880 Hz, the default."""
    tdir = title_dir(tmp_path, meta={"audio_track": track})
    two_track_mkv(tdir, ("0", "default"), ("fre", "eng"))
    assert shot_tones(open_title(tdir)) == [tone, tone]


@pytest.mark.parametrize("track", ["deu", 0, 7, "a:5", 1.5])
def test_an_audio_track_that_matches_nothing_fails_the_title(tmp_path, track):
    tdir = title_dir(tmp_path, "named", meta={"audio_track": track})
    two_track_mkv(tdir, ("0", "default"), ("fre", "eng"))
    with pytest.raises(TitleError, match="'named'.*audio_track"):
        open_title(tdir)


# -- case 2: streams before the picture ---------------------------------------------------------
def plain_mp4(path, extra=()):
    ffmpeg("-f", "lavfi", "-i", RED_BLUE, *sine(880), *X264, "-c:a", "aac", *extra, str(path))


def test_cover_art_listed_first_is_not_the_video(tmp_path):
    """A JPEG cover muxed as attached_pic; its `udta` box moved before the `trak`s (mutagen's
    layout) makes FFmpeg list it as stream 0."""
    ffmpeg("-f", "lavfi", "-i", "color=c=green:s=100x100", "-frames:v", "1",
           str(tmp_path / "cover.jpg"))  # fmt: skip
    plain_mp4(tmp_path / "main.mp4")
    tdir = title_dir(tmp_path)
    ffmpeg(
        "-i",
        str(tmp_path / "cover.jpg"),
        "-i",
        str(tmp_path / "main.mp4"),
        "-map",
        "0",
        "-map",
        "1",
        "-c",
        "copy",
        "-disposition:v:0",
        "attached_pic",
        str(tdir / "video.mp4"),
    )
    reorder_moov(tdir / "video.mp4", lambda kind, k: kind != "udta")
    import av

    with av.open(str(tdir / "video.mp4")) as c:  # the case at hand
        assert c.streams[0].disposition & av.stream.Disposition.attached_pic
    title = open_title(tdir)
    assert (title.video_stream, title.n_frames, title.duration_s) == (1, 150, 6.0)
    shots = detect_shots(title)
    assert shots["start_frame"].to_pylist() == [0, 75]
    assert shots["end_s"][-1].as_py() == pytest.approx(6.0, abs=1e-6)
    assert shot_tones(title) == [880, 880]


def test_subtitle_stream_first_in_matroska(tmp_path):
    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,500 --> 00:00:02,000\nhello\n")
    plain_mp4(tmp_path / "main.mp4")
    tdir = title_dir(tmp_path)
    ffmpeg("-i", str(srt), "-i", str(tmp_path / "main.mp4"), "-map", "0", "-map", "1",
           "-c:v", "copy", "-c:a", "copy", "-c:s", "srt", str(tdir / "video.mkv"))  # fmt: skip
    title = open_title(tdir)
    assert (title.video_stream, title.audio_stream) == (1, 2)
    assert detect_shots(title)["start_frame"].to_pylist() == [0, 75]
    assert shot_tones(title) == [880, 880]


def test_timecode_data_track_first_in_mp4(tmp_path):
    """A QuickTime timecode (tmcd) data track moved before the picture and sound."""
    tdir = title_dir(tmp_path)
    plain_mp4(tdir / "video.mp4", ["-timecode", "00:00:10:00"])
    reorder_moov(tdir / "video.mp4", lambda kind, k: -k)  # traks in reverse: tmcd, audio, video
    import av

    with av.open(str(tdir / "video.mp4")) as c:
        assert [s.type for s in c.streams] == ["data", "audio", "video"]  # the case at hand
    title = open_title(tdir)
    assert (title.video_stream, title.audio_stream) == (2, 1)
    assert detect_shots(title)["start_frame"].to_pylist() == [0, 75]
    assert shot_tones(title) == [880, 880]


def test_cover_art_alone_is_no_video(tmp_path):
    tdir = title_dir(tmp_path, "art")
    ffmpeg("-f", "lavfi", "-i", "color=c=green:s=64x64", "-frames:v", "1", str(tmp_path / "c.jpg"))
    ffmpeg(
        "-i",
        str(tmp_path / "c.jpg"),
        *sine(440),
        "-map",
        "0",
        "-map",
        "1",
        "-c:v",
        "copy",
        "-c:a",
        "aac",
        "-disposition:v:0",
        "attached_pic",
        str(tdir / "video.mp4"),
    )
    with pytest.raises(TitleError, match="'art'.*no video stream"):
        open_title(tdir)
