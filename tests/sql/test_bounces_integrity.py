"""Bounce events and statement integrity on hand-computed fixtures."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from metricsdoc import duplicate_keys
from sqlbook import Book, cr, dr


def bounces_fixture(book: Book) -> None:
    book.entity("e1")
    book.account("e1", "a1")
    book.txns(
        "e1",
        "a1",
        "100000.00",
        [
            # an EMI debited, reversed, and charged for: one event
            dr(
                "2024-04-05",
                "10000.00",
                channel="auto_debit_payment",
                description="lender_transaction",
            ),
            cr(
                "2024-04-05",
                "10000.00",
                channel="auto_debit_payment_bounce",
                note="ACH DEBIT RETURN",
            ),
            dr("2024-04-05", "590.00", channel="bank_charge", description="ach_bounce_charge"),
            dr("2024-04-05", "106.20", channel="bank_charge", description="gst"),
            # a return charge alone: one event
            dr("2024-05-05", "590.00", channel="bank_charge", description="ach_bounce_charge"),
            # the same reversal twice (a duplicated row) with its charge: one event
            cr("2024-06-05", "10000.00", channel="auto_debit_payment_bounce"),
            cr("2024-06-05", "10000.00", channel="auto_debit_payment_bounce"),
            dr("2024-06-05", "590.00", channel="bank_charge", description="ach_bounce_charge"),
            # two EMIs returned the same day: two events
            cr("2024-07-05", "10000.00", channel="auto_debit_payment_bounce"),
            cr("2024-07-05", "4000.00", channel="auto_debit_payment_bounce"),
            dr("2024-07-05", "590.00", channel="bank_charge", description="ach_bounce_charge"),
            dr("2024-07-05", "750.00", channel="bank_charge", description="ach_bounce_charge"),
            # the applicant's cheque returned unpaid: only its charge shows
            dr(
                "2024-08-10",
                "500.00",
                channel="inward_cheque_bounce",
                description="chq_bounce_insuff_funds",
                note="I/W CHQ RTN:38:FUNDSINSUFFICIENT 439617",
            ),
            # a deposited cheque returned, with its charge
            cr("2024-08-12", "25000.00", channel="chq"),
            dr("2024-08-12", "25000.00", channel="outward_cheque_bounce", note="O/W RTN CHQ 52420"),
            dr("2024-08-12", "250.00", channel="bank_charge", description="chq_bounce_charge"),
            # a cheque charge alone, side unknown, for a technical reason
            dr(
                "2024-08-20",
                "300.00",
                channel="bank_charge",
                description="chq_bounce_charge",
                note="CHQ RTN CHGS SIGNATURE MISMATCH",
            ),
            # the applicant's cheque paid, then reversed
            dr("2024-08-25", "7000.00", channel="chq"),
            cr("2024-08-25", "7000.00", channel="inward_cheque_bounce", note="CHQ RETURN STALE"),
            # penalties are not bounces
            dr("2024-08-31", "500.00", channel="bank_charge", description="penalty_charge"),
            dr("2024-08-31", "400.00", channel="bank_charge", description="min_bal_charge"),
        ],
    )
    book.refresh()


def test_a_bounce_shown_as_reversal_and_charge_is_one_event(book: Book) -> None:
    bounces_fixture(book)
    events = book.rows_of(
        "SELECT event_date, event_type, severity, reason, bounced_amount_inr, charge_inr "
        "FROM bounce_events ORDER BY event_date, bounced_amount_inr DESC NULLS LAST"
    )
    assert [tuple(e.values()) for e in events] == [
        (date(2024, 4, 5), "auto_debit", "high", "unspecified", D("10000.00"), D("590.00")),
        (date(2024, 5, 5), "auto_debit", "high", "unspecified", None, D("590.00")),
        (date(2024, 6, 5), "auto_debit", "high", "unspecified", D("10000.00"), D("590.00")),
        (date(2024, 7, 5), "auto_debit", "high", "unspecified", D("10000.00"), D("590.00")),
        (date(2024, 7, 5), "auto_debit", "high", "unspecified", D("4000.00"), D("750.00")),
        (date(2024, 8, 10), "cheque_issued", "high", "insufficient_funds", None, D("500.00")),
        (date(2024, 8, 12), "cheque_deposited", "low", "unspecified", D("25000.00"), D("250.00")),
        (date(2024, 8, 20), "cheque", "medium", "technical", None, D("300.00")),
        (date(2024, 8, 25), "cheque_issued", "high", "technical", D("7000.00"), None),
    ]
    ids = book.rows_of("SELECT event_id, return_hash, charge_hash, month FROM bounce_events")
    assert len({e["event_id"] for e in ids}) == 9
    assert all(e["return_hash"] or e["charge_hash"] for e in ids)
    assert all(e["month"].day == 1 for e in ids)
    assert duplicate_keys(book.con) == {}  # every mart's documented grain holds


def test_bounce_windows_end_with_the_last_transaction_month(book: Book) -> None:
    bounces_fixture(book)
    summary = book.one("FROM entity_credit_summary")
    assert summary["last_txn_date"] == date(2024, 8, 31)
    # the applicant's own: June 1, July 2, August 3 (not the deposited cheque of 12 August)
    assert summary["bounces_last_3_months"] == 6
    assert summary["bounces_last_6_months"] == 8  # March to August
    assert summary["high_severity_bounces_last_6_months"] == 7
    assert summary["deposited_cheque_returns_last_6_months"] == 1  # the payer's failure


def test_a_deposited_cheque_that_came_back_is_not_income(book: Book) -> None:
    bounces_fixture(book)
    august = book.one("FROM obligations_monthly WHERE month = '2024-08-01'")
    # credits of August: the 25,000 cheque (returned the same day) and the 7,000 reversal
    # of the applicant's own cheque (a bounce reversal): no income at all
    assert august["credit_income_inr"] == D("0.00")


def integrity_fixture(book: Book) -> list[dict]:
    book.entity("e1")
    book.account("e1", "a1", statement_ids=("s1",))
    book.account("e1", "a2", statement_ids=("s2", "s3"))
    book.statement("e1", "s1", "a1", is_fraud=True)
    book.statement("e1", "s2", "a2")
    book.statement("e1", "s3", "a2")
    book.statement("e1", "s4", None, status="failed", message="Statement is a scanned image")
    rows = book.txns(
        "e1",
        "a1",
        "1000.00",
        [
            cr("2024-01-02", "100.00"),  # 1100
            dr("2024-01-03", "50.00", hash="f" * 32),  # 1050
            dr("2024-01-03", "10.00", hash="0" * 32, balance="1040.01"),  # off by 0.01: fine
            cr("2024-01-04", "5.00", balance="1045.03"),  # expected 1045.01: a break
            cr("2024-01-05", "10.00", balance="1100.00", seq_step=2),  # after a gap: a break
            dr("2024-01-06", "100.00"),  # 1000.00, follows
        ],
        statement_id="s1",
    )
    book.fraud("e1", "s1", "inconsistent_transaction", rows[3]["hash"])
    book.txns("e1", "a2", "0", [cr("2024-01-02", "10.00"), cr("2024-01-03", "5.00", balance="20")])
    book.refresh()
    return rows


def test_running_balance_breaks_in_statement_order(book: Book) -> None:
    rows = integrity_fixture(book)
    breaks = book.rows_of("FROM balance_integrity WHERE account_id = 'a1' ORDER BY txn_seq")
    assert [b["txn_seq"] for b in breaks] == [4, 6]
    first, second = breaks
    assert first["hash"] == rows[3]["hash"] and first["statement_id"] == "s1"
    assert (first["previous_txn_seq"], first["previous_balance_inr"]) == (3, D("1040.01"))
    assert (first["amount_inr"], first["balance_inr"]) == (D("5.00"), D("1045.03"))
    assert (first["expected_balance_inr"], first["difference_inr"]) == (D("1045.01"), D("0.02"))
    assert (first["after_seq_gap"], first["flagged_by_api"]) == (False, True)
    assert (second["previous_txn_seq"], second["after_seq_gap"]) == (4, True)
    assert second["difference_inr"] == D("44.97")
    assert second["flagged_by_api"] is False
    assert {b["statement_breaks"] for b in breaks} == {2}
    assert {b["statement_is_fraud"] for b in breaks} == {True}
    other = book.one("FROM balance_integrity WHERE account_id = 'a2'")
    assert other["statement_id"] is None and other["statement_is_fraud"] is None
    assert other["statement_breaks"] == 1


def test_a_break_in_a_two_statement_account_takes_its_statement_from_the_api_flag(
    book: Book,
) -> None:
    """a2's rows name no statement (it has two); the API flags the break's hash in s3,
    which it marks fraudulent: the break carries s3 and its verdict."""
    book.entity("e1")
    book.account("e1", "a2", statement_ids=("s2", "s3"))
    book.statement("e1", "s2", "a2")
    book.statement("e1", "s3", "a2", is_fraud=True)
    rows = book.txns(
        "e1", "a2", "0", [cr("2024-01-02", "10.00"), cr("2024-01-03", "5.00", balance="20")]
    )
    book.fraud("e1", "s3", "inconsistent_transaction", rows[1]["hash"])
    book.refresh()
    b = book.one("FROM balance_integrity")
    assert (b["txn_seq"], b["statement_id"], b["flagged_by_api"]) == (2, "s3", True)
    assert (b["statement_is_fraud"], b["statement_breaks"]) == (True, 1)
    # statement_integrity still leaves a two-statement account's per-statement counts
    # unknown: the rows the API did not flag cannot be placed
    assert book.one("FROM statement_integrity WHERE statement_id = 's3'")["balance_breaks"] is None


def test_statement_counts_beside_the_api_verdicts(book: Book) -> None:
    integrity_fixture(book)
    s = {r["statement_id"]: r for r in book.rows_of("FROM statement_integrity")}
    assert set(s) == {"s1", "s2", "s3", "s4"}
    s1 = s["s1"]
    assert (s1["is_fraud"], s1["api_fraud_types"], s1["api_flagged_transactions"]) == (
        True,
        ["inconsistent_transaction"],
        1,
    )
    assert (s1["transaction_count"], s1["balance_breaks"], s1["breaks_flagged_by_api"]) == (6, 2, 1)
    assert s1["account_balance_breaks"] == 2
    assert (s1["opening_balance_inr"], s1["closing_balance_inr"]) == (D("1000.00"), D("1000.00"))
    assert (s1["credits_inr"], s1["debits_inr"]) == (D("115.00"), D("160.00"))
    assert s1["balance_drift_inr"] == D("45.00")  # 0.01 + 0.02 + 44.97
    for name in ("s2", "s3"):  # rows of a two-statement account name no statement
        assert s[name]["balance_breaks"] is None and s[name]["transaction_count"] is None
        assert s[name]["credits_inr"] is None and s[name]["balance_drift_inr"] is None
        assert s[name]["account_balance_breaks"] == 1 and s[name]["api_fraud_types"] == []
    assert (s["s4"]["status"], s["s4"]["message"]) == ("failed", "Statement is a scanned image")
    summary = book.one("FROM entity_credit_summary")
    assert (summary["balance_breaks"], summary["api_fraud_flags"]) == (3, 1)
    assert summary["api_fraud_types"] == ["inconsistent_transaction"]
    assert (summary["fraudulent_statement_count"], summary["failed_statement_count"]) == (1, 1)
    assert summary["statement_count"] == 4
    assert duplicate_keys(book.con) == {}


def test_a_missing_statement_explains_a_break_and_leaves_its_months_incomplete(
    book: Book,
) -> None:
    """January and April statements, February and March missing: the April opening does
    not follow from January's close. Listed months say so (a1); with none listed (a2) the
    31-day rule does; a quiet but covered February and March (a3) is a real break."""
    book.entity("e1")
    rows = [
        cr("2024-01-01", "100.00"),
        dr("2024-01-31", "50.00"),  # closes January at 1,050.00
        cr("2024-04-01", "10.00", balance="3010.00"),  # as if 3,000.00 before it
        dr("2024-04-30", "10.00"),
    ]
    for account, months in (
        ("a1", ("2024-01", "2024-04")),
        ("a2", ()),
        ("a3", ("2024-01", "2024-02", "2024-03", "2024-04")),
    ):
        book.account("e1", account, months=months)
        book.txns("e1", account, "1000.00", rows)
    book.refresh()
    breaks = {b["account_id"]: b for b in book.rows_of("FROM balance_integrity")}
    assert set(breaks) == {"a1", "a2", "a3"}
    for b in breaks.values():
        assert (b["txn_seq"], b["previous_txn_date"]) == (3, date(2024, 1, 31))
        assert b["difference_inr"] == D("1950.00")
    assert [breaks[a]["after_statement_gap"] for a in ("a1", "a2", "a3")] == [True, True, False]
    assert book.one("FROM entity_credit_summary")["balance_breaks"] == 1  # a3's alone
    complete = {
        (r["account_id"], r["month"].month): r["is_complete_month"]
        for r in book.rows_of("FROM account_monthly")
    }
    for account in ("a1", "a2"):  # February and March: carried forward, never complete
        assert [complete[account, m] for m in (1, 2, 3, 4)] == [True, False, False, True]
    assert [complete["a3", m] for m in (1, 2, 3, 4)] == [True, True, True, True]
