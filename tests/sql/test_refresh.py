"""refresh() on a real DuckLake warehouse of sandbox data: one snapshot, unique grains,
every entity summarised, our integrity check agreeing with the API's, a failure rolled back."""

from __future__ import annotations

import copy
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from metricsdoc import duplicate_keys
from sandboxlake import load, sandbox_records
from sqlbook import Book, cr, dr

from bankconnect_etl import analytics
from bankconnect_etl.errors import WarehouseError
from bankconnect_etl.warehouse import Writer, connect

ENTITIES = 25  # one block of the sandbox's edge cases: no statements, failed, fraud, ...


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("lake") / "wh"
    load(root, sandbox_records(ENTITIES))
    with Writer(root, wait_s=30) as w:
        assert w.con is not None
        before = w.snapshot_id()
        rows = analytics.refresh(w.con, message="analytics refresh")
        assert w.snapshot_id() == before + 1  # every mart in one transaction
    assert set(rows) == set(analytics.marts()) and rows["entity_credit_summary"] == ENTITIES
    yield root


@pytest.fixture
def reader(warehouse: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect(warehouse)
    yield con
    con.close()


def test_grain_of_every_mart_is_unique_on_sandbox_data(reader: duckdb.DuckDBPyConnection) -> None:
    assert duplicate_keys(reader) == {}


def test_every_entity_has_one_summary_row(reader: duckdb.DuckDBPyConnection) -> None:
    statuses = dict(
        reader.execute(
            "SELECT e.sync_status, count(*) FROM entities e "
            "JOIN entity_credit_summary s USING (entity_id, sync_status) GROUP BY ALL"
        ).fetchall()
    )
    assert sum(statuses.values()) == ENTITIES and statuses.get("empty", 0) >= 1
    failed = reader.execute(
        "SELECT count(*) FROM entity_credit_summary "
        "WHERE failed_statement_count = statement_count AND statement_count > 0"
    ).fetchone()
    assert failed and failed[0] >= 1  # the sandbox's entity whose only statement failed


def test_flows_and_balances_reconcile_with_the_transactions(
    reader: duckdb.DuckDBPyConnection,
) -> None:
    (mismatched,) = reader.execute(
        """
        WITH t AS (
            SELECT entity_id, account_id,
                   sum(amount) FILTER (WHERE transaction_type = 'credit') AS credits,
                   sum(amount) FILTER (WHERE transaction_type = 'debit') AS debits,
                   arg_max(balance, txn_seq) AS closing
            FROM transactions GROUP BY ALL),
        m AS (
            SELECT entity_id, account_id, sum(inflow_inr) AS credits,
                   sum(outflow_inr) AS debits, arg_max(closing_balance_inr, month) AS closing
            FROM account_monthly GROUP BY ALL)
        SELECT count(*) FROM t FULL JOIN m USING (entity_id, account_id)
        WHERE t.credits IS DISTINCT FROM m.credits OR t.debits IS DISTINCT FROM m.debits
           OR t.closing IS DISTINCT FROM m.closing
        """
    ).fetchone() or (None,)
    assert mismatched == 0
    (days,) = reader.execute(
        "SELECT sum(last_txn_date - first_txn_date + 1) FROM ("
        " SELECT account_id, min(txn_date) AS first_txn_date, max(txn_date) AS last_txn_date"
        " FROM transactions GROUP BY ALL)"
    ).fetchone() or (None,)
    assert reader.execute("SELECT count(*) FROM account_daily_balance").fetchone() == (days,)


def test_our_running_balance_check_finds_the_rows_the_api_flags(
    reader: duckdb.DuckDBPyConnection,
) -> None:
    flagged = set(
        reader.execute(
            "SELECT transaction_hash FROM fraud_flags WHERE transaction_hash IS NOT NULL"
        ).fetchall()
    )
    found = set(reader.execute("SELECT hash FROM balance_integrity").fetchall())
    assert flagged and flagged <= found
    assert reader.execute(
        "SELECT bool_and(flagged_by_api) FROM balance_integrity WHERE hash IN "
        "(SELECT transaction_hash FROM fraud_flags)"
    ).fetchone() == (True,)


def test_refresh_of_a_fresh_warehouse_gives_empty_marts(tmp_path: Path) -> None:
    with Writer(tmp_path / "wh", wait_s=30) as w:
        assert w.con is not None
        assert analytics.refresh(w.con) == dict.fromkeys(analytics.marts(), 0)
    con = connect(tmp_path / "wh")
    try:
        assert con.execute("SELECT count(*) FROM entity_credit_summary").fetchone() == (0,)
    finally:
        con.close()


def test_a_failing_model_leaves_the_previous_marts_and_no_open_transaction(
    warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "wh"
    shutil.copytree(warehouse, copy)
    broken = tmp_path / "sql"
    shutil.copytree(analytics.sql_dir(), broken)
    summary = broken / "marts" / "entity_credit_summary.sql"
    summary.write_text(summary.read_text().replace("e.link_id,", "e.no_such_column,"))
    monkeypatch.setattr(analytics, "sql_dir", lambda: broken)
    with Writer(copy, wait_s=30) as w:
        con = w.con
        assert con is not None
        before = w.snapshot_id()
        counts = {
            m: con.execute(f"SELECT count(*) FROM {m}").fetchone()  # noqa: S608
            for m in analytics.marts(broken)
        }
        with pytest.raises(
            WarehouseError, match=r"analytics: entity_credit_summary\.sql: .*no_such_column"
        ):
            analytics.refresh(con)
        assert w.snapshot_id() == before
        after = {m: con.execute(f"SELECT count(*) FROM {m}").fetchone() for m in counts}  # noqa: S608
        assert after == counts
        temp = con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone()
        assert temp == (0,)
        con.execute("SELECT 1").fetchall()  # usable: the transaction was rolled back


def test_refresh_replaces_the_marts_with_the_new_data(book: Book) -> None:
    book.entity("e1")
    book.account("e1", "a1")
    book.txns("e1", "a1", "0", [cr("2024-01-01", "10.00"), dr("2024-01-02", "4.00")])
    assert book.refresh()["account_daily_balance"] == 2
    book.txns("e1", "a2", "0", [cr("2024-01-01", "1.00"), cr("2024-01-05", "1.00")])
    assert book.refresh()["account_daily_balance"] == 7
    assert book.one("SELECT count(*) AS n FROM account_monthly")["n"] == 2


def test_models_run_after_the_models_they_name() -> None:
    order = [m.name for m in analytics.models()]
    assert order.index("stg_account_days") < order.index("account_daily_balance")
    assert order.index("account_daily_balance") < order.index("account_monthly")
    assert order.index("account_monthly") < order.index("obligations_monthly")
    assert order.index("bounce_events") < order.index("entity_credit_summary")
    layers = [m.layer for m in analytics.models()]
    assert layers == sorted(layers, key=analytics.LAYERS.index)  # staging, then marts


def test_refresh_refuses_to_run_inside_the_callers_transaction(book: Book) -> None:
    book.entity("e1")
    book.con.execute("BEGIN")
    book.con.execute("INSERT INTO fraud_flags VALUES ('e1', 's1', 'author_fraud', NULL)")
    with pytest.raises(WarehouseError, match="cannot start the refresh transaction"):
        book.refresh()
    book.con.execute("COMMIT")  # still the caller's, with its insert
    assert book.one("SELECT count(*) AS n FROM fraud_flags")["n"] == 1
    assert book.refresh()["entity_credit_summary"] == 1


def _marts(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    return {m: sorted(con.execute(f"FROM {m}").fetchall(), key=repr) for m in analytics.marts()}


def _refreshes(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute(
        "SELECT mode, entities FROM mart_refreshes ORDER BY snapshot_id, refreshed_at"
    ).fetchall()


def test_an_incremental_refresh_recomputes_the_written_entities_to_the_full_result(
    warehouse: Path, tmp_path: Path
) -> None:
    wh = tmp_path / "wh"
    shutil.copytree(warehouse, wh)
    records = sandbox_records(ENTITIES)
    shrunk, failed = copy.deepcopy(records[3]), copy.deepcopy(records[5])
    txns = shrunk["responses"]["transactions"]["transactions"]
    assert len(txns) > 10
    del txns[len(txns) // 2 :]  # half its history gone: balances, flows, summary change
    failed |= {"status": "failed", "error": "HTTP 500 from identity"}  # its rows stay
    twin = copy.deepcopy(records[7])
    twin["entity_id"] = "a-new-entity"
    load(wh, [shrunk, failed, twin])

    with Writer(wh, wait_s=30) as w:
        con = w.con
        assert con is not None
        before = w.snapshot_id()
        rows = analytics.refresh(con, message="incremental", incremental=True)
        assert w.snapshot_id() == before + 1
        assert _refreshes(con)[-1] == ("incremental", 3)
        (at,) = con.execute("SELECT max(refreshed_at) FROM mart_refreshes").fetchone()
        assert abs(at - datetime.now(UTC).replace(tzinfo=None)) < timedelta(minutes=5)  # UTC
        incremental = _marts(con)
        assert rows["entity_credit_summary"] == ENTITIES + 1
        summary = dict(
            con.execute("SELECT entity_id, sync_status FROM entity_credit_summary").fetchall()
        )
        assert summary[failed["entity_id"]] == "failed" and "a-new-entity" in summary

        # the same marts as recomputing everything
        analytics.refresh(con, message="full")
        assert _refreshes(con)[-1] == ("full", None)
        assert _marts(con) == incremental

        # nothing written since: no transaction at all
        before = w.snapshot_id()
        assert analytics.refresh(con, incremental=True) == rows
        assert w.snapshot_id() == before

    # other SQL than the marts were built with: a full refresh
    load_more = copy.deepcopy(records[9])
    load_more["status"] = "pending"
    load(wh, [load_more])
    with Writer(wh, wait_s=30) as w:
        con = w.con
        assert con is not None
        con.execute("UPDATE mart_refreshes SET models_sha256 = 'older models'")
        analytics.refresh(con, incremental=True)
        assert _refreshes(con)[-1] == ("full", None)
        analytics.refresh(con, incremental=True)  # nothing since
        assert _refreshes(con)[-1] == ("full", None)
