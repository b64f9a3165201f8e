"""Entity records → typed rows: quarantine without loss, per-entity shape failures, pending
and failed entities, exact types, and money that survives JSON → warehouse → query exactly.

Inputs are built here from the sandbox's generator (``world.payload``), wrapped the way
extraction wraps them (``EntityBundle`` → ``entity_record``) and passed through a JSON round
trip, as the raw zone stores them.
"""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import orjson
import pandera.pandas as pa
import pyarrow as pyarrow_
import pytest
from bankconnect_etl.schemas import wire
from bankconnect_etl.schemas.tables import TABLES
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bankconnect_etl import transform
from bankconnect_etl.extract import EntityBundle, sanitize_pdfs
from bankconnect_etl.sandbox import generator as gen
from bankconnect_etl.sandbox.world import EXTRACTION_ENDPOINTS, payload
from bankconnect_etl.transform import Batch, BatchTransform
from bankconnect_etl.vocab import ANALYSIS_ENDPOINTS
from bankconnect_etl.warehouse import Writer, connect

SEED = 1
RUN = "run-test"
FETCHED = datetime(2026, 11, 21, 2, 0, 5, tzinfo=UTC)
NOW = datetime(2026, 11, 21, 2, 30, tzinfo=UTC)

# Entities of world 1 with the shapes the tests need (checked in ``test_world_shapes``).
ONE_ACCOUNT = 0  # one account, one statement, ~100 transactions
TWO_ACCOUNTS_ONE_STATEMENT_EACH = 3
TWO_ACCOUNTS_TWO_STATEMENTS_EACH = 7
FRAUD = 8  # a tampered statement: fraud_type with a transaction_hash
OVERDRAWN = 9  # negative balances; no link_id
PARTLY_FAILED = 14  # one statement failed extraction


# ---------------------------------------------------------------------- inputs


def as_json(value: object) -> object:
    """What the raw zone stores and the transform reads: a JSON round trip."""
    return orjson.loads(orjson.dumps(value))


def statement_files(data: gen.EntityData) -> dict:
    """get_pdfs as extraction keeps it: every other file already deleted by the vendor
    (``pdf_url`` ""), the others with a signed URL; passwords replaced by has_password."""
    served = [
        {
            "statement_id": s.statement_id,
            "bank_name": s.bank,
            "pdf_password": s.pdf_password,
            "pdf_url": ""
            if k % 2 == 0
            else f"https://files.example.test/{s.statement_id}.pdf?X-Amz-Signature=abc",
            "account_id": s.account_id,
        }
        for k, s in enumerate(data.statements)
    ]
    return sanitize_pdfs({"statements": served})


def generated_record(index: int) -> dict:
    """Entity ``index`` of world ``SEED``, every endpoint fetched and finished processing."""
    data = gen.generated_entity(SEED, index)
    responses: dict = {}
    for endpoint in ANALYSIS_ENDPOINTS:
        statuses = {
            s.statement_id: "failed"
            if s.failed_message and endpoint in EXTRACTION_ENDPOINTS
            else "completed"
            for s in data.statements
        }
        responses[endpoint] = payload(endpoint, data, statuses)
    h = data.header
    summary = {"entity_id": h.entity_id, "link_id": h.link_id, "meta_data": h.meta_data}
    responses["get_pdfs"] = statement_files(data)
    responses["entity"] = dict(summary)
    bundle = EntityBundle(
        h.entity_id, status="complete" if data.statements else "empty", responses=responses
    )
    return as_json(transform.entity_record(bundle, summary, FETCHED))  # type: ignore[return-value]


def run(*records: dict) -> Batch:
    bt = BatchTransform(RUN, NOW)
    for r in records:
        bt.add(copy.deepcopy(r))
    return bt.result()


def rows(batch: Batch, table: str, entity_id: str | None = None) -> list[dict]:
    out = batch.tables[table].to_pylist()
    return out if entity_id is None else [r for r in out if r["entity_id"] == entity_id]


def txns_of(record: dict, endpoint: str = "transactions") -> list:
    return record["responses"][endpoint]["transactions"]


