"""Landing-zone titles: find a title's files, validate `metadata.json`, probe the media with PyAV.

A title is a folder `<landing_root>/<title_id>/` holding exactly one `video.*` (with a video and an
audio stream), an optional `subtitles.vtt` or `subtitles.srt`, and `metadata.json`, written last as
the ready marker (DESIGN.md "Data contracts"). Every problem raises a `TitleError` naming the title
and saying what is wrong, so one bad title fails only its own partition. No path may leave the
landing zone: title ids are single folder names and symlinks must resolve inside the title folder.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from mediafm_core.errors import TitleError

log = logging.getLogger(__name__)

# The 11 core genres of the seed (clip genre task); metadata genres must come from this list.
GENRES: tuple[str, ...] = (
    "Action",
    "Anime",
    "Comedy",
    "Documentary",
    "Drama",
    "Fantasy",
    "Horror",
    "Kids",
    "Romance",
    "Sci-fi",
    "Thriller",
)
_GENRE_BY_KEY = {g.lower(): g for g in GENRES}
# A title id is one folder name: no separators, no leading dot (rules out "." and "..").
TITLE_ID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,199}$")
METADATA_FILE = "metadata.json"
SUBTITLE_FILES = ("subtitles.vtt", "subtitles.srt")


class TitleNotReadyError(TitleError):
    """The title folder exists but `metadata.json` (the ready marker) is not there yet.

    Callers polling the landing zone (the arrival sensor) skip such titles instead of failing them.
    """


@dataclass(frozen=True)
class TitleMetadata:
    """The typed content of `metadata.json`; only `name` is required."""

    name: str  # display name, non-empty
    synopsis: str = ""  # free text, embedded into the title's global vector
    tags: tuple[str, ...] = ()  # free-form tags, embedded with the synopsis
    genres: tuple[str, ...] = ()  # subset of GENRES, canonical spelling
    # The audio track to embed: a container stream index, "a:N" or a language code; None = the
    # main mix (see pick_streams).
    audio_track: int | str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # unknown keys, kept for lineage


@dataclass(frozen=True)
class Title:
    """A ready, probed landing-zone title. Paths are resolved and inside the landing zone."""

    title_id: str  # folder name, unique in the landing zone
    title_dir: Path  # resolved folder
    video_path: Path  # the single video.* file
    subtitles_path: Path | None  # subtitles.vtt or .srt, None when absent
    metadata_path: Path  # metadata.json
    metadata: TitleMetadata
    duration_s: float  # video stream duration in seconds
    fps: float  # average frame rate of the video stream
    n_frames: int  # frame count from the container, else duration * fps (an estimate)
    width: int  # coded picture width in pixels
    height: int  # coded picture height in pixels
    has_audio: bool  # always True for an opened title (no-audio titles are refused)
    audio_sample_rate: int  # native sample rate of the audio stream in Hz
    # The presentation timeline every modality is cut on: a stream time t (seconds) is at
    # t - start_s on it, start_s being the container's start time (the earliest stream's first
    # timestamp), which players and ffmpeg show as 0. Shot times and subtitle cues are on it.
    start_s: float = 0.0
    time_base: Fraction | None = None  # of the video stream's timestamps
    sample_aspect: float = 1.0  # width / height of one stored pixel (SAR); 1 = square pixels
    # Container stream indices of the picture and sound every stage decodes (see pick_streams).
    video_stream: int = 0
    audio_stream: int = 1

    def error(self, problem: str) -> TitleError:
        """A TitleError for this title (for decoders and detectors that find problems later)."""
        return TitleError(self.title_id, problem)


def open_title(
    title_dir: str | os.PathLike, landing_root: str | os.PathLike | None = None
) -> Title:
    """Validate and probe one title folder.

    `title_dir` is a path, or a title id relative to `landing_root`. Without `landing_root` the
    title's parent folder is taken as the landing zone.
    """
    tdir, title_id = _locate(Path(title_dir), None if landing_root is None else Path(landing_root))
    video = _find_video(tdir, title_id)
    subtitles = _find_subtitles(tdir, title_id)
    meta_path = tdir / METADATA_FILE
    metadata = read_metadata(meta_path, title_id, tdir)
    probe = probe_media(video, title_id, metadata.audio_track)
    return Title(
        title_id=title_id,
        title_dir=tdir,
        video_path=video,
        subtitles_path=subtitles,
        metadata_path=meta_path,
        metadata=metadata,
        **probe,
    )


def _locate(title_dir: Path, landing_root: Path | None) -> tuple[Path, str]:
    """Resolve the title folder and check it is a direct child of the landing zone."""
    if landing_root is not None and not title_dir.is_absolute():
        raw_id = str(title_dir)
        if not TITLE_ID_RE.match(raw_id):
            raise TitleError(raw_id, "title id must be a single folder name (no '/', '..' or '.')")
        title_dir = landing_root / title_dir
    title_id = title_dir.name
    if not TITLE_ID_RE.match(title_id):
        raise TitleError(title_id, "title id must be a single folder name (no '/', '..' or '.')")
    root = (landing_root if landing_root is not None else title_dir.absolute().parent).resolve()
    if not title_dir.exists():
        raise TitleError(title_id, f"title folder {title_dir} does not exist")
    resolved = title_dir.resolve()
    if resolved.parent != root:
        raise TitleError(
            title_id, f"title folder resolves to {resolved}, outside landing zone {root}"
        )
    if not resolved.is_dir():
        raise TitleError(title_id, f"{title_dir} is not a folder")
    return resolved, title_id


def _inside(path: Path, tdir: Path, title_id: str) -> Path:
    """Resolve `path` (following symlinks) and refuse it when it leaves the title folder."""
    resolved = path.resolve()
    if resolved.parent != tdir:
        raise TitleError(title_id, f"{path.name} resolves to {resolved}, outside the landing zone")
    if not resolved.is_file():
        raise TitleError(title_id, f"{path.name} is not a regular file")
    return resolved


def _find_video(tdir: Path, title_id: str) -> Path:
    """The title's single `video.*` file (with a non-empty extension)."""
    found = sorted(p for p in tdir.iterdir() if p.stem == "video" and p.suffix)
    if not found:
        raise TitleError(title_id, "no video file (expected video.<ext>, e.g. video.mp4)")
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise TitleError(title_id, f"multiple video files ({names}); expected exactly one")
    video = _inside(found[0], tdir, title_id)
    if video.stat().st_size == 0:
        raise TitleError(title_id, f"{found[0].name} is empty (0 bytes)")
    return video


