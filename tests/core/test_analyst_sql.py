"""The analyst's SQL answers clearly and sees the present (issue 12, part 7), on real LanceDB
tables and DuckDB with the lance extension under temp roots:
- a storage root with an apostrophe in its path (views, variables, macros, the demo summary);
- `mediafm sql "SELEC 1"`, a query on an empty root, `similar -k 0|-3`, `--root /does-not-exist`:
  one line naming the problem, exit 2;
- a long-lived session sees commits made after it opened (fresh cursor per statement);
- one distance convention (cosine distance) in the CLI and in SQL, and README's clip example gives
  the CLI's answer (the clip's own shots left out in both)."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mediafm_core.storage.lance_store import LanceStore
from mediafm_core.storage.layout import StorageLayout
from mediafm_core.tables import vector_array
from tests.store_rows import shot_rows, unit_rows

README = Path(__file__).resolve().parents[2] / "README.md"
RUN = [sys.executable, "-m", "mediafm_core"]


def title_rows(ids, d=16, seed=5, version="m1"):
    return pa.table(
        {
            "title_id": ids,
            "vector": vector_array(unit_rows(len(ids), d, seed)),
            "model_version": [version] * len(ids),
            "name": [t.upper() for t in ids],
            "genres": [["Drama"]] * len(ids),
            "tags": [[]] * len(ids),
            "n_shots": [5] * len(ids),
        }
    )


def fill(root: Path) -> LanceStore:
    store = LanceStore(StorageLayout(str(root)).lancedb)
    for i, t in enumerate(("a", "b", "c")):
        store.replace_titles("shot_embeddings", shot_rows(t, 6, seed=i))
    store.replace_titles("title_embeddings", title_rows(["a", "b", "c"]))
    return store


def cli(*args, root=None):
    extra = ["--root", str(root)] if root is not None else []
    out = subprocess.run([*RUN, args[0], *extra, *args[1:]], capture_output=True, text=True)
    return out.returncode, out.stdout, out.stderr


def test_a_root_with_an_apostrophe_keeps_every_view_and_variable(tmp_path):
    from mediafm_core.storage.sql import SqlSession

    root = tmp_path / "o'brien's catalogue"
    fill(root)
    session = SqlSession(str(root))
    assert session.sql("SELECT count(*) FROM shot_embeddings").fetchall() == [(18,)]
    assert session.sql("SELECT getvariable('mediafm_root')").fetchone()[0] == str(root)
    lance = session.sql("SELECT getvariable('shot_embeddings_lance')").fetchone()[0]
    assert lance == f"{root}/lancedb/shot_embeddings.lance"
    q = unit_rows(6, 16, 1)[2].tolist()  # shot 2 of title b
    top = session.sql(f"SELECT title_id, shot_index FROM nearest_shots({q}, 2)").fetchall()
    assert top[0] == ("b", 2)


def test_the_demo_summary_runs_under_a_root_with_an_apostrophe(tmp_path, capsys):
    from mediafm_assets.demo import summary

    root = tmp_path / "d'angelo"
    fill(root)
    layout = StorageLayout(str(root))
    for asset, table in {
        "titles": pa.table(
            {"title_id": ["a"], "name": ["A"], "genres": [["Drama"]], "duration_s": [12.0]}
        ),
        "shots": pa.table({"title_id": ["a"] * 6, "shot_index": list(range(6))}),
    }.items():
        Path(layout.artefact(asset)).mkdir(parents=True)
        pq.write_table(table, layout.artefact(asset, "a"))
    Path(layout.probes).mkdir(parents=True)
    pq.write_table(
        pa.table(
            {
                "features": ["fused"],
                "task": ["genre"],
                "metric": ["macro_ap"],
                "mean": [0.5],
                "std": [0.01],
                "folds": [[0.49, 0.51]],
                "n_clips": [20],
            }
        ),
        layout.probe_scores,
    )
    summary(root, "a", None)
    out = capsys.readouterr().out
    assert "LanceDB rows: shot_embeddings=18, title_embeddings=3" in out
    assert "Titles most similar to the just-arrived a" in out


@pytest.mark.parametrize(
    "args, problem",
    [
        (("sql", "SELEC 1"), "syntax error"),
        (("sql", "SELECT count(*) FROM shot_embeddings"), "views not available yet"),
        (("similar", "--title", "a", "-k", "0"), "-k: must be a positive number of results, got 0"),
        (("similar", "--title", "a", "-k", "-3"), "got -3"),
        (("similar-titles", "--title", "a", "-k", "0"), "got 0"),
    ],
)
def test_bad_requests_are_one_line_and_exit_2(tmp_path, args, problem):
    empty = args[0] == "sql" and "shot_embeddings" in args[1]
    root = tmp_path / "root"
    root.mkdir()
    if not empty:
        fill(root)
    rc, out, err = cli(*args, root=root)
    assert rc == 2, (out, err)
    assert len(err.strip().splitlines()) == 1 and problem in err, err
    assert "Traceback" not in err and out == ""


def test_a_missing_root_is_named_and_exit_2(tmp_path):
    for command in (
        ("sql", "SELECT 1"),
        ("similar", "--title", "a"),
        ("similar-titles", "--title", "a"),
    ):
        rc, out, err = cli(*command, root=tmp_path / "does-not-exist")
        assert rc == 2 and out == ""
        assert err.strip() == (
            f"mediafm {command[0]}: error: {tmp_path}/does-not-exist: storage "
            "root does not exist (pass --root or set MEDIAFM_ROOT)"
        )


def test_a_long_lived_session_sees_later_commits(tmp_path):
    from mediafm_core.storage.sql import SqlSession

    store = fill(tmp_path)
    session = SqlSession(str(tmp_path))
    assert session.sql("SELECT count(*) FROM shot_embeddings").fetchall() == [(18,)]
    new = shot_rows("d", 4, seed=9)
    session.sql("SET VARIABLE q = ?::FLOAT[16]".replace("?", str(unit_rows(4, 16, 9)[1].tolist())))
    store.replace_titles("shot_embeddings", new)  # another writer commits after the session opened
    store.replace_titles("shot_embeddings", shot_rows("a", 3, seed=0))  # a title re-detected
    counts = session.sql("SELECT title_id, count(*) FROM shot_embeddings GROUP BY 1 ORDER BY 1")
    assert counts.fetchall() == [("a", 3), ("b", 6), ("c", 6), ("d", 4)]
    # the variable set before the commit carries over; the vector search sees the new title
    top = session.sql("SELECT title_id, shot_index FROM nearest_shots(getvariable('q'), 1)")
    assert top.fetchall() == [("d", 1)]


def test_the_interactive_prompt_sees_a_commit_made_between_two_statements(tmp_path):
    fill(tmp_path)
    proc = subprocess.Popen(
        [*RUN, "sql", "--root", str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc.stdin.write("SELECT count(*) AS n FROM shot_embeddings;\n")
    proc.stdin.flush()
    first = [proc.stdout.readline() for _ in range(2)]
    LanceStore(StorageLayout(str(tmp_path)).lancedb).replace_titles(
        "shot_embeddings", shot_rows("z", 5, seed=3)
    )
    out, _ = proc.communicate("SELECT count(*) AS n FROM shot_embeddings;\n", timeout=60)
    assert [x.split() for x in first] == [["n"], ["18"]]
    assert out.split() == ["n", "23"]


def readme_clip_sql(title: str) -> str:
    """README's 'shots most similar to a clip' example, for `title`."""
    text = README.read_text()
    block = re.search(r"-- shots most similar to a clip.*?(?=\n\n)", text, re.S).group(0)
    return block.replace("synth_1_000", title)