def canonical(value: object) -> bytes:
    """JSON text with sorted keys: equal only if the JSON values are (true is not 1)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def rupees(paise: int) -> Decimal:
    return Decimal(paise).scaleb(-2)


def test_world_shapes() -> None:
    """The entities picked above have the shapes the tests rely on."""
    accounts = {
        i: [len(a["statements"]) for a in generated_record(i)["responses"]["accounts"]["accounts"]]
        for i in (ONE_ACCOUNT, TWO_ACCOUNTS_ONE_STATEMENT_EACH, TWO_ACCOUNTS_TWO_STATEMENTS_EACH)
    }
    assert accounts == {
        ONE_ACCOUNT: [1],
        TWO_ACCOUNTS_ONE_STATEMENT_EACH: [1, 1],
        TWO_ACCOUNTS_TWO_STATEMENTS_EACH: [2, 2],
    }
    assert len(txns_of(generated_record(ONE_ACCOUNT))) > 50
    assert any(h for s in gen.generated_entity(SEED, FRAUD).statements for _, h in s.fraud)
    assert min(t.balance for t in gen.generated_entity(SEED, OVERDRAWN).transactions) < 0
    assert any(s.failed_message for s in gen.generated_entity(SEED, PARTLY_FAILED).statements)


# ---------------------------------------------------------------------- 1. quarantine

BAD = 4  # position of the bad record among the entity's transactions (0-based)


def _set(name: str, value: object) -> Callable[[dict], object]:
    return lambda txn: {**txn, name: value}


def _drop(name: str) -> Callable[[dict], object]:
    return lambda txn: {k: v for k, v in txn.items() if k != name}


# case → (how the record is spoiled, column named in the reason, problem, value as shown)
QUARANTINED = {
    "amount-not-a-number": (_set("amount", "abc"), "amount", wire.MONEY.error, '"abc"'),
    "date-day-first": (_set("date", "31/02/2024"), "date", wire.DATE.error, '"31/02/2024"'),
    "date-not-a-real-day": (
        _set("date", "2024-02-31 00:00:00"),
        "date",
        wire.DATE.error,
        '"2024-02-31 00:00:00"',
    ),
    "hash-missing": (_drop("hash"), "hash", "missing", None),
    "balance-formatted-string": (
        _set("balance", "1,234.50"),
        "balance",
        wire.MONEY.error,
        '"1,234.50"',
    ),
    "amount-three-decimals": (_set("amount", 1234.505), "amount", wire.MONEY.error, "1234.505"),
    # a boolean is not a JSON number, even among numbers (Python's True == 1 notwithstanding)
    "amount-boolean": (_set("amount", True), "amount", wire.MONEY.error, "true"),
    "not-an-object": (lambda txn: ["not", "an", "object"], "record", "not a JSON object", None),
    "amount-negative": (_set("amount", -50.0), "amount", wire.AMOUNT.error, "-50.0"),
}


@pytest.fixture(scope="module")
def one_account() -> dict:
    return generated_record(ONE_ACCOUNT)


@pytest.fixture(scope="module")
def clean_batch(one_account: dict) -> Batch:
    return run(one_account)


def spoil(record: dict, position: int, how: Callable[[dict], object]) -> tuple[dict, object]:
    out = copy.deepcopy(record)
    txns = txns_of(out)
    txns[position] = how(txns[position])
    return out, txns[position]


@pytest.mark.parametrize(
    ("how", "column", "problem", "shown"), QUARANTINED.values(), ids=QUARANTINED
)
def test_bad_record_is_quarantined_and_the_rest_of_its_entity_loads(
    one_account, clean_batch, how, column, problem, shown
):
    record, bad = spoil(one_account, BAD, how)
    entity_id = record["entity_id"]
    sent = txns_of(record)

    batch = run(record)

    loaded = rows(batch, "transactions")
    quarantined = rows(batch, "quarantine")
    assert len(loaded) + len(quarantined) == len(sent)
    assert len(quarantined) == 1
    q = quarantined[0]
    assert q["table_name"] == "transactions"
    assert q["entity_id"] == entity_id
    assert q["run_id"] == RUN
    assert q["quarantined_at"] == NOW.replace(tzinfo=None)
    assert q["reason"].startswith(f"{column}: "), q["reason"]
    assert problem in q["reason"]
    if shown is not None:
        assert shown in q["reason"]
    assert len(q["checks"]) == 1
    assert canonical(json.loads(q["raw_record"])) == canonical(bad)  # kept verbatim
    # where it belongs: its account (the one it sits among when it names none readably)
    # and the txn_seq it would have had, the gap it leaves
    assert (q["account_id"], q["txn_seq"]) == (sent[BAD - 1]["account_id"], BAD + 1)
    assert sum(batch.stats.quarantined.values()) == 1
    assert {table for table, _ in batch.stats.quarantined} == {"transactions"}

    # the other records load, in order, and keep their positions: a gap where the bad one was
    kept = [t for i, t in enumerate(sent) if i != BAD]
    assert [r["hash"] for r in loaded] == [t["hash"] for t in kept]
    assert [r["txn_seq"] for r in loaded] == [i + 1 for i in range(len(sent)) if i != BAD]

    # and the entity is replaced as usual, every other table as without the bad record
    assert batch.replace == [entity_id] and batch.touch == []
    assert rows(batch, "entities")[0]["sync_status"] == "complete"
    for table in TABLES:
        if table not in ("transactions", "quarantine", "runs"):
            assert rows(batch, table) == rows(clean_batch, table), table


# case → (how the record is changed, the counter and key that must count it)
KEPT = {
    "unknown-channel": (
        _set("transaction_channel", "crypto_swap"),
        "unknown_values",
        ("transaction_channel", "crypto_swap"),
    ),
    "extra-field": (_set("crypto_wallet", "0xabc"), "drift", ("transaction", "crypto_wallet")),
}


@pytest.mark.parametrize(("how", "counter", "key"), KEPT.values(), ids=KEPT)
def test_unknown_values_and_fields_load_and_are_counted(
    one_account, clean_batch, how, counter, key
):
    record, changed = spoil(one_account, BAD, how)
    sent = txns_of(record)

    batch = run(record)

    loaded = rows(batch, "transactions")
    assert rows(batch, "quarantine") == []
    assert len(loaded) == len(sent)
    assert [r["txn_seq"] for r in loaded] == list(range(1, len(sent) + 1))
    assert loaded[BAD]["hash"] == changed["hash"]
    assert getattr(batch.stats, counter) == Counter({key: 1})
    other = "drift" if counter == "unknown_values" else "unknown_values"
    assert getattr(batch.stats, other) == getattr(clean_batch.stats, other)
    if key[0] == "transaction_channel":
        assert loaded[BAD]["transaction_channel"] == "crypto_swap"
        assert loaded[BAD]["transaction_channel_raw"] == "crypto_swap"
    transform.validate("transactions", batch.tables["transactions"])


UNLISTED = _set("account_id", "nonexistent-acct")


def test_a_record_of_an_account_the_entity_does_not_list_is_quarantined(one_account):
    """Such a row has no account row: a join to accounts would drop it, and the marts
    would show an account the statement never had."""
    record, bad = spoil(one_account, BAD, UNLISTED)
    sent = txns_of(record)

    batch = run(record)

    (q,) = rows(batch, "quarantine")
    assert q["checks"] == ["account"] and q["table_name"] == "transactions"
    # the first row of the account it names; the listed account's rows keep no gap for it
    assert (q["account_id"], q["txn_seq"]) == ("nonexistent-acct", 1)
    assert q["reason"] == (
        "account_id: not an account the accounts endpoint lists for this entity "
        '("nonexistent-acct")'
    )
    assert canonical(json.loads(q["raw_record"])) == canonical(bad)
    loaded = rows(batch, "transactions")
    assert [r["hash"] for r in loaded] == [t["hash"] for i, t in enumerate(sent) if i != BAD]
    assert [r["txn_seq"] for r in loaded] == list(range(1, len(sent)))
    assert {r["account_id"] for r in rows(batch, "accounts")} == {r["account_id"] for r in loaded}


def test_a_quarantined_salary_transaction_or_duplicate_says_where_it_belongs(one_account):
    """A salary transaction carries the txn_seq of the transaction with its hash; a
    repeated transaction (caught by the table's key, after typing) its own position."""
    record = copy.deepcopy(one_account)
    txns, salary = txns_of(record), txns_of(record, "salary")
    salary[0]["amount"] = "abc"
    txns.append(copy.deepcopy(txns[BAD]))  # the API sent one transaction twice
    seq = next(i for i, t in enumerate(txns, start=1) if t["hash"] == salary[0]["hash"])

    got = {q["table_name"]: q for q in rows(run(record), "quarantine")}

    assert set(got) == {"salary_transactions", "transactions"}
    q = got["salary_transactions"]
    assert (q["account_id"], q["txn_seq"]) == (salary[0]["account_id"], seq)
    q = got["transactions"]
    assert q["checks"] == ["duplicate_key"]
    assert (q["account_id"], q["txn_seq"]) == (txns[BAD]["account_id"], len(txns))


def test_a_record_failing_several_checks_lists_every_one(one_account):
    record, _ = spoil(one_account, BAD, _set("amount", "abc"))
    txns_of(record)[BAD]["date"] = "31/02/2024"

    (q,) = rows(run(record), "quarantine")

    reasons = q["reason"].split("; ")
    assert sorted(r.split(":")[0] for r in reasons) == ["amount", "date"]
    assert len(q["checks"]) == 2
    assert json.loads(q["raw_record"])["date"] == "31/02/2024"


def test_quarantine_names_the_failed_checks(one_account):
    """``checks`` holds the names of the failed checks (the schema's ``Check.name``), and
    the run summary counts quarantined rows by the same names."""
    expected = {
        "amount-not-a-number": "money",
        "date-not-a-real-day": "api_date",
        "balance-formatted-string": "money",
        "hash-missing": "missing",
        "not-an-object": "object",
        "amount-negative": "negative",
        "account-not-listed": "account",
    }
    record = copy.deepcopy(one_account)
    for k, case in enumerate(expected):
        how = UNLISTED if case == "account-not-listed" else QUARANTINED[case][0]
        record, _ = spoil(record, BAD + k, how)

    batch = run(record)

    got = [q["checks"] for q in rows(batch, "quarantine")]
    assert sorted(got) == sorted([name] for name in expected.values())
    assert batch.stats.quarantined == Counter(
        {("transactions", "money"): 2, ("transactions", "api_date"): 1}
        | {("transactions", "missing"): 1, ("transactions", "object"): 1}
        | {("transactions", "negative"): 1, ("transactions", "account"): 1}
    )


# ---------------------------------------------------------------------- 2. shape failures


def _transactions_as_object(record: dict) -> None:
    body = record["responses"]["transactions"]
    body["transactions"] = {t["hash"]: t for t in body["transactions"]}


def _no_hash_anywhere(record: dict) -> None:
    for t in txns_of(record):
        del t["hash"]


def _salary_as_list(record: dict) -> None:
    record["responses"]["salary"] = [record["responses"]["salary"]]


# case → (how the response is broken, endpoint and field the one-line reason names)
SHAPES = {
    "transactions-is-an-object": (_transactions_as_object, "transactions", "'transactions'"),
    "every-record-without-hash": (_no_hash_anywhere, "transactions", "'hash'"),
    "salary-response-is-a-list": (_salary_as_list, "salary", "response"),
}


@pytest.mark.parametrize(("breaks", "endpoint", "field"), SHAPES.values(), ids=SHAPES)
def test_wrong_shape_fails_only_that_entity(breaks, endpoint, field):
    good_a = generated_record(TWO_ACCOUNTS_ONE_STATEMENT_EACH)
    good_b = generated_record(FRAUD)
    bad = generated_record(ONE_ACCOUNT)
    breaks(bad)
    entity_id = bad["entity_id"]

    batch = run(good_a, bad, good_b)

    assert batch.touch == [entity_id]
    assert batch.replace == [good_a["entity_id"], good_b["entity_id"]]
    (entity,) = rows(batch, "entities", entity_id)
    assert entity["sync_status"] == "failed"
    error = entity["sync_error"]
    assert error.startswith(f"{endpoint}:"), error
    assert field in error and "\n" not in error
    assert entity["fingerprint"] is None and entity["last_synced_at"] is None
    assert batch.stats.failures == [(entity_id, error)]
    assert batch.stats.entities == Counter({"failed": 1, "complete": 2})
    # nothing of the malformed entity loads (its previous rows stay), not even the good parts
    per_entity = [t for t in batch.tables if t not in ("entities", "bank_health")]
    for table in per_entity:
        assert rows(batch, table, entity_id) == [], table
    # the others load exactly as they would alone
    alone = run(good_a, good_b)
    for table in [*per_entity, "entities"]:
        for good in (good_a, good_b):
            assert rows(batch, table, good["entity_id"]) == rows(alone, table, good["entity_id"]), (
                table
            )
    assert rows(batch, "transactions", good_a["entity_id"])


# ---------------------------------------------------------------------- 3. pending and failed


def unfinished(index: int, status: str) -> dict:
    """What extraction records for an entity still processing, or failed to fetch."""
    full = generated_record(index)
    responses = {k: full["responses"][k] for k in ("entity", "accounts", "identity")}
    bundle = EntityBundle(
        full["entity_id"],
        status=status,
        responses=responses,
        pending_endpoints=["transactions", "salary"] if status == "pending" else [],
        error="transactions: HTTP 503 after 5 attempts" if status == "failed" else None,
    )
    return as_json(transform.entity_record(bundle, full["summary"], FETCHED))  # type: ignore[return-value]


@pytest.mark.parametrize("status", ["pending", "failed"])
def test_pending_or_failed_entity_changes_only_its_entities_row(status):
    record = unfinished(ONE_ACCOUNT, status)
    entity_id = record["entity_id"]

    batch = run(record)

    assert batch.replace == [] and batch.touch == [entity_id]
    (entity,) = rows(batch, "entities")
    assert entity["sync_status"] == status
    assert entity["pending_endpoints"] == record["pending_endpoints"]
    assert entity["fingerprint"] is None
    assert entity["last_synced_at"] is None
    assert entity["last_attempt_at"] == FETCHED.replace(tzinfo=None)
    assert entity["link_id"] == record["summary"]["link_id"]
    assert entity["sync_error"] == (record["error"] if status == "failed" else None)
    assert batch.stats.failures == ([(entity_id, record["error"])] if status == "failed" else [])
    for table, data in batch.tables.items():
        if table != "entities":
            assert data.num_rows == 0, table
    for table, data in batch.tables.items():
        transform.validate(table, data)
    if status == "pending":
        assert entity["pending_endpoints"] == ["transactions", "salary"]


def test_pending_and_failed_keep_the_previous_rows_in_the_warehouse(tmp_path):
    a, b = generated_record(ONE_ACCOUNT), generated_record(TWO_ACCOUNTS_ONE_STATEMENT_EACH)
    with Writer(tmp_path, wait_s=10, run_id=RUN) as w:
        w.load(run(a, b))
        w.load(
            run(
                unfinished(ONE_ACCOUNT, "pending"),
                unfinished(TWO_ACCOUNTS_ONE_STATEMENT_EACH, "failed"),
            )
        )
    con = connect(tmp_path)
    try:
        counts = dict(
            con.execute("SELECT entity_id, count(*) FROM transactions GROUP BY ALL").fetchall()
        )
        entities = {
            r[0]: r[1:]
            for r in con.execute(
                "SELECT entity_id, sync_status, last_synced_at, fingerprint, pending_endpoints "
                "FROM entities"
            ).fetchall()
        }
    finally:
        con.close()
    assert counts == {a["entity_id"]: len(txns_of(a)), b["entity_id"]: len(txns_of(b))}
    synced = FETCHED.replace(tzinfo=None)
    assert entities[a["entity_id"]] == ("pending", synced, None, ["transactions", "salary"])
    assert entities[b["entity_id"]] == ("failed", synced, None, [])


# ---------------------------------------------------------------------- 4. types


@pytest.fixture(scope="module")
def typed() -> tuple[dict[int, dict], Batch]:
    """A batch of varied entities, with some values set by hand."""
    indices = (
        ONE_ACCOUNT,
        TWO_ACCOUNTS_ONE_STATEMENT_EACH,
        TWO_ACCOUNTS_TWO_STATEMENTS_EACH,
        FRAUD,
        OVERDRAWN,
        PARTLY_FAILED,
    )
    records = {i: generated_record(i) for i in indices}
    txns = txns_of(records[ONE_ACCOUNT])
    txns[0]["amount"] = 0.29
    txns[1]["amount"] = 1234.5
    txns[2]["balance"] = -1234.56
    txns[3]["amount"] = 5188  # a JSON integer
    txns_of(records[ONE_ACCOUNT], "salary")[0]["month_year"] = "1-2019"
    fraud = records[FRAUD]["responses"]["accounts"]["fraud"]
    flagged = fraud["fraudulent_statements"][0]
    fraud["fraud_type"].append({"statement_id": flagged, "fraud_type": "author_fraud"})
    return records, run(*records.values())


def test_every_table_passes_its_contract(typed):
    _, batch = typed
    assert set(batch.tables) == set(TABLES) - {"runs"}
    for table, data in batch.tables.items():
        assert data.schema == transform.arrow_schema(table)
        transform.validate(table, data)
    assert rows(batch, "quarantine") == []
    # and the contract does reject a broken table, so the above means something
    broken = batch.tables["transactions"].set_column(
        3, "txn_seq", pyarrow_.array([0] * batch.tables["transactions"].num_rows, "int64")
    )
    with pytest.raises(pa.errors.SchemaErrors):
        transform.validate("transactions", broken)


def test_hand_set_amounts_become_exact_decimals(typed):
    records, batch = typed
    first = rows(batch, "transactions", records[ONE_ACCOUNT]["entity_id"])[:4]
    assert first[0]["amount"] == Decimal("0.29")
    assert str(first[1]["amount"]) == "1234.50"
    assert first[2]["balance"] == Decimal("-1234.56")
    assert str(first[3]["amount"]) == "5188.00"


def test_money_and_dates_equal_the_generator(typed):
    """Every amount and balance is the generator's paise / 100 exactly; dates are dates."""
    records, batch = typed
    hand_set = {t["hash"] for t in txns_of(records[ONE_ACCOUNT])[:4]}
    truth = {
        t.hash: t
        for i in records
        for t in gen.generated_entity(SEED, i).transactions
        if t.hash not in hand_set
    }
    checked = 0
    for table in ("transactions", "salary_transactions", "lender_transactions"):
        for r in rows(batch, table):
            t = truth.get(r["hash"])
            if t is None:
                continue
            checked += 1
            assert r["amount"] == rupees(t.amount) and r["amount"].as_tuple().exponent == -2
            assert r["balance"] == rupees(t.balance) and r["balance"].as_tuple().exponent == -2
            assert type(r["txn_date"]) is date and r["txn_date"] == t.day
    assert checked > 3000
    negatives = [r for r in rows(batch, "transactions") if r["balance"] < 0]
    assert len(negatives) > 10


def test_salary_month_is_the_first_of_the_month(typed):
    records, batch = typed
    seq = {r["hash"]: r["txn_seq"] for r in rows(batch, "transactions")}
    salary = rows(batch, "salary_transactions")
    assert len(salary) > 10
    sent = {t["hash"]: t for i in records for t in txns_of(records[i], "salary")}
    for r in salary:
        month, year = map(int, sent[r["hash"]]["month_year"].split("-"))
        assert r["salary_month"] == date(year, month, 1)
        assert r["clean_transaction_note"] == sent[r["hash"]]["clean_transaction_note"]
        assert r["txn_seq"] == seq[r["hash"]]  # the same transaction in transactions
    first = txns_of(records[ONE_ACCOUNT], "salary")[0]["hash"]
    assert next(r for r in salary if r["hash"] == first)["salary_month"] == date(2019, 1, 1)
    lender = rows(batch, "lender_transactions")
    assert lender and all(r["txn_seq"] == seq[r["hash"]] for r in lender)


def test_recurring_sets_lower_case_channel_and_keep_their_members(typed):
    records, batch = typed
    sets = {r["set_id"]: r for r in rows(batch, "recurring_sets")}
    members: dict[str, list[dict]] = {}
    for m in rows(batch, "recurring_set_transactions"):
        members.setdefault(m["set_id"], []).append(m)
    sent = [
        (i, direction, s)
        for i in records
        for direction in ("credit", "debit")
        for s in records[i]["responses"]["recurring_transactions"]["transactions"][
            f"{direction}_transactions"
        ]
    ]
    assert len(sets) == len(sent) > 10
    matched = 0
    for i, direction, s in sent:
        hashes = [m["hash"] for m in s["transactions"]]
        (set_id,) = [k for k, v in members.items() if [m["hash"] for m in v] == hashes]
        row = sets[set_id]
        assert row["entity_id"] == records[i]["entity_id"]
        assert row["direction"] == direction
        assert row["channel_raw"] == s["transaction_channel"]
        assert row["channel"] == s["transaction_channel"].lower()
        assert row["start_date"] == date.fromisoformat(s["start_date"][:10])
        assert row["end_date"] == date.fromisoformat(s["end_date"][:10])
        assert row["median_amount"] == Decimal(str(s["median"])).quantize(Decimal("0.01"))
        assert row["transaction_count"] == len(s["transactions"])
        assert [m["set_position"] for m in members[set_id]] == list(range(1, len(hashes) + 1))
        matched += 1
    assert matched == len(sets)
    raw = {r["channel_raw"] for r in sets.values()}
    assert any(c != c.lower() for c in raw)  # the API sends upper case
    assert all(r["channel"] == r["channel"].lower() for r in sets.values())


def test_txn_seq_counts_per_account_from_one_and_statement_id_needs_one_statement(typed):
    records, batch = typed
    for i, record in records.items():
        accounts = record["responses"]["accounts"]["accounts"]
        loaded = rows(batch, "transactions", record["entity_id"])
        for a in accounts:
            mine = [r for r in loaded if r["account_id"] == a["account_id"]]
            sent = [t["hash"] for t in txns_of(record) if t["account_id"] == a["account_id"]]
            assert [r["hash"] for r in mine] == sent
            assert [r["txn_seq"] for r in mine] == list(range(1, len(sent) + 1))
            expected = a["statements"][0] if len(a["statements"]) == 1 else None
            assert {r["statement_id"] for r in mine} <= {expected}, (i, a["account_id"])
    two = rows(batch, "transactions", records[TWO_ACCOUNTS_TWO_STATEMENTS_EACH]["entity_id"])
    assert two and all(r["statement_id"] is None for r in two)
    one = rows(batch, "transactions", records[TWO_ACCOUNTS_ONE_STATEMENT_EACH]["entity_id"])
    assert len({r["statement_id"] for r in one}) == 2 and None not in {
        r["statement_id"] for r in one
    }


def test_statement_files_fraud_flags_and_statements(typed):
    records, batch = typed
    files = rows(batch, "statement_files")
    sent = {
        s["statement_id"]: s
        for r in records.values()
        for s in r["responses"]["get_pdfs"]["statements"]
    }
    assert len(files) == len(sent)
    for f in files:
        s = sent[f["statement_id"]]
        assert f["has_password"] is s["has_password"]
        assert f["pdf_url"] == (s["pdf_url"] or None)
        assert f["pdf_url"] is None or "?" not in f["pdf_url"]
    assert {f["pdf_url"] is None for f in files} == {True, False}
    assert {f["has_password"] for f in files} == {True, False}

    fraud_entity = records[FRAUD]["entity_id"]
    flags = rows(batch, "fraud_flags")
    assert {r["entity_id"] for r in flags} == {fraud_entity}
    (tampered,) = [s for s in gen.generated_entity(SEED, FRAUD).statements if s.fraud]
    ((fraud_type, txn_hash),) = tampered.fraud
    assert sorted(
        ((r["statement_id"], r["fraud_type"], r["transaction_hash"]) for r in flags),
        key=str,
    ) == sorted(
        [
            (tampered.statement_id, fraud_type, txn_hash),
            (tampered.statement_id, "author_fraud", None),
        ],
        key=str,
    )
    assert txn_hash is not None
    statements = {r["statement_id"]: r for r in rows(batch, "statements")}
    assert [k for k, r in statements.items() if r["is_fraud"]] == [tampered.statement_id]

    failed = [s for s in gen.generated_entity(SEED, PARTLY_FAILED).statements if s.failed_message]
    for s in failed:
        row = statements[s.statement_id]
        assert row["status"] == "failed" and row["message"] == s.failed_message
        assert row["transactions_status"] == "failed" and row["accounts_status"] == "completed"


def test_entities_and_accounts_rows(typed):
    records, batch = typed
    entities = {r["entity_id"]: r for r in rows(batch, "entities")}
    for record in records.values():
        e = entities[record["entity_id"]]
        assert e["sync_status"] == "complete"
        assert re.fullmatch(r"[0-9a-f]{32}", e["fingerprint"])
        assert e["last_synced_at"] == e["first_seen_at"] == FETCHED.replace(tzinfo=None)
        assert e["link_id"] == record["summary"]["link_id"]
        assert e["meta_data"] == record["summary"]["meta_data"]
    assert entities[records[OVERDRAWN]["entity_id"]]["link_id"] is None
    for a in rows(batch, "accounts"):
        months = a["months"]
        assert a["months_covered"] == len(set(months))
        y, m = map(int, min(months).split("-"))
        assert a["first_month"] == date(y, m, 1)
        y, m = map(int, max(months).split("-"))
        assert a["last_month"] == date(y, m, 1)


# ---------------------------------------------------------------------- 5. money, end to end

ACCOUNT = "00000000-0000-4000-8000-00000000a001"
STATEMENT = "00000000-0000-4000-8000-00000000b001"
ENTITY = "00000000-0000-4000-8000-00000000e001"
PAISE = st.integers(min_value=-(10**13), max_value=10**13)


def money_record(values: list[tuple[int, int]], loads: Callable[[str], object]) -> dict:
    """One entity whose transactions carry the given amounts and balances (in paise), sent
    as JSON numbers with two decimals, parsed by ``loads``."""
    literals = [str(rupees(p)) for pair in values for p in pair]
    txns = [
        {
            "transaction_note": "TEST",
            "hash": f"{k:032x}",
            "description": "",
            "account_id": ACCOUNT,
            "transaction_type": "debit",
            "amount": f"@{2 * k}@",
            "date": "2026-01-15 00:00:00",
            "merchant_category": "",
            "balance": f"@{2 * k + 1}@",
            "transaction_channel": "upi",
        }
        for k in range(len(values))
    ]
    head = {
        "entity_id": ENTITY,
        "progress": [{"status": "completed", "message": None, "statement_id": STATEMENT}],
        "accounts": [
            {
                "months": ["2026-01"],
                "statements": [STATEMENT],
                "account_id": ACCOUNT,
                "ifsc": None,
                "micr": None,
                "account_number": None,
                "bank": "hdfc",
            }
        ],
        "fraud": {"fraudulent_statements": [], "fraud_type": []},
    }
    identity = {"account_id": ACCOUNT, "name": None, "address": None, "account_number": None}
    identity |= {"od_limit": "@0@", "credit_limit": "@1@"}
    record = {
        "entity_id": ENTITY,
        "summary": {"entity_id": ENTITY, "link_id": None, "meta_data": None},
        "fetched_at": FETCHED.isoformat(),
        "status": "complete",
        "error": None,
        "pending_endpoints": [],
        "responses": {
            "accounts": head,
            "identity": {**head, "identity": [identity]},
            "transactions": {**head, "transactions": txns},
        },
    }
    text = re.sub(r'"@(\d+)@"', lambda m: literals[int(m[1])], json.dumps(record))
    return loads(text)  # type: ignore[return-value]


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Iterator[tuple[Writer, object]]:
    path = tmp_path_factory.mktemp("lake")
    with Writer(path, wait_s=10, run_id=RUN) as w:
        con = connect(path)  # one reader, which sees each new snapshot
        try:
            yield w, con
        finally:
            con.close()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    # (amount, balance): an amount is never negative (the type gives the direction)
    values=st.lists(st.tuples(PAISE.map(abs), PAISE), min_size=1, max_size=200),
    loads=st.sampled_from([orjson.loads, json.loads]),
)
@example(
    values=[(10**13, -(10**13)), (10**13 - 1, 10**13), (29, 0), (123450, -123456), (1, -1)],
    loads=orjson.loads,
)
@example(values=[(9_999_999_999_999, -9_999_999_999_999), (10, 5)], loads=json.loads)
def test_money_round_trips_exactly_through_the_warehouse(lake, values, loads):
    writer, con = lake
    record = money_record(values, loads)
    sent = txns_of(record)
    assert all(type(t["amount"]) is float and type(t["balance"]) is float for t in sent)
    expected = [(rupees(a), rupees(b)) for a, b in values]

    batch = run(record)

    assert rows(batch, "quarantine") == []
    got = [(r["amount"], r["balance"]) for r in rows(batch, "transactions")]
    assert got == expected
    writer.load(batch)
    stored = con.execute(
        "SELECT amount, balance FROM transactions WHERE entity_id = ? ORDER BY txn_seq", [ENTITY]
    ).fetchall()
    assert stored == expected
    assert all(v.as_tuple().exponent == -2 for pair in stored for v in pair)
    limits = con.execute(
        "SELECT od_limit, credit_limit FROM identities WHERE entity_id = ?", [ENTITY]
    ).fetchall()
    assert limits == [expected[0]]


def test_api_dates_parse_the_same_whether_repeated_or_not() -> None:
    # long columns are parsed once per distinct value: the same answer as value by value
    values = [
        "2024-02-29 00:00:00",
        "2023-02-29 00:00:00",  # not a leap year
        "2024-02-31",
        "31/02/2024",
        "2024-03-01T10:20:30",
        "2024-3-1",
        "",
        None,
    ]
    column = pyarrow_.array(values * 20, pyarrow_.string())
    one_by_one = [wire.parse_api_dates(pyarrow_.array([v], pyarrow_.string()))[0] for v in values]
    assert wire.parse_api_dates(column).to_pylist() == [d.as_py() for d in one_by_one] * 20
    assert [d.as_py() for d in one_by_one] == [
        date(2024, 2, 29),
        None,
        None,
        None,
        date(2024, 3, 1),
        None,
        None,
        None,
    ]
