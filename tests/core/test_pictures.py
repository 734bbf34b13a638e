"""Pictures for the Dagster UI (issue 13): contact sheet, loss curve, probe chart, shot map; each
a decodable image of tens of kB at most, wrapped as a Markdown data-URL image."""

import base64
import io

import numpy as np
from PIL import Image

from mediafm_core import pictures
from mediafm_core.media.thumbnails import thumbnail_bytes


def image(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def thumbs(n: int, width: int = 160) -> list[bytes]:
    """n real thumbnails: flat colours running red -> blue, 16:9."""
    out = []
    for i in range(n):
        frame = np.zeros((90 * width // 160, width, 3), np.uint8)
        frame[..., 0], frame[..., 2] = 255 - 255 * i // max(1, n - 1), 255 * i // max(1, n - 1)
        out.append(thumbnail_bytes(frame))
    return out


def test_contact_sheet_lays_out_shots_in_order_with_a_transition_bar():
    sheet = image(
        pictures.contact_sheet(thumbs(10), np.arange(10) * 2.5, ["cut"] * 5 + ["gradual"] * 5)
    )
    tile, cols = pictures.SHEET_TILE, pictures.SHEET_COLUMNS
    assert sheet.width == cols * tile
    px = np.asarray(sheet)
    th = round(90 * (tile - 2) / 160)
    y0 = 16 + th // 2  # middle of the first row of tiles
    first, last_in_row = px[y0, tile // 2], px[y0, (cols - 1) * tile + tile // 2]
    assert first[0] > 200 > first[2] and last_in_row[2] > first[2]  # red first, bluer later
    assert tuple(px[y0, 2]) != tuple(px[y0, tile + 2])  # shot 0 has no bar, shot 1 (cut) has
    assert px[y0, tile + 2][0] > 180 and px[y0, tile + 2][2] < 90  # red bar: a cut
    y1 = 16 + (th + 14) + th // 2  # second row: shots 8, 9 (gradual: blue bar)
    assert px[y1, 2][2] > 150 and px[y1, 2][0] < 90


def test_contact_sheet_of_a_long_title_shows_an_even_sample_and_stays_small():
    data = pictures.contact_sheet(thumbs(300), np.arange(300) * 3.0)
    rows = -(-pictures.SHEET_MAX_TILES // pictures.SHEET_COLUMNS)
    assert image(data).height < 16 + rows * 100 and len(data) < 60_000
    assert list(pictures.sheet_rows(300)[[0, -1]]) == [0, 299]
    missing = image(pictures.contact_sheet([None, None], [0.0, 1.0]))  # no thumbnails: grey
    assert missing.width == pictures.SHEET_COLUMNS * pictures.SHEET_TILE


def test_loss_curve_probe_chart_and_shot_map_are_small_pngs():
    curve = [{"step": s, "train_loss": 1 / (1 + s / 20)} for s in range(0, 150, 10)]
    curve += [{"step": s, "train_loss": 0.3, "val_loss": 0.5 - s / 1000} for s in (50, 100, 150)]
    loss = pictures.loss_curve(curve, {"mean_shot": 0.6, "neighbour": 0.45})
    res = {
        r: {
            t: {"metric": "auc", "mean": 0.5 + 0.1 * i, "std": 0.05}
            for t in ("ad", "tone", "genre")
        }
        for i, r in enumerate(pictures.ROW_COLOURS)
    }
    res["clip_alone"]["genre"]["mean"] = float("nan")  # a task the probe could not score
    chart = pictures.probe_chart(res)
    rng = np.random.default_rng(0)
    smap = pictures.shot_map(rng.normal(size=(40, 16)), np.arange(40.0), thumbs(40, width=32))
    for data in (loss, chart, smap):
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and 1_000 < len(data) < 60_000
        assert min(image(data).size) > 150
    assert image(chart).width > image(loss).width / 2  # one panel per task


def test_markdown_image_is_a_base64_data_url():
    md = pictures.markdown_image(b"\x89PNG-bytes", "loss")
    assert md.startswith("![loss](data:image/png;base64,") and md.endswith(")")
    assert base64.b64decode(md.split(",", 1)[1][:-1]) == b"\x89PNG-bytes"


def test_pca_2d_finds_the_direction_of_largest_spread():
    t = np.linspace(-1, 1, 50)
    x = np.stack([t * 10, t * 0.1, np.zeros(50)], 1) + 5.0
    xy = pictures.pca_2d(x)
    assert xy.shape == (50, 2)
    np.testing.assert_allclose(np.abs(xy[:, 0]), np.abs(t * 10.0005), rtol=1e-3)
    assert pictures.pca_2d(x[:1]).shape == (1, 2)
