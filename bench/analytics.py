"""Benchmark of the analytics marts (``bankconnect_etl.analytics.refresh``) at scale.

Input: a DuckLake warehouse of sandbox-shaped data built locally, without HTTP: the
sandbox's responses for 1,000 distinct entities loaded through the pipeline's own
transform and load, then copied in SQL under new entity, account, statement and set ids
(every per-entity table) until the transactions table holds the requested number of rows.

Measured in one process on the writer's connection, rounds alternating, best of each:
- floor: the bare ``SELECT account_id, month, count(*), sum(amount) ... GROUP BY account,
  month`` over the same transactions table, kept in DuckDB (into a temp table: DuckDB's
  own time) and fetched into Python (what a client running the SELECT waits for);
- ours: ``refresh()``: every staging model and mart in one transaction, marts written to
  the lake; target within 15x of the floor; peak RSS sampled during the refresh;
- one entity's ``entity_credit_summary`` row: the query on an open read-only connection,
  and with a fresh connection (extension load and attach included); target under 200 ms;
- one entity's HTML report (``report.render``), for scale.

    .venv/bin/python bench/analytics.py                    # 10 M transactions, about 2 min
    .venv/bin/python bench/analytics.py --transactions 2000000 --rounds 2
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from _common import table

BASE_ENTITIES = 1000
# Per-entity tables and the id columns each copy renames (entity_id always).
COPIED = {
    "entities": (),
    "accounts": ("account_id", "statement_ids"),
    "identities": ("account_id",),
    "statements": ("statement_id", "account_id"),
    "transactions": ("account_id", "statement_id"),
    "salary_transactions": ("account_id", "statement_id"),
    "lender_transactions": ("account_id", "statement_id"),
    "recurring_sets": ("set_id", "account_id"),
    "recurring_set_transactions": ("set_id", "account_id", "statement_id"),
    "fraud_flags": ("statement_id",),
    "statement_files": ("statement_id", "account_id"),
}
GROUP_BY = (
    "SELECT account_id, date_trunc('month', txn_date) AS month, count(*) AS n, "
    "sum(amount) AS amount FROM transactions GROUP BY account_id, month"
)
FLOOR_KEPT = f"CREATE OR REPLACE TEMP TABLE bench_floor AS {GROUP_BY}"
SUMMARY = "SELECT * FROM entity_credit_summary WHERE entity_id = ?"


def _renamed(column: str) -> str:
    """SQL giving ``column`` of copy ``k``: the id with its last four hex digits replaced."""
    if column == "statement_ids":
        return "list_transform(statement_ids, lambda s: left(s, 32) || printf('%04x', k))"
    return f"left({column}, 32) || printf('%04x', k)"


def build(warehouse: Path, transactions: int) -> tuple[int, float]:
    """A warehouse with about ``transactions`` rows; (rows, seconds to build)."""
    from load import make_records

    from bankconnect_etl.pipeline import load_records
    from bankconnect_etl.warehouse import Writer

    t0 = time.perf_counter()
    records = make_records(BASE_ENTITIES, seed=5)
    with Writer(warehouse, run_id="bench") as w:
        con = w.con
        assert con is not None
        load_records(w, records, run_id="bench", batch_size=100, workers=0)
        (base,) = con.sql("SELECT count(*) FROM transactions").fetchone() or (0,)
        copies = max(1, round(transactions / base))
        if copies > 1:
            con.execute("BEGIN")
            for name, columns in COPIED.items():
                renames = ", ".join(f"{_renamed(c)} AS {c}" for c in ("entity_id", *columns))
                con.execute(
                    f"INSERT INTO {name} SELECT * EXCLUDE (k) REPLACE ({renames}) "  # noqa: S608
                    f"FROM {name}, range(1, {copies}) AS copies(k)"
                )
            con.execute("COMMIT")
        (rows,) = con.sql("SELECT count(*) FROM transactions").fetchone() or (0,)
    return int(rows), time.perf_counter() - t0


class _Timings(logging.Handler):
    """Collects the per-model seconds ``analytics`` logs at DEBUG."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seconds: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "analytics: %s in %.3f s":
            name, seconds = record.args  # type: ignore[misc]
            self.seconds[name] = seconds


