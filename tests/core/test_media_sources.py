"""Issue 19: media as real sources deliver it, each case built with Debian's ffmpeg CLI.

Stream choice (cases 1-2): the main audio mix, not audio description or commentary, unless
metadata.json names a track; the moving picture, never cover art, data or subtitle streams
listed before it. Audio that changes mid-stream (cases 3-4: layout, rate, codec parameters)
and audio with timestamp holes or overlaps (case 5) are placed on the picture's clock.
"""

import numpy as np
import pytest

from mediafm_core.errors import TitleError
from mediafm_core.media.decode import extract_shot_inputs
from mediafm_core.media.shots import detect_shots
from mediafm_core.media.titles import open_title
from tests.core.media_fixtures import ffmpeg, reorder_moov, scene_video, write_metadata
from tests.core.test_media_clock import ffprobe_frame_times, tone_share

X264 = ["-c:v", "libx264", "-preset", "ultrafast"]
RED_BLUE = scene_video(["red", "blue"], [3, 3])  # a cut at 3 s, 6 s in all


def sine(freq: float, seconds: float = 6, rate: int = 48000, layout: str = "mono") -> list[str]:
    """An ffmpeg lavfi input: a `freq` Hz tone in `layout` at `rate` Hz."""
    return [
        "-f",
        "lavfi",
        "-i",
        f"sine=f={freq}:d={seconds}:r={rate},aformat=channel_layouts={layout}",
    ]


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
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        RED_BLUE,
        *sine(440),
        *sine(880),
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-map",
        "2:a",
        *X264,
        "-c:a",
        "aac",
        "-disposition:a:0",
        dispositions[0],
        "-disposition:a:1",
        dispositions[1],
        "-metadata:s:a:0",
        f"language={langs[0]}",
        "-metadata:s:a:1",
        f"language={langs[1]}",
        str(tdir / "video.mkv"),
    )


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
    "track, tone",
    [("fre", 440), ("fr", 440), ("eng", 880), (1, 440), (2, 880), ("2", 880), ("a:0", 440)],
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
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "color=c=green:s=100x100",
        "-frames:v",
        "1",
        str(tmp_path / "cover.jpg"),
    )
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
    ffmpeg(
        "-i",
        str(srt),
        "-i",
        str(tmp_path / "main.mp4"),
        "-map",
        "0",
        "-map",
        "1",
        "-c:v",
        "copy",
        "-c:a",
        "copy",
        "-c:s",
        "srt",
        str(tdir / "video.mkv"),
    )
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


