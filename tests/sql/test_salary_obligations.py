"""Salary months and obligations (EMIs, disbursals, income, FOIR) on hand-computed fixtures."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest
from sqlbook import Book, cr, dr


def test_salary_months_gaps_spread_and_fraud_flags(book: Book) -> None:
    book.entity("e1")
    book.account("e1", "a1")
    rows = book.txns(
        "e1",
        "a1",
        "0",
        [
            cr("2024-01-31", "50000.00", channel="salary"),  # for January, on the 31st
            cr("2024-03-01", "50000.00", channel="salary"),  # for February, on the 1st
            cr("2024-05-02", "50000.00", channel="salary"),  # for April: March is missing
        ],
    )
    for row, month in zip(rows, ("2024-01", "2024-02", "2024-04"), strict=True):
        book.salary(row, month, "Acme Softlabs Pvt Ltd")
    book.refresh()
    got = book.rows_of("FROM salary_monthly ORDER BY salary_month")
    assert [r["salary_month"] for r in got] == [
        date(2024, 1, 1),
        date(2024, 2, 1),
        date(2024, 4, 1),
    ]
    assert [r["credit_day"] for r in got] == [31, 1, 2]
    assert {r["employer"] for r in got} == {"Acme Softlabs Pvt Ltd"}
    first = got[0]
    assert (first["salary_inr"], first["credit_count"]) == (D("50000.00"), 1)
    assert first["first_credit_date"] == date(2024, 1, 31)
    assert first["months_with_salary"] == 3
    assert first["salary_gap_months"] == 1
    assert first["months_since_last_salary"] == 1  # April's salary, paid in May
    assert first["salary_months_overdue"] == 0  # the statement ends on 2 May: May's is not due
    # days after the end of the month paid for: 0 (31 Jan), +1 (1 Mar for a 29-day
    # February), +2 (2 May for April); by day of month alone it would be 31 − 1 = 30
    assert first["credit_day_spread_days"] == 2
    assert first["amount_unchanged"] is True
    assert first["amount_multiple_of_1000"] is True
    summary = book.one("FROM entity_credit_summary")
    assert (summary["salary_months"], summary["salary_stability"]) == (3, "irregular")
    assert (summary["salary_amount_unchanged"], summary["salary_multiple_of_1000"]) == (True, True)


def test_a_salary_that_stopped_before_the_statement_ends(book: Book) -> None:
    book.entity("e1")
    book.account("e1", "a1")
    salaries = [cr(f"2024-0{m}-28", "60000.00", channel="salary") for m in (1, 2, 3, 4)]
    later = [dr("2024-06-10", "100.00"), dr("2024-07-15", "100.00")]
    rows = book.txns("e1", "a1", "500000", [*salaries, *later])
    for row, month in zip(rows, ("2024-01", "2024-02", "2024-03", "2024-04"), strict=False):
        book.salary(row, month, "Acme Ltd")
    book.refresh()
    april = book.one("FROM salary_monthly WHERE salary_month = DATE '2024-04-01'")
    assert april["months_since_last_salary"] == 3  # April's was the last; July the last month
    # paid at the latest a day before the month's end: May's and June's were due by 15 July
    assert april["salary_months_overdue"] == 2
    assert april["salary_gap_months"] == 0
    # the 28th every month: 0 by day of month (by days before the month's end 3, 1 in a
    # leap February, 3, 2: a spread of 2 for an employer that never moved its pay day)
    assert april["credit_day_spread_days"] == 0
    summary = book.one("FROM entity_credit_summary")
    assert (summary["salary_months"], summary["salary_stability"]) == (4, "stopped")


def test_a_statement_ending_before_pay_day_does_not_stop_the_salary(book: Book) -> None:
    """Each month's salary paid on the 5th of the next. A statement ending on 3 October
    has August's (paid 5 September) as its last: September's is not due until 5 October.
    One ending on 10 October without September's salary has one overdue: stopped."""
    for entity, last_day in (("e1", "2024-10-03"), ("e2", "2024-10-10")):
        book.entity(entity)
        book.account(entity, "a1")
        salaries = [cr(f"2024-{m:02d}-05", "60000.00", channel="salary") for m in (7, 8, 9)]
        rows = book.txns(entity, "a1", "1000.00", [*salaries, dr(last_day, "100.00")])
        for row, month in zip(rows, ("2024-06", "2024-07", "2024-08"), strict=False):
            book.salary(row, month, "Acme Ltd")
    book.refresh()
    got = {
        r["entity_id"]: r
        for r in book.rows_of("FROM salary_monthly WHERE salary_month = DATE '2024-08-01'")
    }
    assert got["e1"]["months_since_last_salary"] == 2  # August to October, by the calendar
    assert got["e1"]["salary_months_overdue"] == 0
    assert got["e2"]["salary_months_overdue"] == 1
    stability = dict(
        book.con.sql("SELECT entity_id, salary_stability FROM entity_credit_summary").fetchall()
    )
    assert stability == {"e1": "stable", "e2": "stopped"}


