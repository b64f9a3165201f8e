"""The command line's text tables."""

from __future__ import annotations

import duckdb

from bankconnect_etl.render import format_table


def test_numeric_columns_are_right_aligned_and_money_is_grouped() -> None:
    con = duckdb.connect()
    rel = con.sql(
        "SELECT * FROM (VALUES ('a', 7, 1234567.5::DECIMAL(18, 2), NULL, true), "
        "('bb', 1297, 0.25::DECIMAL(18, 2), NULL, false)) AS t(name, n, inr, nothing, flag)"
    )
    assert format_table(rel).splitlines() == [
        "name     n           inr  nothing  flag",
        "----  ----  ------------  -------  -----",
        "a        7  1,234,567.50           True",
        "bb    1297          0.25           False",
    ]


def test_an_empty_result_keeps_its_header() -> None:
    rel = duckdb.connect().sql("SELECT 1 AS n, 'x' AS s WHERE false")
    assert format_table(rel).splitlines() == ["n  s", "-  -"]