# -- cases 3-4: the audio format changes mid-stream ---------------------------------------------
def spliced(tmp_path, tdir, segments, name="video.ts", fmt=("-f", "mpegts"), vcodec=X264):
    """Segments of (colour, seconds, audio args, audio codec args) written on their own, then
    joined with the concat demuxer and `-c copy`, as HLS/TS splicers join them."""
    listing = tmp_path / "segments.txt"
    lines = []
    for k, (colour, seconds, audio, codec) in enumerate(segments):
        seg = tmp_path / f"seg{k}.{name.split('.')[-1]}"
        ffmpeg(
            "-f",
            "lavfi",
            "-i",
            f"color=c={colour}:s=64x36:r=25:d={seconds}",
            *audio,
            *vcodec,
            *codec,
            "-shortest",
            *fmt,
            str(seg),
        )
        lines.append(f"file '{seg}'")
    listing.write_text("\n".join(lines) + "\n")
    ffmpeg("-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(tdir / name))


AC3 = ["-c:a", "ac3"]
AAC = ["-c:a", "aac"]


@pytest.mark.parametrize(
    "first, second",
    [
        ((sine(440, 3, 48000, "stereo"), AC3), (sine(880, 3, 48000, "5.1"), AC3)),
        ((sine(440, 3, 44100), AAC), (sine(880, 3, 48000), AAC)),
        ((sine(440, 3, 48000, "5.1"), AC3), (sine(880, 3, 32000, "mono"), AC3)),
        (
            (sine(440, 3, 22050, "mono"), ["-c:a", "mp2"]),
            (sine(880, 3, 44100, "stereo"), ["-c:a", "mp2"]),
        ),
    ],
    ids=["ac3-stereo-to-5.1", "aac-44.1k-to-48k", "ac3-5.1-48k-to-mono-32k", "mp2-22k-mono-to-44k"],
)
def test_audio_format_change_mid_stream_is_decoded_through(tmp_path, first, second):
    tdir = title_dir(tmp_path)
    spliced(tmp_path, tdir, [("red", 3, *first), ("blue", 3, *second)])
    title = open_title(tdir)
    shots = detect_shots(title)
    assert shots["start_frame"].to_pylist() == [0, 75]
    items = extract_shot_inputs(title, shots, frames_per_shot=1, size=16)
    assert [round(tone_share(it.audio, 440), 1) for it in items] == [1.0, 0.0]
    assert [round(tone_share(it.audio, 880), 1) for it in items] == [0.0, 1.0]


@pytest.mark.parametrize(
    "first, second",
    [
        (("320x180", "yuv420p"), ("160x90", "yuv420p")),
        (("160x90", "yuv420p"), ("160x90", "yuv420p10le")),
    ],
    ids=["720p-like-to-smaller", "8-bit-to-10-bit"],
)
def test_video_format_change_mid_stream_is_decoded_through(tmp_path, first, second):
    """The neighbour of cases 3-4 in the picture: spliced TS segments whose resolution or bit
    depth changes at the splice (an ad insertion) decode as two shots, each with its colour and
    its tone."""
    tdir = title_dir(tmp_path)
    listing = tmp_path / "segments.txt"
    lines = []
    for k, ((size, pix_fmt), colour, tone) in enumerate(
        zip((first, second), ("red", "blue"), (440, 880))
    ):
        seg = tmp_path / f"seg{k}.ts"
        ffmpeg(
            "-f",
            "lavfi",
            "-i",
            f"color=c={colour}:s={size}:r=25:d=3",
            *sine(tone, 3),
            *X264,
            "-pix_fmt",
            pix_fmt,
            *AAC,
            "-shortest",
            "-f",
            "mpegts",
            str(seg),
        )
        lines.append(f"file '{seg}'")
    listing.write_text("\n".join(lines) + "\n")
    ffmpeg("-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(tdir / "video.ts"))
    title = open_title(tdir)
    shots = detect_shots(title)
    assert shots["start_frame"].to_pylist() == [0, 75]
    items = extract_shot_inputs(title, shots, frames_per_shot=2, size=16)
    means = [it.frames.reshape(-1, 3).mean(0) for it in items]
    assert means[0][0] > 200 > means[0][2] and means[1][2] > 200 > means[1][0]  # red, blue
    assert [round(tone_share(it.audio, 880), 1) for it in items] == [0.0, 1.0]


# -- case 5: holes and overlaps in the audio timestamps -----------------------------------------
def gapped_audio(tmp_path, first_s: float, stamp_s: float, second_s: float) -> list[str]:
    """ffmpeg input args: 440 Hz for `first_s`, then 880 Hz for `second_s` stamped from
    `stamp_s` (concat demuxer `duration`: a hole when stamp_s > first_s, an overlap when less)."""
    for name, freq, seconds in (("a1", 440, first_s), ("a2", 880, second_s)):
        ffmpeg(
            "-f", "lavfi", "-i", f"sine=f={freq}:d={seconds}:r=48000", str(tmp_path / f"{name}.wav")
        )
    listing = tmp_path / "audio.txt"
    listing.write_text(
        f"file '{tmp_path / 'a1.wav'}'\nduration {stamp_s}\nfile '{tmp_path / 'a2.wav'}'\n"
    )
    return ["-f", "concat", "-safe", "0", "-i", str(listing)]


def gapped_title(tmp_path, ext, first_s, stamp_s, second_s, codec=AAC):
    tdir = title_dir(tmp_path)
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        RED_BLUE,
        *gapped_audio(tmp_path, first_s, stamp_s, second_s),
        "-map",
        "0:v",
        "-map",
        "1:a",
        *X264,
        *codec,
        str(tdir / f"video.{ext}"),
    )
    title = open_title(tdir)
    shots = detect_shots(title)
    assert shots["start_frame"].to_pylist() == [0, 75]
    return title, extract_shot_inputs(title, shots, frames_per_shot=1, size=16)


@pytest.mark.parametrize("ext, codec", [("mkv", AAC), ("mp4", AAC), ("mkv", ["-c:a", "libopus"])])
def test_a_hole_in_the_audio_timestamps_is_silence(tmp_path, ext, codec):
    """440 Hz for 0-2 s, nothing for 2-3 s, 880 Hz stamped 3-6 s: under the cut at 3 s."""
    _, items = gapped_title(tmp_path, ext, 2, 3, 3, codec)
    first, second = items[0].audio, items[1].audio
    assert tone_share(first, 440) > 0.95 and tone_share(first, 880) < 0.01
    assert tone_share(second, 880) > 0.95
    rms = lambda x: float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))  # noqa: E731
    assert rms(first[: 2 * 16000 - 800]) > 0.05  # lavfi sine: amplitude 1/8
    assert rms(first[2 * 16000 + 800 :]) < 1e-3  # the hole: 2-3 s
    assert rms(second[-16000:]) > 0.05  # 880 Hz lasts to the end, not 1 s early


