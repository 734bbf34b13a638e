"""Shot thumbnails (issue 13): made from the frames decoded for the video encoder, stored in the
video table, then in LanceDB `shot_embeddings` beside the vectors; replaced with the title's rows;
exposed by the DuckDB view as a BLOB."""

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from mediafm_core.media.decode import iter_shot_inputs
from mediafm_core.media.thumbnails import THUMB_WIDTH, shot_thumbnail, thumbnail_bytes
from mediafm_core.media.titles import open_title
from mediafm_core.pipeline import encode_modality, encode_title
from mediafm_core.storage.lance_store import LanceStore
from mediafm_core.storage.schemas import SHOT_EMBEDDINGS
from tests.core.test_pipeline import encoders, make_title, shots_table  # noqa: F401 (fixture)

COLOURS = ((200, 30, 30), (30, 200, 30), (30, 30, 200))  # the three one-second shots


def rgb(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_encode_title_stores_one_thumbnail_per_shot_from_the_encoder_frames(
    tmp_path,
    encoders,  # noqa: F811 (the fixture imported above)
):
    title_dir = make_title(tmp_path / "landing")
    res = encode_title(title_dir, shots_table(), tmp_path / "out", encoders=encoders)
    video = pq.read_table(res.files["video"])
    thumbs = video["thumbnail"].to_pylist()
    assert len(thumbs) == 3 and all(t[:4] == b"RIFF" and t[8:12] == b"WEBP" for t in thumbs)
    for data, colour in zip(thumbs, COLOURS):
        img = rgb(data)
        assert img.shape == (32, 32, 3)  # the profile's 32 px frames, never scaled up
        np.testing.assert_allclose(img.reshape(-1, 3).mean(0), colour, atol=12)
    # the very frames the encoder saw: the same bytes as a thumbnail of the decoded inputs
    title = open_title(title_dir)
    inputs = list(iter_shot_inputs(title, shots_table(), 2, 32))
    assert thumbs == [shot_thumbnail(s.frames) for s in inputs]
    assert "thumbnails" in res.timings
    for name in ("audio", "text", "fused"):  # only the video table carries them
        assert "thumbnail" not in pq.read_schema(res.files[name]).names


def test_encode_modality_video_has_thumbnails_audio_does_not(tmp_path, encoders):  # noqa: F811
    title_dir = make_title(tmp_path / "landing")
    v = encode_modality(
        "video",
        title_dir,
        shots_table(),
        encoders.video,
        tmp_path / "v.parquet",
        frames_per_shot=2,
        frame_size=32,
    )
    a = encode_modality("audio", title_dir, shots_table(), encoders.audio, tmp_path / "a.parquet")
    thumbs = pq.read_table(v.path)["thumbnail"].to_pylist()
    assert [rgb(t).reshape(-1, 3).mean(0).argmax() for t in thumbs] == [0, 1, 2]  # R, G, B
    assert "thumbnail" not in pq.read_schema(a.path).names


def test_a_224_px_encoder_frame_makes_a_160_px_thumbnail_of_a_few_kb(tmp_path):
    title_dir = make_title(tmp_path / "landing")
    shot = next(iter_shot_inputs(open_title(title_dir), shots_table(), 8, 224))
    data = shot_thumbnail(shot.frames)
    assert rgb(data).shape == (THUMB_WIDTH, THUMB_WIDTH, 3)
    assert len(data) < 4_000
    wide = thumbnail_bytes(np.zeros((180, 320, 3), np.uint8))  # aspect kept when scaling down
    assert rgb(wide).shape == (90, 160, 3)


def shot_rows(tid: str, n: int, fill: int, thumbs: bool = True) -> pa.Table:
    cols = {
        "title_id": [tid] * n,
        "shot_index": list(range(n)),
        "start_s": [float(i) for i in range(n)],
        "end_s": [float(i + 1) for i in range(n)],
        "vector": pa.array([[1.0, 0.0, 0.0, 0.0]] * n, pa.list_(pa.float32(), 4)),
        "model_version": ["m1"] * n,
    }
    if thumbs:
        img = np.full((16, 16, 3), fill, np.uint8)
        cols["thumbnail"] = pa.array([thumbnail_bytes(img)] * n, pa.binary())
    return pa.table(cols)


def test_lance_rows_keep_thumbnails_and_a_rerun_replaces_them(tmp_path):
    store = LanceStore(str(tmp_path / "lancedb"))
    store.replace_titles(SHOT_EMBEDDINGS, shot_rows("a", 3, fill=10))
    store.replace_titles(SHOT_EMBEDDINGS, shot_rows("b", 2, fill=10))
    store.replace_titles(SHOT_EMBEDDINGS, shot_rows("a", 2, fill=240))  # re-materialised: 2 shots
    a = store.read(SHOT_EMBEDDINGS, "a")
    assert a.num_rows == 2
    assert [rgb(t).mean() > 200 for t in a["thumbnail"].to_pylist()] == [True, True]
    b = store.read(SHOT_EMBEDDINGS, "b")
    assert [rgb(t).mean() < 30 for t in b["thumbnail"].to_pylist()] == [True, True]
    assert store.count_rows(SHOT_EMBEDDINGS) == 4  # a's third shot left with its thumbnail


def test_a_store_written_before_thumbnails_takes_the_column(tmp_path):
    import lancedb

    uri = str(tmp_path / "lancedb")
    old = shot_rows("old", 2, fill=0, thumbs=False)  # the pre-issue-13 schema
    lancedb.connect(uri).create_table(SHOT_EMBEDDINGS, old)
    store = LanceStore(uri)
    store.replace_titles(SHOT_EMBEDDINGS, shot_rows("new", 2, fill=200))
    rows = store.read(SHOT_EMBEDDINGS)
    thumbs = dict(zip(rows["title_id"].to_pylist(), rows["thumbnail"].to_pylist()))
    assert thumbs["old"] is None and rgb(thumbs["new"]).mean() > 150


def test_duckdb_view_exposes_thumbnail_as_blob(tmp_path):
    from mediafm_core.storage.layout import StorageLayout
    from mediafm_core.storage.sql import open_session

    root = tmp_path / "root"
    LanceStore(StorageLayout(str(root)).lancedb).replace_titles(
        SHOT_EMBEDDINGS, shot_rows("a", 3, fill=90)
    )
    con, _ = open_session(str(root))
    kind, n, size = con.sql(
        "SELECT typeof(thumbnail), count(*), sum(octet_length(thumbnail)) "
        "FROM shot_embeddings GROUP BY 1"
    ).fetchone()
    assert (
        kind == "BLOB"
        and n == 3
        and size == 3 * len(thumbnail_bytes(np.full((16, 16, 3), 90, np.uint8)))
    )
