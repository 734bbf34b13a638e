"""Issue 17: training data streamed from a Parquet dataset (one file per title, as `fused_shots`
writes it), with reads bounded to the windows a step needs, and results equal to the in-memory
path."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from mediafm_core.errors import InputError
from mediafm_core.tables import read_vectors, vector_array, write_vectors
from mediafm_core.training import TrainConfig
from mediafm_core.training.checkpoint import weights_version
from mediafm_core.training.data import TitleWindows, rank_shard, step_generator
from mediafm_core.training.dataset import InMemoryTitles, ParquetTitles
from mediafm_core.training.trainer import Trainer
from tests.core.test_trainer import make_globals, make_titles


def write_dataset(folder, table, column="fused", per_shot=True):
    """One Parquet file per title, the layout of <root>/artefacts/fused_shots."""
    folder.mkdir(parents=True, exist_ok=True)
    for tid, rows in _by_title(table).items():
        cols = {"title_id": pa.array([tid] * len(rows), pa.string())}
        if per_shot:
            cols["shot_index"] = pa.array(np.arange(len(rows), dtype=np.int64))
        cols[column] = vector_array(rows)
        pq.write_table(pa.table(cols), folder / f"{tid}.parquet")
    return folder


def _by_title(table):
    return table.by_title() if hasattr(table, "by_title") else table


def cfg(**over) -> TrainConfig:
    base = dict(
        size="tiny",
        steps=6,
        batch_size=3,
        window=12,
        warmup=2,
        eval_every=3,
        checkpoint_every=3,
        log_every=3,
        val_fraction=0.25,
        seed=0,
        device="cpu",
    )
    return TrainConfig(**{**base, **over})


def test_streamed_folder_file_and_in_memory_table_give_bit_identical_weights(tmp_path):
    fused = make_titles(10, lo=5, hi=40)
    glob = make_globals(fused)
    folder = write_dataset(tmp_path / "fused_shots", fused)
    gfolder = write_dataset(tmp_path / "globals", glob, column="vector", per_shot=False)
    single = tmp_path / "fused.parquet"
    write_vectors(single, fused.title_ids, fused.shot_index, fused.vectors, column="fused")
    runs = {
        "memory": Trainer(cfg(), fused, glob, tmp_path / "a"),
        "folder": Trainer(cfg(), str(folder), str(gfolder), tmp_path / "b"),
        "folder, no prefetch": Trainer(cfg(prefetch=0), str(folder), str(gfolder), tmp_path / "c"),
        "file, in memory": Trainer(cfg(in_memory=True), str(single), glob, tmp_path / "d"),
    }
    for tr in runs.values():
        tr.fit()
    versions = {k: weights_version(tr.model.state_dict()) for k, tr in runs.items()}
    assert len(set(versions.values())) == 1, versions
    vals = {k: tr.last_val for k, tr in runs.items()}
    assert len(set(vals.values())) == 1 and vals["folder"] is not None
    assert isinstance(runs["folder"].data.fused, ParquetTitles)
    assert isinstance(runs["memory"].data.fused, InMemoryTitles)


def test_a_step_reads_only_its_windows_and_the_cache_stays_bounded(tmp_path):
    fused = make_titles(12, lo=40, hi=90)  # every title longer than the window
    folder = write_dataset(tmp_path / "fused_shots", fused)
    titles = ParquetTitles(str(folder), cache_mb=0.02)  # ~20 kB: a couple of titles
    data = TitleWindows(titles, None, window=16, val_fraction=0.25)
    read_rows = []
    real_read = titles.read

    def spy(tid, start=0, stop=None, count=True):
        x = real_read(tid, start, stop, count)
        read_rows.append((tid, len(x)))
        return x

    titles.read = spy
    sampled = set()
    for step in range(5):
        gen = step_generator(0, step)
        picks = torch.randint(len(data.shard), (4,), generator=step_generator(0, step)).tolist()
        sampled |= {data.shard[i] for i in picks}
        data.train_batch(4, 0.2, gen)
        kept = list(titles._cache.values())  # the LRU holds the newest group, and more only
        assert len(kept) == 1 or titles._cache_bytes <= titles._cache_limit  # within the limit
    assert {t for t, _ in read_rows} == sampled  # nothing but the drawn titles is read
    assert all(n == 16 for _, n in read_rows)  # one window each, never the whole title
    assert not set(titles.reads) & set(data.val_ids)
    truth = fused.by_title()
    x = titles.read(data.train_ids[0], 5, 21)
    np.testing.assert_array_equal(x, truth[data.train_ids[0]][5:21])


def test_single_file_with_unsorted_titles_and_several_row_groups_reads_like_read_vectors(
    tmp_path,
):
    fused = make_titles(5, lo=6, hi=20)
    order = np.random.default_rng(3).permutation(len(fused.title_ids))  # rows shuffled
    path = tmp_path / "shuffled.parquet"
    table = pa.table(
        {
            "title_id": pa.array(list(fused.title_ids[order]), pa.string()),
            "shot_index": pa.array(fused.shot_index[order]),
            "fused": vector_array(fused.vectors[order]),
        }
    )
    pq.write_table(table, path, row_group_size=7)
    titles = ParquetTitles(str(path))
    truth = read_vectors(path, column="fused").by_title()
    assert titles.title_ids == sorted(truth)
    for tid, rows in truth.items():
        assert titles.n_rows(tid) == len(rows)
        np.testing.assert_array_equal(titles.read(tid), rows)
        np.testing.assert_array_equal(titles.read(tid, 2, 5), rows[2:5])


def test_bad_titles_in_a_dataset_name_the_title_or_file(tmp_path):
    fused = make_titles(4)
    folder = write_dataset(tmp_path / "fused_shots", fused)
    bad = fused.by_title()["title-02"].copy()
    bad[1, 0] = np.nan
    write_dataset(folder, {"title-02": bad})
    titles = ParquetTitles(str(folder))
    with pytest.raises(InputError, match=r"title 'title-02'.*NaN or inf"):
        titles.read("title-02")
    titles.read("title-01")  # the others still read
    # a title in two files of one dataset is refused when it is opened
    pq.write_table(pq.read_table(folder / "title-01.parquet"), folder / "copy.parquet")
    with pytest.raises(InputError, match=r"title 'title-01' is also in"):
        ParquetTitles(str(folder))
    with pytest.raises(InputError, match="not found"):
        ParquetTitles(str(tmp_path / "nowhere"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no titles"):
        ParquetTitles(str(empty))


def test_rank_shards_are_disjoint_and_cover_the_training_titles():
    ids = [f"t{i:03d}" for i in range(11)]
    shards = [rank_shard(ids, r, 3) for r in range(3)]
    assert sorted(sum(shards, [])) == ids
    assert all(not set(a) & set(b) for i, a in enumerate(shards) for b in shards[i + 1 :])
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    assert rank_shard(ids, 0, 1) == ids  # one process: every title, in the same order
