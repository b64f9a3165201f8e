"""The synthetic world: deterministic, lazy, internally consistent, and as quirky as the API."""

from __future__ import annotations

import itertools
import re
from collections import Counter

import pytest

from bankconnect_etl.sandbox import generator as gen
from bankconnect_etl.sandbox.world import SandboxConfig, World, payload
from bankconnect_etl.vocab import (
    DESCRIPTIONS,
    DESCRIPTIONS_SEEN,
    MERCHANT_CATEGORIES,
    TRANSACTION_CHANNELS,
)


def breaks(txns: tuple[gen.Txn, ...]) -> list[gen.Txn]:
    """Rows where previous balance +/- amount != balance, within one account."""
    out, prev = [], None
    for t in txns:
        if prev is not None and prev.account_id == t.account_id:
            signed = t.amount if t.ttype == "credit" else -t.amount
            if prev.balance + signed != t.balance:
                out.append(t)
        prev = t
    return out


def completed(data: gen.EntityData) -> dict[str, str]:
    return {s.statement_id: "completed" for s in data.statements}


def test_same_seed_same_world_and_other_seed_other_world() -> None:
    a = gen.build_entity(7, gen.entity_header(7, 3), gen.entity_plans(7, 3))
    b = gen.build_entity(7, gen.entity_header(7, 3), gen.entity_plans(7, 3))
    c = gen.build_entity(8, gen.entity_header(8, 3), gen.entity_plans(8, 3))
    assert a == b and a.transactions == b.transactions
    assert a.header.entity_id != c.header.entity_id
    assert {t.hash for t in a.transactions}.isdisjoint(t.hash for t in c.transactions)


def test_appending_a_statement_leaves_every_earlier_row_unchanged() -> None:
    before = gen.generated_entity(1, 0)
    after = gen.generated_entity(1, 0, (2,))
    assert len(after.statements) == len(before.statements) + 2
    assert after.transactions[: len(before.transactions)] == before.transactions
    assert len(after.transactions) > len(before.transactions)
    new = {s.statement_id for s in after.statements} - {s.statement_id for s in before.statements}
    assert {t.statement_id for t in after.transactions[len(before.transactions) :]} <= new


def test_statement_windows_are_consecutive_and_rows_fall_inside_them() -> None:
    for i in range(60):
        data = gen.generated_entity(1, i)
        for account in data.accounts:
            stmts = sorted(
                (s for s in data.statements if s.account_id == account.account_id),
                key=lambda s: s.from_date,
            )
            for a, b in itertools.pairwise(stmts):
                assert (b.from_date - a.to_date).days == 1
            by_id = {s.statement_id: s for s in stmts}
            for t in data.transactions:
                if t.account_id == account.account_id:
                    s = by_id[t.statement_id]
                    assert s.from_date <= t.day <= s.to_date
            assert all(s.to_date <= gen.WORLD_END for s in stmts)


def test_running_balance_breaks_only_where_the_api_flags_fraud() -> None:
    flagged = 0
    for i in range(200):
        data = gen.generated_entity(1, i)
        hashes = {
            h for s in data.statements for ft, h in s.fraud if ft == "inconsistent_transaction"
        }
        assert {t.hash for t in breaks(data.transactions)} == hashes
        flagged += len(hashes)
    assert flagged >= 8  # slot 8 of every block of 25, and a few at random


def test_row_order_is_statement_order_not_hash_order() -> None:
    data = gen.generated_entity(1, 0)
    assert [t.seq for t in data.transactions] == list(range(len(data.transactions)))
    days: dict[object, list[str]] = {}
    for t in data.transactions:
        days.setdefault(t.day, []).append(t.hash)
    assert any(hashes != sorted(hashes) for hashes in days.values() if len(hashes) >= 2)


@pytest.fixture(scope="module")
def world_rows() -> list[gen.Txn]:
    return [t for i in range(150) for t in gen.generated_entity(1, i).transactions]


