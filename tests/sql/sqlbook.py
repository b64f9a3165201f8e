"""Hand-made warehouses for the analytics tests (fixtures in conftest.py).

``lake`` is an in-memory DuckDB database attached as ``lake`` (and selected) with every
warehouse table created from the same DDL the DuckLake writer uses: the marts' SQL runs on
it exactly as on the real warehouse, in milliseconds. ``Book`` writes rows into it; an
account's balances are computed from its opening balance and the amounts, in the order
given, unless a row states its own balance.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import duckdb
from bankconnect_etl.schemas.tables import TABLES

from bankconnect_etl import analytics
from bankconnect_etl.warehouse import ddl

SYNCED = datetime(2026, 11, 20, 2, 0, tzinfo=UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class T:
    """One transaction to write: a credit or a debit of ``amount`` on ``day``."""

    day: str
    kind: str
    amount: str
    channel: str = "upi"
    description: str = ""
    note: str = ""
    hash: str | None = None
    balance: str | None = None  # stated balance; computed when None
    seq_step: int = 1  # txn_seq advance before this row (2 = one row quarantined)


def cr(day: str, amount: str, **kw: object) -> T:
    return T(day, "credit", amount, **kw)  # type: ignore[arg-type]


def dr(day: str, amount: str, **kw: object) -> T:
    return T(day, "debit", amount, **kw)  # type: ignore[arg-type]


def h(*parts: object) -> str:
    return hashlib.md5("|".join(map(str, parts)).encode(), usedforsecurity=False).hexdigest()


class Book:
    """Writes entities, accounts, statements and transactions into ``lake``."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.rows: dict[tuple[str, str], list[dict]] = {}

    def entity(
        self, entity_id: str, *, sync_status: str = "complete", link_id: str | None = None
    ) -> None:
        self.con.execute(
            "INSERT INTO entities VALUES (?, ?, NULL, ?, ?, ?, ?, NULL, [], NULL, 'test')",
            [entity_id, link_id, SYNCED, SYNCED, SYNCED, sync_status],
        )

    def account(
        self,
        entity_id: str,
        account_id: str,
        *,
        months: tuple[str, ...] = (),
        statement_ids: tuple[str, ...] = (),
        od_limit: str | None = None,
    ) -> None:
        self.con.execute(
            "INSERT INTO accounts VALUES (?, ?, 'hdfc', NULL, NULL, NULL, ?, ?, NULL, NULL, ?)",
            [entity_id, account_id, list(months), len(months), list(statement_ids)],
        )
        if od_limit is not None:
            self.con.execute(
                "INSERT INTO identities VALUES (?, ?, 'A', NULL, NULL, 'individual', NULL, ?)",
                [entity_id, account_id, Decimal(od_limit)],
            )

    def statement(
        self,
        entity_id: str,
        statement_id: str,
        account_id: str | None,
        *,
        status: str = "completed",
        message: str | None = None,
        is_fraud: bool = False,
    ) -> None:
        self.con.execute(
            "INSERT INTO statements (entity_id, statement_id, account_id, status, message, "
            "is_fraud) VALUES (?, ?, ?, ?, ?, ?)",
            [entity_id, statement_id, account_id, status, message, is_fraud],
        )

    def txns(
        self,
        entity_id: str,
        account_id: str,
        opening: str,
        rows: list[T],
        *,
        statement_id: str | None = None,
    ) -> list[dict]:
        """Write ``rows`` in statement order (txn_seq 1, 2, ...); the rows as written."""
        balance = Decimal(opening)
        seq = 0
        written = []
        for i, t in enumerate(rows):
            seq += t.seq_step
            amount = Decimal(t.amount)
            balance += amount if t.kind == "credit" else -amount
            if t.balance is not None:
                balance = Decimal(t.balance)
            row = {
                "entity_id": entity_id,
                "account_id": account_id,
                "statement_id": statement_id,
                "txn_seq": seq,
                "hash": t.hash or h(entity_id, account_id, i),
                "txn_date": date.fromisoformat(t.day),
                "transaction_type": t.kind,
                "amount": amount,
                "balance": balance,
                "transaction_channel": t.channel,
                "transaction_channel_raw": t.channel,
                "description": t.description,
                "merchant_category": "",
                "transaction_note": t.note,
            }
            self.con.execute(
                "INSERT INTO transactions VALUES (" + ", ".join("?" * len(row)) + ")",  # noqa: S608
                list(row.values()),
            )
            written.append(row)
        self.rows[(entity_id, account_id)] = written
        return written

    def salary(self, row: dict, salary_month: str, employer: str) -> None:
        """``row`` (as ``txns`` returned it) is also a salary credit for ``salary_month``."""
        self.con.execute(
            "INSERT INTO salary_transactions VALUES (" + ", ".join("?" * 16) + ")",  # noqa: S608
            [*row.values(), date.fromisoformat(salary_month + "-01"), employer],
        )

    def lender(self, row: dict) -> None:
        """``row`` is also in lender_transactions."""
        self.con.execute(
            "INSERT INTO lender_transactions VALUES (" + ", ".join("?" * 14) + ")",  # noqa: S608
            list(row.values()),
        )

    def recurring(self, set_id: str, channel: str, rows: list[dict]) -> None:
        """A recurring set of ``rows`` (all of one account and direction)."""
        first = rows[0]
        self.con.execute(
            "INSERT INTO recurring_sets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                set_id,
                first["entity_id"],
                first["account_id"],
                first["transaction_type"],
                channel,
                channel.upper(),
                min(r["txn_date"] for r in rows),
                max(r["txn_date"] for r in rows),
                first["amount"],
                len(rows),
            ],
        )
        for pos, row in enumerate(rows, 1):
            self.con.execute(
                "INSERT INTO recurring_set_transactions VALUES (" + ", ".join("?" * 16) + ")",  # noqa: S608
                [*row.values(), set_id, pos],
            )

    def fraud(self, entity_id: str, statement_id: str, fraud_type: str, hash_: str | None) -> None:
        self.con.execute(
            "INSERT INTO fraud_flags VALUES (?, ?, ?, ?)",
            [entity_id, statement_id, fraud_type, hash_],
        )

    def refresh(self) -> dict[str, int]:
        return analytics.refresh(self.con)

    def rows_of(self, sql: str, params: list | None = None) -> list[dict]:
        """``sql``'s rows as dicts."""
        rel = self.con.execute(sql, params or [])
        names = [d[0] for d in rel.description]
        return [dict(zip(names, r, strict=True)) for r in rel.fetchall()]

    def one(self, sql: str, params: list | None = None) -> dict:
        rows = self.rows_of(sql, params)
        assert len(rows) == 1, rows
        return rows[0]


def new_lake() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("ATTACH ':memory:' AS lake")
    con.execute("USE lake")
    for table in TABLES:
        con.execute(ddl(table)[0])  # the partitioning statement is DuckLake's alone
    return con
