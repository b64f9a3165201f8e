"""The vendor's own example payloads (shared/seeds) turned into rows, field by field.

The examples are read from the pages at test time (``test_seed_examples``), never copied
here: some look like real personal data. Expected values are computed from each example's
own values, independently of the transform: money as ``Decimal(str(value))`` to the paisa,
dates parsed from the documented ``"YYYY-MM-DD 00:00:00"``, ``month_year`` ``"M-YYYY"`` as
the first of the month. Where two pages carry the same example, the newer page wins (it
describes the current API).
"""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime
from decimal import Decimal

import orjson
import pytest
from test_seed_examples import EXAMPLES

from bankconnect_etl import transform
from bankconnect_etl.extract import EntityBundle, sanitize_pdfs
from bankconnect_etl.transform import Batch, BatchTransform
from bankconnect_etl.vocab import ANALYSIS_ENDPOINTS, FRAUD_TYPES_SEEN, TRANSACTION_CHANNELS

FETCHED = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
CENT = Decimal("0.01")


def newest(key: str) -> object:
    """The example for ``key`` from the newest page that has one."""
    found = [ex for ex in EXAMPLES if ex.key == key]
    assert found, f"no example for {key!r} in the pages"
    return copy.deepcopy(max(found, key=lambda ex: ex.page).value)


def analysis(endpoint: str) -> dict:
    return newest(f"GET /entity/{{entity_id}}/{endpoint}/ response")  # type: ignore[return-value]


def money(value: object) -> Decimal:
    return Decimal(str(value)).quantize(CENT)


def api_day(value: str) -> date:
    return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").date()


def first_of(month_year: str) -> date:
    month, year = month_year.split("-")
    return date(int(year), int(month), 1)


def first_of_month(yyyy_mm: str) -> date:
    return date.fromisoformat(yyyy_mm + "-01")


def record_of(responses: dict, entity_id: str) -> dict:
    bundle = EntityBundle(entity_id, responses=responses)
    record = transform.entity_record(bundle, {"entity_id": entity_id}, FETCHED)
    return orjson.loads(orjson.dumps(record))  # as the raw zone keeps it


def transformed(*records: dict) -> Batch:
    bt = BatchTransform("golden", FETCHED)
    for r in records:
        bt.add(r)
    return bt.result()


@pytest.fixture(scope="module")
def golden() -> tuple[dict, Batch]:
    """One entity whose every response is the pages' example."""
    responses: dict = {name: analysis(name) for name in ANALYSIS_ENDPOINTS}
    responses["get_pdfs"] = sanitize_pdfs(
        newest("GET /entity/{entity_id}/get_pdfs/ response")  # type: ignore[arg-type]
    )
    responses["entity"] = newest("GET /entity/{entity_id}/ response")
    record = record_of(responses, responses["accounts"]["entity_id"])
    return record["responses"], transformed(record)


def rows(batch: Batch, table: str) -> list[dict]:
    return batch.tables[table].to_pylist()


def by_hash(batch: Batch, table: str) -> dict[str, dict]:
    out = {r["hash"]: r for r in rows(batch, table)}
    assert len(out) == batch.tables[table].num_rows
    return out


def single_statement(responses: dict) -> dict[str, str]:
    """account_id → its statement, for accounts with exactly one (from the accounts example)."""
    return {
        a["account_id"]: a["statements"][0]
        for a in responses["accounts"]["accounts"]
        if len(a["statements"]) == 1
    }


def seq_in_transactions(responses: dict) -> dict[str, int]:
    """hash → position within its account in the transactions example, from 1."""
    seen: dict[str, int] = {}
    out = {}
    for t in responses["transactions"]["transactions"]:
        seen[t["account_id"]] = seen.get(t["account_id"], 0) + 1
        out.setdefault(t["hash"], seen[t["account_id"]])
    return out


# ---------------------------------------------------------------------- nothing lost


