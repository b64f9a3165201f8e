"""The HTML credit report: charts inline, nothing fetched, text escaped, rupees grouped the
Indian way; entities with no statements, a failed statement, and a normal history."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from bankconnect_etl.schemas.tables import TABLES

from bankconnect_etl import analytics, report
from bankconnect_etl.errors import UserError
from bankconnect_etl.warehouse import ddl

NORMAL = "5d8001db-df8e-4b78-8f5b-1638f99e561f"
EMPTY = "b89d45d6-9cc2-4041-a0aa-1c0b750326e8"
FAILED = "350b473f-d989-45a6-9b4a-0673dd761912"
NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
# Anything that would make a browser fetch something, or run something.
FETCHES = re.compile(
    r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/|<script|<link|<img|<iframe|<object|<embed|"
    r"@import|url\((?!#)|\bsrc=|xlink:href=\"(?!#)|\bhref=\"(?!#)",
    re.IGNORECASE,
)


def _insert(con: duckdb.DuckDBPyConnection, table: str, row: list) -> None:
    con.execute(f"INSERT INTO {table} VALUES ({', '.join('?' * len(row))})", row)  # noqa: S608


def _txn(
    entity: str, seq: int, day: date, kind: str, amount: str, balance: Decimal, **kw: str
) -> list:
    return [
        entity,
        "acct-1",
        "stmt-1",
        seq,
        f"{seq:032x}",
        day,
        kind,
        Decimal(amount),
        balance,
        kw.get("channel", "upi"),
        kw.get("channel", "upi").upper(),
        kw.get("description", ""),
        "",
        kw.get("note", "UPI/123/payment"),
    ]


@pytest.fixture(scope="module")
def lake() -> Iterator[duckdb.DuckDBPyConnection]:
    """Three entities: no statements, one failed statement, four months of history with
    salary, EMIs, a bounced EMI and a tampered row the API flags."""
    con = duckdb.connect()
    con.execute("ATTACH ':memory:' AS lake")
    con.execute("USE lake")
    for table in TABLES:
        con.execute(ddl(table)[0])
    seen = datetime(2026, 11, 20, 2, 0)
    for entity, status in ((NORMAL, "complete"), (EMPTY, "empty"), (FAILED, "complete")):
        _insert(
            con,
            "entities",
            [entity, "APP<1>&", None, seen, seen, seen, status, None, [], None, "r"],
        )
    _insert(
        con,
        "statements",
        [FAILED, "stmt-f", None, "failed", "Statement is a scanned image", *[None] * 12, False],
    )
    _insert(con, "statements", [NORMAL, "stmt-1", "acct-1", "completed", None, *[None] * 12, True])
    _insert(
        con,
        "accounts",
        [NORMAL, "acct-1", "hdfc", "123456789012", None, None, [], 0, None, None, ["stmt-1"]],
    )
    balance, seq, rows = Decimal("25000.00"), 0, []
    start = date(2026, 5, 20)
    for offset in range(0, 130, 3):
        day = start + timedelta(days=offset)
        seq += 1
        balance -= Decimal("420.50")
        rows.append(_txn(NORMAL, seq, day, "debit", "420.50", balance))
        if day.day <= 3:
            seq += 1
            balance += Decimal("52000.00")
            rows.append(_txn(NORMAL, seq, day, "credit", "52000.00", balance, channel="salary"))
            _insert(con, "salary_transactions", [*rows[-1], day.replace(day=1), "Acme <Softlabs>"])
            seq += 1
            balance -= Decimal("15000.00")
            emi = {"channel": "auto_debit_payment", "description": "lender_transaction"}
            rows.append(_txn(NORMAL, seq, day, "debit", "15000.00", balance, **emi))
    seq += 1
    note = "ACH RETURN <script>alert(1)</script>"
    back = {"channel": "auto_debit_payment_bounce", "note": note}
    rows.append(_txn(NORMAL, seq, rows[-1][5], "credit", "15000.00", balance + 15000, **back))
    seq += 1
    charge = {"channel": "bank_charge", "description": "ach_bounce_charge"}
    rows.append(_txn(NORMAL, seq, rows[-1][5], "debit", "590.00", Decimal("1.00"), **charge))
    for row in rows:
        _insert(con, "transactions", row)
    _insert(con, "fraud_flags", [NORMAL, "stmt-1", "inconsistent_transaction", rows[-1][4]])
    analytics.refresh(con)
    yield con
    con.close()


def render(con: duckdb.DuckDBPyConnection, entity: str) -> str:
    return report.render(con, entity, snapshot="42", generated_at=NOW)


def test_normal_report_has_both_charts_inline_and_fetches_nothing(
    lake: duckdb.DuckDBPyConnection,
) -> None:
    doc = render(lake, NORMAL)
    assert doc.startswith("<!doctype html>")
    assert doc.count("<svg ") == 2
    assert 'aria-label="End-of-day balance chart"' in doc
    assert 'aria-label="Monthly inflow and outflow chart"' in doc
    assert "<path" in doc  # glyphs and lines drawn as paths: no font needed
    assert FETCHES.search(doc) is None, FETCHES.search(doc)
    ids = re.findall(r'\bid="([^"]+)"', doc)
    assert len(ids) == len(set(ids))  # two charts, no clashing ids
    assert "warehouse snapshot 42" in doc and "21 Nov 2026 09:00 UTC" in doc


def test_text_from_the_data_is_escaped(lake: duckdb.DuckDBPyConnection) -> None:
    doc = render(lake, NORMAL)
    assert "<script>alert(1)</script>" not in doc
    assert "ACH RETURN &lt;script&gt;alert(1)&lt;/script&gt;" in doc
    assert "Acme &lt;Softlabs&gt;" in doc and "APP&lt;1&gt;&amp;" in doc


def test_normal_report_shows_findings_in_rupees(lake: duckdb.DuckDBPyConnection) -> None:
    doc = render(lake, NORMAL)
    for heading in ("Summary", "Balances", "Cash flow", "Salary", "Bounces", "Accounts"):
        assert f"<h2>{heading}</h2>" in doc
    assert "₹52,000.00" in doc  # salary
    assert "auto_debit" in doc and "₹590.00" in doc  # the bounce and its charge
    assert "inconsistent_transaction" in doc  # the API's finding
    assert "Running-balance breaks" in doc
    assert "••••9012" in doc and "123456789012" not in doc


def test_entity_without_statements(lake: duckdb.DuckDBPyConnection) -> None:
    doc = render(lake, EMPTY)
    assert "<svg" not in doc
    assert "No statements were uploaded for this entity." in doc
    assert "No transactions: nothing to chart." in doc
    assert FETCHES.search(doc) is None


def test_entity_whose_statement_failed(lake: duckdb.DuckDBPyConnection) -> None:
    doc = render(lake, FAILED)
    assert "<svg" not in doc
    assert "Statement is a scanned image" in doc and ">failed<" in doc
    assert 'class="warn"><span>Failed statements</span><span class="v">1<' in doc


def test_rendering_is_reproducible(lake: duckdb.DuckDBPyConnection) -> None:
    assert render(lake, NORMAL) == render(lake, NORMAL)


def test_write_creates_folders(lake: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    out = report.write(lake, NORMAL, tmp_path / "a" / "b.html")
    assert out.read_text(encoding="utf-8").count("<svg ") == 2
    assert [p.name for p in out.parent.iterdir()] == ["b.html"]


def test_entity_ids_resolve_by_unique_prefix(lake: duckdb.DuckDBPyConnection) -> None:
    assert report.resolve_entity(lake, NORMAL) == NORMAL
    assert report.resolve_entity(lake, "5d80") == NORMAL
    with pytest.raises(UserError, match="no entity 'nope'") as unknown:
        report.resolve_entity(lake, "nope")
    assert unknown.value.hint and "SELECT entity_id FROM entities" in unknown.value.hint
    seen = NOW.replace(tzinfo=None)
    _insert(
        lake, "entities", ["5d80ffff", None, None, seen, seen, None, "empty", None, [], None, "r"]
    )
    try:
        with pytest.raises(UserError, match="more than one entity id"):
            report.resolve_entity(lake, "5d80")
    finally:
        lake.execute("DELETE FROM entities WHERE entity_id = '5d80ffff'")


def test_a_warehouse_without_marts_asks_for_a_refresh() -> None:
    con = duckdb.connect()
    con.execute("ATTACH ':memory:' AS lake")
    con.execute("USE lake")
    with pytest.raises(UserError, match="no analytics marts") as err:
        report.resolve_entity(con, NORMAL)
    assert err.value.hint and "bankconnect-etl refresh" in err.value.hint


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("0"), "₹0.00"),
        (Decimal("999.5"), "₹999.50"),
        (Decimal("1000"), "₹1,000.00"),
        (Decimal("100000"), "₹1,00,000.00"),
        (Decimal("12345678.9"), "₹1,23,45,678.90"),
        (Decimal("-2500000.004"), "-₹25,00,000.00"),
        (Decimal("0.005"), "₹0.01"),
        (None, "—"),
    ],
)
def test_rupees_use_indian_grouping(value: Decimal | None, shown: str) -> None:
    assert report.inr(value) == shown


def test_axis_labels_use_lakh_and_crore() -> None:
    assert [report.inr_short(v) for v in (250, 45_000, 1_250_000, 25_000_000, -150_000)] == [
        "₹250",
        "₹45k",
        "₹12.5 L",
        "₹2.5 Cr",
        "-₹1.5 L",
    ]