def _find_subtitles(tdir: Path, title_id: str) -> Path | None:
    """The optional subtitles file; both .vtt and .srt at once is ambiguous and refused."""
    found = [tdir / n for n in SUBTITLE_FILES if (tdir / n).exists() or (tdir / n).is_symlink()]
    if len(found) > 1:
        raise TitleError(title_id, "both subtitles.vtt and subtitles.srt present; keep one")
    return _inside(found[0], tdir, title_id) if found else None


def read_metadata(path: Path, title_id: str, tdir: Path | None = None) -> TitleMetadata:
    """Parse and validate `metadata.json`; a missing file means the title is not ready yet."""
    if not path.exists() and not path.is_symlink():
        raise TitleNotReadyError(title_id, f"not ready: {METADATA_FILE} has not been written yet")
    if tdir is not None:
        path = _inside(path, tdir, title_id)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise TitleError(title_id, f"{METADATA_FILE} is not UTF-8 text ({exc.reason})") from exc
    except json.JSONDecodeError as exc:
        raise TitleError(
            title_id,
            f"{METADATA_FILE} is not valid JSON ({exc.msg} at line {exc.lineno} "
            f"column {exc.colno})",
        ) from exc
    return parse_metadata(raw, title_id)


def parse_metadata(raw: Any, title_id: str) -> TitleMetadata:
    """Check the JSON object's fields and types; genres are matched case-insensitively."""
    if not isinstance(raw, dict):
        raise TitleError(
            title_id, f"{METADATA_FILE} must hold a JSON object, got {type(raw).__name__}"
        )
    name = raw.get("name")
    if name is None:
        raise TitleError(title_id, f"{METADATA_FILE} is missing the required field 'name'")
    if not isinstance(name, str) or not name.strip():
        raise TitleError(title_id, f"{METADATA_FILE} field 'name' must be a non-empty string")
    synopsis = raw.get("synopsis", "") or ""
    if not isinstance(synopsis, str):
        raise TitleError(title_id, f"{METADATA_FILE} field 'synopsis' must be a string")
    tags = _string_list(raw.get("tags", []), "tags", title_id)
    genres = tuple(
        _canonical_genre(g, title_id)
        for g in _string_list(raw.get("genres", []), "genres", title_id)
    )
    track = raw.get("audio_track")
    if track is not None and (isinstance(track, bool) or not isinstance(track, (int, str))):
        raise TitleError(
            title_id, f"{METADATA_FILE} field 'audio_track' must be a stream index or a string"
        )
    known = {"name", "synopsis", "tags", "genres", "audio_track"}
    extra = {k: v for k, v in raw.items() if k not in known}
    return TitleMetadata(
        name=name.strip(),
        synopsis=synopsis,
        tags=tags,
        genres=tuple(dict.fromkeys(genres)),
        audio_track=track,
        extra=extra,
    )