def test_overlapping_audio_timestamps_keep_the_later_audio_on_its_clock(tmp_path):
    """440 Hz for 0-3.5 s, 880 Hz stamped from 3 s: 0.5 s stamped twice; what follows stays on
    its timestamps (the 880 Hz after 3.5 s is under shot 1, and ends at 6 s)."""
    _, items = gapped_title(tmp_path, "mkv", 3.5, 3, 3)
    first, second = items[0].audio, items[1].audio
    assert tone_share(first, 440) > 0.95
    assert tone_share(second[8000 + 800 :], 880) > 0.95  # from 3.5 s on
    assert len(second) == 3 * 16000
    assert float(np.abs(second[-8000:]).mean()) > 0.05


def test_a_hole_in_the_video_timestamps_keeps_pictures_and_sound_together(tmp_path):
    """Red for 0-2 s, then blue stamped 3-6 s (concat `duration 3`); 440 Hz for 0-3 s, 880 Hz
    for 3-6 s: the cut is at 3 s on the clock, and the blue shot hears 880 Hz."""
    for name, colour, seconds in (("v1", "red", 2), ("v2", "blue", 3)):
        ffmpeg(
            "-f",
            "lavfi",
            "-i",
            f"color=c={colour}:s=64x36:r=25:d={seconds}",
            *X264,
            str(tmp_path / f"{name}.mkv"),
        )
    listing = tmp_path / "video.txt"
    listing.write_text(f"file '{tmp_path / 'v1.mkv'}'\nduration 3\nfile '{tmp_path / 'v2.mkv'}'\n")
    tdir = title_dir(tmp_path)
    tones = "aevalsrc='0.3*sin(2*PI*if(lt(t,3),440,880)*t)':s=16000:d=6"
    ffmpeg(
        "-f",
        "concat",
        "-safe",
        "0",
        "-i",
        str(listing),
        "-f",
        "lavfi",
        "-i",
        tones,
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-c:v",
        "copy",
        *AAC,
        str(tdir / "video.mkv"),
    )
    title = open_title(tdir)
    shots = detect_shots(title)
    assert shots["start_frame"].to_pylist() == [0, 50]
    start = shots["start_s"].to_numpy()
    assert start[1] - start[0] == pytest.approx(3.0, abs=0.01)  # ffmpeg's copy starts at 0.064
    assert shot_tones(title) == [440, 880]