class _PeakRss:
    """Peak resident memory of this process while inside the ``with``."""

    def __init__(self) -> None:
        self.peak = 0
        self._done = threading.Event()

    def __enter__(self) -> _PeakRss:
        me = psutil.Process()

        def sample() -> None:
            while not self._done.wait(0.02):
                with contextlib.suppress(psutil.Error):
                    self.peak = max(self.peak, me.memory_info().rss)

        threading.Thread(target=sample, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()


def measure(warehouse: Path, rounds: int) -> dict:
    from bankconnect_etl import analytics, report
    from bankconnect_etl.warehouse import Writer, connect

    timings = _Timings()
    logger = logging.getLogger("bankconnect_etl.analytics")
    logger.addHandler(timings)
    logger.setLevel(logging.DEBUG)
    out: dict = {"kept": [], "fetched": [], "refresh": [], "models": [], "rss": []}
    with Writer(warehouse, run_id="bench") as w:
        con = w.con
        assert con is not None
        for _ in range(rounds):  # alternate, so each sees the same cache state
            t0 = time.perf_counter()
            con.execute(FLOOR_KEPT)
            out["kept"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            out["groups"] = len(con.execute(GROUP_BY).fetchall())
            out["fetched"].append(time.perf_counter() - t0)
            with _PeakRss() as rss:
                t0 = time.perf_counter()
                out["rows"] = analytics.refresh(con)
                out["refresh"].append(time.perf_counter() - t0)
            out["rss"].append(rss.peak)
            out["models"].append(dict(timings.seconds))
        con.execute("DROP TABLE IF EXISTS temp.main.bench_floor")
    logger.removeHandler(timings)

    reader = connect(warehouse)
    ids = [r[0] for r in reader.sql("SELECT entity_id FROM entities ORDER BY ALL").fetchall()]
    picks = random.Random(1).sample(ids, min(20, len(ids)))
    warm, reports = [], []
    for entity_id in picks:
        t0 = time.perf_counter()
        assert len(reader.execute(SUMMARY, [entity_id]).fetchall()) == 1
        warm.append(time.perf_counter() - t0)
    for entity_id in picks[:5]:
        t0 = time.perf_counter()
        report.render(reader, entity_id)
        reports.append(time.perf_counter() - t0)
    reader.close()
    cold = []
    for entity_id in picks:
        t0 = time.perf_counter()
        con = connect(warehouse)
        assert len(con.execute(SUMMARY, [entity_id]).fetchall()) == 1
        cold.append(time.perf_counter() - t0)
        con.close()
    out.update(summary_warm=warm, summary_cold=cold, reports=reports)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--transactions", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warehouse", type=Path, help="build here and keep (reused if built)")
    args = parser.parse_args()
    print(f"machine   nproc {os.cpu_count()}, python {platform.python_version()}")
    print(f"command   {' '.join([os.path.relpath(sys.executable), *sys.argv])}")
    with tempfile.TemporaryDirectory(prefix="bench-analytics-") as tmp:
        warehouse = args.warehouse or Path(tmp) / "wh"
        if (warehouse / "catalog.sqlite").exists():
            from bankconnect_etl.warehouse import connect

            con = connect(warehouse)
            (rows,) = con.sql("SELECT count(*) FROM transactions").fetchone() or (0,)
            con.close()
            print(f"input     {rows:,} transactions (reused {warehouse})")
        else:
            rows, seconds = build(warehouse, args.transactions)
            print(f"input     {rows:,} transactions (built in {seconds:.0f} s)")
        got = measure(warehouse, args.rounds)

    kept, fetched, ours = min(got["kept"]), min(got["fetched"]), min(got["refresh"])
    best = got["models"][got["refresh"].index(ours)]
    series = lambda xs: " ".join(f"{s:.2f}" for s in xs)  # noqa: E731
    print()
    print(
        table(
            ["run", "best s", f"all {args.rounds} rounds"],
            [
                [
                    f"floor, kept in DuckDB ({got['groups']:,} groups)",
                    f"{kept:.2f}",
                    series(got["kept"]),
                ],
                ["floor, fetched into Python", f"{fetched:.2f}", series(got["fetched"])],
                [
                    "ours: refresh(), all models, one transaction",
                    f"{ours:.2f}",
                    series(got["refresh"]),
                ],
            ],
        )
    )
    print()
    print(
        table(
            ["model (best round)", "s", "rows"],
            [
                [name, f"{s:.2f}", f"{got['rows'][name]:,}" if name in got["rows"] else ""]
                for name, s in sorted(best.items(), key=lambda kv: -kv[1])
                if s >= 0.005
            ],
        )
    )
    ms = lambda xs: f"{statistics.median(xs) * 1000:.1f} ms (max {max(xs) * 1000:.1f})"  # noqa: E731
    print()
    print(
        table(
            ["ratio or figure", "value", "target"],
            [
                ["refresh / floor kept in DuckDB", f"{ours / kept:.1f}", "<= 15"],
                ["refresh / floor fetched into Python", f"{ours / fetched:.1f}", "<= 15"],
                ["peak RSS during refresh", f"{max(got['rss']) / 1e6:,.0f} MB", ""],
                [
                    "one entity's summary, open connection, median of 20",
                    ms(got["summary_warm"]),
                    "< 200 ms",
                ],
                [
                    "one entity's summary, with connect(), median of 20",
                    ms(got["summary_cold"]),
                    "< 200 ms",
                ],
                ["one entity's HTML report, render(), median of 5", ms(got["reports"]), ""],
            ],
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