def _string_list(value: Any, key: str, title_id: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TitleError(title_id, f"{METADATA_FILE} field {key!r} must be a list of strings")
    return tuple(v.strip() for v in value if v.strip())


def _canonical_genre(genre: str, title_id: str) -> str:
    canonical = _GENRE_BY_KEY.get(genre.strip().lower())
    if canonical is None:
        raise TitleError(
            title_id, f"{METADATA_FILE} has unknown genre {genre!r}; allowed: {', '.join(GENRES)}"
        )
    return canonical


def probe_media(video: Path, title_id: str, audio_track: Any = None) -> dict[str, Any]:
    """Open the container, pick its streams (`pick_streams`; `audio_track` from metadata.json),
    check them and decode the first picture.

    Decoding one frame catches files whose header parses but whose payload is garbage; damage
    further in surfaces as a TitleError from the decoders.
    """
    import av

    try:
        with av.open(str(video)) as container:
            return _probe_streams(container, video, title_id, audio_track)
    except TitleError:
        raise
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError) as exc:
        raise TitleError(title_id, f"{video.name} is corrupt or truncated ({_short(exc)})") from exc


def _probe_streams(container: Any, video: Path, title_id: str, audio_track: Any) -> dict[str, Any]:
    if not container.streams:
        raise TitleError(title_id, f"{video.name} is zero-length media (no streams, no frames)")
    vs, aus = pick_streams(container, video.name, title_id, audio_track)
    rate = vs.average_rate or vs.guessed_rate or vs.base_rate
    fps = float(rate) if rate else 0.0
    if not fps > 0:
        raise TitleError(title_id, f"{video.name} has no usable frame rate")
    duration_s = _duration_s(container, vs)
    first = next(iter(container.decode(vs)), None)
    n_frames = int(vs.frames) if vs.frames else _tag_frames(vs, duration_s * fps)
    if first is not None and duration_s <= 0:  # no length announced (Matroska to a pipe)
        duration_s, n_frames = _scan_video(container, vs)
    if first is None or duration_s <= 0:
        raise TitleError(title_id, f"{video.name} has a zero-length video stream (no frames)")
    sar = vs.sample_aspect_ratio or vs.codec_context.sample_aspect_ratio
    return dict(
        duration_s=duration_s,
        fps=fps,
        n_frames=n_frames,
        width=int(vs.codec_context.width),
        height=int(vs.codec_context.height),
        has_audio=True,
        audio_sample_rate=int(aus.codec_context.sample_rate or aus.rate or 0),
        start_s=_start_s(container, vs),
        time_base=Fraction(vs.time_base) if vs.time_base else None,
        sample_aspect=float(sar) if sar and sar > 0 else 1.0,
        video_stream=vs.index,
        audio_stream=aus.index,
    )