def test_no_example_record_is_quarantined_or_fails(golden):
    responses, batch = golden
    entity_id = responses["accounts"]["entity_id"]
    assert rows(batch, "quarantine") == []
    assert batch.stats.quarantined == {}
    assert batch.stats.failures == []
    assert batch.replace == [entity_id] and batch.touch == []
    for table, data in batch.tables.items():
        transform.validate(table, data)
    counts = {t: batch.tables[t].num_rows for t in batch.tables}
    sets = responses["recurring_transactions"]["transactions"]
    members = sets["credit_transactions"] + sets["debit_transactions"]
    assert counts == {
        "entities": 1,
        "accounts": len(responses["accounts"]["accounts"]),
        "identities": len(responses["identity"]["identity"]),
        "statements": len(
            {p["statement_id"] for body in responses.values() for p in body.get("progress", [])}
        ),
        "transactions": len(responses["transactions"]["transactions"]),
        "salary_transactions": len(responses["salary"]["transactions"]),
        "lender_transactions": len(responses["lender_transactions"]["transactions"]),
        "recurring_sets": len(members),
        "recurring_set_transactions": sum(len(s["transactions"]) for s in members),
        "fraud_flags": len(responses["accounts"]["fraud"]["fraud_type"]),
        "statement_files": len(responses["get_pdfs"]["statements"]),
        "bank_health": 0,
        "quarantine": 0,
    }
    assert all(n > 0 for t, n in counts.items() if t not in ("bank_health", "quarantine"))


def test_values_outside_the_vocabularies_are_kept_and_counted(golden):
    responses, batch = golden
    unknown_fraud = [
        f["fraud_type"]
        for f in responses["accounts"]["fraud"]["fraud_type"]
        if f["fraud_type"] not in FRAUD_TYPES_SEEN
    ]
    channels = {c.lower() for c in TRANSACTION_CHANNELS}
    unknown_channels = [
        t["transaction_channel"]
        for t in responses["transactions"]["transactions"]
        if t["transaction_channel"].lower() not in channels
    ]
    for name, values in (("fraud_type", unknown_fraud), ("transaction_channel", unknown_channels)):
        for v in set(values):
            assert batch.stats.unknown_values[(name, v)] == values.count(v)
    assert {f["fraud_type"] for f in rows(batch, "fraud_flags")} == {
        f["fraud_type"] for f in responses["accounts"]["fraud"]["fraud_type"]
    }


# ---------------------------------------------------------------------- transactions


@pytest.mark.parametrize(
    ("endpoint", "table"),
    [
        ("transactions", "transactions"),
        ("lender_transactions", "lender_transactions"),
        ("salary", "salary_transactions"),
    ],
)
def test_transaction_rows_match_the_example(golden, endpoint, table):
    responses, batch = golden
    got = by_hash(batch, table)
    sent = responses[endpoint]["transactions"]
    assert sent and set(got) == {t["hash"] for t in sent}
    single = single_statement(responses)
    seq = seq_in_transactions(responses)
    for t in sent:
        r = got[t["hash"]]
        assert r["entity_id"] == responses[endpoint]["entity_id"]
        assert r["account_id"] == t["account_id"]
        assert r["statement_id"] == single.get(t["account_id"])
        assert r["txn_seq"] == seq.get(t["hash"])
        assert r["txn_date"] == api_day(t["date"])
        assert r["transaction_type"] == t["transaction_type"]
        assert r["amount"] == money(t["amount"]) and r["amount"].as_tuple().exponent == -2
        assert r["balance"] == money(t["balance"]) and r["balance"].as_tuple().exponent == -2
        assert r["transaction_channel"] == t["transaction_channel"].lower()
        assert r["transaction_channel_raw"] == t["transaction_channel"]
        assert r["description"] == t["description"]
        assert r["merchant_category"] == t["merchant_category"]
        assert r["transaction_note"] == t["transaction_note"]
        if endpoint == "salary":
            assert r["salary_month"] == first_of(t["month_year"])
            assert r["clean_transaction_note"] == t["clean_transaction_note"]
    if endpoint == "transactions":
        assert sorted(r["txn_seq"] for r in got.values()) == list(range(1, len(sent) + 1))


