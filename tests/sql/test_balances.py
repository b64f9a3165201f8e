"""End-of-day balances, carry-forward, monthly balances and ABB on hand-computed fixtures."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from sqlbook import Book, cr, dr

LOW, HIGH = "0" * 32, "f" * 32


def quiet_february(book: Book) -> None:
    """A statement starting mid-January, a February without transactions, two rows on
    10 January whose hashes sort against their statement order."""
    book.entity("e1")
    book.account("e1", "a1", months=("2024-01", "2024-02", "2024-03"), statement_ids=("s1",))
    book.statement("e1", "s1", "a1")
    book.txns(
        "e1",
        "a1",
        "1000.00",
        [
            cr("2024-01-10", "500.00", hash=HIGH),  # seq 1, balance 1500
            dr("2024-01-10", "200.00", hash=LOW),  # seq 2, balance 1300: the day's last row
            dr("2024-01-20", "300.00"),  # 1000
            cr("2024-03-05", "100.00"),  # 1100
        ],
        statement_id="s1",
    )
    book.refresh()


def eod(book: Book, account: str = "a1") -> dict[date, tuple[D, D, int, bool]]:
    return {
        r["balance_date"]: (
            r["opening_balance_inr"],
            r["eod_balance_inr"],
            r["transaction_count"],
            r["is_carried_forward"],
        )
        for r in book.rows_of(
            "FROM account_daily_balance WHERE account_id = ? ORDER BY balance_date", [account]
        )
    }


def test_eod_is_the_last_row_by_txn_seq_not_by_hash(book: Book) -> None:
    quiet_february(book)
    days = eod(book)
    assert days[date(2024, 1, 10)] == (D("1000.00"), D("1300.00"), 2, False)


def test_every_day_of_the_period_once_carried_forward_over_a_quiet_month(book: Book) -> None:
    quiet_february(book)
    days = eod(book)
    assert min(days) == date(2024, 1, 10) and max(days) == date(2024, 3, 5)
    assert len(days) == 22 + 29 + 5  # 2024 is a leap year
    assert days[date(2024, 1, 11)] == (D("1300.00"), D("1300.00"), 0, True)
    assert days[date(2024, 1, 20)] == (D("1300.00"), D("1000.00"), 1, False)
    february = [v for d, v in days.items() if d.month == 2]
    assert february == [(D("1000.00"), D("1000.00"), 0, True)] * 29
    assert days[date(2024, 3, 4)][1] == D("1000.00")
    assert days[date(2024, 3, 5)] == (D("1000.00"), D("1100.00"), 1, False)


def test_month_starting_mid_month_is_measured_on_its_days_and_incomplete(book: Book) -> None:
    quiet_february(book)
    jan = book.one("FROM account_monthly WHERE month = DATE '2024-01-01'")
    assert jan["days_in_month"] == 31 and jan["days_in_period"] == 22
    assert jan["is_complete_month"] is False
    assert (jan["inflow_inr"], jan["inflow_count"]) == (D("500.00"), 1)
    assert (jan["outflow_inr"], jan["outflow_count"]) == (D("500.00"), 2)
    assert jan["net_flow_inr"] == D("0.00")
    assert (jan["opening_balance_inr"], jan["closing_balance_inr"]) == (D("1000.00"), D("1000.00"))
    # 10 days at 1,300 (10th-19th), 12 days at 1,000 (20th-31st)
    assert (jan["min_eod_inr"], jan["max_eod_inr"]) == (D("1000.00"), D("1300.00"))
    assert jan["median_eod_inr"] == D("1000.00")
    assert jan["abb_daily_inr"] == D("1136.36")  # 25,000 / 22
    # 5th is before the period: 15th 1,300, 25th 1,000, 31st 1,000
    assert jan["abb_5_15_25_last_inr"] == D("1100.00")
    # 1st, 5th outside: 10th 1,300, 15th 1,300, 20th 1,000, 25th 1,000, 31st 1,000
    assert jan["abb_1_5_10_15_20_25_last_inr"] == D("1120.00")
    assert jan["negative_eod_days"] == 0 and jan["od_limit_inr"] is None
    assert jan["od_utilisation"] is None and jan["days_over_od_limit"] is None


def test_month_without_transactions_inside_the_period(book: Book) -> None:
    quiet_february(book)
    feb = book.one("FROM account_monthly WHERE month = DATE '2024-02-01'")
    assert (feb["days_in_month"], feb["days_in_period"], feb["is_complete_month"]) == (29, 29, True)
    assert (feb["inflow_inr"], feb["inflow_count"], feb["outflow_inr"]) == (D("0"), 0, D("0"))
    for column in (
        "opening_balance_inr",
        "closing_balance_inr",
        "min_eod_inr",
        "max_eod_inr",
        "median_eod_inr",
        "abb_daily_inr",
        "abb_5_15_25_last_inr",
        "abb_1_5_10_15_20_25_last_inr",
    ):
        assert feb[column] == D("1000.00"), column
    mar = book.one("FROM account_monthly WHERE month = DATE '2024-03-01'")
    assert (mar["days_in_period"], mar["is_complete_month"]) == (5, False)
    assert mar["closing_balance_inr"] == D("1100.00")


def test_a_month_the_accounts_endpoint_does_not_list_is_a_gap_never_complete(book: Book) -> None:
    book.entity("e1")
    book.account("e1", "a1", months=("2024-01", "2024-03"))
    book.txns("e1", "a1", "0", [cr("2023-12-31", "10.00"), cr("2024-04-01", "10.00")])
    book.refresh()
    complete = {
        r["month"].month: r["is_complete_month"]
        for r in book.rows_of("FROM account_monthly WHERE month >= DATE '2024-01-01'")
    }
    assert complete == {1: True, 2: False, 3: True, 4: False}


def test_fixed_day_sets_fall_on_the_last_day_of_a_short_month(book: Book) -> None:
    book.entity("e1")
    book.account("e1", "a1")  # no months listed: the period alone decides completeness
    book.txns(
        "e1",
        "a1",
        "1000.00",
        [
            cr("2023-01-31", "100.00"),  # 1,100 from 1 February
            cr("2023-02-05", "100.00"),  # 1,200
            cr("2023-02-15", "100.00"),  # 1,300
            cr("2023-02-25", "100.00"),  # 1,400
            cr("2023-02-28", "100.00"),  # 1,500 on the last day
            dr("2023-03-01", "50.00"),
        ],
    )
    book.refresh()
    feb = book.one("FROM account_monthly WHERE month = DATE '2023-02-01'")
    assert feb["is_complete_month"] is True and feb["days_in_month"] == 28
    assert feb["abb_5_15_25_last_inr"] == D("1350.00")  # (1200 + 1300 + 1400 + 1500) / 4
    # 1st 1100, 5th 1200, 10th 1200, 15th 1300, 20th 1300, 25th 1400, 28th 1500
    assert feb["abb_1_5_10_15_20_25_last_inr"] == D("1285.71")
    # 4 x 1100 + 10 x 1200 + 10 x 1300 + 3 x 1400 + 1500 = 35,100 over 28 days
    assert feb["abb_daily_inr"] == D("1253.57")
    assert feb["median_eod_inr"] == D("1250.00")  # 14th and 15th values: 1200 and 1300


def test_money_means_and_medians_round_half_away_from_zero(book: Book) -> None:
    book.entity("e1")
    book.account("e1", "pos")
    book.account("e1", "neg")
    book.txns("e1", "pos", "0", [cr("2024-04-29", "100.00"), cr("2024-04-30", "0.01")])
    book.txns("e1", "neg", "0", [dr("2024-04-29", "100.00"), dr("2024-04-30", "0.01")])
    book.refresh()
    pos = book.one("FROM account_monthly WHERE account_id = 'pos'")
    neg = book.one("FROM account_monthly WHERE account_id = 'neg'")
    assert (pos["abb_daily_inr"], pos["median_eod_inr"]) == (D("100.01"), D("100.01"))
    assert (neg["abb_daily_inr"], neg["median_eod_inr"]) == (D("-100.01"), D("-100.01"))
    assert pos["abb_5_15_25_last_inr"] == D("100.01")  # the 30th is April's last day


def test_overdraft_account_measures_utilisation_against_its_limit(book: Book) -> None:
    book.entity("e1")
    book.account("e1", "od", od_limit="50000.00")
    book.txns(
        "e1",
        "od",
        "-10000.00",
        [
            dr("2024-05-01", "5000.00"),  # -15,000
            cr("2024-05-02", "20000.00"),  # 5,000
            dr("2024-05-03", "60000.00"),  # -55,000: over the limit
            cr("2024-05-04", "55000.00"),  # 0
        ],
    )
    book.refresh()
    may = book.one("FROM account_monthly")
    assert may["opening_balance_inr"] == D("-10000.00")
    assert (may["min_eod_inr"], may["max_eod_inr"]) == (D("-55000.00"), D("5000.00"))
    assert may["median_eod_inr"] == D("-7500.00")
    assert may["abb_daily_inr"] == D("-16250.00")
    assert may["negative_eod_days"] == 2
    assert may["od_limit_inr"] == D("50000.00")
    assert may["od_utilisation"] == 0.35  # (0.3 + 0 + 1.1 + 0) / 4
    assert may["days_over_od_limit"] == 1
    summary = book.one("FROM entity_credit_summary")
    assert summary["negative_eod_days"] == 0  # normal on an overdraft account
    assert summary["od_utilisation"] == 0.35


def test_channels_split_the_months_flows(book: Book) -> None:
    quiet_february(book)
    rows = book.rows_of(
        "SELECT month, direction, channel, amount_inr, transaction_count "
        "FROM account_channel_monthly ORDER BY ALL"
    )
    assert [tuple(r.values()) for r in rows] == [
        (date(2024, 1, 1), "credit", "upi", D("500.00"), 1),
        (date(2024, 1, 1), "debit", "upi", D("500.00"), 2),
        (date(2024, 3, 1), "credit", "upi", D("100.00"), 1),
    ]