def test_salary_month_with_two_credits_and_a_changing_amount(book: Book) -> None:
    book.entity("e1")
    book.account("e1", "a1")
    rows = book.txns(
        "e1",
        "a1",
        "0",
        [
            cr("2024-06-28", "40000.00", channel="salary"),
            cr("2024-06-30", "5000.00", channel="salary"),
            cr("2024-07-29", "45500.00", channel="salary"),
            cr("2024-08-30", "45500.00", channel="salary"),
        ],
    )
    book.salary(rows[0], "2024-06", "Acme Ltd")
    book.salary(rows[1], "2024-06", "Acme Bonus")
    book.salary(rows[2], "2024-07", "Acme Ltd")
    book.salary(rows[3], "2024-08", "Acme Ltd")
    book.refresh()
    june = book.one("FROM salary_monthly WHERE salary_month = DATE '2024-06-01'")
    assert (june["salary_inr"], june["credit_count"]) == (D("45000.00"), 2)
    assert (june["first_credit_date"], june["credit_day"]) == (date(2024, 6, 28), 28)
    assert june["employer"] == "Acme Ltd"  # the larger credit's
    assert june["salary_gap_months"] == 0
    # −2 (28 Jun), −2 (29 Jul), −1 (30 Aug) days from the month's end; 28, 29, 30 by day
    assert june["credit_day_spread_days"] == 1
    assert june["amount_unchanged"] is False
    assert june["amount_multiple_of_1000"] is False  # 45,500
    summary = book.one("FROM entity_credit_summary")
    assert (summary["salary_months"], summary["salary_stability"]) == (3, "stable")
    assert summary["salary_amount_unchanged"] is False
    assert summary["salary_multiple_of_1000"] is False


def obligations_fixture(book: Book) -> None:
    """A salaried account whose EMI three sources name, and a self-employed one whose
    income is its credits less everything that is not income."""
    book.entity("e1")
    book.account("e1", "sal")
    book.account("e1", "biz")
    sal = book.txns(
        "e1",
        "sal",
        "100000.00",
        [
            cr("2024-02-01", "60000.00", channel="salary"),
            dr(
                "2024-02-05",
                "10000.00",
                channel="auto_debit_payment",
                description="lender_transaction",
            ),
            dr("2024-02-07", "5000.00", channel="auto_debit_payment"),  # NACH set only
            dr("2024-02-10", "3000.00"),  # rent, a recurring UPI set: no EMI
            cr(
                "2024-02-12",
                "200000.00",
                channel="net_banking_transfer",
                description="lender_transaction",
            ),
            cr("2024-02-15", "1000.00", channel="refund"),
            dr(
                "2024-03-05",
                "10000.00",
                channel="auto_debit_payment",
                description="lender_transaction",
            ),
        ],
    )
    book.salary(sal[0], "2024-01", "Acme")  # for January, paid on 1 February
    book.lender(sal[1])
    book.lender(sal[4])
    book.recurring("emi-set", "auto_debit_payment", [sal[1], sal[6]])
    book.recurring("nach-set", "auto_debit_payment", [sal[2]])
    book.recurring("rent-set", "upi", [sal[3]])
    biz = book.txns(
        "e1",
        "biz",
        "0",
        [
            cr("2024-02-01", "50000.00", channel="net_banking_transfer"),  # income
            cr("2024-02-02", "20000.00", channel="self_transfer"),
            cr("2024-02-03", "10000.00", description="self_transfer"),
            cr("2024-02-04", "5000.00", channel="refund"),
            cr("2024-02-05", "700.00", description="neft_return"),
            cr("2024-02-06", "3000.00", channel="auto_debit_payment_bounce"),
            cr("2024-02-07", "2000.00", channel="outward_cheque_bounce"),
            cr("2024-02-08", "1500.00", channel="international_transaction_arbitrage"),
            cr("2024-02-09", "100000.00", channel="net_banking_transfer"),  # lender endpoint only
            cr("2024-02-10", "8000.00", channel="cash_deposit"),  # income
            dr("2024-02-11", "12000.00", channel="auto_debit_payment"),  # lender endpoint only
            cr("2024-02-12", "9000.00", channel="investment_cashin"),  # a redemption: savings
            dr("2024-03-11", "100.00"),
        ],
    )
    book.lender(biz[8])
    book.lender(biz[10])
    book.refresh()