# -- case 9: the last frame of a variable-frame-rate title --------------------------------------
@pytest.mark.parametrize("ext, slow", [("mp4", 5), ("mkv", 5), ("mkv", 10), ("webm", 5)])
def test_the_last_frame_lasts_as_long_as_its_neighbours(tmp_path, ext, slow):
    """The issue-11 case: 25 fps for 4 s, then smptebars at `slow` fps for 4 s, -fps_mode vfr."""
    tdir = title_dir(tmp_path)
    codec = ["-c:v", "libvpx", "-deadline", "realtime"] if ext == "webm" else X264
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "color=c=red:s=64x36:r=25:d=4",
        "-f",
        "lavfi",
        "-i",
        f"smptebars=s=64x36:r={slow}:d=4",
        *sine(440, 8),
        "-filter_complex",
        "[0:v][1:v]concat=n=2:v=1:a=0[v]",
        "-map",
        "[v]",
        "-map",
        "2:a",
        *codec,
        "-fps_mode",
        "vfr",
        str(tdir / f"video.{ext}"),
    )
    title = open_title(tdir)
    shots = detect_shots(title)
    assert shots["start_frame"].to_pylist() == [0, 100]
    pts, start = ffprobe_frame_times(title.video_path)
    assert np.diff(pts[-4:]) == pytest.approx(1 / slow, abs=1e-3)
    # 10 ms: Debian's ffprobe and PyAV's own FFmpeg place Opus pre-skip (WebM) a few ms apart
    tol = 0.01 if ext == "webm" else 1e-6
    assert shots["end_s"][-1].as_py() == pytest.approx(pts[-1] - start + 1 / slow, abs=tol)
    slow_frames = len(pts) - 100  # ffmpeg's MP4 muxer may drop the very last one
    span = shots["end_s"][-1].as_py() - shots["start_s"][1].as_py()
    assert span == pytest.approx(slow_frames / slow, abs=tol)


# -- case 8: motion that is not a cut -----------------------------------------------------------
def motion(kind: str, rate: int, seconds: float) -> str:
    """A lavfi graph of one continuous take (the kinds of bench/fast_motion.py), 160x90."""
    from bench.fast_motion import take

    tail = f"scale=160:90,setsar=1,fps={rate},format=yuv420p"
    return {
        "mandelbrot": f"mandelbrot=s=160x90:r={rate},trim=duration={seconds},{tail}",
        "zoom": f"testsrc2=s=640x360:r={rate}:d={seconds},zoompan=z='pow(1.6,in/{rate})':d=1:"
        f"x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)':s=160x90:fps={rate},{tail}",
        "pan": f"testsrc2=s={320 + 320 * seconds:.0f}x360:r={rate}:d={seconds},"
        f"crop=320:180:x='t*320':y=90,{tail}",
        "whip": f"testsrc2=s={320 + 960 * seconds:.0f}x360:r={rate}:d={seconds},"
        f"crop=320:180:x='t*960':y=90,{tail}",
        "shake": f"smptehdbars=s=480x270:r={rate}:d={seconds},crop=320:180:"
        f"x='80+50*sin(t*23)+30*random(1)':y='45+25*cos(t*29)+20*random(2)',{tail}",
        # bench/fast_motion.py's fractal: ~3x zoom per second, colours change every frame
        "fractal": f"mandelbrot=s=96x54:r={rate}:end_pts={seconds}:"
        f"end_scale={3 * 10 ** (-seconds / 2)}:maxiter=256,trim=duration={seconds},{tail}",
        "zoomout": f"testsrc2=s=640x360:r={rate}:d={seconds},"
        f"zoompan=z='pow(1.6,{seconds}-in/{rate})':d=1:"
        f"x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)':s=160x90:fps={rate},{tail}",
    }.get(kind) or take(kind, rate, seconds, (160, 90))  # the variants: bench/fast_motion.py


@pytest.mark.parametrize(
    "kind, rate, seconds",
    [
        ("mandelbrot", 25, 8),
        ("zoom", 25, 4),
        ("zoom", 8, 4),
        ("pan", 25, 4),
        ("pan", 8, 4),
        ("shake", 12, 6),
        ("shake", 25, 4),
        ("whip", 12, 4),
        ("fractal", 8, 4),
        ("fractal", 25, 4),
        # a tilt beyond the +-3 row search over 4 and 8 frames gave a false gradual (a 2-frame
        # step explains it); neighbours: a whip tilt at 30 fps, roll, a slow zoom at 30 fps
        ("tilt", 12, 3),
        ("whiptilt", 30, 3),
        ("roll", 8, 3),
        ("zoom", 30, 3),
    ],
)
def test_fast_motion_in_one_take_is_one_shot(tmp_path, kind, rate, seconds):
    tdir = title_dir(tmp_path)
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        motion(kind, rate, seconds),
        *sine(440, seconds),
        *X264,
        "-c:a",
        "aac",
        "-shortest",
        str(tdir / "video.mp4"),
    )
    assert detect_shots(open_title(tdir))["start_frame"].to_pylist() == [0]