# Audio dispositions that mark a track other than the main mix: audio description for the
# blind (visual_impaired), clean dialogue for the deaf (hearing_impaired), commentary.
_NOT_MAIN_MIX = ("visual_impaired", "hearing_impaired", "comment")
# ISO 639-1 -> the ISO 639-2 codes (bibliographic and terminology) containers carry.
_ISO639_2 = {
    "ar": ("ara",),
    "cs": ("cze", "ces"),
    "da": ("dan",),
    "de": ("ger", "deu"),
    "el": ("gre", "ell"),
    "en": ("eng",),
    "es": ("spa",),
    "fi": ("fin",),
    "fr": ("fre", "fra"),
    "he": ("heb",),
    "hi": ("hin",),
    "hu": ("hun",),
    "it": ("ita",),
    "ja": ("jpn",),
    "ko": ("kor",),
    "nl": ("dut", "nld"),
    "no": ("nor",),
    "pl": ("pol",),
    "pt": ("por",),
    "ro": ("rum", "ron"),
    "ru": ("rus",),
    "sv": ("swe",),
    "th": ("tha",),
    "tr": ("tur",),
    "uk": ("ukr",),
    "zh": ("chi", "zho"),
}


def pick_streams(container: Any, name: str, title_id: str, audio_track: Any = None) -> tuple:
    """(video stream, audio stream) a title is decoded from (issue 19, cases 1-2).

    Video: the first stream that is a moving picture, never cover art (`attached_pic`, which
    consumer tools may list first) nor a thumbnail track; data and subtitle streams are never
    candidates. Audio, as ffmpeg's own choice does: `audio_track` from metadata.json when given
    (see `_named_audio`), else the main mix: tracks marked visual_impaired (audio description),
    hearing_impaired or commentary are passed over, the one marked default is preferred, else
    the first. Raises TitleError when either stream is missing or `audio_track` names none.
    """
    pictures = [
        s for s in container.streams.video if not _disposed(s, "attached_pic", "timed_thumbnails")
    ]
    if not pictures:
        kind = "audio-only file" if container.streams.audio else "no picture"
        kind = "only cover art" if container.streams.video else kind
        raise TitleError(title_id, f"{name} has no video stream ({kind})")
    tracks = list(container.streams.audio)
    if not tracks:
        raise TitleError(title_id, f"{name} has no audio stream")
    if audio_track is not None:
        return pictures[0], _named_audio(tracks, audio_track, name, title_id)
    main = [s for s in tracks if not _disposed(s, *_NOT_MAIN_MIX)] or tracks
    default = [s for s in main if _disposed(s, "default")]
    return pictures[0], (default or main)[0]


def _disposed(stream: Any, *flags: str) -> bool:
    """Whether the stream carries any of the named dispositions (PyAV `Disposition` flags)."""
    from av.stream import Disposition

    return any(stream.disposition & getattr(Disposition, f) for f in flags)


