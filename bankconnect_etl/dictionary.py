"""``docs/data-dictionary.md``, generated from the pandera models in ``schemas/``.

``bankconnect-etl dictionary > docs/data-dictionary.md`` regenerates it; a test fails when
the committed file and the schemas disagree.
"""

from __future__ import annotations

from bankconnect_etl.analytics import REFRESHES, REFRESHES_COLUMNS
from bankconnect_etl.schemas.tables import JSON_COLUMNS, TABLES
from bankconnect_etl.transform import arrow_schema
from bankconnect_etl.warehouse import DUCKDB_TYPES

HEADER = """\
# Data dictionary

Generated from the pandera models in `schemas/tables.py` by
`bankconnect-etl dictionary > docs/data-dictionary.md`; do not edit by hand.

Every table lives in the DuckLake attached as `lake` (see the README for connecting).
Money is DECIMAL(18,2) in rupees; dates are DATE; timestamps are TIMESTAMP in UTC.
Tables marked *per entity* are replaced entity by entity in one transaction: a reader sees
an entity's rows from before or after a sync, never a mix. *Partitioned* tables are stored
under `year=YYYY/month=M/` of the date named.

Read the tables through DuckLake (DuckDB with the catalog: docs/warehouse.md), never by
globbing the Parquet folders: they also hold files a compaction replaced (kept two days for
time travel and open readers) and delete files, so pyarrow, Spark or Polars on a folder
count rows twice. "null: no" is checked when rows are loaded (the pandera contract sends
a record that breaks it to `quarantine`) and declared NOT NULL in the catalog, so DESCRIBE
and other tools see it (a lake written by an earlier version gets it declared by its next
writer, on each table that holds rows). In pandas, `.df()`
turns DECIMAL money into float64: sum in SQL, or use `.arrow()` or `.fetchall()` for exact
values.
"""


def markdown() -> str:
    out = [HEADER]
    for name, spec in TABLES.items():
        model = spec.model
        notes = []
        if spec.per_entity:
            notes.append("per entity")
        if spec.partition_date:
            notes.append(f"partitioned by year and month of `{spec.partition_date}`")
        if spec.key:
            notes.append("unique: " + ", ".join(f"`{k}`" for k in spec.key))
        doc = " ".join((model.__doc__ or "").split())
        out.append(f"## `{name}`\n\n{doc}\n\n*{'; '.join(notes)}*\n")
        out.append("| column | type | null | meaning |\n| --- | --- | --- | --- |")
        columns = model.to_schema().columns
        for f in arrow_schema(name):
            col = columns[f.name]
            kind = "JSON" if (name, f.name) in JSON_COLUMNS else DUCKDB_TYPES[f.type]
            allowed = _allowed(col)
            meaning = (col.description or "") + (f" One of: {allowed}." if allowed else "")
            out.append(f"| `{f.name}` | {kind} | {'yes' if col.nullable else 'no'} | {meaning} |")
        out.append("")
    out.append(
        f"## `{REFRESHES}`\n\nOne row per refresh of the analytics marts (docs/metrics.md), "
        "written in the refresh's own transaction.\n\n*written by `bankconnect_etl.analytics`*\n"
    )
    out.append("| column | type | null | meaning |\n| --- | --- | --- | --- |")
    for column, kind, nullable, meaning in REFRESHES_COLUMNS:
        out.append(f"| `{column}` | {kind} | {'yes' if nullable else 'no'} | {meaning} |")
    out.append("")
    return "\n".join(out)


def _allowed(col) -> str:  # type: ignore[no-untyped-def]
    for check in col.checks:
        values = check.statistics.get("allowed_values") if check.statistics else None
        if values:
            return ", ".join(f"`{v}`" for v in values)
    return ""
