"""entity_credit_summary: windows of complete months, entity-months over accounts, entities
without data."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest
from sqlbook import Book, cr, dr


def seven_months(book: Book) -> None:
    """Account a1: an end-of-day balance of k x 1,000 all through month k of 2024 (January
    to July complete), from a 1,300 credit and a 300 EMI on each 1st. Account a2: a few
    days of March only, which makes March incomplete for the entity."""
    book.entity("e1", link_id="APP1")
    book.account("e1", "a1")
    book.account("e1", "a2")
    rows = [dr("2023-12-31", "1.00")]  # opening 1.00: 0 from the last day of 2023
    for month in range(1, 9):
        rows += [
            cr(f"2024-{month:02d}-01", "1300.00"),
            dr(
                f"2024-{month:02d}-01",
                "300.00",
                channel="auto_debit_payment",
                description="lender_transaction",
            ),
        ]
    book.txns("e1", "a1", "1.00", rows)
    book.txns(
        "e1",
        "a2",
        "0",
        [cr("2024-03-10", "2600.00", channel="cash_deposit"), dr("2024-03-20", "100.00")],
    )
    book.refresh()


def test_windows_use_the_latest_complete_entity_months(book: Book) -> None:
    seven_months(book)
    s = book.one("FROM entity_credit_summary")
    assert (s["entity_id"], s["link_id"], s["sync_status"]) == ("e1", "APP1", "complete")
    assert (s["account_count"], s["statement_count"], s["failed_statement_count"]) == (2, 0, 0)
    assert (s["first_txn_date"], s["last_txn_date"]) == (date(2023, 12, 31), date(2024, 8, 1))
    assert s["months_covered"] == 9  # December 2023 to August 2024
    assert s["complete_months"] == 6  # January to July, less March
    # last 3 complete: May, June, July; last 6: January, February, April to July
    assert s["abb_last_3_complete_months_inr"] == D("6000.00")
    assert s["abb_last_6_complete_months_inr"] == D("4166.67")  # 25,000 / 6
    assert s["avg_monthly_income_inr"] == D("1300.00")
    assert s["avg_monthly_obligations_inr"] == D("300.00")
    assert s["foir"] == pytest.approx(300 / 1300)
    assert s["income_basis"] == "credits"
    assert s["cash_deposit_share"] == pytest.approx(2600 / (8 * 1300 + 2600))
    assert (s["salary_months"], s["salary_stability"]) == (0, "none")
    assert (s["bounces_last_3_months"], s["bounces_last_6_months"]) == (0, 0)
    assert (s["negative_eod_days"], s["od_utilisation"]) == (0, None)
    assert (s["api_fraud_flags"], s["api_fraud_types"], s["balance_breaks"]) == (0, [], 0)


def test_negative_days_count_on_accounts_without_an_overdraft_limit(book: Book) -> None:
    book.entity("e1")
    book.account("e1", "a1")
    book.txns("e1", "a1", "100.00", [dr("2024-01-01", "150.00"), cr("2024-01-03", "100.00")])
    book.refresh()
    assert book.one("FROM account_monthly")["negative_eod_days"] == 2  # 1st and 2nd
    summary = book.one("FROM entity_credit_summary")
    assert summary["negative_eod_days"] == 2
    assert summary["cash_deposit_share"] == 0.0  # credits, none of them cash: 0, not unknown


def test_every_entity_has_a_row_even_without_statements_or_transactions(book: Book) -> None:
    book.entity("empty", sync_status="empty")
    book.entity("failed")
    book.statement("failed", "s1", None, status="failed", message="Unable to extract")
    book.refresh()
    rows = {r["entity_id"]: r for r in book.rows_of("FROM entity_credit_summary")}
    assert set(rows) == {"empty", "failed"}
    assert rows["empty"]["sync_status"] == "empty"
    assert rows["failed"]["failed_statement_count"] == 1
    for r in rows.values():
        assert r["account_count"] == 0 and r["months_covered"] == 0
        assert r["complete_months"] == 0 and r["first_txn_date"] is None
        assert r["avg_monthly_income_inr"] is None and r["foir"] is None
        assert r["abb_last_3_complete_months_inr"] is None
        assert r["income_basis"] is None and r["api_fraud_types"] == []
        # no transactions is no evidence: unknown, never a clean zero
        unknown = (
            "bounces_last_3_months",
            "bounces_last_6_months",
            "high_severity_bounces_last_6_months",
            "deposited_cheque_returns_last_6_months",
            "salary_months",
            "salary_stability",
            "negative_eod_days",
            "balance_breaks",
            "cash_deposit_share",
            "loan_disbursals_last_6_months",
            "loan_disbursals_last_6_months_inr",
        )
        assert {k: r[k] for k in unknown} == dict.fromkeys(unknown)


def test_current_obligations_count_a_new_loan_in_full_and_abb_leaves_out_overdrafts(
    book: Book,
) -> None:
    """Savings account sb: 5,000 at every day's end from January to June 2024 (on each 1st
    a 10,000 credit, a 2,000 EMI and an 8,000 debit), then on 10 July a new loan's first
    EMI of 5,000, the last row (July is partial). Overdraft account od (limit 50,000):
    20,001 overdrawn all along."""
    book.entity("e1")
    book.account("e1", "sb")
    months = tuple(f"2024-{m:02d}" for m in range(1, 8))  # its statement lists them all
    book.account("e1", "od", months=months, od_limit="50000.00")
    emi = {"channel": "auto_debit_payment", "description": "lender_transaction"}
    rows = []
    for month in range(1, 8):
        rows += [
            cr(f"2024-{month:02d}-01", "10000.00"),
            dr(f"2024-{month:02d}-01", "2000.00", **emi),
            dr(f"2024-{month:02d}-01", "8000.00"),
        ]
    book.txns("e1", "sb", "5000.00", [*rows, dr("2024-07-10", "5000.00", **emi)])
    book.txns("e1", "od", "-20000.00", [dr("2024-01-01", "1.00"), cr("2024-07-10", "1.00")])
    book.refresh()

    s = book.one("FROM entity_credit_summary")
    assert s["complete_months"] == 6  # January to June
    assert s["avg_monthly_income_inr"] == D("10000.00")
    assert s["avg_monthly_obligations_inr"] == D("2000.00")
    assert s["foir"] == pytest.approx(0.2)
    # May 2,000, June 2,000, July 2,000 + 5,000: the new loan counts in full
    assert s["current_monthly_obligations_inr"] == D("7000.00")
    assert s["current_foir"] == pytest.approx(0.7)
    # the savings account's balance only: the overdraft's −20,001 is utilisation
    assert s["abb_last_3_complete_months_inr"] == D("5000.00")
    assert s["abb_last_6_complete_months_inr"] == D("5000.00")
    assert s["od_utilisation"] == pytest.approx(20001 / 50000)


def test_an_entity_with_only_overdraft_accounts_has_no_abb(book: Book) -> None:
    book.entity("e1")
    book.account("e1", "od", months=("2024-01", "2024-02"), od_limit="50000.00")
    book.txns("e1", "od", "-100.00", [dr("2024-01-01", "1.00"), dr("2024-02-29", "1.00")])
    book.refresh()
    s = book.one("FROM entity_credit_summary")
    assert s["complete_months"] == 2
    assert s["abb_last_3_complete_months_inr"] is None
    assert s["abb_last_6_complete_months_inr"] is None
    assert s["current_monthly_obligations_inr"] == D("0.00")
    assert s["current_foir"] is None  # no income


def test_loans_received_in_the_last_6_months_are_counted_apart_from_income(book: Book) -> None:
    """Loans paid into sb on 5 January (outside the window), 5 February and 5 July 2024,
    the month of the last transaction: the window is February to July."""
    book.entity("e1")
    book.account("e1", "sb")
    loan = {"description": "lender_transaction"}
    book.txns(
        "e1",
        "sb",
        "1000.00",
        [
            cr("2024-01-05", "40000.00", **loan),
            cr("2024-02-05", "100000.00", **loan),
            cr("2024-03-01", "20000.00"),
            cr("2024-07-05", "50000.00", **loan),
            dr("2024-07-20", "500.00"),
        ],
    )
    book.refresh()
    s = book.one("FROM entity_credit_summary")
    assert s["loan_disbursals_last_6_months"] == 2
    assert s["loan_disbursals_last_6_months_inr"] == D("150000.00")
    months = book.rows_of("SELECT month, income_inr FROM obligations_monthly ORDER BY month")
    assert sum(m["income_inr"] for m in months) == D("20000.00")  # no loan is income
