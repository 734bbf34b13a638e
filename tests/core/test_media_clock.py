"""Issue 11, cases 1-5: real-world media properties, each built with Debian's ffmpeg CLI.

Time: shot times are the decoded frames' presentation timestamps (variable frame rate, streams
that do not start at zero), and audio and cues are cut on that same clock; `mediafm shots` and
the encoders' inputs are checked together. Length: Matroska whose audio outlasts the video is
not truncated. Pictures: the encoder receives frames as a player shows them (display matrix
rotation, non-square pixels), checked with asymmetric markers.
"""

import subprocess

import numpy as np
import pytest

from mediafm_core.cli import main
from mediafm_core.errors import TitleError
from mediafm_core.media.decode import AUDIO_RATE, decode_small, extract_shot_inputs
from mediafm_core.media.shots import detect_shots
from mediafm_core.media.titles import open_title
from mediafm_core.pipeline import load_shots, shot_texts
from tests.core.media_fixtures import ffmpeg, scene_tones, scene_video, truncate, write_ffmpeg_title

X264 = ["-c:v", "libx264", "-preset", "ultrafast"]
AAC = ["-c:a", "aac"]
SRT_AB = "1\n{a0} --> {a1}\nScene A\n\n2\n{b0} --> {b1}\nScene B\n"


def srt_time(s: float) -> str:
    ms = round(s * 1000)
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def srt_ab(a: tuple[float, float], b: tuple[float, float]) -> str:
    return SRT_AB.format(a0=srt_time(a[0]), a1=srt_time(a[1]), b0=srt_time(b[0]), b1=srt_time(b[1]))


def ffprobe_frame_times(path) -> tuple[np.ndarray, float]:
    """(pts_time of every video frame, container start_time), read by ffprobe, not by us."""
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=pts_time:format=start_time",
            "-of",
            "csv=p=0",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    values = [float(v.strip(",")) for v in out if v.strip(",")]
    return np.array(values[:-1]), values[-1]  # the format section comes last


def tone_share(audio: np.ndarray, freq: float, band: float = 20.0) -> float:
    """Share of the signal's power within `band` Hz of `freq`."""
    power = np.abs(np.fft.rfft(audio.astype(np.float64))) ** 2
    hz = np.fft.rfftfreq(len(audio), 1 / AUDIO_RATE)
    return float(power[np.abs(hz - freq) <= band].sum() / max(power.sum(), 1e-12))


def check_scenes(title, shots, tones, texts):
    """Shot k holds scene k: its audio is scene k's tone (and no other) and its text is scene
    k's cue; shot times are the frames' timestamps on the presentation timeline."""
    pts, start = ffprobe_frame_times(title.video_path)
    times = pts - start
    first = shots["start_frame"].to_numpy()
    # 10 ms: Debian's ffprobe and PyAV's own FFmpeg may place Opus pre-skip a few ms apart
    np.testing.assert_allclose(shots["start_s"].to_numpy(), times[first], atol=0.01)
    np.testing.assert_allclose(shots["end_s"].to_numpy()[:-1], times[first[1:]], atol=0.01)
    items = extract_shot_inputs(title, shots, frames_per_shot=2, size=16)
    for item, tone in zip(items, tones):
        assert tone_share(item.audio, tone) > 0.9, (item.shot_index, tone)
    starts, ends = shots["start_s"].to_numpy(), shots["end_s"].to_numpy()
    assert shot_texts(title, starts, ends) == texts
    return times


# -- case 1: variable frame rate ----------------------------------------------------------------
@pytest.mark.parametrize(
    "slow_fps, ext",
    [(12.5, "mp4"), (50, "mp4"), (12.5, "mkv")],
    ids=["25-then-12.5fps", "25-then-50fps", "mkv-25-then-12.5fps"],
)
def test_vfr_shot_times_audio_and_cues_follow_the_frames(tmp_path, slow_fps, ext):
    """25 fps for 4 s (red, 440 Hz), then `slow_fps` for 4 s (blue, 880 Hz), -fps_mode vfr.
    Matroska records no frame count: the decode is complete by the time it covers."""
    args = [
        "-f",
        "lavfi",
        "-i",
        "color=c=red:s=64x36:r=25:d=4",
        "-f",
        "lavfi",
        "-i",
        f"color=c=blue:s=64x36:r={slow_fps}:d=4",
        "-f",
        "lavfi",
        "-i",
        scene_tones([440, 880], [4, 4]),
        "-filter_complex",
        "[0:v][1:v]concat=n=2:v=1:a=0[v]",
        "-map",
        "[v]",
        "-map",
        "2:a",
        *X264,
        "-fps_mode",
        "vfr",
        *AAC,
    ]
    cues = srt_ab((0.5, 3.5), (4.5, 7.5))
    tdir = write_ffmpeg_title(tmp_path, "vfr", f"video.{ext}", args, cues)
    title = open_title(tdir)
    shots = detect_shots(title)
    assert shots["start_frame"].to_pylist() == [0, 100]
    times = check_scenes(title, shots, [440, 880], ["Scene A", "Scene B"])
    assert shots["start_s"][1].as_py() - shots["start_s"][0].as_py() == pytest.approx(4.0, abs=1e-6)
    # the last frame lasts as long as its neighbours (issue 19, case 9), not Matroska's default
    # duration (1/25 s, the first rate's)
    assert shots["end_s"][-1].as_py() == pytest.approx(times[-1] + 1 / slow_fps, abs=1e-6)


