"""Timed text: VTT + SRT parsing, markup/speaker stripping, encodings, shot assignment, errors."""

import codecs

import numpy as np
import pytest

from mediafm_core.errors import TitleError
from mediafm_core.media.subtitles import (
    Cue,
    assign_cues_to_shots,
    clean_cue_text,
    decode_subtitle_bytes,
    read_subtitles,
)
from tests.core.media_fixtures import shot_bounds, write_caption_feed

VTT = """WEBVTT

00:00:00.500 --> 00:00:02.000
<v John>Hello <i>there</i>, friend.</v>

intro-2
00:00:02.500 --> 00:00:04.000 line:0
{\\an8}<b>JOHN:</b> Where is the café?
- ANNA: Over there &amp; left.
"""

SRT = """1
00:00:00,500 --> 00:00:02,000
<i>Hello there</i>, friend.

2
00:00:02,500 --> 00:00:04,000
- Where is the café?
- [NARRATOR]: Over there.
"""


def write(tmp_path, name, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_vtt_parses_times_and_strips_markup(tmp_path):
    cues = read_subtitles(write(tmp_path, "subtitles.vtt", VTT.encode()), "t1")
    assert [(c.start_s, c.end_s) for c in cues] == [(0.5, 2.0), (2.5, 4.0)]
    assert cues[0].text == "Hello there, friend."
    assert cues[1].text == "Where is the café? Over there & left."


def test_srt_parses_times_and_strips_markup(tmp_path):
    cues = read_subtitles(write(tmp_path, "subtitles.srt", SRT.encode()), "t1")
    assert [(c.start_s, c.end_s) for c in cues] == [(0.5, 2.0), (2.5, 4.0)]
    assert [c.text for c in cues] == ["Hello there, friend.", "Where is the café? Over there."]


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("<v.loud Mary Jane>Run!</v>", "Run!"),
        (">> MR. SMITH: Sit down.", "Sit down."),
        ("(WHISPERING): quiet", "quiet"),
        ("Time: 5 pm", "Time: 5 pm"),  # not an upper-case speaker label
        ("<c.yellow>one</c>\n<00:00:01.000>two", "one two"),
        ("{\\i1}tilted{\\i0}", "tilted"),
    ],
)
def test_clean_cue_text(raw, clean):
    assert clean_cue_text(raw) == clean


@pytest.mark.parametrize(
    "encode",
    [
        lambda s: codecs.BOM_UTF8 + s.encode("utf-8"),
        lambda s: codecs.BOM_UTF16_LE + s.encode("utf-16-le"),
        lambda s: codecs.BOM_UTF16_BE + s.encode("utf-16-be"),
        lambda s: s.encode("utf-16-le"),  # no BOM, detected from NUL bytes
        lambda s: s.encode("cp1252"),
    ],
    ids=["utf8-bom", "utf16le-bom", "utf16be-bom", "utf16le-nobom", "cp1252"],
)
def test_encodings_decode_to_the_same_cues(tmp_path, encode):
    cues = read_subtitles(write(tmp_path, "subtitles.srt", encode(SRT)), "t1")
    assert cues[1].text == "Where is the café? Over there."


def test_undecodable_bytes_refused_naming_title():
    with pytest.raises(TitleError, match="'t9'.*not UTF-8, UTF-16 or cp1252"):
        decode_subtitle_bytes(b"WEBVTT\n\n\x81\x8d\x8f", "t9")


@pytest.mark.parametrize(
    "name, body, problem",
    [
        ("subtitles.vtt", "00:00:01.000 --> 00:00:02.000\nno header\n", "malformed vtt"),
        ("subtitles.vtt", "WEBVTT\n\n00:00:xx.000 --> 00:00:02.000\nbad time\n", "malformed vtt"),
        ("subtitles.srt", "1\n00:00:01,000 -> nonsense\nhello\n", "malformed srt"),
        ("subtitles.srt", "", "empty"),
        ("subtitles.srt", "1\n00:00:05,000 --> 00:00:01,000\nback\n", "ends before"),
        ("subtitles.ass", "[Script Info]\n", "unsupported format"),
    ],
)
def test_malformed_subtitles_raise_title_error(tmp_path, name, body, problem):
    with pytest.raises(TitleError, match=problem) as exc:
        read_subtitles(write(tmp_path, name, body.encode()), "broken-title")
    assert "broken-title" in str(exc.value)


