"""Storage: one root (local folder or s3://bucket/prefix) holding Parquet artefacts, checkpoints,
labels, probe scores and the LanceDB tables; DuckDB reads them all (`mediafm sql`).

Submodules: `layout` (where everything lives under the root), `schemas` (LanceDB table schemas),
`lance_store` (idempotent per-title writes, ANN index, search), `sql` (DuckDB session with views).
"""
