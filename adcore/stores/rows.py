"""The index row layout shared by the SQL backends, and record <-> row conversion.

Both SQLite and PostgreSQL keep one row per model version with the same columns; the
structured fields are JSON text so the row stays portable and readable with any SQL client.
"""

from __future__ import annotations

import json
from typing import Any

from adcore.services.registry import ModelRecord

# (column, SQL type) in table order; JSON columns hold text.
SCALAR_COLUMNS: tuple[tuple[str, str], ...] = (
    ("name", "TEXT NOT NULL"),
    ("version", "INTEGER NOT NULL"),
    ("algorithm", "TEXT NOT NULL"),
    ("threshold", "DOUBLE PRECISION NOT NULL"),
    ("threshold_method", "TEXT NOT NULL"),
    ("contamination", "DOUBLE PRECISION NOT NULL"),
    ("seed", "BIGINT"),
    ("n_samples", "BIGINT NOT NULL"),
    ("n_features", "INTEGER NOT NULL"),
    ("sha256", "TEXT NOT NULL"),
    ("size", "BIGINT NOT NULL"),
    ("artifact", "TEXT NOT NULL"),
    ("created_at", "TEXT NOT NULL"),
)
JSON_COLUMNS = ("params", "feature_names", "dtypes", "read_options", "score_quantiles", "metrics", "versions")
COLUMNS = tuple(c for c, _ in SCALAR_COLUMNS) + JSON_COLUMNS


def models_table_ddl(table: str) -> str:
    """``CREATE TABLE`` for the models index; (name, version) is the primary key."""
    cols = [f"{c} {t}" for c, t in SCALAR_COLUMNS] + [f"{c} TEXT NOT NULL" for c in JSON_COLUMNS]
    return f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(cols)}, PRIMARY KEY (name, version))"


def names_table_ddl(table: str) -> str:
    """One row per model name with the last version handed out: versions are never reused."""
    return f"CREATE TABLE IF NOT EXISTS {table} (name TEXT PRIMARY KEY, last_version INTEGER NOT NULL)"


def record_to_row(record: ModelRecord) -> dict[str, Any]:
    data = record.to_dict()
    row = {c: data[c] for c, _ in SCALAR_COLUMNS}
    row.update({c: json.dumps(data[c], sort_keys=True, default=str) for c in JSON_COLUMNS})
    return row


def row_to_record(row: Any) -> ModelRecord:
    """A record from a DB-API row (a mapping or a tuple in :data:`COLUMNS` order)."""
    values = dict(row) if hasattr(row, "keys") else dict(zip(COLUMNS, row, strict=True))
    for column in JSON_COLUMNS:
        if isinstance(values.get(column), str):
            values[column] = json.loads(values[column])
    values["version"] = int(values["version"])
    return ModelRecord.from_dict(values)
