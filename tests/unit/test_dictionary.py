"""The data dictionary is generated from the schemas, and the committed copy is current."""

from __future__ import annotations

from pathlib import Path

from bankconnect_etl.schemas.tables import TABLES

from bankconnect_etl.dictionary import markdown
from bankconnect_etl.warehouse import ddl

DOC = Path(__file__).resolve().parents[2] / "docs" / "data-dictionary.md"


def test_committed_dictionary_matches_the_schemas() -> None:
    assert DOC.read_text() == markdown(), (
        "docs/data-dictionary.md is stale: bankconnect-etl dictionary > docs/data-dictionary.md"
    )


def test_every_column_of_every_table_is_documented() -> None:
    text = markdown()
    for name, spec in TABLES.items():
        assert f"## `{name}`" in text
        for column, col in spec.model.to_schema().columns.items():
            assert col.description, f"{name}.{column} has no description"
            assert f"| `{column}` |" in text


def test_ddl_types_follow_the_contract() -> None:
    create = ddl("transactions")[0]
    assert "amount DECIMAL(18,2)" in create and "balance DECIMAL(18,2)" in create
    assert "txn_date DATE" in create and "txn_seq BIGINT" in create
    assert ddl("transactions")[1].endswith("SET PARTITIONED BY (year(txn_date), month(txn_date))")
    assert "raw_record JSON" in ddl("quarantine")[0]
    assert len(ddl("entities")) == 1  # not partitioned
    assert len(ddl("salary_transactions")) == 1  # a few rows an entity: one file a batch