# -- case 2: streams that do not start at zero --------------------------------------------------
def test_mpegts_starting_late_cuts_audio_and_cues_on_the_picture_clock(tmp_path):
    """MPEG-TS: ffmpeg's mux delay starts the audio at 1.4 s and the video at 1.464 s."""
    args = [
        "-f",
        "lavfi",
        "-i",
        scene_video(["red", "blue"], [2, 2]),
        "-f",
        "lavfi",
        "-i",
        scene_tones([440, 880], [2, 2]),
        *X264,
        *AAC,
        "-f",
        "mpegts",
    ]
    tdir = write_ffmpeg_title(tmp_path, "ts", "video.ts", args, srt_ab((0.3, 1.7), (2.3, 3.7)))
    title = open_title(tdir)
    pts, start = ffprobe_frame_times(title.video_path)
    assert start > 1.0 and pts[0] > start  # the case at hand
    shots = detect_shots(title)
    assert shots["start_frame"].to_pylist() == [0, 50]
    check_scenes(title, shots, [440, 880], ["Scene A", "Scene B"])


@pytest.mark.parametrize("offset", [1.0, 0.5])
def test_mp4_video_starting_after_the_audio(tmp_path, offset):
    """-itsoffset: the video track starts `offset` s after the audio (220 Hz before the first
    picture, then 440 Hz under red, 880 Hz under blue). Audio before the first frame belongs to
    no shot."""
    args = [
        "-itsoffset",
        str(offset),
        "-f",
        "lavfi",
        "-i",
        scene_video(["red", "blue"], [2, 2]),
        "-f",
        "lavfi",
        "-i",
        scene_tones([220, 440, 880], [offset, 2, 2]),
        *X264,
        *AAC,
        "-fps_mode",
        "passthrough",
    ]
    cues = srt_ab((offset + 0.3, offset + 1.7), (offset + 2.3, offset + 3.7))
    tdir = write_ffmpeg_title(tmp_path, "late", "video.mp4", args, cues)
    # `mediafm shots` writes the table the encoders read: both sides on one clock
    assert main(["shots", str(tdir), "--out", str(tmp_path / "shots.parquet")]) == 0
    title = open_title(tdir)
    shots = load_shots(tmp_path / "shots.parquet", "late")
    assert shots["start_s"][0].as_py() == pytest.approx(offset, abs=0.04)  # ffmpeg: whole frames
    check_scenes(title, shots, [440, 880], ["Scene A", "Scene B"])
    first = extract_shot_inputs(title, shots, 1, 16)[0].audio
    assert tone_share(first, 220) < 0.02


# -- case 3: Matroska whose audio outlasts (or falls short of) the video ------------------------
@pytest.mark.parametrize(
    "video_s, audio_s, ext",
    [(12, 20, "mkv"), (4, 4.5, "mkv"), (4, 3.5, "mkv"), (4, 6, "webm")],
    ids=["12s-video-20s-audio", "4s-video-4.5s-audio", "4s-video-3.5s-audio", "webm-audio-longer"],
)
def test_matroska_audio_longer_than_video_is_not_truncated(tmp_path, video_s, audio_s, ext):
    half = video_s / 2
    codecs = (
        ["-c:v", "libvpx", "-deadline", "realtime", "-c:a", "libopus"]
        if ext == "webm"
        else [*X264, *AAC]
    )
    args = [
        "-f",
        "lavfi",
        "-i",
        scene_video(["red", "blue"], [half, half]),
        "-f",
        "lavfi",
        "-i",
        scene_tones([440, 880], [half, audio_s - half]),
        *codecs,
    ]
    title = open_title(write_ffmpeg_title(tmp_path, "mkv", f"video.{ext}", args))
    assert title.n_frames == 25 * video_s
    assert title.duration_s == pytest.approx(video_s, abs=0.05)
    shots = detect_shots(title)
    assert shots["start_frame"].to_pylist() == [0, 25 * half]
    assert shots["end_frame"][-1].as_py() == 25 * video_s
    check_scenes(title, shots, [440, 880], ["", ""])


def test_matroska_written_to_a_pipe_is_measured_from_its_packets(tmp_path):
    """`ffmpeg ... -f matroska -`: no segment duration, no DURATION tags (4 s video, 4.5 s
    audio); the video's length comes from its packets."""
    tdir = tmp_path / "piped"
    tdir.mkdir()
    args = [
        "ffmpeg",
        "-v",
        "error",
        "-nostdin",
        "-f",
        "lavfi",
        "-i",
        scene_video(["red", "blue"], [2, 2]),
        "-f",
        "lavfi",
        "-i",
        scene_tones([440, 880], [2, 2.5]),
        *X264,
        *AAC,
        "-f",
        "matroska",
        "-",
    ]
    with open(tdir / "video.mkv", "wb") as out:
        subprocess.run(args, stdout=out, check=True)
    (tdir / "metadata.json").write_text('{"name": "piped"}')
    title = open_title(tdir)
    assert (title.n_frames, title.duration_s) == (100, pytest.approx(4.0, abs=0.05))
    shots = detect_shots(title)
    assert shots["start_frame"].to_pylist() == [0, 50]
    check_scenes(title, shots, [440, 880], ["", ""])