def test_recurring_sets_match_the_example(golden):
    responses, batch = golden
    body = responses["recurring_transactions"]
    sets = rows(batch, "recurring_sets")
    members = rows(batch, "recurring_set_transactions")
    single = single_statement(responses)
    seq = seq_in_transactions(responses)
    for direction in ("credit", "debit"):
        sent = body["transactions"][f"{direction}_transactions"]
        assert sent, direction
        for s in sent:
            hashes = [m["hash"] for m in s["transactions"]]
            (row,) = [
                r
                for r in sets
                if r["direction"] == direction
                and [m["hash"] for m in members if m["set_id"] == r["set_id"]] == hashes
            ]
            assert row["entity_id"] == body["entity_id"]
            assert row["account_id"] == s["account_id"]
            assert row["channel_raw"] == s["transaction_channel"]
            assert row["channel"] == s["transaction_channel"].lower()
            assert row["start_date"] == api_day(s["start_date"])
            assert row["end_date"] == api_day(s["end_date"])
            assert row["median_amount"] == money(s["median"])
            assert row["transaction_count"] == len(s["transactions"])
            mine = [m for m in members if m["set_id"] == row["set_id"]]
            assert [m["set_position"] for m in mine] == list(range(1, len(hashes) + 1))
            for m, t in zip(mine, s["transactions"], strict=True):
                assert m["amount"] == money(t["amount"])
                assert m["balance"] == money(t["balance"])
                assert m["txn_date"] == api_day(t["date"])
                assert m["transaction_type"] == t["transaction_type"]
                assert m["transaction_channel"] == t["transaction_channel"].lower()
                assert m["transaction_channel_raw"] == t["transaction_channel"]
                assert m["description"] == t["description"]
                assert m["merchant_category"] == t.get("merchant_category", "")
                assert m["transaction_note"] == t["transaction_note"]
                assert m["statement_id"] == single.get(t["account_id"])
                assert m["txn_seq"] == seq.get(t["hash"])
    assert len(sets) == sum(
        len(body["transactions"][f"{d}_transactions"]) for d in ("credit", "debit")
    )


# ---------------------------------------------------------------------- the rest


def test_accounts_identity_statements_and_fraud_match_the_example(golden):
    responses, batch = golden
    entity_id = responses["accounts"]["entity_id"]
    accounts = {r["account_id"]: r for r in rows(batch, "accounts")}
    for a in responses["accounts"]["accounts"]:
        r = accounts[a["account_id"]]
        assert r["entity_id"] == entity_id
        assert r["bank"] == a["bank"]
        assert (r["account_number"], r["ifsc"], r["micr"]) == (
            a["account_number"],
            a["ifsc"],
            a["micr"],
        )
        assert r["months"] == a["months"]
        assert r["months_covered"] == len(set(a["months"]))
        assert r["first_month"] == first_of_month(min(a["months"]))
        assert r["last_month"] == first_of_month(max(a["months"]))
        assert r["statement_ids"] == a["statements"]

    identities = {r["account_id"]: r for r in rows(batch, "identities")}
    for i in responses["identity"]["identity"]:
        r = identities[i["account_id"]]
        assert (r["name"], r["address"], r["account_number"]) == (
            i["name"],
            i["address"],
            i["account_number"],
        )
        assert r["credit_limit"] is None and r["od_limit"] is None

    fraud = responses["accounts"]["fraud"]
    flagged = set(fraud["fraudulent_statements"])
    statements = {r["statement_id"]: r for r in rows(batch, "statements")}
    owner = {s: a["account_id"] for a in responses["accounts"]["accounts"] for s in a["statements"]}
    for sid, r in statements.items():
        assert r["is_fraud"] is (sid in flagged)
        assert r["account_id"] == owner.get(sid)
        for endpoint in ANALYSIS_ENDPOINTS:
            (p,) = [p for p in responses[endpoint]["progress"] if p["statement_id"] == sid]
            assert r[f"{endpoint}_status"] == p["status"]
            assert r[f"{endpoint}_message"] == p["message"]
        assert r["status"] == "completed" and r["message"] is None
    assert flagged and flagged <= set(statements)

    flags = rows(batch, "fraud_flags")
    assert sorted((f["statement_id"], f["fraud_type"], f["transaction_hash"]) for f in flags) == (
        sorted(
            (f["statement_id"], f["fraud_type"], f.get("transaction_hash") or None)
            for f in fraud["fraud_type"]
        )
    )