def test_emis_are_counted_once_whichever_sources_name_them(book: Book) -> None:
    obligations_fixture(book)
    feb = book.one("FROM obligations_monthly WHERE account_id = 'sal' AND month = '2024-02-01'")
    assert (feb["emi_inr"], feb["emi_count"]) == (D("15000.00"), 2)
    assert (feb["loan_disbursal_inr"], feb["loan_disbursal_count"]) == (D("200000.00"), 1)
    assert feb["income_basis"] == "salary"
    assert feb["salary_income_inr"] == D("60000.00")  # by credit date, not salary month
    assert feb["income_inr"] == D("60000.00")
    assert feb["foir"] == pytest.approx(0.25)
    mar = book.one("FROM obligations_monthly WHERE account_id = 'sal' AND month = '2024-03-01'")
    assert (mar["emi_inr"], mar["income_inr"], mar["foir"]) == (D("10000.00"), D("0.00"), None)


def test_income_without_salary_excludes_what_is_not_income(book: Book) -> None:
    obligations_fixture(book)
    feb = book.one("FROM obligations_monthly WHERE account_id = 'biz' AND month = '2024-02-01'")
    assert feb["income_basis"] == "credits"
    assert feb["credit_income_inr"] == D("58000.00")  # 50,000 + 8,000 cash
    assert feb["income_inr"] == D("58000.00")
    assert feb["salary_income_inr"] == D("0.00")
    assert (feb["emi_inr"], feb["emi_count"]) == (D("12000.00"), 1)
    assert (feb["loan_disbursal_inr"], feb["loan_disbursal_count"]) == (D("100000.00"), 1)
    assert feb["foir"] == pytest.approx(12000 / 58000)
    mar = book.one("FROM obligations_monthly WHERE account_id = 'biz' AND month = '2024-03-01'")
    assert (mar["income_inr"], mar["emi_inr"], mar["foir"]) == (D("0.00"), D("0.00"), None)
    assert book.one("FROM entity_credit_summary")["income_basis"] == "mixed"


def test_an_instalment_the_bank_never_debited_is_still_owed(book: Book) -> None:
    """A NACH EMI of 5,000 debited in January, February and April; in March only its
    return charge shows. A yearly premium debited in January 2024 and January 2025 is
    not missed in the months between."""
    book.entity("e1")
    book.account("e1", "a1")
    emi = {"channel": "auto_debit_payment"}
    rows = book.txns(
        "e1",
        "a1",
        "100000.00",
        [
            cr("2024-01-01", "20000.00", channel="net_banking_transfer"),
            dr("2024-01-05", "5000.00", **emi),
            dr("2024-01-20", "12000.00", **emi),  # the yearly premium
            cr("2024-02-01", "20000.00", channel="net_banking_transfer"),
            dr("2024-02-05", "5000.00", **emi),
            cr("2024-03-01", "20000.00", channel="net_banking_transfer"),
            dr("2024-03-05", "590.00", channel="bank_charge", description="ach_bounce_charge"),
            cr("2024-04-01", "20000.00", channel="net_banking_transfer"),
            dr("2024-04-05", "5000.00", **emi),
            dr("2025-01-20", "12000.00", **emi),
        ],
    )
    book.recurring("emi", "auto_debit_payment", [rows[1], rows[4], rows[8]])
    book.recurring("premium", "auto_debit_payment", [rows[2], rows[9]])
    book.refresh()
    got = {
        r["month"].month: r
        for r in book.rows_of(
            "FROM obligations_monthly WHERE month BETWEEN '2024-01-01' AND '2024-05-01'"
        )
    }
    march = got[3]
    assert (march["emi_inr"], march["emi_count"]) == (D("0.00"), 0)
    assert (march["missed_emi_inr"], march["missed_emi_count"]) == (D("5000.00"), 1)
    assert march["emi_due_inr"] == D("5000.00")
    assert march["foir"] == pytest.approx(5000 / 20000)
    for month in (2, 4, 5):  # paid, paid, and May: after the EMI's last debit
        assert (got[month]["missed_emi_count"], got[month]["missed_emi_inr"]) == (0, D("0.00"))
    assert got[2]["emi_due_inr"] == D("5000.00")
    assert got[1]["emi_due_inr"] == D("17000.00")  # both debited
    summary = book.one("FROM entity_credit_summary")
    # complete months January to April: 17,000 + 5,000 + 5,000 (missed) + 5,000
    assert summary["avg_monthly_obligations_inr"] == D("8000.00")


