"""Timed text: WebVTT and SRT subtitles read with webvtt-py, cleaned, and assigned to shots.

Encodings: UTF-8 (with or without BOM), UTF-16/32 with BOM, UTF-16 without BOM (detected from
its NUL bytes) and cp1252 (the usual legacy Windows encoding, tried last and logged). Anything
else is refused with an error naming the title.

What the specs recover is recovered (issue 11, case 8), and only what no parser could read is
refused: CRLF or CR line ends and blank lines before the first cue are accepted; WebVTT follows
the W3C parsing algorithm (webvtt-py's non-strict parser: a timing line starts a new cue block
even without an empty line before it, e.g. after a separator line holding a space; a cue block
whose timings cannot be read is dropped, with a warning); SRT separator lines holding only
spaces count as empty, as in FFmpeg's SubRip reader. Refused: a .vtt without the WEBVTT header,
an .srt whose first cue cannot be read, a file with cue blocks but none readable, cues that end
before they start.

Cleaning drops ruby annotations (<rt>, <rp>: the reading printed above the text), strips WebVTT
cue tags (<i>, <b>, <c.x>, <v Speaker>, inline timestamps), ASS/SSA override tags ({\\an8}),
HTML entities, dialogue dashes ("- ") and upper-case speaker labels ("JOHN:", ">> ANNA:",
"[NARRATOR]:").
"""

from __future__ import annotations

import codecs
import html
import io
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mediafm_core.errors import TitleError

logger = logging.getLogger(__name__)

SUBTITLE_SUFFIXES = (".vtt", ".srt")

_TAG = re.compile(r"<[^>\n]*>")
# A ruby annotation (<rt>) or fallback parenthesis (<rp>) with its content, up to its end tag or,
# as HTML allows, the next <rt>/<rp> or the end of the <ruby>.
_RUBY_TEXT = re.compile(
    r"<(rt|rp)\b[^>]*>.*?(?:</\1\s*>|(?=<(?:rt|rp)\b|</ruby\s*>)|$)", re.IGNORECASE | re.DOTALL
)
_ASS = re.compile(r"\{\\[^}\n]*\}")
_DASH = re.compile(r"^\s*(?:>>+|[-\u2013\u2014])\s*")
_SPEAKER = re.compile(r"^\s*(?:[A-Z][A-Z0-9 .'\-]{0,30}|\[[^\]\n]{1,30}\]|\([^)\n]{1,30}\))\s*:\s+")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Cue:
    """One cleaned subtitle cue, times in seconds from the start of the title."""

    start_s: float
    end_s: float
    text: str


def decode_subtitle_bytes(raw: bytes, title_id: str) -> str:
    """Bytes -> text; BOMs first, then UTF-16 without BOM, UTF-8, cp1252; else refuse."""
    boms = (
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    )
    for bom, enc in boms:
        if raw.startswith(bom):
            return _decode(raw[len(bom) :], enc, title_id)
    if b"\x00" in raw[:4096]:
        head = raw[:4096]
        enc = "utf-16-le" if head[1::2].count(0) > head[0::2].count(0) else "utf-16-be"
        return _decode(raw, enc, title_id)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        text = raw.decode("cp1252")
    except UnicodeDecodeError:
        raise TitleError(
            title_id, "subtitles are not UTF-8, UTF-16 or cp1252 text (re-save them as UTF-8)"
        ) from None
    logger.warning("title %r: subtitles are not UTF-8; decoded as cp1252", title_id)
    return text


def _decode(raw: bytes, encoding: str, title_id: str) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise TitleError(title_id, f"subtitles are not valid {encoding} ({exc.reason})") from None


def clean_cue_text(raw: str) -> str:
    """Strip markup, dialogue dashes and speaker labels; one line of plain text."""
    lines = []
    for line in _RUBY_TEXT.sub("", raw).splitlines():
        line = html.unescape(_ASS.sub("", _TAG.sub("", line)))
        line = _DASH.sub("", line)
        line = _SPEAKER.sub("", line)
        line = _DASH.sub("", line)
        if line.strip():
            lines.append(line.strip())
    return _SPACE.sub(" ", " ".join(lines)).strip()


def parse_subtitles(text: str, fmt: str, title_id: str) -> list[Cue]:
    """WebVTT ("vtt") or SubRip ("srt") text -> cleaned cues sorted by start time."""
    import webvtt
    from webvtt.errors import MalformedCaptionError, MalformedFileError

    text = _normalise(text, fmt)
    if not text.strip():
        raise TitleError(title_id, f"subtitle file ({fmt}) is empty")
    try:
        captions = webvtt.from_buffer(io.StringIO(text), format=fmt).captions
    except (MalformedFileError, MalformedCaptionError, ValueError, IndexError) as exc:
        raise TitleError(title_id, f"malformed {fmt} subtitles: {exc}") from None
    _check_dropped(text, len(captions), fmt, title_id)
    cues = []
    for c in captions:
        start = c.start_time.in_milliseconds() / 1000.0
        end = c.end_time.in_milliseconds() / 1000.0
        if end < start:
            raise TitleError(
                title_id,
                f"malformed {fmt} subtitles: cue ends before it starts ({c.start} --> {c.end})",
            )
        cleaned = clean_cue_text(c.raw_text)
        if cleaned:
            cues.append(Cue(start, end, cleaned))
    return sorted(cues, key=lambda q: (q.start_s, q.end_s))