def test_values_come_from_the_documented_vocabularies(world_rows: list[gen.Txn]) -> None:
    assert {t.channel for t in world_rows} == set(TRANSACTION_CHANNELS)
    assert {t.description for t in world_rows} <= set(DESCRIPTIONS) | set(DESCRIPTIONS_SEEN)
    assert {t.merchant for t in world_rows} <= set(MERCHANT_CATEGORIES)
    assert "cash_withdrawl" in {t.channel for t in world_rows}


def test_formats_and_uniqueness(world_rows: list[gen.Txn]) -> None:
    assert all(re.fullmatch(r"[0-9a-f]{32}", t.hash) for t in world_rows)
    assert len({t.hash for t in world_rows}) == len(world_rows)
    salary = [t for t in world_rows if t.tag == "salary"]
    assert salary
    assert all(re.fullmatch(r"(1[0-2]|[1-9])-20\d\d", t.salary_month) for t in salary)
    assert all(t.amount > 0 for t in world_rows)


def test_indian_retail_patterns_are_present(world_rows: list[gen.Txn]) -> None:
    notes = " ".join(t.note for t in world_rows)
    assert "NEFT/" in notes and "SALARY" in notes
    assert re.search(r"ACH ?D", notes)
    assert "UPI/" in notes
    lender = [t for t in world_rows if t.description == "lender_transaction"]
    assert {t.ttype for t in lender} == {"debit", "credit"}  # EMIs and disbursals
    bounces = {t.channel for t in world_rows} & {
        "auto_debit_payment_bounce",
        "inward_cheque_bounce",
        "outward_cheque_bounce",
    }
    assert len(bounces) == 3
    assert "ach_bounce_charge" in {t.description for t in world_rows}
    # every bank charge is followed by an 18% GST line
    for a, b in itertools.pairwise(world_rows):
        if a.channel == "bank_charge" and a.description != "gst" and a.account_id == b.account_id:
            assert b.description == "gst" and b.amount == round(a.amount * 0.18)
    upi_debits = [t for t in world_rows if t.channel == "upi" and t.ttype == "debit"]
    assert sum(t.amount < 500_00 for t in upi_debits) / len(upi_debits) > 0.6


@pytest.mark.parametrize("seed", [1, 2, 99])
def test_every_default_world_has_the_edge_cases(seed: int) -> None:
    world = World(SandboxConfig(seed=seed, entities=25, processing_polls=0))
    datas = [world.data(p) for p in range(25)]
    assert any(not d.statements for d in datas), "an entity with no statements"
    assert any(s.failed_message for d in datas for s in d.statements), "a failed statement"
    assert any(len(d.accounts) == 2 for d in datas), "two accounts in one entity"
    links = Counter(world.links)
    assert any(n >= 3 for link, n in links.items() if link), "a link_id shared by entities"
    accounts = [a for d in datas for a in d.accounts]
    assert any(a.name is None or a.account_number is None for a in accounts)
    assert any(a.ifsc is None and a.micr is None for a in accounts)
    assert any(s.fraud for d in datas for s in d.statements)
    served = [
        payload("transactions", d, {s.statement_id: "completed" for s in d.statements})
        for d in datas
    ]
    documented = {"months", "statements", "account_id", "ifsc", "micr", "account_number", "bank"}
    assert any(set(a) - documented for body in served for a in body["accounts"]), "extra fields"


def test_recurring_channels_are_upper_case_with_the_api_quirks() -> None:
    channels = set()
    for i in range(120):
        d = gen.generated_entity(1, i)
        body = payload(
            "recurring_transactions", d, {s.statement_id: "completed" for s in d.statements}
        )
        for side in body["transactions"].values():
            channels |= {s["transaction_channel"] for s in side}
    assert "AUTO_DEBIT_PAYMENT" in channels
    assert "UPI" in channels
    assert channels & {"OTHER", "Other"}
    assert all(c.isupper() or c == "Other" for c in channels)


def test_a_world_of_100k_entities_is_not_generated_up_front() -> None:
    gen.generated_entity.cache_clear()
    world = World(SandboxConfig(entities=100_000))
    assert world.count() == 100_000
    assert gen.generated_entity.cache_info().currsize == 0
    last = world.data(99_999)
    assert last.header.entity_id == world.ids[99_999]
    assert gen.generated_entity.cache_info().currsize == 1
