"""The HTML credit report: charts inline, nothing fetched, text escaped, rupees grouped the
Indian way; entities with no statements, a failed statement, a normal history, an overdraft
account with one of two statements unreadable, and two accounts held by different people."""

from __future__ import annotations

import hashlib
import html
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
OVERDRAFT = "01e6b47e-396f-40cf-a5d9-4a8ca0f35a84"
TWO = "1a749c29-e84d-4301-92db-4e9126994833"
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
    account = kw.get("account", "acct-1")
    return [
        entity,
        account,
        kw.get("statement", "stmt-1"),
        seq,
        hashlib.sha256(f"{entity}/{account}/{seq}".encode()).hexdigest()[:32],
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


def _account(
    con: duckdb.DuckDBPyConnection,
    entity: str,
    account: str,
    bank_number_holder: tuple[str, str, str],
    opening: str,
    moves: list[tuple[date, str, str, str]],
    *,
    od_limit: str | None = None,
) -> None:
    """One account with a completed statement, its identity, and transactions (day, type,
    amount, channel) whose running balance starts at ``opening``."""
    bank, number, holder = bank_number_holder
    statement = f"stmt-{account}"
    _insert(con, "statements", [entity, statement, account, "completed", None, *[None] * 12, False])
    _insert(
        con,
        "accounts",
        [entity, account, bank, number, None, None, [], 0, None, None, [statement]],
    )
    limit = Decimal(od_limit) if od_limit else None
    _insert(con, "identities", [entity, account, holder, None, number, "individual", None, limit])
    balance = Decimal(opening)
    for seq, (day, kind, amount, channel) in enumerate(moves, start=1):
        balance += Decimal(amount) if kind == "credit" else -Decimal(amount)
        _insert(
            con,
            "transactions",
            _txn(
                entity,
                seq,
                day,
                kind,
                amount,
                balance,
                account=account,
                statement=statement,
                channel=channel,
            ),
        )


@pytest.fixture(scope="module")
def lake() -> Iterator[duckdb.DuckDBPyConnection]:
    """Five entities: no statements, one failed statement, four months of history with
    salary, EMIs, a bounced EMI and a tampered row the API flags, an overdraft account that
    goes over its ₹50,000 limit (and a second statement that could not be read), and two
    accounts in different names, one with a bounced EMI and a few days below zero."""
    con = duckdb.connect()
    con.execute("ATTACH ':memory:' AS lake")
    con.execute("USE lake")
    for table in TABLES:
        con.execute(ddl(table)[0])
    seen = datetime(2026, 11, 20, 2, 0)
    entities = (
        (NORMAL, "complete"),
        (EMPTY, "empty"),
        (FAILED, "complete"),
        (OVERDRAFT, "complete"),
        (TWO, "complete"),
    )
    for entity, status in entities:
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
    # Overdraft: ₹10,000, then down to −₹30,000 (inside the ₹50,000 limit) and −₹55,000 (over
    # it) for two days, then back above zero.
    june = date(2026, 6, 1)
    od_moves = [
        (june + timedelta(days=d), kind, amount, "upi")
        for d, kind, amount in (
            (0, "debit", "100.00"),
            (10, "debit", "40000.00"),
            (20, "debit", "25000.00"),
            (22, "credit", "30000.00"),
            (40, "credit", "60000.00"),
            (70, "debit", "100.00"),
        )
    ]
    _account(
        con,
        OVERDRAFT,
        "od-1",
        ("sbi", "XXXXXXXX4970", "ARJUN NAIR"),
        "10100.00",
        od_moves,
        od_limit="50000.00",
    )
    _insert(
        con,
        "statements",
        [
            OVERDRAFT,
            "stmt-od-2",
            None,
            "failed",
            "Statement is password protected",
            *[None] * 12,
            False,
        ],
    )
    # Two accounts, two holders. The IOB account bounces an EMI; the Karnataka Bank one
    # dips ₹300 below zero for a few days.
    iob = [
        (june, "debit", "500.00", "upi"),
        (june + timedelta(days=5), "debit", "8000.00", "auto_debit_payment"),
        (june + timedelta(days=5), "credit", "8000.00", "auto_debit_payment_bounce"),
        (june + timedelta(days=5), "debit", "590.00", "bank_charge"),
        (june + timedelta(days=60), "debit", "500.00", "upi"),
    ]
    karnataka = [
        (june, "debit", "1300.00", "upi"),
        (june + timedelta(days=30), "credit", "5000.00", "upi"),
        (june + timedelta(days=60), "debit", "100.00", "upi"),
    ]
    _account(con, TWO, "acct-a", ("iob", "381984112345484", "NEHA KHAN"), "90000.00", iob)
    _account(
        con, TWO, "acct-b", ("karnataka", "XXXXXXXXXXX1702", "DIYA VERMA"), "1000.00", karnataka
    )
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
    shown = summary(doc)  # its EMIs are a loan taken before the statement: none received
    assert shown["Loans received, last 6 months"] == "0"
    assert shown["Loans received, amount (in the ABB until spent)"] == "₹0.00"


def test_entity_without_statements(lake: duckdb.DuckDBPyConnection) -> None:
    doc = render(lake, EMPTY)
    assert "<svg" not in doc
    assert "No statements were uploaded." in section(doc, "Statements and integrity")
    assert "No transactions: nothing to chart." in doc
    assert FETCHES.search(doc) is None


def test_an_entity_still_processing_is_not_said_to_have_no_statements(
    lake: duckdb.DuckDBPyConnection,
) -> None:
    lake.execute(
        "UPDATE entity_credit_summary SET sync_status = 'pending' WHERE entity_id = ?", [EMPTY]
    )
    try:
        doc = render(lake, EMPTY)
    finally:
        lake.execute(
            "UPDATE entity_credit_summary SET sync_status = 'empty' WHERE entity_id = ?", [EMPTY]
        )
    assert "No statements were uploaded" not in doc
    assert "still being processed by BankConnect" in banners(doc)[0]
    assert "still being processed by BankConnect" in section(doc, "Statements and integrity")


def test_entity_whose_statement_failed(lake: duckdb.DuckDBPyConnection) -> None:
    doc = render(lake, FAILED)
    assert "<svg" not in doc
    assert "Statement is a scanned image" in doc and ">failed<" in doc
    assert 'class="warn"><span>Failed statements</span><span class="v">1<' in doc


def summary(doc: str) -> dict[str, str]:
    """The summary's label → value pairs, as the reader sees them."""
    pairs = re.findall(r'<div(?: class="warn")?><span>([^<]*)</span><span class="v">([^<]*)<', doc)
    return {html.unescape(k): html.unescape(v) for k, v in pairs}


def warned(doc: str) -> set[str]:
    return {html.unescape(k) for k in re.findall(r'<div class="warn"><span>([^<]*)</span>', doc)}


def banners(doc: str) -> list[str]:
    return [html.unescape(b) for b in re.findall(r'<p class="banner [a-z]+"[^>]*>([^<]*)</p>', doc)]


def section(doc: str, heading: str) -> str:
    return doc.split(f"<h2>{heading}</h2>", 1)[1].split("</section>", 1)[0]


def headers(table_html: str) -> list[str]:
    return [html.unescape(h) for h in re.findall(r"<th[^>]*>([^<]*)</th>", table_html)]


NBSP = "\u00a0"


@pytest.mark.parametrize(
    ("entity", "reason"),
    [
        (EMPTY, "No statements were uploaded."),
        (FAILED, "The only statement could not be read (Statement is a scanned image)."),
    ],
)
def test_entities_without_transactions_do_not_look_clean(
    lake: duckdb.DuckDBPyConnection, entity: str, reason: str
) -> None:
    doc = render(lake, entity)
    (banner,) = banners(doc)
    assert banner == (
        "No transactions could be read; the figures below are not evidence of a clean record. "
        + reason
    )
    assert doc.index('class="banner alert"') < doc.index("<h2>Summary</h2>")
    shown = summary(doc)
    for label in (
        "Bounces, last 6 months",
        "High-severity bounces, last 6 months",
        "Months with salary",
        "Negative-balance days (non-overdraft accounts)",
        "Fraud findings (API)",
        "Running-balance breaks (recomputed)",
    ):
        assert shown[label] == "—", label  # no transactions: no basis for a 0
    assert shown["Statements"] == ("0" if entity == EMPTY else "1")  # a real count stays
    assert "No transactions were read, so this cannot be assessed." in section(doc, "Bounces")
    assert "No running-balance breaks." not in doc


def test_a_normal_entity_has_no_banner(lake: duckdb.DuckDBPyConnection) -> None:
    assert banners(render(lake, NORMAL)) == []


def test_some_statements_unreadable(lake: duckdb.DuckDBPyConnection) -> None:
    doc = render(lake, OVERDRAFT)
    assert banners(doc) == [
        "1 of 2 statements could not be read (Statement is password protected); income and "
        "balances may be understated."
    ]
    assert 'class="banner caution"' in doc and doc.count("<svg ") == 2


def test_overdraft_is_shown_against_its_limit(lake: duckdb.DuckDBPyConnection) -> None:
    doc = render(lake, OVERDRAFT)
    shown = summary(doc)
    assert shown["Overdraft utilisation (average)"] == "24.2%"
    assert shown["Overdraft utilisation (peak)"] == "110.0%"  # −₹55,000 against ₹50,000
    assert shown["Days over the overdraft limit"] == "2"
    assert shown["Negative-balance days (non-overdraft accounts)"] == "0"
    assert {"Days over the overdraft limit", "Overdraft utilisation (peak)"} <= warned(doc)
    assert "Overdraft utilisation (average)" not in warned(doc)
    assert 'id="eod-od-limit-0"' in doc  # the dashed limit line on the balance chart
    assert 'id="eod-over-limit-0"' in doc  # the two days over it, shaded
    assert "eod-negative-days" not in doc  # a negative balance here is the overdraft in use
    accounts = section(doc, "Accounts")
    assert headers(accounts)[-3:] == [
        "Utilisation (average)",
        "Utilisation (peak)",
        "Days over limit",
    ]
    assert "₹50,000.00" in accounts and "110.0%" in accounts
    # ABB is the applicant's own money: the summary leaves an overdraft account out, and
    # so does the monthly table beside it (it used to sum the overdraft's balance in)
    assert shown["ABB, non-overdraft accounts (2 complete months)"] == report.DASH
    flows = section(doc, "Cash flow")
    assert headers(flows)[4] == "ABB, non-overdraft"
    abb = [html.unescape(r[4]) for r in re.findall(r"<tr>" + "<td[^>]*>([^<]*)</td>" * 8, flows)]
    assert abb and set(abb) == {report.DASH}


def test_accounts_show_the_months_listed_apart_from_the_months_with_balances(
    lake: duckdb.DuckDBPyConnection,
) -> None:
    """NORMAL's account lists no months (the API gave none); its rows run 20 May to 26
    September: five calendar months, June to August complete."""
    accounts = section(render(lake, NORMAL), "Accounts")
    cells = [html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", accounts)]
    shown = dict(zip(headers(accounts), cells, strict=True))
    assert (
        shown["Months listed (API)"],
        shown["Months with a balance"],
        shown["Complete months"],
    ) == ("0", "5", "3")


def test_a_plain_account_has_no_limit_line(lake: duckdb.DuckDBPyConnection) -> None:
    doc = render(lake, NORMAL)
    assert "od-limit" not in doc
    assert summary(doc)["Overdraft utilisation (peak)"] == "—"
    assert "Utilisation (peak)" not in headers(section(doc, "Accounts"))


def test_small_negative_balances_and_breaks_are_marked(lake: duckdb.DuckDBPyConnection) -> None:
    two = render(lake, TWO)
    assert summary(two)["Negative-balance days (non-overdraft accounts)"] == "30"
    assert 'id="eod-negative-days-0"' in two and "eod-negative-days-1" not in two  # one run
    normal = render(lake, NORMAL)
    assert summary(normal)["Running-balance breaks (recomputed)"] == "1"
    assert 'id="eod-running-balance-breaks"' in normal
    assert 'id="eod-salary-credits"' in normal and 'id="eod-bounces"' in normal
    assert 'id="flows-salary-amount"' in normal and 'id="flows-EMIs-due"' in normal
    rows = summary(normal)
    assert rows["Salary the same every month"] in {"yes", "no"}
    assert rows["Salary a multiple of 1,000"] in {"yes", "no"}


def test_header_names_the_holder_bank_and_number(lake: duckdb.DuckDBPyConnection) -> None:
    doc = render(lake, OVERDRAFT)
    title = f"Credit report — ARJUN NAIR — SBI{NBSP}••••4970"
    assert f"<title>{title}</title>" in doc
    assert "<h1>Credit report — ARJUN NAIR</h1>" in doc
    assert f"SBI{NBSP}••••4970 · Entity" in doc
    assert "different holders" not in doc
    # No holder on record: the entity id stands in for the name.
    assert f"<title>Credit report — entity 5d8001db — HDFC{NBSP}••••9012</title>" in render(
        lake, NORMAL
    )
    assert "<title>Credit report — entity b89d45d6</title>" in render(lake, EMPTY)


def test_two_accounts_with_different_holders(lake: duckdb.DuckDBPyConnection) -> None:
    doc = render(lake, TWO)
    iob, karnataka = f"IOB{NBSP}••••5484", f"KARNATAKA{NBSP}••••1702"
    assert f"<title>Credit report — NEHA KHAN / DIYA VERMA — {iob}, {karnataka}</title>" in doc
    assert banners(doc) == [
        f"The accounts belong to different holders: NEHA KHAN ({iob}), DIYA VERMA "
        f"({karnataka}). Check that each is the applicant's before relying on the combined "
        "figures."
    ]
    bounces = section(doc, "Bounces")
    assert headers(bounces)[:3] == ["Date", "Account", "Type"]
    assert f"<td>{iob}</td>" in bounces
    # With one account the column would say nothing.
    assert headers(section(render(lake, NORMAL), "Bounces"))[:2] == ["Date", "Type"]


def test_averages_say_how_many_complete_months_they_cover(
    lake: duckdb.DuckDBPyConnection,
) -> None:
    shown = summary(render(lake, TWO))  # two complete months: June and July
    assert shown["Complete months"] == "2"
    assert "Average monthly income (2 complete months)" in shown
    assert "ABB, non-overdraft accounts (2 complete months)" in shown
    assert not any("last 6 complete months" in label for label in shown)
    # ABB over the last 3 and the last 6 complete months is one figure here: shown once.
    labels = re.findall(r"<span>([^<]*)</span><span class=\"v\">", render(lake, TWO))
    assert labels.count("ABB, non-overdraft accounts (2 complete months)") == 1
    assert len(labels) == len(set(labels))
    empty = re.findall(r"<span>([^<]*)</span><span class=\"v\">", render(lake, EMPTY))
    assert empty.count("ABB, non-overdraft accounts (no complete months)") == 1 and len(
        empty
    ) == len(set(empty))


def test_warnings_and_highlights_are_explained(lake: duckdb.DuckDBPyConnection) -> None:
    doc = render(lake, NORMAL)
    flags = re.findall(r'<p class="flag"[^>]*>([^<]*)</p>', doc)
    assert flags == [
        "Fraud signal: the salary amount never changes.",
        "Fraud signal: every salary amount is a multiple of ₹1,000.",
    ]
    assert report.FOIR_LIMIT == 0.5
    assert "Values in red</span> need a closer look: FOIR above 50%;" in doc
    # The legend's threshold is the one the highlighting uses.
    assert "foir" in report._warn({"foir": 0.51}) and "foir" not in report._warn({"foir": 0.5})
    for stability, warn in (("stopped", True), ("irregular", True), ("stable", False)):
        assert ("salary_stability" in report._warn({"salary_stability": stability})) is warn
    assert "irregular or stopped salary" in doc


def test_print_and_narrow_screens(lake: duckdb.DuckDBPyConnection) -> None:
    doc = render(lake, TWO)
    assert "@media print" in doc and "break-inside: avoid" in doc
    assert "h2 { break-after: avoid; }" in doc
    assert doc.count("<table>") == doc.count('<div class="scroll"><table>') > 0


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
