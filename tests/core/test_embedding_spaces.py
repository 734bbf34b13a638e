"""A new embedding width is a supported move (issue 12, part 5), on real LanceDB tables and
DuckDB: a new space (model version + width) is written beside the serving one, which keeps
answering `similar` and SQL; the switch happens in one step once the new space holds every title,
and an open SQL session follows it. Nothing stored is lost: the old space's tables stay intact
(checked row by row). Mismatched widths into the encoder are one error naming the titles."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mediafm_core.errors import InputError
from mediafm_core.storage.lance_store import LanceStore
from mediafm_core.storage.layout import StorageLayout
from mediafm_core.tables import vector_array
from tests.store_rows import shot_rows, unit_rows

TITLES = ("a", "b", "c")


def title_row(title_id, d, seed, version):
    return pa.table(
        {
            "title_id": [title_id],
            "vector": vector_array(unit_rows(1, d, seed)),
            "model_version": [version],
            "name": [title_id.upper()],
            "genres": [["Drama"]],
            "tags": [[]],
            "n_shots": [5],
        }
    )


def write_space(store, titles, d, version, seed0=0, title_rows=True):
    for i, t in enumerate(titles):
        store.replace_titles("shot_embeddings", shot_rows(t, 5, d, seed0 + i, version))
        if title_rows:
            store.replace_titles("title_embeddings", title_row(t, d, seed0 + 10 + i, version))


def widths(store):
    return {
        n: store.open(n).schema.field("vector").type.list_size
        for n in ("shot_embeddings", "title_embeddings")
    }


def test_a_new_width_is_built_beside_the_old_space_and_switched_in_one_step(tmp_path):
    from mediafm_core.storage.queries import similar_shots, similar_titles
    from mediafm_core.storage.sql import SqlSession

    store = LanceStore(StorageLayout(str(tmp_path)).lancedb)
    write_space(store, TITLES, 16, "m1")
    old_rows = store.read("shot_embeddings")
    session = SqlSession(str(tmp_path))  # an analyst's session, open across the whole move
    # profile switch: 16 -> 32 wide, new checkpoint m2; the first titles are re-embedded
    write_space(store, TITLES[:2], 32, "m2", seed0=50)
    store.replace_titles("shot_embeddings", shot_rows("c", 5, 32, 52, "m2"))
    reader = LanceStore(StorageLayout(str(tmp_path)).lancedb)
    assert reader.serving_space().id == "m1/d16"  # the old space keeps serving
    assert widths(reader) == {"shot_embeddings": 16, "title_embeddings": 16}
    assert reader.read("shot_embeddings").equals(old_rows)
    assert similar_shots(reader, "a", k=3)["model_version"].to_pylist() == ["m1"] * 3
    assert session.sql("SELECT DISTINCT model_version FROM shot_embeddings").fetchall() == [("m1",)]
    assert reader.count_rows("shot_embeddings__m2_d32") == 15
    # the last title's title row completes the new space: one switch
    counts = store.replace_titles("title_embeddings", title_row("c", 32, 62, "m2"))
    assert counts["switched_space"] is True
    reader = LanceStore(StorageLayout(str(tmp_path)).lancedb)
    assert reader.serving_space().id == "m2/d32"
    assert widths(reader) == {"shot_embeddings": 32, "title_embeddings": 32}
    assert set(similar_titles(reader, "a", k=5)["model_version"].to_pylist()) == {"m2"}
    assert session.sql(
        "SELECT DISTINCT model_version, len(vector) FROM shot_embeddings"
    ).fetchall() == [("m2", 32)]
    q = session.sql("SELECT vector FROM shot_embeddings WHERE title_id = 'b' AND shot_index = 1")
    session.sql(f"SET VARIABLE q = {list(q.fetchone()[0])}::FLOAT[32]")
    top = session.sql("SELECT title_id, shot_index FROM nearest_shots(getvariable('q'), 1)")
    assert top.fetchall() == [("b", 1)]
    # nothing stored was lost: the previous space is still on disk, row for row
    assert reader.read("shot_embeddings", None).num_rows == 15
    assert (
        reader.db.open_table("shot_embeddings")
        .to_arrow()
        .sort_by([("title_id", "ascending"), ("shot_index", "ascending")])
        .equals(old_rows)
    )


def test_rows_of_the_serving_space_still_replace_in_place(tmp_path):
    store = LanceStore(StorageLayout(str(tmp_path)).lancedb)
    write_space(store, TITLES, 16, "m1")
    store.replace_titles("shot_embeddings", shot_rows("a", 3, 16, 99, "m1"))
    assert store.count_rows("shot_embeddings") == 13
    assert [n for n in store.db.table_names() if "__" in n] == []


def test_an_existing_store_from_before_spaces_is_adopted_as_the_serving_space(tmp_path):
    import lancedb

    uri = StorageLayout(str(tmp_path)).lancedb
    db = lancedb.connect(uri)
    db.create_table("shot_embeddings", shot_rows("a", 5, 16, 0, "old"))  # no spaces.json
    store = LanceStore(uri)
    store.replace_titles("shot_embeddings", shot_rows("b", 5, 16, 1, "old"))
    assert store.serving_space().id == "old/d16"
    assert store.count_rows("shot_embeddings") == 10


def test_rows_of_two_model_versions_in_one_write_are_refused(tmp_path):
    store = LanceStore(StorageLayout(str(tmp_path)).lancedb)
    mixed = pa.concat_tables([shot_rows("a", 2, 16, 0, "m1"), shot_rows("b", 2, 16, 1, "m2")])
    with pytest.raises(InputError, match="mix model versions"):
        store.replace_titles("shot_embeddings", mixed)
    assert not store.has_table("shot_embeddings")


def test_fused_vectors_of_another_width_name_the_titles_before_the_model_runs():
    from mediafm_core.inference import embed_titles
    from mediafm_core.model.configuration_mediafm import config_for
    from mediafm_core.model.modeling_mediafm import MediaFMEncoder

    model = MediaFMEncoder(config_for("tiny", fused_dim=16))
    titles = {"a": unit_rows(4, 16, 0), "b": unit_rows(3, 32, 1), "c": unit_rows(3, 32, 2)}
    with pytest.raises(
        InputError,
        match=r"2 title\(s\): fused width does not match the "
        r"checkpoint's 16: b \(32\), c \(32\)",
    ):
        embed_titles(model, titles)


def test_mixed_widths_in_the_training_input_are_one_error_naming_titles_and_widths(tmp_path):
    from mediafm_core.training.dataset import ParquetTitles

    def fused(tid, n, d):
        return pa.table(
            {
                "title_id": [tid] * n,
                "shot_index": np.arange(n),
                "fused": vector_array(unit_rows(n, d, 0)),
                "has_text": [True] * n,
            }
        )

    folder = tmp_path / "fused_shots"  # the training dataset: one Parquet file per title
    folder.mkdir()
    for tid, n, d in (("a", 3, 896), ("b", 2, 1920), ("c", 2, 896)):
        pq.write_table(fused(tid, n, d), folder / f"{tid}.parquet")
    with pytest.raises(InputError) as err:
        ParquetTitles(str(folder))
    assert str(err.value) == (
        f"{folder}: titles have mixed fused widths: 896 (a, c); "
        "1920 (b); re-encode them with one encoder profile, or train a new "
        "space on one width"
    )


def test_a_title_retired_during_a_migration_leaves_both_spaces(tmp_path):
    """Issue 12 parts 2 + 5: retiring while a new space is half built deletes the title's rows
    from the serving space AND the space being built, so it does not come back at the switch;
    the other titles' rows are untouched in both."""
    store = LanceStore(StorageLayout(str(tmp_path)).lancedb)
    write_space(store, TITLES, 16, "m1")
    write_space(store, TITLES[:2], 32, "m2", seed0=100)  # new space: a and b re-embedded
    new = [t for t in store.db.table_names() if t.startswith("shot_embeddings__")]
    assert len(new) == 1 and store.serving_space().model_version == "m1"
    kept_old = store.read("shot_embeddings", "b")
    assert store.delete_titles("shot_embeddings", ["a"]) == 5 + 5  # both spaces
    assert store.delete_titles("title_embeddings", ["a"]) == 1 + 1
    assert store.count_rows("shot_embeddings", ["a"]) == 0
    assert store.count_rows(new[0], ["a"]) == 0 and store.count_rows(new[0], ["b"]) == 5
    assert store.read("shot_embeddings", "b").equals(kept_old)
    write_space(store, ["c"], 32, "m2", seed0=102)  # the last live title: the switch happens
    assert store.serving_space().model_version == "m2"
    assert store.count_rows("shot_embeddings", ["a"]) == 0