def test_cues_assigned_by_overlap():
    cues = [
        Cue(0.5, 1.5, "a"),  # inside shot 0
        Cue(1.7, 2.9, "b"),  # 0.3 s in shot 0 (kept), mostly shot 1
        Cue(2.95, 4.2, "c"),  # grazes shot 1 by 0.05 s only -> shot 2
        Cue(9.0, 9.5, "d"),  # after every shot -> dropped
    ]
    texts = assign_cues_to_shots(cues, [0.0, 2.0, 3.0, 5.0], [2.0, 3.0, 5.0, 6.0])
    assert texts == ["a b", "b", "c", ""]


def test_no_cues_gives_empty_text_everywhere():
    assert assign_cues_to_shots([], [0.0, 1.0], [1.0, 2.0]) == ["", ""]


# -- issue 11, case 8: what the specs recover is recovered -------------------------------------
@pytest.mark.parametrize(
    "name, data",
    [
        ("subtitles.srt", b"\n1\n00:00:00,500 --> 00:00:02,000\nHello there\n"),  # printf case
        ("subtitles.srt", codecs.BOM_UTF8 + b"\n\n1\n00:00:00,500 --> 00:00:02,000\nHello there\n"),
        ("subtitles.srt", b"\r\n1\r\n00:00:00,500 --> 00:00:02,000\r\nHello there\r\n"),
        ("subtitles.srt", b"00:00:00,500 --> 00:00:02,000\nHello there\n"),  # no first index
    ],
    ids=["leading-blank-line", "bom-and-blank-lines", "crlf-and-blank-line", "no-index"],
)
def test_srt_with_blank_lines_before_the_first_cue_parses(tmp_path, name, data):
    assert read_subtitles(write(tmp_path, name, data), "t1") == [Cue(0.5, 2.0, "Hello there")]


@pytest.mark.parametrize(
    "separator", [" ", "\t", "   ", None], ids=["space", "tab", "spaces", "no-separator"]
)
@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_cue_blocks_split_as_the_webvtt_parsing_algorithm_splits_them(tmp_path, separator, newline):
    """A timing line starts a new cue block even when the line before is not empty (W3C WebVTT
    "collect a WebVTT block"); SRT separator lines of spaces count as empty (FFmpeg)."""
    sep = [] if separator is None else [separator]
    vtt = [
        "WEBVTT",
        "",
        "00:00:00.500 --> 00:00:02.000",
        "Hello",
        *sep,
        "00:00:02.500 --> 00:00:04.000",
        "World",
        "",
    ]
    cues = read_subtitles(write(tmp_path, "subtitles.vtt", newline.join(vtt).encode()), "t1")
    assert cues == [Cue(0.5, 2.0, "Hello"), Cue(2.5, 4.0, "World")]
    srt = [
        "1",
        "00:00:00,500 --> 00:00:02,000",
        "Hello",
        separator or "",
        "2",
        "00:00:02,500 --> 00:00:04,000",
        "World",
        "",
    ]
    cues = read_subtitles(write(tmp_path, "subtitles.srt", newline.join(srt).encode()), "t1")
    assert cues == [Cue(0.5, 2.0, "Hello"), Cue(2.5, 4.0, "World")]