@pytest.mark.parametrize("rate", [11, 25])
def test_a_take_that_starts_in_fast_motion_has_no_transition_at_its_first_frames(tmp_path, rate):
    """The fractal's first step is as large as a cut and has no step before it: the detector
    must not take the missing side for a quiet one (a cut at frame 1 at 11 fps before)."""
    from mediafm_core.media.decode import decode_small
    from mediafm_core.media.shots import DECODE_SIZE, FastDetector

    tdir = title_dir(tmp_path)
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        motion("fractal", rate, 3),
        *sine(440, 3),
        *X264,
        "-c:a",
        "aac",
        "-shortest",
        str(tdir / "video.mp4"),
    )
    frames = decode_small(open_title(tdir), *DECODE_SIZE)
    assert FastDetector().detect(frames, float(rate)) == []


@pytest.mark.parametrize(
    "first, second, rate",
    [
        ("pan", "shake", 12),
        ("whip", "pan", 25),
        ("shake", "zoom", 8),
        # each missed before the one-sided rule (a single shot), issue 19 case 8: a cut into the
        # fractal, whose own steps are as large as the cut; shake into a whip pan whose first
        # frames are a flat field; neighbours: a pan at 8 fps, a zoom out, a whip at 25 fps
        ("zoom", "fractal", 10),
        ("shake", "whip", 12),
        ("pan", "fractal", 8),
        ("zoomout", "fractal", 12),
        ("whip", "fractal", 25),
        # ... and a cut out of the fractal (its last frame, as bright as the new one, was taken
        # for a flash returning)
        ("fractal", "whip", 8),
        # missed before the persisting-side rule: a textured pan (grey levels like the next
        # shot's) into the fractal, one roll into another; before luma in the camera-move
        # search: primary-colour bands into a tilt (one grey level for red, green and blue)
        ("texpan", "seahorse", 8),
        ("roll", "rollbars", 8),
        ("bands", "tilt", 12),
        # missed before a camera-moved side counted as persisting: handheld shake at 8-12 fps
        # (its jumps leave no structure between frames) into the fractal
        ("shake", "fractal", 10),
        # neighbours: the other rates and orders
        ("shake", "fractal", 8),
        ("texpan", "seahorse", 15),
        ("rollbars", "roll", 10),
        ("tilt", "bands", 24),
    ],
)
def test_a_cut_between_fast_moving_takes_is_found(tmp_path, first, second, rate):
    tdir = title_dir(tmp_path)
    graph = f"{motion(first, rate, 3)}[a];{motion(second, rate, 3)}[b];[a][b]concat=n=2:v=1:a=0[v]"
    ffmpeg(
        "-filter_complex",
        graph,
        *sine(440, 6),
        "-map",
        "[v]",
        "-map",
        "0:a",
        *X264,
        "-c:a",
        "aac",
        "-shortest",
        str(tdir / "video.mp4"),
    )
    assert detect_shots(open_title(tdir))["start_frame"].to_pylist() == [0, 3 * rate]


def test_per_shot_frame_buffers_grow_with_the_shots_in_flight():
    """Issue 19 (frames x shots): 5,000 shots of 8 frames at 224 px reserved 6 GB up front."""
    import tracemalloc

    from mediafm_core.media.decode import _FramePicker

    spans = [(k, 10 * k, 10 * k + 10, 0.4 * k, 0.4 * k + 0.4) for k in range(5000)]
    tracemalloc.start()
    try:
        picker = _FramePicker(spans, 8, 224)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50e6
    assert picker.take(0).shape == (8, 224, 224, 3)  # a shot no frame reached is still whole