def test_writes_of_a_re_embed_storm_do_not_scan_both_spaces_until_a_switch_is_possible(
    tmp_path, monkeypatch
):
    """Issue 17: each write of a new space asks whether it can switch; while the new title
    table has fewer rows than the serving one (manifest counts) the title ids are not scanned
    (a scan per write made the storm O(N^2)); the switch still happens at the last title."""
    store = LanceStore(StorageLayout(str(tmp_path)).lancedb)
    titles = [f"t{i}" for i in range(6)]
    write_space(store, titles, 16, "m1")
    scans = []
    real = store.titles_in
    monkeypatch.setattr(store, "titles_in", lambda *a, **k: scans.append(a[0]) or real(*a, **k))
    for i, t in enumerate(titles):
        store.replace_titles("shot_embeddings", shot_rows(t, 5, 16, 70 + i, "m2"))
        counts = store.replace_titles("title_embeddings", title_row(t, 16, 80 + i, "m2"))
        if i < len(titles) - 1:
            assert not scans, f"title {t}: scanned {scans}"
            assert counts["switched_space"] is False
    assert counts["switched_space"] is True and scans  # the full check ran once, and switched
    assert store.serving_space().id == "m2/d16"


def test_new_titles_are_appended_and_known_titles_merged_with_a_title_index(tmp_path):
    """Issue 17: a write of titles the table lacks is an append (a merge joins the whole table:
    O(rows) per write), a write of known titles a merge; both converge to exactly the rows
    written, and a table past 10,000 rows gets a BTREE index on title_id for those filters."""
    from mediafm_core.storage.lance_store import TITLE_INDEX

    store = LanceStore(StorageLayout(str(tmp_path)).lancedb)
    first = store.replace_titles(
        "shot_embeddings", pa.concat_tables([shot_rows(f"t{i:03d}", 250, 8, i) for i in range(41)])
    )
    assert first["write"] == "append" and first["inserted"] == 10_250
    assert TITLE_INDEX in {i.name for i in store.open("shot_embeddings").list_indices()}
    new = store.replace_titles("shot_embeddings", shot_rows("fresh", 7, 8, 99))
    assert new["write"] == "append" and new["inserted"] == 7
    again = store.replace_titles("shot_embeddings", shot_rows("fresh", 5, 8, 98))
    assert again["write"] == "merge" and again["deleted"] == 2

    def same(tid, want):
        got = store.read("shot_embeddings", tid)
        return all(got[c].to_pylist() == want[c].to_pylist() for c in want.column_names)

    assert same("fresh", shot_rows("fresh", 5, 8, 98))
    assert store.count_rows("shot_embeddings") == 10_255
    assert same("t007", shot_rows("t007", 250, 8, 7))


