"""encode_title on a small real MP4: all five tables, row counts, widths, metadata, atomicity."""

import json

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from mediafm_core.encoders.audio import AudioEncoder, AudioEncoderConfig
from mediafm_core.encoders.profiles import EncoderProfile, Encoders
from mediafm_core.encoders.text import SentenceTransformerTextEncoder, TextEncoderConfig
from mediafm_core.encoders.video import VideoEncoder, VideoEncoderConfig
from mediafm_core.errors import TitleError
from mediafm_core.fusion import FusionLayout
from mediafm_core.pipeline import encode_title
from mediafm_core.tables import read_vectors
from tests.core.tiny_encoders import TINY_VIT, tiny_w2v

torch.set_num_threads(1)

FPS, SECONDS, SR = 12, 3, 16000
VTT = """WEBVTT

00:00:00.100 --> 00:00:00.900
<i>JOHN:</i> Red room.

00:00:02.100 --> 00:00:02.900
Blue sky.
"""


def write_mp4(path, colours=((200, 30, 30), (30, 200, 30), (30, 30, 200))):
    """One second per colour, 64x48 H.264 + AAC tone, written with PyAV."""
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=FPS)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        aus = out.add_stream("aac", rate=SR)
        aus.layout = "mono"
        for i in range(FPS * SECONDS):
            img = np.zeros((48, 64, 3), np.uint8)
            img[:] = colours[i // FPS]
            for pkt in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
        t = np.arange(SR * SECONDS) / SR
        tone = (0.3 * np.sin(2 * np.pi * (220 + 220 * (t // 1)) * t)).astype(np.float32)
        for k in range(0, len(tone), 1024):
            frame = av.AudioFrame.from_ndarray(
                tone[None, k : k + 1024], format="flt", layout="mono"
            )
            frame.sample_rate = SR
            for pkt in aus.encode(frame):
                out.mux(pkt)
        for pkt in aus.encode():
            out.mux(pkt)


def make_title(root, title_id="t1", subtitles=VTT):
    d = root / title_id
    d.mkdir(parents=True)
    write_mp4(d / "video.mp4")
    if subtitles is not None:
        (d / "subtitles.vtt").write_text(subtitles)
    meta = {"name": "Test", "synopsis": "Three colours.", "tags": ["colour", "test"]}
    (d / "metadata.json").write_text(json.dumps(meta))
    return d


def shots_table(title_id="t1", bounds=((0, 12), (12, 24), (24, 36))):
    return pa.table(
        {
            "title_id": [title_id] * len(bounds),
            "shot_index": list(range(len(bounds))),
            "start_frame": [a for a, _ in bounds],
            "end_frame": [b for _, b in bounds],
            "start_s": [a / FPS for a, _ in bounds],
            "end_s": [b / FPS for _, b in bounds],
        }
    )


@pytest.fixture(scope="module")
def encoders():
    profile = EncoderProfile(
        name="tiny",
        video=VideoEncoderConfig(vision_cfg=TINY_VIT),
        audio=AudioEncoderConfig(arch=tiny_w2v(24)),  # 24 wide: audio != video (32) in layouts
        frames_per_shot=2,
        frame_size=32,
    )
    return Encoders(
        profile,
        VideoEncoder(profile.video),
        AudioEncoder(profile.audio),
        SentenceTransformerTextEncoder(TextEncoderConfig()),
    )


def test_encode_title_writes_every_table(tmp_path, encoders):
    title_dir = make_title(tmp_path / "landing")
    shots_path = tmp_path / "shots.parquet"
    other = shots_table("other-title", ((0, 5),))
    pq.write_table(pa.concat_tables([shots_table(), other]), shots_path)
    res = encode_title(title_dir, shots_path, tmp_path / "out", encoders=encoders)

    assert res.n_shots == 3 and res.n_with_text == 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "audio.parquet",
        "fused.parquet",
        "globals.parquet",
        "text.parquet",
        "video.parquet",
    ]
    widths = {"video": 32, "audio": 24, "text": 384}
    for name, dim in widths.items():
        vt = read_vectors(res.files[name], extra=("has_text",))
        assert vt.vectors.shape == (3, dim) and list(vt.shot_index) == [0, 1, 2]
        assert set(vt.title_ids) == {"t1"}
    text = read_vectors(res.files["text"], extra=("has_text",))
    assert list(text.extra["has_text"]) == [True, False, True]
    assert np.all(text.vectors[1] == 0) and np.all(np.linalg.norm(text.vectors[[0, 2]], axis=1) > 0)
    fused = read_vectors(res.files["fused"], column="fused", extra=("has_text",))
    assert fused.vectors.shape == (3, 32 + 24 + 384)
    np.testing.assert_allclose(np.linalg.norm(fused.vectors, axis=1), 1.0, atol=1e-5)
    assert np.all(fused.vectors[1, 56:] == 0)
    glob = read_vectors(res.files["globals"], keys=("title_id",))
    assert glob.vectors.shape == (1, 384) and np.linalg.norm(glob.vectors) > 0.5
    # distinct colours give distinct video vectors
    assert not np.allclose(
        read_vectors(res.files["video"]).vectors[0], read_vectors(res.files["video"]).vectors[2]
    )

    meta = pq.read_schema(res.files["fused"]).metadata
    layout = FusionLayout.from_json(meta[b"mediafm.layout"])
    assert [(s.modality, s.dim) for s in layout.slots] == [
        ("video", 32),
        ("audio", 24),
        ("text", 384),
    ]
    assert layout.slots[0].random_init is True and layout.slots[2].random_init is False
    enc_meta = json.loads(pq.read_schema(res.files["video"]).metadata[b"mediafm.encoder"])
    assert enc_meta == encoders.video.info.to_dict() and enc_meta["random_init"] is True
    assert {"open", "frames", "video", "audio", "text", "fusion", "write"} <= set(res.timings)


def test_title_without_subtitles_has_no_text(tmp_path, encoders):
    title_dir = make_title(tmp_path / "landing", subtitles=None)
    res = encode_title(title_dir, shots_table(), tmp_path / "out", encoders=encoders)
    text = read_vectors(res.files["text"], extra=("has_text",))
    assert not text.extra["has_text"].any() and np.all(text.vectors == 0)


def test_malformed_subtitles_fail_the_title_and_write_nothing(tmp_path, encoders):
    title_dir = make_title(tmp_path / "landing", subtitles="00:00:01.000 --> x\nnot vtt\n")
    out = tmp_path / "out"
    with pytest.raises(TitleError, match="'t1'.*malformed vtt"):
        encode_title(title_dir, shots_table(), out, encoders=encoders)
    assert not out.exists() or list(out.iterdir()) == []


def test_shots_of_another_title_only_is_an_error(tmp_path, encoders):
    title_dir = make_title(tmp_path / "landing")
    with pytest.raises(TitleError, match="no shots for this title"):
        encode_title(title_dir, shots_table("someone-else"), tmp_path / "out", encoders=encoders)


def test_rerun_is_deterministic_and_replaces_outputs(tmp_path, encoders):
    title_dir = make_title(tmp_path / "landing")
    out = tmp_path / "out"
    encode_title(title_dir, shots_table(), out, encoders=encoders)
    first = read_vectors(out / "fused.parquet", column="fused").vectors
    encode_title(title_dir, shots_table(), tmp_path / "again", encoders=encoders)
    np.testing.assert_array_equal(
        read_vectors(tmp_path / "again/fused.parquet", "fused").vectors, first
    )
    encode_title(title_dir, shots_table(bounds=((0, 18), (18, 36))), out, encoders=encoders)
    second = read_vectors(out / "fused.parquet", column="fused").vectors
    assert first.shape[0] == 3 and second.shape[0] == 2
    assert not any(p.name.startswith(".") for p in out.iterdir())


def test_cli_encode_test_tiny_profile(tmp_path, capsys):
    from mediafm_core.cli import main

    title_dir = make_title(tmp_path / "landing")
    pq.write_table(shots_table(), tmp_path / "shots.parquet")
    out = tmp_path / "out"
    args = ["encode", str(title_dir), "--shots", str(tmp_path / "shots.parquet")]
    rc = main(
        [
            *args,
            "--out",
            str(out),
            "--profile",
            "test-tiny",
            "--frames-per-shot",
            "2",
            "--device",
            "cpu",
            "--json",
        ]
    )
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["shots"] == 3 and summary["shots_with_text"] == 2
    assert summary["fused_dim"] == 32 + 32 + 384  # test-tiny profile widths
    fused = read_vectors(out / "fused.parquet", column="fused")
    assert fused.vectors.shape == (3, 448)


def test_cli_encode_bad_title_exits_2_with_one_line(tmp_path, capsys):
    from mediafm_core.cli import main

    title_dir = make_title(tmp_path / "landing", subtitles="garbage\n")
    pq.write_table(shots_table(), tmp_path / "shots.parquet")
    rc = main(
        [
            "encode",
            str(title_dir),
            "--shots",
            str(tmp_path / "shots.parquet"),
            "--out",
            str(tmp_path / "out"),
            "--frames-per-shot",
            "1",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err[-1].startswith("mediafm encode: error: title 't1': malformed vtt")


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda t: t.set_column(1, "shot_index", pa.array([0, 2, 3])), "without gaps"),
        (lambda t: t.set_column(5, "end_s", pa.array([1.0, 1.0, 3.0])), "start_s < end_s"),
        (lambda t: t.drop_columns(["start_frame"]), "missing column"),
    ],
)
def test_bad_shots_tables_are_refused(change, problem):
    from mediafm_core.errors import InputError
    from mediafm_core.pipeline import load_shots

    with pytest.raises(InputError, match=problem):
        load_shots(change(shots_table()), "t1")


def test_global_parts_are_synopsis_tags_and_genres_with_name_fallback():
    from mediafm_core.media.titles import TitleMetadata
    from mediafm_core.pipeline import global_parts

    meta = TitleMetadata(
        name="N", synopsis="A heist.", tags=("crime", " ", "night"), genres=("Thriller",)
    )
    assert global_parts(meta) == ["A heist.", "Tags: crime, night", "Genres: Thriller"]
    assert global_parts(TitleMetadata(name="Only a name")) == ["Only a name"]


def test_per_modality_tables_fuse_to_the_same_result(tmp_path, encoders):
    """The asset-per-modality path (encode_modality + fuse_tables) equals encode_title."""
    from mediafm_core.fusion import fuse_tables
    from mediafm_core.pipeline import encode_modality

    title_dir = make_title(tmp_path / "landing")
    whole = encode_title(title_dir, shots_table(), tmp_path / "whole", encoders=encoders)
    paths = {}
    for m in ("video", "audio", "text", "globals"):
        enc = encoders.text if m == "globals" else getattr(encoders, m)
        res = encode_modality(
            m,
            title_dir,
            shots_table(),
            enc,
            tmp_path / f"{m}.parquet",
            frames_per_shot=2,
            frame_size=32,
        )
        assert res.n_rows == (1 if m == "globals" else 3)
        paths[m] = res.path
        key = ("title_id",) if m == "globals" else ("title_id", "shot_index")
        np.testing.assert_array_equal(
            read_vectors(res.path, keys=key).vectors,
            read_vectors(whole.files[m], keys=key).vectors,
        )
    layout = fuse_tables({m: paths[m] for m in ("video", "audio", "text")}, tmp_path / "f.parquet")
    assert layout == whole.layout
    mine = read_vectors(tmp_path / "f.parquet", column="fused", extra=("has_text",))
    ref = read_vectors(whole.files["fused"], column="fused", extra=("has_text",))
    np.testing.assert_allclose(mine.vectors, ref.vectors, atol=1e-7)
    assert list(mine.extra["has_text"]) == [True, False, True]
    meta = pq.read_schema(tmp_path / "f.parquet").metadata
    assert FusionLayout.from_json(meta[b"mediafm.layout"]) == whole.layout


def test_fuse_tables_refuses_mismatched_shots(tmp_path, encoders):
    from mediafm_core.errors import InputError
    from mediafm_core.fusion import fuse_tables
    from mediafm_core.pipeline import encode_modality

    title_dir = make_title(tmp_path / "landing")
    two = shots_table(bounds=((0, 18), (18, 36)))
    paths = {
        "video": encode_modality(
            "video",
            title_dir,
            shots_table(),
            encoders.video,
            tmp_path / "v.parquet",
            frames_per_shot=1,
            frame_size=32,
        ).path,
        "audio": encode_modality(
            "audio", title_dir, two, encoders.audio, tmp_path / "a.parquet"
        ).path,
        "text": encode_modality(
            "text", title_dir, shots_table(), encoders.text, tmp_path / "t.parquet"
        ).path,
    }
    with pytest.raises(InputError, match="a.parquet: shots differ"):
        fuse_tables(paths, tmp_path / "f.parquet")
    assert not (tmp_path / "f.parquet").exists()


def test_one_shot_title_and_chunked_decoding(tmp_path, encoders):
    """A single-shot title works; encoding in chunks of shots (long titles) changes nothing."""
    title_dir = make_title(tmp_path / "landing")
    one = encode_title(
        title_dir, shots_table(bounds=((0, 36),)), tmp_path / "one", encoders=encoders
    )
    assert one.n_shots == 1 and one.n_with_text == 1
    whole = encode_title(title_dir, shots_table(), tmp_path / "a", encoders=encoders)
    chunked = encode_title(
        title_dir, shots_table(), tmp_path / "b", encoders=encoders, shot_chunk=2
    )
    for m in ("video", "audio"):
        np.testing.assert_allclose(
            read_vectors(chunked.files[m]).vectors, read_vectors(whole.files[m]).vectors, atol=1e-5
        )


@pytest.mark.parametrize("via", ["cli", "library"])
def test_subtitle_errors_come_before_the_encoders_load(tmp_path, monkeypatch, capsys, via):
    """Issue 11 case 8: a malformed subtitle file fails the title before any model loads (the
    offline profile takes 7-12 s to load)."""
    from mediafm_core.cli import main

    bad = "WEBVTT\n\n00:00:xx.000 --> 00:00:01.000\nno readable cue\n"
    title_dir = make_title(tmp_path / "landing", subtitles=bad)
    pq.write_table(shots_table(), tmp_path / "shots.parquet")
    loaded = []

    def from_profile(*args, **kwargs):
        loaded.append(args)
        raise RuntimeError("encoders loaded before the title's subtitles were checked")

    monkeypatch.setattr(Encoders, "from_profile", from_profile)
    if via == "cli":
        rc = main(
            [
                "encode",
                str(title_dir),
                "--shots",
                str(tmp_path / "shots.parquet"),
                "--out",
                str(tmp_path / "out"),
                "--profile",
                "test-tiny",
            ]
        )
        assert rc == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("mediafm encode: error: title 't1': malformed vtt subtitles")
    else:
        with pytest.raises(TitleError, match="'t1'.*malformed vtt"):
            encode_title(
                title_dir, tmp_path / "shots.parquet", tmp_path / "out", profile="test-tiny"
            )
    assert loaded == []
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_cli_encodes_several_titles_with_one_model_load_and_a_bad_one_fails_alone(
    tmp_path, capsys, monkeypatch
):
    """Issue 20 (media benchmark): 80 titles through `mediafm encode` paid the import and model
    load 80 times; several TITLE_DIRs share one load, and a bad title fails alone (exit 2)."""
    from mediafm_core.cli import main

    landing = tmp_path / "landing"
    dirs = [
        make_title(landing, "t1"),
        make_title(landing, "t2", subtitles="garbage\n"),
        make_title(landing, "t3"),
    ]
    for d in dirs:
        pq.write_table(shots_table(d.name), tmp_path / f"{d.name}.parquet")
    loads = []
    real = Encoders.from_profile.__func__
    monkeypatch.setattr(
        Encoders,
        "from_profile",
        classmethod(lambda cls, *a, **k: loads.append(a) or real(cls, *a, **k)),
    )
    rc = main(
        [
            "encode",
            *map(str, dirs),
            "--shots",
            *(str(tmp_path / f"{d.name}.parquet") for d in dirs),
            "--out",
            *(str(tmp_path / "out" / d.name) for d in dirs),
            "--profile",
            "test-tiny",
            "--frames-per-shot",
            "1",
            "--device",
            "cpu",
        ]
    )
    out, err = capsys.readouterr()
    assert rc == 2 and len(loads) == 1
    errors = [x for x in err.splitlines() if x.startswith("mediafm encode: error:")]
    assert len(errors) == 1 and errors[0].startswith("mediafm encode: error: title 't2': malformed")
    for name in ("t1", "t3"):
        fused = read_vectors(tmp_path / "out" / name / "fused.parquet", column="fused")
        assert fused.vectors.shape == (3, 448) and set(fused.title_ids) == {name}
    assert not (tmp_path / "out" / "t2").exists()
    assert "t1: 3 shots" in out and "t3: 3 shots" in out


def test_cli_encode_needs_one_shots_file_and_out_folder_per_title(tmp_path, capsys):
    from mediafm_core.cli import main

    d = make_title(tmp_path / "landing")
    rc = main(["encode", str(d), str(d), "--shots", "a.parquet", "--out", "o1", "o2"])
    assert rc == 2
    assert "2 titles need as many --shots and --out, got 1 and 2" in capsys.readouterr().err
