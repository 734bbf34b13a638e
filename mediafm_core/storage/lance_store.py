"""LanceDB store of shot and title embeddings: idempotent per-title writes, ANN index, search.

A title's rows are replaced in ONE Lance commit with `merge_insert` keyed by the table's keys:
matched rows are updated, new rows inserted, and the title's rows missing from the new data deleted
(`when_not_matched_by_source_delete` filtered to the titles being written). Readers therefore see
either the old or the new rows of a title, never both or neither, and re-running never duplicates.

Concurrent writers (issue 12): Lance's commit conflict detection does not see two `merge_insert`s
that insert the same NEW keys (lance-format/lance#4585, #8949: both commits touch disjoint
fragments), so three writers of one new title left 3x rows. Chosen: a per-table write lock
(`filelock` on `<uri>.locks/<table>.lock`; for an s3:// store a lock under the local temp folder,
which holds back one machine's writers), and every write ends with a check: if the table holds
any other number of rows for the titles than were written (duplicates left by writers on other
machines, or by older code), the titles' rows are deleted and the new rows added (two commits,
only on this repair path), re-checked until they match. A title's write is thus a true replace:
whatever the table held for it before, exactly its new rows after. Why: a conditional commit with
retry needs Lance to detect the conflict, which it does not for inserts; a Dagster pool of 1
would have to cover the whole embedding step, not just its write. Measured (bench/lance_writes.py,
200 shots x 896 dims): 41 ms per write against 34 ms for the bare merge; 3 racing writers x 6
rounds leave 0 surplus rows (before: 100 surplus rows in 6 rounds).

An ANN index (IVF_SQ by default: 8-bit scalar quantisation, cosine) is built once a table holds
`index_min_rows` rows; rows added later are searched exactly until `optimize()` folds them into
the index. Searches use `nprobes` and a `refine_factor` re-rank on full vectors, which keeps
recall@10 high. IVF_SQ trains in about a second per 50k rows where IVF_PQ took about a minute
(bench/query.py), at 4x the index size of 64-way PQ.

Logical tables (`shot_embeddings`, `title_embeddings`) resolve to the serving embedding space's
tables; rows of another space (new checkpoint or width) are written beside them and the store
switches in one step once that space holds every title (`spaces.py`, issue 12 part 5).

An ANN index is built once a table holds `index_min_rows` rows, with its settings planned from
the data (`index_plan`; no index a type cannot train, e.g. IVF_PQ below 256 rows, whose empty
index breaks DuckDB's lance_vector_search). A shot table's IVF partitions are its titles
(`title_centroids`), other tables get ~sqrt(rows) k-means partitions. Rows written later are
searched exactly until `refresh_index()` folds them in, or retrains the partitions once 5 % of
the rows changed or the table doubled; the `ann_index` asset runs it on a schedule and a space
switch runs it before serving. Searches probe ~1.25 sqrt(partitions) (`nprobes_for`) and re-rank
`refine_factor` x k candidates on full vectors (bench/query.py: recall@10 0.985 at p50 7.3 ms on
1M rows, queries from titles not in the table).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mediafm_core.errors import InputError
from mediafm_core.storage.schemas import SCHEMAS, TABLE_KEYS, TITLE_EMBEDDINGS, conform
from mediafm_core.storage.spaces import (
    LOGICAL_TABLES,
    Space,
    logical_name,
    serving_space,
    serving_tables,
    write_serving,
)

log = logging.getLogger(__name__)
# Index statistics without the IVF centroids (MBs at scale; we read only partition counts).
os.environ.setdefault("LANCE_INCLUDE_VECTOR_CENTROIDS", "false")


@dataclass
class LanceStoreConfig:
    uri: str  # LanceDB folder (local path or s3://bucket/prefix/lancedb)
    index_min_rows: int = 100_000  # build the ANN index once a table has this many rows
    index_type: str = "IVF_SQ"  # IVF_SQ (fast build) | IVF_PQ (compact) | IVF_HNSW_SQ
    metric: str = "cosine"  # vectors are unit-norm; cosine == 1 - dot
    nprobes: int = 0  # IVF partitions probed per query; 0 = planned from the index (nprobes_for)
    refine_factor: int = 10  # re-rank k * refine_factor candidates on full vectors
    # upkeep removes table versions older than this, seconds (a reader holding an older
    # snapshot, e.g. a long query, needs its files: keep it longer than the longest query)
    retain_versions_s: float = 3600.0
    # Lance's caches (one Session per store). Lance's defaults (1 GiB of metadata, 6 GiB of
    # index) let a writer's memory grow with every version it commits: a re-embed storm of
    # 600 writes grew 560 MB on the defaults and stays flat at its cap with these (issue 17).
    metadata_cache_mb: int = 128  # manifests and fragment metadata
    index_cache_mb: int = 512  # IVF partitions and scalar index pages read by searches
    # compact a table once a write leaves it more than this many fragments (each append is one)
    compact_fragments: int = 64
    compact_rows_per_fragment: int = 131_072  # compacted fragments this large are left alone


def sql_quote(value: str) -> str:
    """A SQL string literal (single quotes doubled) for Lance filters."""
    return "'" + str(value).replace("'", "''") + "'"


def title_filter(title_ids) -> str:
    """A Lance filter matching the given titles."""
    return "title_id IN (" + ", ".join(sql_quote(t) for t in sorted(set(title_ids))) + ")"


class LanceStore:
    """The two embedding tables under one LanceDB folder."""

    def __init__(self, config: LanceStoreConfig | str):
        self.config = LanceStoreConfig(config) if isinstance(config, str) else config
        self._db = None
        self._serving: dict[str, str] | None = None  # logical -> physical, read once (refresh())
        self._partitions_cache: dict[tuple, int] = {}

    @property
    def db(self):
        if self._db is None:
            import lancedb

            from mediafm_core.storage.s3 import storage_options_for

            # s3://: endpoint, allow_http, credentials from the environment (storage/s3.py)
            opts = storage_options_for(self.config.uri)
            session = lancedb.Session(
                index_cache_size_bytes=self.config.index_cache_mb << 20,
                metadata_cache_size_bytes=self.config.metadata_cache_mb << 20,
            )
            self._db = lancedb.connect(
                self.config.uri, storage_options=opts or None, session=session
            )
            self.session = session  # its size_bytes: what the caches hold now
        return self._db

    def refresh(self) -> None:
        """Forget the cached serving tables (after a space switch, or to see another's)."""
        self._serving = None

    def physical(self, name: str) -> str:
        """The table behind `name`: a logical table's serving one; other names unchanged."""
        if name not in LOGICAL_TABLES:
            return name
        if self._serving is None:
            self._serving = serving_tables(self.config.uri)
        return self._serving[name]

    def has_table(self, name: str) -> bool:
        return self.physical(name) in self.db.table_names()

    def open(self, name: str):
        return self.db.open_table(self.physical(name))

    def _open_or_create(self, name: str, dim: int):
        if self.has_table(name):
            return self.open(name)
        schema = SCHEMAS[logical_name(name)](dim)
        return self.db.create_table(self.physical(name), schema=schema, exist_ok=True)

    def replace_titles(self, name: str, rows: pa.Table) -> dict:
        """Replace the rows of every title in `rows` with `rows`, in one commit. Returns counts.

        For a logical table the rows go to their embedding space's table (`route`); a write
        that completes a new space switches the serving space (`maybe_switch`). Raises
        `InputError` for empty rows, mixed model versions, or a width a table cannot hold.
        """
        if rows.num_rows == 0:
            raise InputError(name, "no rows to write")
        rows = conform(rows, logical_name(name))
        dim = rows.schema.field("vector").type.list_size
        space = None
        if name in LOGICAL_TABLES:
            space, name = self.route(name, rows)
        table = self._open_or_create(name, dim)
        have = table.schema.field("vector").type
        if pa.types.is_fixed_size_list(have) and have.list_size != dim:
            raise InputError(
                f"{self.config.uri}/{name}",
                f"vector width {dim} does not match the table's {have.list_size}; "
                "re-embed every title with one checkpoint or drop the table",
            )
        rows = _fit_columns(table, rows)
        titles = rows["title_id"].to_pylist()
        with self.write_lock(name):
            table.checkout_latest()
            counts = self._write(table, name, rows, titles)
            repaired = self._repair(name, rows, titles)
            counts["compacted"] = self.maybe_compact(name)
            self.ensure_title_index(name)
        self.maybe_index(name)
        switched = space is not None and self.maybe_switch(space)
        return {
            **counts,
            "repaired_rows": repaired,
            "table": name,
            "switched_space": switched,
        }

    def _write(self, table, name: str, rows: pa.Table, titles) -> dict:
        """One commit (under the write lock): titles the table does not hold yet are appended;
        otherwise a merge on the table's keys replaces them. The append matters at catalogue
        size: a merge joins against the whole table (1.7 s at 2.5 M rows, growing with it), so a
        re-embed storm into a new space, where every title is new, was O(N^2) (issue 17)."""
        where = title_filter(titles)
        if table.count_rows(where) == 0:
            table.add(rows)
            return {
                "inserted": rows.num_rows,
                "updated": 0,
                "deleted": 0,
                "version": int(table.version),
                "write": "append",
            }
        result = (
            table.merge_insert(TABLE_KEYS[logical_name(name)])
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .when_not_matched_by_source_delete(where)
            .execute(rows)
        )
        return {
            "inserted": int(result.num_inserted_rows),
            "updated": int(result.num_updated_rows),
            "deleted": int(result.num_deleted_rows),
            "version": int(result.version),
            "write": "merge",
        }

    def maybe_compact(self, name: str) -> bool:
        """Under the write lock: merge the table's small fragments once it has more than
        `compact_fragments` of them. Every write adds a fragment, and the cost of each later
        filter, count and manifest read grows with their number: a storm of 400 writes ran
        2.6x slower per write at its end than at its start without this (issue 17). Fragments
        of `compact_rows_per_fragment` rows or more are not rewritten again, so each row is
        rewritten about once. Old versions stay until `upkeep`. True when it compacted."""
        ds = self.open(name).to_lance()
        if len(ds.get_fragments()) <= self.config.compact_fragments:
            return False
        ds.optimize.compact_files(
            target_rows_per_fragment=self.config.compact_rows_per_fragment,
            materialize_deletions_threshold=0.1,
        )
        return True

    def ensure_title_index(self, name: str) -> bool:
        """A BTREE scalar index on `title_id` once the table has SCALAR_INDEX_MIN_ROWS rows, so
        the per-title filters of every write (is the title there? how many rows has it?) read
        the index, not the column; it is brought current (`optimize_indices`) once the rows
        written since it was built pass a tenth of the table. True when the table has one."""
        table = self.open(name)
        n = table.count_rows()
        if TITLE_INDEX not in {idx.name for idx in table.list_indices()}:
            if n < SCALAR_INDEX_MIN_ROWS:
                return False
            table.create_scalar_index("title_id", index_type="BTREE", name=TITLE_INDEX)
            return True
        stats = table.index_stats(TITLE_INDEX)
        if stats is not None and stats.num_unindexed_rows > max(SCALAR_INDEX_MIN_ROWS, n // 10):
            table.to_lance().optimize.optimize_indices(index_names=[TITLE_INDEX])
        return True

    def write_lock(self, name: str):
        """The per-table write lock (a `filelock.FileLock`, reentrant within one process).

        Local store: `<uri>.locks/<table>.lock`, shared by every process on the machine. s3://
        store: the same under the local temp folder, keyed by the URI (one machine's writers)."""
        import hashlib
        import os
        import tempfile

        from filelock import FileLock

        from mediafm_core.storage.layout import is_remote

        if is_remote(self.config.uri):
            digest = hashlib.sha256(self.config.uri.encode()).hexdigest()[:16]
            folder = os.path.join(tempfile.gettempdir(), "mediafm-locks", digest)
        else:
            folder = os.path.abspath(self.config.uri) + ".locks"
        os.makedirs(folder, exist_ok=True)
        return FileLock(os.path.join(folder, f"{name}.lock"))

    def _repair(self, name: str, rows: pa.Table, titles, attempts: int = 5) -> int:
        """Under the write lock: while the titles' row count differs from `rows` (duplicates),
        delete the titles' rows and add `rows`, re-checking after a short random pause (writers on
        other machines, which this lock does not hold back, may interleave). Returns the surplus
        rows first found (0 normally); raises InputError if `attempts` repairs did not converge."""
        import random
        import time

        where = title_filter(titles)
        first = None
        for attempt in range(attempts):
            table = self.open(name)
            have = int(table.count_rows(where))
            first = have - rows.num_rows if first is None else first
            if have == rows.num_rows:
                return first
            log.warning("%s: %d rows for %d written; replacing them", name, have, rows.num_rows)
            table.delete(where)
            table.add(rows)
            time.sleep(random.uniform(0, 0.2 * (attempt + 1)))
        raise InputError(
            f"{self.config.uri}/{name}",
            f"rows of {sorted(set(titles))[:5]} "
            f"still do not match after {attempts} repairs (concurrent writers?)",
        )

    def delete_titles(self, name: str, title_ids) -> int:
        """Delete every row of these titles, one commit per physical table (under its write
        lock): for a logical table, in every embedding space's table, so a title retired during
        a migration does not come back at the switch. Returns the rows removed (0 when none)."""
        if not title_ids:
            return 0
        where = title_filter(title_ids)
        if name in LOGICAL_TABLES:
            physical = [t for t in self.db.table_names() if logical_name(t) == name]
        else:
            physical = [name] if name in self.db.table_names() else []
        n = 0
        for table_name in physical:
            with self.write_lock(table_name):
                table = self.db.open_table(table_name)
                found = int(table.count_rows(where))
                if found:
                    table.delete(where)
                n += found
        return n

    def route(self, name: str, rows: pa.Table) -> tuple[Space, str]:
        """(space of `rows`, physical table to write) for a logical table. The first space a
        store sees (or the one its existing plain tables hold) becomes the serving space."""
        versions = sorted(set(rows["model_version"].to_pylist()))
        if len(versions) != 1:
            raise InputError(
                f"{self.config.uri}/{name}",
                f"rows mix model versions {versions}; write one space at a time",
            )
        space = Space(str(versions[0]), rows.schema.field("vector").type.list_size)
        serving = self.serving_space()
        if serving is None:  # first write, or a store from before spaces: adopt the plain tables
            serving = self._plain_space() or space.with_tables(first=True)
            write_serving(self.config.uri, serving, None)
            self.refresh()
        if space == serving:
            return serving, serving.table(name)
        return space.with_tables(first=False), space.with_tables(first=False).table(name)

    def serving_space(self) -> Space | None:
        """The serving space, read fresh from spaces.json (None before the first write)."""
        return serving_space(self.config.uri)

    def _plain_space(self) -> Space | None:
        """The space held by pre-existing plain `shot_embeddings` (first row's model version)."""
        names = self.db.table_names()
        if LOGICAL_TABLES[0] not in names:
            return None
        table = self.db.open_table(LOGICAL_TABLES[0])
        head = table.to_lance().head(1, columns=["model_version"])
        if head.num_rows == 0:
            return None
        width = table.schema.field("vector").type.list_size
        return Space(str(head["model_version"][0].as_py()), width).with_tables(first=True)

    def titles_in(self, table: str, names=None) -> set[str]:
        """Distinct title ids of a physical table (empty when it does not exist; `names`: the
        store's table list when the caller already has it)."""
        if table not in (self.db.table_names() if names is None else names):
            return set()
        col = self.db.open_table(table).to_lance().to_table(columns=["title_id"])["title_id"]
        return set(pc.unique(col).to_pylist())

    def titles_among(self, table: str, title_ids) -> set[str]:
        """Which of `title_ids` a physical table holds (empty when it does not exist): one
        filtered read of `title_id`, which the BTREE title index answers at catalogue size,
        where `titles_in` scans the whole column (issue 17: each write of a storm did)."""
        ids = sorted(set(title_ids))
        if not ids or table not in self.db.table_names():
            return set()
        ds = self.db.open_table(table).to_lance()
        col = ds.to_table(columns=["title_id"], filter=title_filter(ids))["title_id"]
        return set(pc.unique(col).to_pylist())

    def maybe_switch(self, space: Space) -> bool:
        """Switch readers to `space` in one step when it holds every title the serving space
        holds, in every logical table; its index is brought current first. Returns True when
        this call switched (or the space is already serving)."""
        serving = self.serving_space()
        if serving is None or serving == space:
            return serving is not None
        names = self.db.table_names()  # listed once, not once per table and check
        if self._surely_incomplete(space, serving, names):
            return False
        for logical in LOGICAL_TABLES:
            missing = self.titles_in(serving.table(logical), names) - self.titles_in(
                space.table(logical), names
            )
            if missing or space.table(logical) not in names:
                log.info(
                    "space %s: %s lacks %d of the serving titles", space.id, logical, len(missing)
                )
                return False
        for logical in LOGICAL_TABLES:
            self.refresh_index(space.table(logical))
        write_serving(self.config.uri, space, serving)
        self.refresh()
        log.info("switched the serving embedding space %s -> %s", serving.id, space.id)
        return True

    def _surely_incomplete(self, space: Space, serving: Space, names) -> bool:
        """True when the new space's title table has fewer rows (one per title) than the
        serving one's, read from the manifests alone: it then lacks some serving title. Checked
        first so that the writes of a re-embed storm do not each scan both spaces' title ids
        (O(rows) per write, O(N^2) for the storm; issue 17); the full check runs only once the
        counts allow a switch."""
        new, old = space.table(TITLE_EMBEDDINGS), serving.table(TITLE_EMBEDDINGS)
        if new not in names or old not in names:
            return new not in names and old in names
        return self.db.open_table(new).count_rows() < self.db.open_table(old).count_rows()

    def count_rows(self, name: str, title_ids=None) -> int:
        if not self.has_table(name):
            return 0
        where = title_filter(title_ids) if title_ids is not None else None
        return int(self.open(name).count_rows(where))

    def has_index(self, name: str) -> bool:
        return any("vector" in idx.columns for idx in self.open(name).list_indices())

    def index_state(self, name: str) -> dict:
        """{'rows', 'indexed', 'unindexed', 'index_type'} of a table (indexed = 0 without one)."""
        table = self.open(name)
        n = table.count_rows()
        stats = table.index_stats(VECTOR_INDEX) if self.has_index(name) else None
        if stats is None:
            return {"rows": n, "indexed": 0, "unindexed": n, "index_type": None}
        return {
            "rows": n,
            "indexed": int(stats.num_indexed_rows),
            "unindexed": int(stats.num_unindexed_rows),
            "index_type": stats.index_type,
        }

    def maybe_index(self, name: str, force: bool = False) -> bool:
        """Build the ANN index once the table is large enough (settings from `index_plan`);
        True when the table has one. `force` ignores `index_min_rows`, never trainability."""
        if self.has_index(name):
            return True
        table = self.open(name)
        n = table.count_rows()
        dim = table.schema.field("vector").type.list_size
        min_rows = 0 if force else self.config.index_min_rows
        plan = index_plan(n, dim, self.config.index_type, min_rows)
        if plan is None:
            return False
        log.info(
            "building %s index on %s (%d rows, dim %d, %d partitions)",
            plan.index_type,
            name,
            n,
            dim,
            plan.num_partitions,
        )
        self._build(table, plan, n)
        return True

    def _build(self, table, plan: IndexPlan, rows: int) -> None:
        """Train the index and record the rows it was trained on in the table's config. A
        shot table's IVF partitions are its titles (`title_centroids`); others use Lance's
        k-means with the planned partition count."""
        centroids = None
        if "shot_index" in table.schema.names and plan.index_type in TITLE_CENTROID_TYPES:
            centroids = title_centroids(table, rows)
        if centroids is None:
            table.create_index(
                metric=self.config.metric,
                vector_column_name="vector",
                replace=True,
                **plan.kwargs(),
            )
        else:
            extra = {"num_sub_vectors": plan.num_sub_vectors} if plan.num_sub_vectors else {}
            # the partition size is recorded so `optimize` keeps it (it merges "small" ones)
            size = max(1, rows // len(centroids))
            table.to_lance().create_index(
                "vector",
                plan.index_type,
                metric=self.config.metric,
                replace=True,
                ivf_centroids=centroids,
                target_partition_size=size,
                **extra,
            )
        self.db.open_table(table.name).to_lance().update_config(
            {PLAN_ROWS: str(rows), FOLDED_ROWS: "0"}
        )

    def refresh_index(self, name: str) -> dict:
        """Bring a table's ANN index current: build it once the table is large enough; retrain
        the partitions when the rows written since the training reach RETRAIN_SHARE of the
        table (re-embedded titles have moved away from their centroids) or the table has
        doubled; otherwise fold the new rows in (`optimize`, which also compacts fragments).
        Returns the index state before and after, and the action taken."""
        before = self.index_state(name)
        table = self.open(name)
        indexed = self.has_index(name)
        config = table.to_lance().config() if indexed else {}
        changed = int(config.get(FOLDED_ROWS, 0)) + before["unindexed"]
        if not indexed:
            action = "built" if self.maybe_index(name) else "none (too small: exact search)"
        elif changed >= RETRAIN_SHARE * before["rows"] or before["rows"] > 2 * int(
            config.get(PLAN_ROWS, before["rows"])
        ):
            dim = table.schema.field("vector").type.list_size
            self._build(
                table, index_plan(before["rows"], dim, self.config.index_type), before["rows"]
            )
            action = "retrained"
        else:
            table.optimize()  # compaction + unindexed rows folded into the existing partitions
            self.open(name).to_lance().update_config({FOLDED_ROWS: str(changed)})
            action = "optimized"
        return {"action": action, "before": before, "after": self.index_state(name)}

    def optimize(self, name: str) -> None:
        """Compact files and add rows written since the index was built to the index."""
        self.open(name).optimize()

    def upkeep(self, retain_s: float | None = None) -> dict:
        """Compact every table of the store (serving or not, indexed or not) and remove its
        versions older than `retain_s` seconds (default `retain_versions_s`), under each
        table's write lock. Every `replace_titles` is a new Lance version with new fragments;
        without this a store grows with every re-embedding (issue 18: 40 titles x 5
        re-embeddings, 241 versions, 6.3x a fresh store). Returns, per physical table, the
        versions and bytes on disk before and after and the seconds it took."""
        import time
        from datetime import timedelta

        keep = timedelta(seconds=self.config.retain_versions_s if retain_s is None else retain_s)
        report = {}
        for name in sorted(self.db.table_names()):
            t0 = time.perf_counter()
            table = self.db.open_table(name)
            before = {"versions": len(table.list_versions()), "bytes": self.disk_bytes(name)}
            with self.write_lock(name):
                table.checkout_latest()
                table.optimize(cleanup_older_than=keep)
            after = {
                "versions": len(self.db.open_table(name).list_versions()),
                "bytes": self.disk_bytes(name),
            }
            report[name] = {
                "before": before,
                "after": after,
                "seconds": round(time.perf_counter() - t0, 3),
            }
        return report

    def disk_bytes(self, name: str) -> int:
        """Bytes on disk (or in the bucket) of a physical table's folder, every version's files."""
        from mediafm_core.storage.s3 import fsspec_filesystem, is_s3

        uri = self.db.open_table(name).to_lance().uri
        if is_s3(uri):
            return int(fsspec_filesystem().du(uri.removeprefix("s3://"), total=True))
        return sum(f.stat().st_size for f in Path(uri).rglob("*") if f.is_file())

    def read(self, name: str, title_id: str | None = None) -> pa.Table:
        """All rows (or one title's), shots in order."""
        if not self.has_table(name):
            raise InputError(f"{self.config.uri}/{name}", "table does not exist yet")
        where = title_filter([title_id]) if title_id is not None else None
        table = self.open(name).to_lance().to_table(filter=where)
        keys = [(k, "ascending") for k in TABLE_KEYS[logical_name(name)]]
        return table.sort_by(keys)

    def search(self, name: str, vector: np.ndarray, k: int = 10, where: str | None = None):
        """Top-k rows by cosine distance (column `distance` = 1 - cos, the one convention of
        the CLI and the SQL views), ANN when indexed, else exact. Raises `InputError` for k < 1."""
        if int(k) < 1:
            raise InputError("-k", f"must be a positive number of results, got {k}")
        table = self.open(name)
        q = table.search(np.asarray(vector, np.float32)).distance_type(self.config.metric)
        partitions = self._partitions_of(table)
        if partitions:
            q = q.nprobes(self.config.nprobes or nprobes_for(partitions))
            q = q.refine_factor(self.config.refine_factor)
        if where:
            q = q.where(where, prefilter=True)
        out = q.limit(int(k)).to_arrow()
        return out.rename_columns(["distance" if c == "_distance" else c for c in out.column_names])

    def _partitions_of(self, table) -> int:
        """IVF partition count of the table's vector index, 0 without one (cached per table
        version: one manifest read per query, not three)."""
        key = (table.name, table.version)
        if key not in self._partitions_cache:
            self._partitions_cache.clear()
            indexed = any("vector" in idx.columns for idx in table.list_indices())
            self._partitions_cache[key] = _ivf_partitions(table) if indexed else 0
        return self._partitions_cache[key]


def _fit_columns(table, rows: pa.Table) -> pa.Table:
    """Add the nullable columns a table made before them lacks (the `thumbnail` column of issue
    13) as all-null columns, so old stores take new rows without being rebuilt."""
    have = set(table.schema.names)
    new = [f for f in rows.schema if f.name not in have and f.nullable]
    if new:
        log.info("adding column(s) %s to %s", [f.name for f in new], table.name)
        table.add_columns(pa.schema(new))
    return rows


SCALAR_INDEX_MIN_ROWS = 10_000  # below this a title_id filter scans in about a millisecond
TITLE_INDEX = "title_id_idx"  # the BTREE scalar index on title_id (ensure_title_index)
VECTOR_INDEX = "vector_idx"  # LanceDB's name for the index on column `vector`
MIN_TRAIN_ROWS = 256  # below this every index type trains poorly; exact search is ~1 ms anyway
PQ_MIN_ROWS = 256  # IVF_PQ's 8-bit codebooks need 256 rows; fewer leave an empty, broken index
ROWS_PER_PARTITION_PQ = 256  # Lance trains at most rows/256 IVF partitions for PQ


@dataclass(frozen=True)
class IndexPlan:
    """ANN index settings for a table of `rows` rows of width `dim` (see `index_plan`)."""

    index_type: str
    num_partitions: int
    num_sub_vectors: int | None  # IVF_PQ only

    def kwargs(self) -> dict:
        out = {"index_type": self.index_type, "num_partitions": self.num_partitions}
        if self.num_sub_vectors:
            out["num_sub_vectors"] = self.num_sub_vectors
        return out


def index_plan(rows: int, dim: int, index_type: str = "IVF_SQ", min_rows: int = 0):
    """The index to build on `rows` vectors, or None when none should be built: below
    `min_rows` (exact search is fast enough) or below what the type can train on (PQ's 256-row
    codebooks). IVF partitions ~ sqrt(rows) (at least ~256 rows each: k-means needs them)."""
    if rows < max(min_rows, MIN_TRAIN_ROWS):
        return None
    if index_type.endswith("PQ") and rows < PQ_MIN_ROWS:
        return None
    per = ROWS_PER_PARTITION_PQ if index_type.endswith("PQ") else MIN_TRAIN_ROWS
    partitions = int(np.clip(round(np.sqrt(rows)), 1, max(1, rows // per)))
    sub = _sub_vectors(dim) if index_type.endswith("PQ") else None
    return IndexPlan(index_type, partitions, sub)


def nprobes_for(partitions: int) -> int:
    """IVF partitions probed per query: ~1.25 sqrt(partitions), at least MIN_PROBES (all of a
    small index). With title-aligned partitions a held-out title's top-10 sits in the ~10 best
    aligned titles, so sqrt growth keeps recall as the catalogue grows (bench/query.py:
    1M rows, 1,428 partitions, 48 probes)."""
    return int(min(partitions, max(MIN_PROBES, np.ceil(1.25 * np.sqrt(partitions)))))


MIN_PROBES = 20
TITLE_CENTROID_TYPES = ("IVF_SQ", "IVF_PQ", "IVF_FLAT")
SAMPLE_ROWS_PER_TITLE = 64  # rows sampled per title (on average) for its centroid


def title_centroids(table, rows: int, seed: int = 0) -> np.ndarray | None:
    """(P, D) IVF centroids for a shot table: the unit mean vector of each title, from a sample
    of the rows. A title's shots cluster around its own direction, so partitions aligned with
    titles hold a query's neighbours in few partitions; Lance's own k-means split them across
    many (held-out-title recall@10 at 1M rows, 48 probes: 0.40 -> 0.97, bench/query.py). At
    most rows/MIN_TRAIN_ROWS partitions: more titles than that are merged by spherical k-means
    over their means. None for a table of one title."""
    ds = table.to_lance()
    n_titles = len(pc.unique(ds.to_table(columns=["title_id"])["title_id"]))
    take = min(rows, SAMPLE_ROWS_PER_TITLE * n_titles)
    sample = (
        ds.to_table(columns=["title_id", "vector"])
        if take >= rows
        else ds.sample(take, columns=["title_id", "vector"])
    )
    codes = pc.dictionary_encode(sample["title_id"]).combine_chunks().indices.to_numpy()
    vec = sample["vector"].combine_chunks()
    v = vec.flatten().to_numpy().reshape(len(vec), -1).astype(np.float32)
    sums = np.zeros((int(codes.max()) + 1, v.shape[1]), np.float64)
    np.add.at(sums, codes, v)
    means = _unit(sums)
    if len(means) < 2:
        return None
    cap = max(1, rows // MIN_TRAIN_ROWS)
    return _spherical_kmeans(means, cap, seed) if len(means) > cap else means.astype(np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _spherical_kmeans(x: np.ndarray, k: int, seed: int, iters: int = 10) -> np.ndarray:
    """(k, D) unit centroids of unit rows `x` (N, D), N > k: cosine k-means, a few passes."""
    rng = np.random.default_rng(seed)
    c = x[rng.choice(len(x), k, replace=False)].copy()
    for _ in range(iters):
        assign = np.argmax(x @ c.T, axis=1)  # (N,)
        sums = np.zeros_like(c, dtype=np.float64)
        np.add.at(sums, assign, x)
        empty = ~sums.any(axis=1)
        sums[empty] = x[rng.choice(len(x), int(empty.sum()), replace=False)]
        c = _unit(sums)
    return c.astype(np.float32)


PLAN_ROWS = "mediafm.index_trained_rows"  # table config key: rows the partitions trained on
FOLDED_ROWS = "mediafm.index_folded_rows"  # rows folded in by optimize since that training
RETRAIN_SHARE = 0.05  # retrain once this share of the rows was written since the training


def _ivf_partitions(table) -> int:
    """IVF partition count of a table's vector index as it is now (Lance's `optimize` may
    re-partition it, so the count planned at build is not trusted)."""
    stats = table.to_lance().stats.index_stats(VECTOR_INDEX)
    return int(sum(ix.get("num_partitions", 0) for ix in stats.get("indices", [])) or 1)


def _sub_vectors(dim: int) -> int:
    """PQ sub-vectors: ~4 dims each (accurate; refine re-ranks), dividing `dim` exactly."""
    for width in (4, 8, 2, 1):
        if dim % width == 0:
            return max(1, dim // width)
    return 1