def test_truncated_matroska_is_still_refused(tmp_path):
    args = [
        "-f",
        "lavfi",
        "-i",
        scene_video(["red", "blue"], [4, 4]),
        "-f",
        "lavfi",
        "-i",
        scene_tones([440, 880], [4, 6]),
        *X264,
        *AAC,
    ]
    tdir = write_ffmpeg_title(tmp_path, "cut", "video.mkv", args)
    truncate(tdir / "video.mkv", 0.5)
    with pytest.raises(TitleError, match="'cut'.*truncated"):
        decode_small(open_title(tdir))


# -- cases 4 and 5: frames as a viewer sees them ------------------------------------------------
# A 320x180 picture with a red box in the upper left and a blue box in the lower right of its
# central square (the encoder's centre crop).
MARKED = (
    "color=c=gray:s=320x180:r=25:d=0.4,"
    "drawbox=x=80:y=10:w=40:h=40:c=red:t=fill,drawbox=x=200:y=130:w=40:h=40:c=blue:t=fill"
)


def markers(frame: np.ndarray) -> dict[str, tuple[float, float, float]]:
    """Centroid (y, x) as shares of the side, and width/height, of the red and blue boxes."""
    f = frame.astype(int)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    out = {}
    for name, mask in (
        ("red", (r > 150) & (g < 90) & (b < 90)),
        ("blue", (b > 150) & (r < 90) & (g < 90)),
    ):
        ys, xs = np.nonzero(mask)
        assert len(ys) > 4, f"no {name} marker"
        h, w = frame.shape[:2]
        aspect = (xs.max() - xs.min() + 1) / (ys.max() - ys.min() + 1)
        out[name] = (ys.mean() / h, xs.mean() / w, aspect)
    return out


def encoder_frame(title) -> np.ndarray:
    shots = detect_shots(title)
    return extract_shot_inputs(title, shots, frames_per_shot=1, size=64)[0].frames[0]


def check_upright(frame: np.ndarray, aspect_tol: float = 0.2) -> None:
    m = markers(frame)
    red_y, red_x, red_aspect = m["red"]
    blue_y, blue_x, blue_aspect = m["blue"]
    # red box 80..120 x 10..50 of 320x180; crop = x 70..250 -> centre (30/180, 30/180)
    assert red_y == pytest.approx(30 / 180, abs=0.06) and red_x == pytest.approx(30 / 180, abs=0.06)
    assert blue_y == pytest.approx(150 / 180, abs=0.06)
    assert blue_x == pytest.approx(150 / 180, abs=0.06)
    assert red_aspect == pytest.approx(1.0, abs=aspect_tol)
    assert blue_aspect == pytest.approx(1.0, abs=aspect_tol)


@pytest.mark.parametrize(
    "rotate_tag, store, rotation",
    [("270", "transpose=cclock", -90), ("90", "transpose=clock", 90), ("180", "hflip,vflip", 180)],
    ids=["rotation-90", "rotation+90", "rotation180"],
)
def test_display_matrix_rotation_is_applied(tmp_path, rotate_tag, store, rotation):
    """Stored rotated with a display matrix (as phones write it); players show it upright."""
    stored = tmp_path / "stored.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        f"{MARKED},{store}",
        "-f",
        "lavfi",
        "-i",
        scene_tones([440], [0.4]),
        *X264,
        *AAC,
        str(stored),
    )
    args = ["-i", str(stored), "-c", "copy", "-metadata:s:v:0", f"rotate={rotate_tag}"]
    title = open_title(write_ffmpeg_title(tmp_path, "phone", "video.mp4", args))
    import av

    with av.open(str(title.video_path)) as c:
        assert next(c.decode(video=0)).rotation % 360 == rotation % 360  # the case at hand
    check_upright(encoder_frame(title))


@pytest.mark.parametrize(
    "stored, sar", [("240x180", "4/3"), ("320x120", "2/3")], ids=["sar4:3", "sar2:3"]
)
def test_non_square_pixels_are_resampled_to_display_aspect(tmp_path, stored, sar):
    """Stored anamorphic (scaled to `stored` with sample aspect `sar`); displayed 320x180."""
    w, h = stored.split("x")
    args = [
        "-f",
        "lavfi",
        "-i",
        f"{MARKED},scale={w}:{h},setsar={sar}",
        "-f",
        "lavfi",
        "-i",
        scene_tones([440], [0.4]),
        *X264,
        *AAC,
    ]
    title = open_title(write_ffmpeg_title(tmp_path, "anamorphic", "video.mp4", args))
    check_upright(encoder_frame(title), aspect_tol=0.15)
