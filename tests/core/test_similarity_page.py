"""`mediafm similar --html` and `mediafm similar-titles --html` (issue 13): one self-contained page,
the query's thumbnails first, then every result with its own thumbnail(s), name, times, distance."""

import base64
import io
import re

import numpy as np
import pyarrow as pa
from PIL import Image

from mediafm_core.cli import main
from mediafm_core.media.thumbnails import thumbnail_bytes
from mediafm_core.storage.lance_store import LanceStore
from mediafm_core.storage.layout import StorageLayout
from mediafm_core.storage.schemas import SHOT_EMBEDDINGS, TITLE_EMBEDDINGS

TITLES = {"t_red": (220, 20, 20), "t_green": (20, 220, 20), "t_blue": (20, 20, 220)}


def fill_store(root) -> LanceStore:
    """Three titles of four shots; each shot's thumbnail is its title's colour, and vectors of
    the same title point the same way (so a title's nearest shots are its own)."""
    store = LanceStore(StorageLayout(str(root)).lancedb)
    rng = np.random.default_rng(0)
    for k, (tid, colour) in enumerate(TITLES.items()):
        base = np.eye(8)[k] + 0.05 * rng.normal(size=(4, 8))
        vec = (base / np.linalg.norm(base, axis=1, keepdims=True)).astype(np.float32)
        thumb = thumbnail_bytes(np.full((90, 160, 3), colour, np.uint8))
        store.replace_titles(
            SHOT_EMBEDDINGS,
            pa.table(
                {
                    "title_id": [tid] * 4,
                    "shot_index": list(range(4)),
                    "start_s": [2.0 * i for i in range(4)],
                    "end_s": [2.0 * i + 2 for i in range(4)],
                    "vector": pa.array(list(vec), pa.list_(pa.float32(), 8)),
                    "model_version": ["m"] * 4,
                    "thumbnail": [thumb] * 4,
                }
            ),
        )
        mean = vec.mean(0) / np.linalg.norm(vec.mean(0))
        store.replace_titles(
            TITLE_EMBEDDINGS,
            pa.table(
                {
                    "title_id": [tid],
                    "vector": pa.array([mean], pa.list_(pa.float32(), 8)),
                    "model_version": ["m"],
                    "name": [f"Film {tid[2:]}"],
                    "genres": [["Drama"]],
                    "tags": [[]],
                    "n_shots": [4],
                }
            ),
        )
    return store


def images(html: str) -> list[tuple[str, np.ndarray]]:
    """(alt, mean RGB) of every inline image, in page order."""
    out = []
    for b64, alt in re.findall(r'<img src="data:image/webp;base64,([^"]+)" alt="([^"]*)">', html):
        img = Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB")
        out.append((alt, np.asarray(img).reshape(-1, 3).mean(0)))
    return out


def test_similar_html_shows_the_clip_then_each_result_shot_with_its_thumbnail(tmp_path, capsys):
    fill_store(tmp_path / "root")
    out = tmp_path / "pages" / "similar.html"
    code = main(
        [
            "similar",
            "--root",
            str(tmp_path / "root"),
            "--title",
            "t_red",
            "--start",
            "0",
            "--end",
            "4",
            "-k",
            "5",
            "--html",
            str(out),
        ]
    )
    assert code == 0 and f"page: {out}" in capsys.readouterr().out
    html = out.read_text()
    assert "http" not in html.replace("http-equiv", "")  # nothing fetched from anywhere
    query, results = html.split("<h2>Results</h2>")
    q_imgs, r_imgs = images(query), images(results)
    assert [a for a, _ in q_imgs] == ["#0 0.0s", "#1 2.0s"]  # the clip's two shots
    assert all(c.argmax() == 0 for _, c in q_imgs)  # red: the query title's pictures
    assert results.count('class="row result"') == 5 == len(r_imgs)  # every result has its image
    # nearest first: t_red's other two shots (its own title), then other titles' shots
    names = re.findall(r"\d+\. <b>([^<]+)</b>", results)
    assert names[:2] == ["Film red", "Film red"] and set(names[2:]) <= {"Film green", "Film blue"}
    assert [c.argmax() for _, c in r_imgs[:2]] == [0, 0]
    dists = [float(d) for d in re.findall(r"<span class='dist'>([0-9.]+)</span>", results)]
    assert dists == sorted(dists) and len(dists) == 5
    assert "shot 2, 4.00-6.00 s" in results  # times of a result


def test_similar_titles_html_shows_a_strip_per_title(tmp_path, capsys):
    store = fill_store(tmp_path / "root")
    out = tmp_path / "titles.html"
    assert (
        main(
            [
                "similar-titles",
                "--root",
                str(tmp_path / "root"),
                "--title",
                "t_green",
                "--html",
                str(out),
            ]
        )
        == 0
    )
    query, results = out.read_text().split("<h2>Results</h2>")
    assert len(images(query)) == 4 and all(c.argmax() == 1 for _, c in images(query))
    assert results.count('class="row result"') == 2
    colours = sorted(int(c.argmax()) for _, c in images(results))
    assert colours == [0] * 4 + [2] * 4  # red and blue titles, four shots each
    assert "Film red" in results and "Film blue" in results and "Drama" in results
    # a shot stored without a thumbnail shows a grey box, not a broken image
    from mediafm_core.similarity_page import similar_titles_page

    store.open(SHOT_EMBEDDINGS).update(where="title_id = 't_blue'", values={"thumbnail": None})
    from mediafm_core.storage.queries import similar_titles

    page = similar_titles_page(store, "t_green", similar_titles(store, "t_green"))
    assert page.count('<div class="none"></div>') == 4


def test_an_unwritable_html_target_is_one_line_and_exit_2(tmp_path, capsys):
    fill_store(tmp_path / "root")
    folder = tmp_path / "a_folder"
    folder.mkdir()
    code = main(
        [
            "similar",
            "--root",
            str(tmp_path / "root"),
            "--title",
            "t_red",
            "-k",
            "2",
            "--html",
            str(folder),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == f"mediafm similar: error: {folder}: cannot write the HTML page: Is a directory"
    assert list(tmp_path.glob(".*.tmp")) == []  # no temp file left beside it
    # The neighbour: a target under folders that do not exist yet is written.
    deep = tmp_path / "new" / "deeper" / "page.html"
    assert (
        main(
            [
                "similar-titles",
                "--root",
                str(tmp_path / "root"),
                "--title",
                "t_red",
                "--html",
                str(deep),
            ]
        )
        == 0
    )
    assert deep.read_text().startswith("<!doctype html>")