def test_quarterly_and_bi_monthly_sets_miss_no_instalments_between_their_debits(
    book: Book,
) -> None:
    """Debits in half the months a set spans are not enough to call it monthly: a
    quarterly premium (January, April) spans 4 months with 2 debits, a bi-monthly one
    (January, March, May) 5 with 3. Neither misses the months between. A monthly EMI
    that skipped March (January, February, April) still does."""
    book.entity("e1")
    book.account("e1", "a1")
    emi = {"channel": "auto_debit_payment"}
    rows = book.txns(
        "e1",
        "a1",
        "500000.00",
        [
            dr("2024-01-03", "7000.00", **emi),  # 0 quarterly
            dr("2024-01-10", "3000.00", **emi),  # 1 bi-monthly
            dr("2024-01-15", "5000.00", **emi),  # 2 monthly
            dr("2024-02-15", "5000.00", **emi),  # 3 monthly
            dr("2024-03-10", "3000.00", **emi),  # 4 bi-monthly
            dr("2024-04-03", "7000.00", **emi),  # 5 quarterly
            dr("2024-04-15", "5000.00", **emi),  # 6 monthly
            dr("2024-05-10", "3000.00", **emi),  # 7 bi-monthly
        ],
    )
    book.recurring("quarterly", "auto_debit_payment", [rows[0], rows[5]])
    book.recurring("bimonthly", "auto_debit_payment", [rows[1], rows[4], rows[7]])
    book.recurring("monthly", "auto_debit_payment", [rows[2], rows[3], rows[6]])
    book.refresh()
    got = {
        r["month"].month: (r["missed_emi_count"], r["missed_emi_inr"])
        for r in book.rows_of("FROM obligations_monthly")
    }
    assert got == {
        1: (0, D("0.00")),
        2: (0, D("0.00")),  # the bi-monthly and quarterly sets owe nothing here
        3: (1, D("5000.00")),  # only the monthly EMI's instalment is missed
        4: (0, D("0.00")),
        5: (0, D("0.00")),
    }


def test_two_equal_salary_months_are_too_few_to_call_the_amount_unchanged(book: Book) -> None:
    book.entity("e1")
    book.account("e1", "a1")
    salaries = [cr(f"2024-0{m}-01", "50000.00", channel="salary") for m in (1, 2, 3)]
    rows = book.txns("e1", "a1", "0", salaries)
    for row, month in zip(rows[:2], ("2023-12", "2024-01"), strict=True):
        book.salary(row, month, "Acme Ltd")
    book.refresh()
    two = book.one("FROM salary_monthly WHERE salary_month = DATE '2024-01-01'")
    assert (two["months_with_salary"], two["amount_unchanged"]) == (2, False)
    book.salary(rows[2], "2024-02", "Acme Ltd")  # a third month, the same amount
    book.refresh()
    three = book.one("FROM salary_monthly WHERE salary_month = DATE '2024-02-01'")
    assert (three["months_with_salary"], three["amount_unchanged"]) == (3, True)