def test_unreadable_cue_block_is_dropped_and_the_rest_kept(tmp_path, caplog):
    vtt = "WEBVTT\n\n00:00:xx.500 --> 00:00:02.000\nlost\n\n00:00:02.500 --> 00:00:04.000\nkept\n"
    assert read_subtitles(write(tmp_path, "subtitles.vtt", vtt.encode()), "t1") == [
        Cue(2.5, 4.0, "kept")
    ]
    assert "1 unreadable vtt cue block(s) dropped" in caplog.text and "'t1'" in caplog.text


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("<ruby>漢字<rt>かんじ</rt></ruby>を読む", "漢字を読む"),
        ("<ruby>漢字<rp>(</rp><rt>かんじ</rt><rp>)</rp></ruby>を読む", "漢字を読む"),
        ("<ruby>漢<rt>かん<rt>じ</ruby>字を読む", "漢字を読む"),  # HTML: </rt> is optional
        ("<ruby><i>東京</i><RT class='r'>とうきょう</RT></ruby>へ", "東京へ"),
    ],
    ids=["rt", "rp-fallback", "rt-without-end-tag", "upper-case-with-class"],
)
def test_ruby_annotations_are_dropped(tmp_path, raw, clean):
    assert clean_cue_text(raw) == clean
    vtt = f"WEBVTT\n\n00:00:00.500 --> 00:00:02.000\n{raw}\n"
    assert read_subtitles(write(tmp_path, "subtitles.vtt", vtt.encode()), "t1")[0].text == clean


# -- issue 19, case 7: huge caption files ------------------------------------------------------
def dense_assignment(cues, starts, ends, min_overlap_s=0.2) -> list[str]:
    """The cues x shots reference (the implementation before issue 19), for small inputs."""
    c0 = np.array([c.start_s for c in cues])[:, None]
    c1 = np.array([c.end_s for c in cues])[:, None]
    overlap = np.minimum(c1, np.asarray(ends)[None]) - np.maximum(c0, np.asarray(starts)[None])
    keep = overlap >= min_overlap_s
    best = overlap.argmax(axis=1)
    has = overlap[np.arange(len(cues)), best] > 0
    keep[np.arange(len(cues))[has], best[has]] = True
    texts = [[] for _ in starts]
    for ci, si in zip(*np.nonzero(keep)):
        if not texts[si] or texts[si][-1] != cues[ci].text:
            texts[si].append(cues[ci].text)
    return [" ".join(t) for t in texts]


@pytest.mark.parametrize("seed", range(6))
def test_cue_assignment_matches_the_dense_reference(seed):
    rng = np.random.default_rng(seed)
    starts, ends = shot_bounds(int(rng.integers(1, 60)), 120.0, seed)
    if seed % 2:  # gaps between shots, and shots given out of time order
        ends = ends - rng.uniform(0, 0.5, len(ends)) * (ends - starts)
        perm = rng.permutation(len(starts))
        starts, ends = starts[perm], ends[perm]
    t0 = rng.uniform(-5, 125, 300)
    spans = rng.choice([0.0, 0.1, 0.5, 3.0, 30.0], 300)
    cues = [Cue(a, a + d, f"c{int(a * 10) % 40}") for a, d in sorted(zip(t0, spans))]
    assert assign_cues_to_shots(cues, starts, ends) == dense_assignment(cues, starts, ends)


@pytest.mark.parametrize("mode, n_cues", [("roll-up", 12_000), ("words", 24_000)])
def test_huge_caption_files_are_assigned_in_linear_memory(tmp_path, mode, n_cues):
    """A 3 h title, 5,000 shots: 12k roll-up cues (each overlapping the two before), or 24k
    word-level cues. The dense cues x shots matrices took +917 MB and +1.8 GB."""
    import tracemalloc

    cues = read_subtitles(
        write_caption_feed(tmp_path / "subtitles.srt", n_cues, 3 * 3600.0, mode), "feed"
    )
    assert len(cues) == n_cues
    starts, ends = shot_bounds(5000, 3 * 3600.0)
    tracemalloc.start()
    try:
        texts = assign_cues_to_shots(cues, starts, ends)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50e6
    assert sum(map(bool, texts)) == 5000  # the feed covers every shot
    joined = " ".join(texts)
    assert all(f"{'line ' if mode == 'roll-up' else 'w'}{k}" in joined for k in (0, n_cues - 1))
    sub = [c for c in cues if c.start_s < 600]  # the first 10 minutes against the reference
    n, m = int(np.searchsorted(starts, 600.0)), int(np.searchsorted(ends, 590.0))
    assert texts[:m] == dense_assignment(sub, starts[:n], ends[:n])[:m]
