"""docs/metrics.md and the SQL say the same thing: the same marts, columns, types, order
and grain; the day sets are the documented ones. (The documented unique columns are
checked unique on sandbox data in test_refresh.py and on the hand-made fixtures.)"""

from __future__ import annotations

import re

import duckdb
import pytest
from metricsdoc import DOC, described, documented
from sqlbook import new_lake

from bankconnect_etl import analytics


@pytest.fixture(scope="module")
def refreshed() -> duckdb.DuckDBPyConnection:
    con = new_lake()
    analytics.refresh(con)
    return con


def test_every_mart_is_documented_and_every_documented_mart_exists() -> None:
    assert set(documented()) == set(analytics.marts())


@pytest.mark.parametrize("mart", analytics.marts())
def test_columns_types_and_order_match_the_doc(
    refreshed: duckdb.DuckDBPyConnection, mart: str
) -> None:
    doc = documented()[mart]
    assert doc.columns, f"no column table for {mart} in {DOC}"
    assert described(refreshed, mart) == doc.columns


@pytest.mark.parametrize("mart", analytics.marts())
def test_grain_sentence_is_the_one_opening_the_sql(mart: str) -> None:
    model = next(m for m in analytics.models() if m.name == mart)
    assert documented()[mart].grain == model.grain
    assert model.grain.startswith("one row per ")
    assert documented()[mart].unique, f"{mart}: no *unique:* line"


def test_every_model_file_opens_with_its_grain() -> None:
    for path in sorted(analytics.sql_dir().glob("*/*.sql")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert re.fullmatch(r"-- Grain: one row per .+\.", first), path


def test_day_sets_are_the_documented_defaults(refreshed: duckdb.DuckDBPyConnection) -> None:
    got = {
        name: sorted(days)
        for name, days in refreshed.execute(
            "SELECT day_set, list(day_of_month) FROM ("  # noqa: S608
            + (analytics.sql_dir() / "staging" / "abb_day_sets.sql").read_text()
            + ") GROUP BY day_set"
        ).fetchall()
    }
    assert got == {
        "5_15_25_last": [5, 15, 25, 31],
        "1_5_10_15_20_25_last": [1, 5, 10, 15, 20, 25, 31],
    }
    text = DOC.read_text(encoding="utf-8")
    for name in got:
        assert f"`abb_{name}_inr`" in text and f"`{name}`" in text