def _named_audio(tracks: list, choice: Any, name: str, title_id: str) -> Any:
    """The audio stream metadata.json's `audio_track` names: an integer (or a string of digits)
    is the container's stream index (as ffprobe numbers streams), "a:N" the N-th audio stream
    (as `-map 0:a:N`), any other string a language (ISO 639-2 "eng" as containers store it, or
    639-1 "en"/"en-GB"); among several tracks in that language the main mix is taken as above."""
    text = str(choice).strip().lower()
    if isinstance(choice, int) or text.isdigit():
        found = [s for s in tracks if s.index == int(text)]
    elif re.fullmatch(r"a:\d+", text):
        k = int(text[2:])
        found = tracks[k : k + 1]
    elif re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]+)*", text):
        codes = {text.split("-")[0], *_ISO639_2.get(text.split("-")[0], ())}
        found = [s for s in tracks if (s.metadata or {}).get("language", "").lower() in codes]
        found = [s for s in found if not _disposed(s, *_NOT_MAIN_MIX)] or found
        found = [s for s in found if _disposed(s, "default")] or found
    else:
        raise TitleError(
            title_id,
            f"{METADATA_FILE} field 'audio_track' must be a stream index, "
            f"'a:N' or a language code, got {choice!r}",
        )
    if not found:
        have = ", ".join(f"#{s.index} {(s.metadata or {}).get('language', 'und')}" for s in tracks)
        raise TitleError(
            title_id,
            f"{METADATA_FILE} audio_track {choice!r} matches no audio "
            f"stream of {name} (audio streams: {have})",
        )
    return found[0]


def _start_s(container: Any, vs: Any) -> float:
    """The presentation timeline's origin in stream seconds: the container's start time (what
    ffmpeg subtracts by default and players show as 0), else the video stream's."""
    if container.start_time is not None:
        return container.start_time / 1_000_000
    return _stream_start_s(vs)


def _stream_start_s(vs: Any) -> float:
    """The video stream's first timestamp in seconds (0 when unknown)."""
    return float(vs.start_time * Fraction(vs.time_base)) if vs.start_time and vs.time_base else 0.0


def _duration_s(container: Any, vs: Any) -> float:
    """Length of the video stream in seconds (issue 11, case 3: not the container's, which is
    the longest stream's). In order: the stream's duration (MP4, MPEG-TS); the Matroska/WebM
    DURATION tag, the stream's end time (written by ffmpeg and mkvmerge), less its start; else
    the container's duration, an upper bound: a file without either whose audio outlasts its
    video is still called truncated."""
    if vs.duration and vs.time_base:
        return float(vs.duration * Fraction(vs.time_base))
    end = _tag_seconds(vs.metadata, "DURATION")
    if end is not None:
        return max(0.0, end - _stream_start_s(vs))
    if container.duration:
        return container.duration / 1_000_000
    return 0.0


def _scan_video(container: Any, vs: Any) -> tuple[float, int]:
    """(seconds, frames) of the video stream from its packets, read without decoding: for files
    whose container announces no length at all (Matroska written to a pipe has neither a segment
    duration nor DURATION tags). Nothing announced, so such a file is never called truncated."""
    container.seek(0)
    n, lo, hi = 0, None, None
    for packet in container.demux(vs):
        if packet.size == 0:
            continue  # the demuxer's end-of-stream packet
        n += 1
        if packet.pts is not None:
            lo = packet.pts if lo is None else min(lo, packet.pts)
            end = packet.pts + (packet.duration or 0)
            hi = end if hi is None else max(hi, end)
    seconds = float((hi - lo) * Fraction(vs.time_base)) if n and lo is not None else 0.0
    return seconds, n


def _tag(metadata: dict, key: str) -> str | None:
    """A stream tag by name, case-insensitively, with or without a language suffix
    ("DURATION-eng": mkvmerge's statistics tags)."""
    for k, v in (metadata or {}).items():
        if k.upper() == key or k.upper().startswith(key + "-"):
            return v
    return None


def _tag_seconds(metadata: dict, key: str) -> float | None:
    """An "HH:MM:SS.fffffffff" tag in seconds; None when absent or unreadable."""
    m = re.fullmatch(r"\s*(\d+):(\d{1,2}):(\d{1,2}(?:\.\d*)?)\s*", _tag(metadata, key) or "")
    return int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3]) if m else None


def _tag_frames(vs: Any, estimate: float) -> int:
    """mkvmerge's NUMBER_OF_FRAMES tag, else `estimate` (duration x average rate), at least 1."""
    value = _tag(vs.metadata, "NUMBER_OF_FRAMES")
    if value is not None and value.strip().isdigit() and int(value) > 0:
        return int(value)
    return max(1, round(estimate))


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
    return text[:200]
