"""Helpers that write small real media files for tests (PyAV), shared by the media tests and by
other test modules that need a landing-zone title.

`write_test_title(dir, ...)` writes a synthetic title (H.264 + AAC MP4, subtitles, metadata.json,
truth/boundaries.json) in about half a second; the other helpers write deliberately broken files.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np

from mediafm_core.synthetic.media import SynthMediaConfig, write_title


def small_config(**over) -> SynthMediaConfig:
    """A fast synthetic config: 96x54 at 25 fps, short shots, speech as bursts (no espeak)."""
    base = dict(width=96, height=54, fps=25, seconds=6.0, shot_s=(1.2, 2.0), speech="bursts")
    base.update(over)
    return SynthMediaConfig(**base)


def write_test_title(
    directory: str | Path,
    title_id: str = "title_a",
    seconds: float = 6.0,
    seed: int = 0,
    with_audio: bool = True,
    with_metadata: bool = True,
    metadata: dict | None = None,
    **config,
) -> Path:
    """Write one synthetic title `<directory>/<title_id>/` and return its folder.

    `metadata` replaces the generated metadata.json content; `config` overrides SynthMediaConfig
    fields (e.g. p_dissolve=0.5, flash_prob=1.0, speech="auto").
    """
    cfg = small_config(seconds=seconds, **config)
    tdir, _ = write_title(
        Path(directory),
        title_id,
        cfg,
        seed=seed,
        with_audio=with_audio,
        with_metadata=with_metadata and metadata is None,
    )
    if metadata is not None and with_metadata:
        (tdir / "metadata.json").write_text(json.dumps(metadata))
    return tdir


def read_truth(title_dir: str | Path) -> dict:
    return json.loads((Path(title_dir) / "truth" / "boundaries.json").read_text())


def write_mp4(
    path: str | Path,
    seconds: float = 1.0,
    video: bool = True,
    audio: bool = True,
    fps: int = 25,
    size: tuple[int, int] = (64, 36),
    faststart: bool = False,
    n_frames: int | None = None,
    audio_seconds: float | None = None,
    x264_params: str | None = None,
) -> Path:
    """A plain MP4 with a grey ramp video and/or a 440 Hz tone (for broken-stream cases).

    `x264_params` sets the encoder's GOP structure, e.g. "keyint=10:bframes=3:open-gop=1".
    """
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    opts = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=opts) as out:
        x264 = {"preset": "ultrafast"} | ({"x264-params": x264_params} if x264_params else {})
        vs = out.add_stream("libx264", rate=fps, options=x264) if video else None
        if vs is not None:
            vs.width, vs.height, vs.pix_fmt = size[0], size[1], "yuv420p"
        aus = out.add_stream("aac", rate=16000, layout="mono") if audio else None
        frames = int(seconds * fps) if n_frames is None else n_frames
        out.start_encoding()  # write the header even when no frame follows (zero-length video)
        for k in range(frames if vs is not None else 0):
            img = np.full((size[1], size[0], 3), (k * 7) % 256, np.uint8)
            img[:, : size[0] // 2] = (k * 13) % 256  # texture so frames do not compress away
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts = k
            out.mux(vs.encode(f))
        if aus is not None and frames:
            n = int((seconds if audio_seconds is None else audio_seconds) * 16000)
            x = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / 16000)).astype(np.float32)
            af = av.AudioFrame.from_ndarray(x[None], format="fltp", layout="mono")
            af.sample_rate, af.pts, af.time_base = 16000, 0, Fraction(1, 16000)
            out.mux(aus.encode(af))
            out.mux(aus.encode(None))
        if vs is not None:
            out.mux(vs.encode(None))
    return path


def truncate(path: str | Path, share: float) -> Path:
    """Keep only the first `share` of the file's bytes."""
    p = Path(path)
    data = p.read_bytes()
    p.write_bytes(data[: int(len(data) * share)])
    return p


def write_metadata(title_dir: str | Path, meta: dict | str) -> Path:
    p = Path(title_dir) / "metadata.json"
    p.write_text(meta if isinstance(meta, str) else json.dumps(meta))
    return p


def write_plain_title(directory: str | Path, title_id: str = "plain", **mp4) -> Path:
    """A title folder around `write_mp4(**mp4)` with a minimal metadata.json."""
    tdir = Path(directory) / title_id
    write_mp4(tdir / "video.mp4", **mp4)
    write_metadata(tdir, {"name": title_id})
    return tdir


def ffmpeg(*args: str) -> None:
    """Run Debian's ffmpeg CLI quietly (the issue-11 cases are built the way users build them)."""
    import subprocess

    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *args], check=True)