def test_statement_files_match_the_example(golden):
    """get_pdfs as extraction keeps it: ``has_password`` instead of the password."""
    responses, batch = golden
    sent = newest("GET /entity/{entity_id}/get_pdfs/ response")["statements"]  # type: ignore[index]
    files = {r["statement_id"]: r for r in rows(batch, "statement_files")}
    assert set(files) == {s["statement_id"] for s in sent}
    for s in sent:
        r = files[s["statement_id"]]
        assert r["entity_id"] == responses["accounts"]["entity_id"]
        assert r["bank_name"] == s["bank_name"]
        assert r["account_id"] == s["account_id"]
        assert r["has_password"] is bool(s["pdf_password"])
        assert r["pdf_url"] == (s["pdf_url"].split("?")[0] or None)
        assert "pdf_password" not in r


def test_entity_detail_fills_the_entities_row(golden):
    responses, batch = golden
    detail = responses["entity"]
    (row,) = rows(batch, "entities")
    assert row["entity_id"] == responses["accounts"]["entity_id"]
    assert (row["link_id"], row["meta_data"]) == (detail["link_id"], detail["meta_data"])
    assert row["sync_status"] == "complete" and row["sync_error"] is None
    assert row["fingerprint"] == transform.fingerprint(responses["accounts"])
    assert row["last_synced_at"] == FETCHED.replace(tzinfo=None)


def test_progress_example_gives_statement_statuses():
    """The pages' progress example (one statement completed, one processing) on accounts."""
    progress = newest("progress")
    body = analysis("accounts") | {"progress": progress}
    body["fraud"] = newest("fraud")
    batch = transformed(record_of({"accounts": body}, body["entity_id"]))
    assert rows(batch, "quarantine") == []
    statements = {r["statement_id"]: r for r in rows(batch, "statements")}
    for p in progress:  # type: ignore[attr-defined]
        r = statements[p["statement_id"]]
        assert r["accounts_status"] == p["status"]
        assert r["status"] == ("completed" if p["status"] == "completed" else "processing")
    fraud = newest("fraud")
    assert {r["statement_id"] for r in rows(batch, "fraud_flags")} == {
        f["statement_id"]
        for f in fraud["fraud_type"]  # type: ignore[index]
    }


def test_net_banking_health_example_becomes_rows():
    sent = newest("GET /net_banking_health/ response")
    observed = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
    bt = BatchTransform("golden", FETCHED)
    bt.add_bank_health(sent, observed)
    batch = bt.result()
    assert rows(batch, "quarantine") == []
    transform.validate("bank_health", batch.tables["bank_health"])
    got = rows(batch, "bank_health")
    assert [(r["bank"], r["health_up"], r["issue_details"], r["updated_at"]) for r in got] == [
        (
            h["bank"],
            h["health_up"],
            h["issue_details"],
            datetime.strptime(h["updated_at"], "%Y-%m-%d %H:%M:%S"),
        )
        for h in sent  # type: ignore[attr-defined]
    ]
    assert {r["observed_at"] for r in got} == {observed.replace(tzinfo=None)}
    assert len(got) >= 2
