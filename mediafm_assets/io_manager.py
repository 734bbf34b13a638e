"""Per-title Parquet artefacts under `<root>/artefacts/<asset>/<title_id>.parquet`, local or S3.

Built on Dagster's `UPathIOManager`, so a local folder and `s3://bucket/prefix` behave the same
(fsspec/s3fs underneath). Per-title assets may run several titles in one step (one model load for
many titles), so partitioned outputs and inputs are always `{title_id: pyarrow.Table}` dicts, even
for a single title; an unpartitioned asset's value is one table.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
from dagster import (
    ConfigurableIOManagerFactory,
    InputContext,
    MetadataValue,
    OutputContext,
    UPathIOManager,
)
from upath import UPath

from mediafm_core.storage.layout import StorageLayout


class TitleParquetIOManager(UPathIOManager):
    """Reads and writes pyarrow Tables as Parquet, one file per title partition."""

    extension = ".parquet"

    def dump_to_path(self, context: OutputContext, obj: pa.Table, path: UPath) -> None:
        if path.protocol not in ("", "file", "local"):  # an object-store PUT is already atomic
            with path.open("wb") as f:
                pq.write_table(obj, f)
            return
        tmp = path.with_name(f".{path.name}.tmp")  # write then rename: no half files on disk
        with tmp.open("wb") as f:
            pq.write_table(obj, f)
        tmp.rename(path)

    def load_from_path(self, context: InputContext, path: UPath) -> pa.Table:
        with path.open("rb") as f:
            return pq.read_table(f)

    def handle_output(self, context: OutputContext, obj) -> None:
        """Partitioned outputs are {title_id: table}; each title goes to its own file. A title
        whose value is None failed its checks (vector_checks.py) and is not written."""
        if not context.has_asset_partitions:
            return super().handle_output(context, obj)
        paths = self._get_paths_for_partitions(context)
        missing = set(paths) - set(obj)
        if missing:
            name = context.asset_key.to_user_string()
            raise ValueError(f"{name}: no value for {sorted(missing)}")
        rows = {}
        for key, path in paths.items():
            if obj[key] is None:  # failed its checks: its previous artefact stays as it was
                continue
            self.make_directory(path.parent)
            self.dump_to_path(context, obj[key], path)
            rows[key] = obj[key].num_rows
        context.add_output_metadata(
            {
                "path": MetadataValue.path(str(next(iter(paths.values())).parent)),
                "rows_by_title": MetadataValue.json(rows),
            }
        )

    def load_input(self, context: InputContext):
        """Partitioned inputs always come back as {title_id: table}."""
        value = super().load_input(context)
        if context.has_asset_partitions and not isinstance(value, dict):
            return {context.asset_partition_keys[0]: value}
        return value


class TitleParquetIOManagerFactory(ConfigurableIOManagerFactory):
    """Config edge: the storage root (folder or s3://bucket/prefix)."""

    root: str

    def create_io_manager(self, context) -> TitleParquetIOManager:
        return TitleParquetIOManager(base_path=UPath(StorageLayout(self.root).artefacts))