def test_cli_and_sql_share_cosine_distance_and_leave_the_clip_out(tmp_path):
    from mediafm_core.storage.queries import clip_vector
    from mediafm_core.storage.sql import SqlSession

    store = fill(tmp_path)
    rc, out, err = cli(
        "similar", "--title", "a", "--start", "0", "--end", "8", "-k", "5", root=tmp_path
    )
    assert rc == 0, err
    header, *lines = out.splitlines()
    assert header.split() == [
        "title_id",
        "shot_index",
        "start_s",
        "end_s",
        "model_version",
        "distance",
    ]
    cli_rows = [(x.split()[0], int(x.split()[1]), float(x.split()[-1])) for x in lines]
    vec, span = clip_vector(store, "a", 0.0, 8.0)
    assert list(span) == [0, 1, 2, 3]
    assert not any(t == "a" and s in span for t, s, _ in cli_rows)  # the clip's own shots
    everything = store.read("shot_embeddings")
    cos = {
        (t, s): float(np.dot(v, vec))
        for t, s, v in zip(
            everything["title_id"].to_pylist(),
            everything["shot_index"].to_pylist(),
            everything["vector"].to_pylist(),
        )
    }
    for t, s, d in cli_rows:
        assert d == pytest.approx(1 - cos[(t, s)], abs=1e-4)  # cosine distance, not squared L2
    session = SqlSession(str(tmp_path))
    sql_rows = None
    for statement in filter(str.strip, readme_clip_sql("a").split(";")):
        rel = session.sql(statement)
        sql_rows = rel.fetchall() if rel is not None else sql_rows
    got = [(r[0], r[1]) for r in sql_rows][:5]
    assert got == [(t, s) for t, s, _ in cli_rows]
    assert [r[-1] for r in sql_rows][:5] == pytest.approx([d for _, _, d in cli_rows], abs=1e-3)
