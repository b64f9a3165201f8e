"""The money macros of sql/macros.sql against Python's decimal arithmetic."""

from __future__ import annotations

import random
from decimal import ROUND_HALF_UP, Decimal

import duckdb

from bankconnect_etl.analytics import sql_dir

CENT = Decimal("0.01")


def expected_div(total: Decimal, n: int) -> Decimal:
    """``total / n`` to the paisa, half away from zero (ROUND_HALF_UP on a Decimal)."""
    return (total / n).quantize(CENT, rounding=ROUND_HALF_UP)


def test_money_div_is_exact_on_both_sides_of_its_bigint_fast_path() -> None:
    con = duckdb.connect()
    con.execute((sql_dir() / "macros.sql").read_text(encoding="utf-8"))
    rng = random.Random(7)
    cases = [
        (Decimal(t), n)
        for t, n in [
            ("0.05", 2),  # half a paisa, both signs
            ("-0.05", 2),
            ("0.03", 2),
            ("-0.03", 2),
            ("0.15", 30),
            ("-0.15", 30),
            ("99999999999999.99", 1),  # the largest total on the BIGINT path
            ("99999999999999.99", 2),
            ("-99999999999999.99", 3),
            ("100000000000000.00", 3),  # the smallest on the HUGEINT path
            ("-100000000000000.01", 2),
            ("9999999999999999.99", 2),
            ("309999999999999999.69", 31),  # 31 days at the DECIMAL(18,2) maximum
            ("123456789012345678901.05", 10_000_000),
        ]
    ]
    cases += [  # under 10^14 rupees: the fast path
        (Decimal(rng.randrange(-(10**16), 10**16)) * CENT, rng.randrange(1, 400))
        for _ in range(2000)
    ]
    cases += [  # beyond it, with means that fit DECIMAL(18,2)
        (Decimal(rng.randrange(-(10**22), 10**22)) * CENT, rng.randrange(10**5, 10**6))
        for _ in range(500)
    ]
    con.execute("CREATE TABLE t (i INTEGER, total DECIMAL(38, 2), n INTEGER)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?)", [(i, t, n) for i, (t, n) in enumerate(cases)])
    got = con.execute("SELECT money_div(total, n) FROM t ORDER BY i").fetchall()
    mismatches = [
        (t, n, g) for (t, n), (g,) in zip(cases, got, strict=True) if g != expected_div(t, n)
    ]
    assert mismatches == []
    assert con.execute("SELECT typeof(money_div(1.00::DECIMAL(38, 2), 3))").fetchone() == (
        "DECIMAL(18,2)",
    )
    nulls = con.execute(
        "SELECT money_div(NULL::DECIMAL(38, 2), 2), money_div(1.00, 0), money_div(1.00, NULL)"
    ).fetchone()
    assert nulls == (None, None, None)


def test_money_mean_and_median_round_to_the_paisa() -> None:
    con = duckdb.connect()
    con.execute((sql_dir() / "macros.sql").read_text(encoding="utf-8"))
    rng = random.Random(11)
    for size in (1, 2, 3, 4, 31):
        values = [Decimal(rng.randrange(-(10**9), 10**9)) * CENT for _ in range(size)]
        con.execute("CREATE OR REPLACE TABLE v (x DECIMAL(18, 2))")
        con.executemany("INSERT INTO v VALUES (?)", [(x,) for x in values])
        mean, median = con.execute("SELECT money_mean(x), money_median(x) FROM v").fetchone()
        ordered = sorted(values)
        middle = (ordered[(size - 1) // 2] + ordered[size // 2]) / 2
        assert mean == expected_div(sum(values), size), values
        assert median == middle.quantize(CENT, rounding=ROUND_HALF_UP), values
