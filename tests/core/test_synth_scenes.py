"""`mediafm synth-media --family scenes` (issue 20, part 3): real MP4 + AAC + WebVTT, scenes that
revisit sets (a set renders the same way on every visit, in every title), characters with their
own voice, shots the detector can cut, and labels that follow the scene and arc rules."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from mediafm_core.cli import main
from mediafm_core.media.decode import decode_small
from mediafm_core.media.titles import open_title
from mediafm_core.synthetic.scenes import (
    SceneMediaConfig,
    SceneRenderer,
    _Voices,
    arc,
    make_catalogue,
    write_scene_titles,
)
from tests.core.media_fixtures import read_truth

CFG = dict(n_titles=3, seconds=24, seed=3, width=128, height=72, speech="auto")


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    return root, write_scene_titles(root, SceneMediaConfig(**CFG))


def labels(root, task):
    return pq.read_table(root / "labels" / f"clips_{task}.parquet").to_pylist()


def test_titles_are_mp4_with_audio_and_webvtt_matching_the_truth(landing):
    import av
    import webvtt

    root, dirs = landing
    assert [d.name for d in dirs] == ["scenes_3_000", "scenes_3_001", "scenes_3_002"]
    for d in dirs:
        with av.open(str(d / "video.mp4")) as c:
            assert c.streams.video[0].codec_context.name == "h264"
            assert c.streams.audio[0].codec_context.name == "aac"
        truth = read_truth(d)
        assert open_title(d).n_frames == truth["n_frames"]
        cues = webvtt.read(str(d / "subtitles.vtt"))
        spoken = [s["line"] for s in truth["shots"] if s["line"]]
        assert [c.text for c in cues] == spoken and spoken
        assert all(s["speaker"] in truth["cast"] for s in truth["shots"] if s["line"])
        meta = json.loads((d / "metadata.json").read_text())
        assert meta["genres"] == truth["genres"]


def test_scenes_revisit_sets_and_a_set_renders_the_same_on_every_visit(landing):
    root, dirs = landing
    truths = [read_truth(d) for d in dirs]
    for truth in truths:
        visits = [s["set"] for s in truth["scenes"]]
        assert len(set(visits)) < len(visits)  # some set is visited twice
        assert all(a != b for a, b in zip(visits, visits[1:]))
    # The same set under the same framing: the same picture, in another scene or another title.
    cfg, cat = SceneMediaConfig(**CFG), make_catalogue(SceneMediaConfig(**CFG))
    shots = [(t, s) for t in truths for s in t["shots"] if s["on_screen"] is None]
    a, b = next(
        (x, y)
        for i, x in enumerate(shots)
        for y in shots[i + 1 :]
        if x[1]["set"] == y[1]["set"] and x[1]["scene"] != y[1]["scene"]
    )
    r1, r2 = SceneRenderer(cfg, cat, [], 0), SceneRenderer(cfg, cat, [], 1)
    framing = tuple(a[1]["framing"])
    assert np.array_equal(r1.view(a[1]["set"], framing, 0), r2.view(b[1]["set"], framing, 0))
    # ...and in the decoded video, frames of one set are closer than frames of two sets.
    frames = {t["title_id"]: decode_small(open_title(root / t["title_id"]), 32, 18) for t in truths}
    mid = [
        (
            s["set"],
            frames[t["title_id"]][(s["start_frame"] + s["end_frame"]) // 2]
            .astype(np.float32)
            .mean(axis=(0, 1)),
        )
        for t, s in shots
    ]
    same, other = [], []
    for i, (si, x) in enumerate(mid):
        for sj, y in mid[i + 1 :]:
            (same if si == sj else other).append(np.abs(x - y).mean())
    assert np.median(same) < 0.5 * np.median(other)


def test_characters_speak_in_their_own_voice():
    cfg = SceneMediaConfig(**CFG)
    voices = _Voices(cfg, make_catalogue(cfg))
    line = "pass me the keys please"
    hero, other = voices(line, 0), voices(line, 1)
    assert voices(line, 0) is hero  # one rendering per (line, character) for the whole run
    assert len(hero) != len(other) or not np.allclose(hero, other)


def test_the_detector_finds_the_cuts_inside_scenes(landing):
    from mediafm_core.media.shots import detect_shots

    root, dirs = landing
    found = total = 0
    for d in dirs:
        truth = read_truth(d)
        starts = detect_shots(open_title(d), "mediafm", 0.4, 30.0)["start_frame"].to_pylist()
        for s in truth["shots"][1:]:
            total += 1
            found += any(abs(s["start_frame"] - f) <= 3 for f in starts)
    assert found >= 0.9 * total


def test_labels_live_in_the_scene_the_arc_and_what_follows(landing):
    root, dirs = landing
    truths = {d.name: read_truth(d) for d in dirs}
    rows = {
        task: labels(root, task)
        for task in ("tone", "popularity", "retrieval", "ad_relevancy", "genre")
    }
    assert len({len(r) for r in rows.values()}) == 1
    covered = {t: [] for t in truths}
    follows = 0
    for tone, pop, ret, ad, genre in zip(*rows.values()):
        truth = truths[tone["title_id"]]
        s, e = tone["shot_start"], tone["shot_end"]
        covered[tone["title_id"]] += list(range(s, e))
        (k,) = {truth["shots"][i]["scene"] for i in range(s, e)}  # never crosses a scene
        scene = truth["scenes"][k]
        assert tone["labels"] == [scene["tone"]]
        hero = 0 in scene["cast"]
        assert ret["label"] == hero
        assert pop["score"] == pytest.approx(scene["intensity"] + 0.1 * hero, abs=0.1)
        want = {scene["topic"]} - {None}
        if e == scene["shots"][1] and k + 1 < len(truth["scenes"]):
            want |= {truth["scenes"][k + 1]["topic"]} - {None}
            follows += truth["scenes"][k + 1]["topic"] not in (None, scene["topic"])
        assert set(ad["labels"]) == want
        assert genre["labels"] == truth["genres"]
        assert tone["start_s"] == truth["shots"][s]["start_frame"] / truth["fps"]
    assert follows > 0  # some clip takes its ad label from the scene after it
    assert all(c == list(range(len(truths[t]["shots"]))) for t, c in covered.items())
    for truth in truths.values():  # intensity follows the arc: up to the climax, down after it
        n = len(truth["scenes"])
        for k, scene in enumerate(truth["scenes"]):
            assert abs(scene["intensity"] - arc((k + 0.5) / n, truth["climax"])) < 0.45


def test_cues_carry_the_scene_only_on_some_shots(landing):
    root, dirs = landing
    for d in dirs:
        truth = read_truth(d)
        for scene in truth["scenes"]:
            shots = truth["shots"][scene["shots"][0] : scene["shots"][1]]
            assert 1 <= sum(s["cue"] for s in shots) < len(shots) or len(shots) < 3
            assert sum(s["line"] is not None for s in shots) < len(shots) or len(shots) < 4


def test_cli_family_scenes(tmp_path, capsys):
    rc = main(
        [
            "synth-media",
            str(tmp_path / "lz"),
            "--family",
            "scenes",
            "--titles",
            "1",
            "--seconds",
            "6",
            "--seed",
            "4",
            "--size",
            "48x28",
            "--speech",
            "bursts",
        ]
    )
    assert rc == 0
    title = open_title(tmp_path / "lz" / "scenes_4_000")
    assert (title.width, title.height) == (48, 28)
    assert read_truth(tmp_path / "lz" / "scenes_4_000")["family"] == "scenes"
    assert labels(tmp_path / "lz", "tone")[0]["title_id"] == "scenes_4_000"
    assert "scenes_4_000" in capsys.readouterr().out
