"""LanceDB table schemas, declared in one place. Vector width comes from the data.

Keys: `shot_embeddings` is keyed by (title_id, shot_index), `title_embeddings` by title_id; writes
replace a title's rows in one commit (see `lance_store`).
"""

from __future__ import annotations

import pyarrow as pa

SHOT_EMBEDDINGS = "shot_embeddings"
TITLE_EMBEDDINGS = "title_embeddings"
TABLE_KEYS: dict[str, list[str]] = {
    SHOT_EMBEDDINGS: ["title_id", "shot_index"],
    TITLE_EMBEDDINGS: ["title_id"],
}


def vector_type(dim: int) -> pa.DataType:
    """Fixed-size float32 list: what LanceDB indexes and DuckDB's lance_vector_search expects."""
    return pa.list_(pa.float32(), dim)


def shot_embeddings_schema(dim: int) -> pa.Schema:
    """One row per shot: its contextual embedding and the checkpoint that produced it."""
    return pa.schema(
        [
            pa.field("title_id", pa.string(), nullable=False),
            pa.field("shot_index", pa.int64(), nullable=False),
            pa.field("start_s", pa.float64()),  # shot start, seconds from title start
            pa.field("end_s", pa.float64()),  # shot end (exclusive), seconds
            pa.field("vector", vector_type(dim)),  # unit-norm contextual embedding
            pa.field("model_version", pa.string()),  # encoder checkpoint id
            pa.field("thumbnail", pa.binary()),  # WebP of the middle frame (null: none)
        ]
    )


def title_embeddings_schema(dim: int) -> pa.Schema:
    """One row per title: pooled contextual embedding plus catalogue metadata for filtering."""
    return pa.schema(
        [
            pa.field("title_id", pa.string(), nullable=False),
            pa.field("vector", vector_type(dim)),  # unit-norm title embedding
            pa.field("model_version", pa.string()),
            pa.field("name", pa.string()),
            pa.field("genres", pa.list_(pa.string())),
            pa.field("tags", pa.list_(pa.string())),
            pa.field("n_shots", pa.int64()),
        ]
    )


SCHEMAS = {SHOT_EMBEDDINGS: shot_embeddings_schema, TITLE_EMBEDDINGS: title_embeddings_schema}


def conform(table: pa.Table, name: str) -> pa.Table:
    """Cast `table` to the declared schema of `name` (column order, types, fixed vector width)."""
    vec = table.schema.field("vector").type
    dim = vec.list_size if pa.types.is_fixed_size_list(vec) else len(table["vector"][0])
    schema = SCHEMAS[name](dim)
    cols = [_column(table, f) for f in schema]
    return pa.Table.from_arrays(cols, schema=schema)


def _column(table: pa.Table, field: pa.Field):
    """`table`'s column cast to `field`; all nulls when a nullable column is absent (thumbnails
    of rows written before issue 13)."""
    if field.name not in table.column_names and field.nullable:
        return pa.nulls(table.num_rows, field.type)
    return table[field.name].cast(field.type)
