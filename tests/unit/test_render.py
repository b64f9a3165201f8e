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


def test_a_dry_run_counts_its_entities_in_words() -> None:
    from bankconnect_etl.pipeline import Plan
    from bankconnect_etl.render import plan_lines, plan_markdown

    one = Plan({"e-1": {"link_id": "L1"}}, {"e-1": "new"}, {})
    assert plan_lines(one)[0] == "dry run: 1 entity; nothing fetched or written"
    assert plan_markdown(one).startswith("# Dry run: 1 entity\n")
    two = Plan({"e-1": {}, "e-2": {}}, {"e-1": "new", "e-2": "forced"}, {})
    assert plan_lines(two)[:3] == [
        "dry run: 2 entities; nothing fetched or written",
        "        1  forced: fetched",
        "        1  new: fetched",
    ]