def test_a_storm_of_small_writes_keeps_the_fragment_count_bounded_and_every_row(tmp_path):
    """Issue 17: every append is a new Lance fragment, and every later filter, count and
    manifest read pays for each one; the write that passes `compact_fragments` merges them,
    and the rows (including a title re-written in between, a merge with deletions) stay
    exactly the ones last written."""
    from mediafm_core.storage.lance_store import LanceStoreConfig

    store = LanceStore(LanceStoreConfig(str(tmp_path / "lancedb"), compact_fragments=6))
    compacted = []
    for i in range(20):
        out = store.replace_titles("shot_embeddings", shot_rows(f"t{i:02d}", 3, 8, i))
        compacted.append(out["compacted"])
        if i == 9:
            store.replace_titles("shot_embeddings", shot_rows("t03", 2, 8, 99))
    fragments = len(store.open("shot_embeddings").to_lance().get_fragments())
    assert any(compacted) and fragments <= 7, (compacted, fragments)
    assert store.count_rows("shot_embeddings") == 19 * 3 + 2
    got = store.read("shot_embeddings", "t03")
    want = shot_rows("t03", 2, 8, 99)
    assert got["vector"].to_pylist() == want["vector"].to_pylist()
    assert store.read("shot_embeddings", "t17")["vector"].to_pylist() == (
        shot_rows("t17", 3, 8, 17)["vector"].to_pylist()
    )


def test_the_store_caps_lance_caches_and_looks_up_only_the_titles_asked_for(tmp_path):
    """Issue 17: Lance's default caches (1 GiB of metadata) kept every committed version's
    manifest, so a writer's memory grew with the storm; the store's session holds at most its
    configured bytes. `titles_among` answers for the given titles without the whole column."""
    from mediafm_core.storage.lance_store import LanceStoreConfig

    store = LanceStore(
        LanceStoreConfig(str(tmp_path / "lancedb"), metadata_cache_mb=1, index_cache_mb=1)
    )
    for i in range(40):
        store.replace_titles("shot_embeddings", shot_rows(f"t{i:02d}", 5, 16, i))
    assert 0 < store.session.size_bytes <= 2 << 20
    table = store.physical("shot_embeddings")
    assert store.titles_among(table, ["t01", "t39", "nope"]) == {"t01", "t39"}
    assert store.titles_among(table, []) == set()
    assert store.titles_among("no_such_table", ["t01"]) == set()