def scene_video(
    colours: list[str], seconds: list[float], size: str = "64x36", fps: float = 25
) -> str:
    """A lavfi graph: one flat colour per scene, cut together (an input for `ffmpeg -f lavfi`)."""
    parts = [
        f"color=c={c}:s={size}:r={fps}:d={d}[v{k}]"
        for k, (c, d) in enumerate(zip(colours, seconds))
    ]
    joined = "".join(f"[v{k}]" for k in range(len(colours)))
    return ";".join(parts) + f";{joined}concat=n={len(colours)}:v=1:a=0"


def scene_tones(freqs: list[float], seconds: list[float], rate: int = 16000) -> str:
    """A lavfi `aevalsrc` source: a sine of freqs[k] Hz during scene k (amplitude 0.3)."""
    expr, t0 = str(freqs[-1]), sum(seconds[:-1])
    for f, end in zip(freqs[-2::-1], np.cumsum(seconds[:-1])[::-1]):
        expr = f"if(lt(t,{end}),{f},{expr})"
    return f"aevalsrc='0.3*sin(2*PI*{expr}*t)':s={rate}:d={t0 + seconds[-1]}"


def write_ffmpeg_title(
    directory: str | Path,
    title_id: str,
    name: str,
    args: list[str],
    subtitles: str | None = None,
    subtitle_name: str = "subtitles.srt",
) -> Path:
    """A title folder `<directory>/<title_id>/` holding `name` (video.<ext>) written by ffmpeg
    from `args`, optional subtitles and a minimal metadata.json."""
    tdir = Path(directory) / title_id
    tdir.mkdir(parents=True, exist_ok=True)
    ffmpeg(*args, str(tdir / name))
    if subtitles is not None:
        (tdir / subtitle_name).write_text(subtitles, encoding="utf-8")
    write_metadata(tdir, {"name": title_id})
    return tdir


def _boxes(data: bytes | bytearray, lo: int, hi: int):
    """(type, offset, size) of the ISO-BMFF boxes in data[lo:hi]."""
    import struct

    i = lo
    while i < hi:
        size, kind = struct.unpack(">I4s", data[i : i + 8])
        size = struct.unpack(">Q", data[i + 8 : i + 16])[0] if size == 1 else size or hi - i
        yield kind.decode("latin-1"), i, size
        i += size


def reorder_moov(path: str | Path, key) -> Path:
    """Reorder the children of an MP4's `moov` box in place, sorted by `key(kind, index)` (mvhd
    kept first). Sample offsets point into `mdat`, so a file whose moov comes last (ffmpeg's
    default) stays valid: this is how tagging tools (mutagen) leave `udta` before the `trak`s."""
    p = Path(path)
    data = bytearray(p.read_bytes())
    for kind, i, size in list(_boxes(data, 0, len(data))):
        if kind == "moov":
            kids = list(_boxes(data, i + 8, i + size))
            order = sorted(
                range(len(kids)), key=lambda k: (kids[k][0] != "mvhd", key(kids[k][0], k))
            )
            data[i + 8 : i + size] = b"".join(
                bytes(data[kids[k][1] : kids[k][1] + kids[k][2]]) for k in order
            )
    p.write_bytes(data)
    return p


def srt_stamp(s: float) -> str:
    ms = round(s * 1000)
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def write_caption_feed(
    path: str | Path, n_cues: int, seconds: float, mode: str = "roll-up"
) -> Path:
    """An SRT file as live-caption feeds write them (issue 19, case 7), over `seconds`.

    "roll-up": each cue shows the last three lines, so it lasts three cue intervals and
    overlaps the two before it; "words": one word per cue, back to back.
    """
    step = seconds / n_cues
    span = 3 * step if mode == "roll-up" else step
    lines = []
    for k in range(n_cues):
        t0 = k * step
        text = f"line {k} of the feed" if mode == "roll-up" else f"w{k}"
        lines.append(f"{k + 1}\n{srt_stamp(t0)} --> {srt_stamp(min(t0 + span, seconds))}\n{text}\n")
    p = Path(path)
    p.write_text("\n".join(lines), encoding="utf-8")
    return p


def shot_bounds(n_shots: int, seconds: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(start_s, end_s) of `n_shots` contiguous shots of random lengths covering `seconds`."""
    lengths = np.random.default_rng(seed).uniform(0.3, 3.0, n_shots)
    edges = np.r_[0.0, np.cumsum(lengths)] * (seconds / lengths.sum())
    return edges[:-1], edges[1:]
