"""The command line's text tables and `sql` output."""

from __future__ import annotations

import duckdb
import pytest

from bankconnect_etl.cli_warehouse import query_output, query_outputs
from bankconnect_etl.errors import UserError
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


def test_sql_runs_each_statement_and_prints_a_result_each() -> None:
    con = duckdb.connect()
    assert query_output(con, "SELECT 1 AS a; -- and\nSELECT 2 AS b;").split("\n\n") == [
        "a\n-\n1",
        "b\n-\n2",
    ]
    assert query_output(con, "SELECT 1 AS a", "csv") == "a\n1"
    assert query_output(con, "-- nothing to run") == ""


def test_sql_errors_name_the_statement_and_refuse_two_results_in_one_csv() -> None:
    con = duckdb.connect()
    with pytest.raises(UserError) as caught:
        query_output(con, "SELECT 1; SELECT nope")
    assert str(caught.value).startswith(
        'sql: statement 2 of 2: Binder Error: Referenced column "nope"'
    )
    with pytest.raises(UserError) as caught:
        query_output(con, "SELECT 1; SELECT 2", "json")
    assert (
        str(caught.value) == "sql: --format json prints one result, and the query has 2 statements"
    )
    with pytest.raises(UserError) as caught:
        query_output(con, "SELEC 1")
    assert str(caught.value).startswith("sql: Parser Error: syntax error at or near")


def test_sql_json_output_nests_json_columns() -> None:
    con = duckdb.connect()
    counts = '\'{"entities": {"new": 2}}\'::JSON'
    query = f'SELECT {counts} AS "counts ""x""", 1.50::DECIMAL(18, 2) AS d'
    got = query_output(con, query, "json")
    assert got == '{"counts \\"x\\"":{"entities":{"new":2}},"d":1.50}'


def test_sql_shows_the_results_before_a_failing_statement() -> None:
    outputs = query_outputs(duckdb.connect(), "SELECT 1 AS a; FROM nosuch; SELECT 3")
    assert next(outputs) == "a\n-\n1"
    with pytest.raises(UserError, match="statement 2 of 3: Catalog Error"):
        next(outputs)


def test_a_rebuild_says_how_many_archived_runs_it_replayed_not_what_it_saw() -> None:
    from collections import Counter

    from bankconnect_etl.pipeline import RunResult
    from bankconnect_etl.render import summary_lines
    from bankconnect_etl.transform import Stats

    run = RunResult(
        "rebuild-1", "rebuild", "succeeded", stats=Stats(entities=Counter(complete=9, empty=1))
    )
    run.sync["replayed_runs"] = 3
    assert summary_lines(run)[1:3] == [
        "entities: replayed from 3 archived runs",
        "loaded: 9 complete, 1 empty, 0 pending, 0 failed"
        " (an entity counts once per run it was in)",
    ]
    sync = RunResult("nightly-1", "nightly", "succeeded", sync=Counter(seen=4, unchanged=4))
    assert summary_lines(sync)[1] == "entities: 4 seen: 4 unchanged (one request each)"


@pytest.mark.parametrize(
    ("sql", "hint"),
    [
        ("SELEC 1", "check the SQL at the word named"),
        ("SELECT 1 + 'x'", "ids are text (entity_id = '...')"),
        ("SELECT n, count(*) FROM t", "a table's columns: bankconnect-etl sql \"DESCRIBE"),
        # DuckDB suggests a system view ("pg_prepared_statements"): no help, so not shown
        ("FROM nowhere_near_anything", 'tables: bankconnect-etl sql "SHOW TABLES"'),
        ("FROM tt", 'Did you mean "t"'),  # its own suggestion when it is a real table
        ("SELECT error('stop')", None),  # nothing useful to add
    ],
)
def test_a_sql_error_gets_the_hint_for_its_kind(sql: str, hint: str | None) -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT 1 AS n")
    with pytest.raises(UserError) as caught:
        query_output(con, sql)
    assert str(caught.value).startswith("sql: ") and "\n" not in str(caught.value)
    if hint is None:
        assert caught.value.hint is None
    else:
        assert (caught.value.hint or "").startswith(hint), caught.value.hint