def _normalise(text: str, fmt: str) -> str:
    """Text as the parsers expect it: no BOM, LF line ends, no blank lines before the first cue
    (SRT: separator lines of spaces emptied, a missing first index supplied)."""
    lines = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if fmt == "srt":
        lines = [line if line.strip() else "" for line in lines]
    while lines and not lines[0].strip():
        lines.pop(0)
    if fmt == "srt" and lines and "-->" in lines[0]:
        lines.insert(0, "1")  # a first cue without its index
    return "\n".join(lines)


def _check_dropped(text: str, n_captions: int, fmt: str, title_id: str) -> None:
    """Warn about cue blocks the parser dropped; refuse a file whose cue blocks all failed."""
    timings = [line for line in text.split("\n") if "-->" in line]
    dropped = len(timings) - n_captions
    if timings and n_captions == 0:
        raise TitleError(
            title_id, f"malformed {fmt} subtitles: no readable cue (first: {timings[0]!r})"
        )
    if dropped > 0:
        logger.warning("title %r: %d unreadable %s cue block(s) dropped", title_id, dropped, fmt)


def read_subtitles(path: str | Path, title_id: str) -> list[Cue]:
    """Read a .vtt or .srt file of a title into cleaned cues."""
    p = Path(path)
    fmt = p.suffix.lower().lstrip(".")
    if fmt not in ("vtt", "srt"):
        raise TitleError(title_id, f"subtitles {p.name}: unsupported format (use .vtt or .srt)")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise TitleError(title_id, f"subtitles {p.name}: cannot read ({exc.strerror})") from None
    return parse_subtitles(decode_subtitle_bytes(raw, title_id), fmt, title_id)


def find_subtitles(title_dir: str | Path) -> Path | None:
    """The title's subtitles file (subtitles.vtt, then subtitles.srt), if any."""
    for suffix in SUBTITLE_SUFFIXES:
        p = Path(title_dir) / f"subtitles{suffix}"
        if p.is_file():
            return p
    return None


def assign_cues_to_shots(cues: list[Cue], start_s, end_s, min_overlap_s: float = 0.2) -> list[str]:
    """Text of each shot: the cues overlapping it, in time order, joined by spaces.

    A cue goes to every shot it overlaps by at least `min_overlap_s` seconds, and always to
    the shot it overlaps most, so a cue that grazes a neighbouring shot does not leak into it
    and no cue inside the title is lost. Shots without cues get "".

    `start_s`, `end_s`: (S,) seconds. Time and memory grow with cues + shots + the (cue, shot)
    pairs that overlap (issue 19, case 7: 12k roll-up cues over 5k shots), never cues x shots:
    each cue's candidate shots are one run of the shots sorted by start (`_overlap_pairs`).
    """
    starts = np.asarray(start_s, dtype=np.float64).reshape(-1)  # (S,)
    ends = np.asarray(end_s, dtype=np.float64).reshape(-1)  # (S,)
    if not cues or len(starts) == 0:
        return ["" for _ in range(len(starts))]
    c_start = np.array([c.start_s for c in cues], np.float64)  # (C,)
    c_end = np.array([c.end_s for c in cues], np.float64)  # (C,)
    ci, si, overlap = _overlap_pairs(c_start, c_end, starts, ends)  # (P,) each, by cue
    keep = overlap >= min_overlap_s
    by_cue = np.lexsort((-overlap, ci))  # (P,) by cue, then overlap, largest first (stable)
    first = by_cue[np.r_[True, ci[by_cue][1:] != ci[by_cue][:-1]]] if len(ci) else by_cue
    keep[first] = True  # each cue's best shot
    texts: list[list[str]] = [[] for _ in range(len(starts))]
    order = np.lexsort((ci[keep], si[keep]))  # by shot, then cue (time order)
    for c, k in zip(ci[keep][order], si[keep][order]):
        if not texts[k] or texts[k][-1] != cues[c].text:
            texts[k].append(cues[c].text)
    return [" ".join(t) for t in texts]


def _overlap_pairs(
    c_start: np.ndarray, c_end: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cue index, shot index, overlap seconds) of every pair that overlaps (> 0 s), ordered by
    cue then shot start.

    With shots sorted by start, the shots a cue [a, b) can overlap are those starting before b
    (a prefix) whose end, or any earlier shot's end, passes a: the running maximum of the ends
    is sorted too, so both bounds are one `searchsorted` per cue. Contiguous shots make the run
    exactly the shots the cue overlaps.
    """
    order = np.argsort(starts, kind="stable")  # (S,)
    s_sorted, e_sorted = starts[order], ends[order]
    lo = np.searchsorted(np.maximum.accumulate(e_sorted), c_start, "right")  # (C,)
    hi = np.searchsorted(s_sorted, c_end, "left")  # (C,)
    n = np.maximum(hi - lo, 0)
    ci = np.repeat(np.arange(len(c_start)), n)  # (P,)
    offsets = np.arange(len(ci)) - np.repeat(np.cumsum(n) - n, n)
    pos = np.repeat(lo, n) + offsets  # position among the sorted shots
    overlap = np.minimum(c_end[ci], e_sorted[pos]) - np.maximum(c_start[ci], s_sorted[pos])
    hit = overlap > 0
    return ci[hit], order[pos[hit]], overlap[hit]
