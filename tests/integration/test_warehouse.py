"""The warehouse as operations meet it: re-runs, crashes, readers during loads, a second
writer, time travel, the raw zone and rebuilds, secrets, pending entities.

Comparing two warehouses means comparing the sorted rows of every data table, leaving out
only the columns that name the run which wrote a row (``RUN_COLUMNS``):

- ``entities.run_id``, ``bank_health.run_id``, ``quarantine.run_id``: the writing run's id,
  different by construction on every run;
- ``quarantine.quarantined_at``: the transform's wall clock when it set the record aside,
  not anything the API sent;
- the ``runs`` table as a whole: the run ledger, one row per run by design.

Everything else, the ``entities`` timestamps included, derives from the entity records
(``first_seen_at``, ``last_attempt_at`` and ``last_synced_at`` are the record's
``fetched_at``), so loading the same records must give the same values.
"""

from __future__ import annotations

import copy
import gzip
import json
import logging
import os
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
import requests
from bankconnect_etl.schemas.tables import ENTITY_TABLES, TABLES

from bankconnect_etl import pipeline, raw
from bankconnect_etl.client import BankConnectClient
from bankconnect_etl.config import Settings
from bankconnect_etl.errors import WarehouseBusyError, WarehouseError
from bankconnect_etl.extract import Extractor, list_entities
from bankconnect_etl.pipeline import load_records, rebuild_from_raw, run_sync
from bankconnect_etl.render import summary_lines
from bankconnect_etl.sandbox import (
    SANDBOX_API_KEY,
    SANDBOX_SERVER_HASH,
    SandboxConfig,
    start_in_thread,
)
from bankconnect_etl.transform import entity_record
from bankconnect_etl.warehouse import Writer, _partitioned_tables, connect
from tests.conftest import ENDLESS_QUERY, READ_ONLY_WAYS, ctrl_c_in, ends_if_hung

pytestmark = pytest.mark.integration

HELPER = str(Path(__file__).with_name("_warehouse_proc.py"))
COMMAND = str(Path(sys.executable).with_name("bankconnect-etl"))
RUN_COLUMNS = {
    "entities": ("run_id",),
    "bank_health": ("run_id",),
    "quarantine": ("run_id", "quarantined_at"),
}
DATA_TABLES = tuple(t for t in TABLES if t != "runs")
FAST = {"poll_initial_s": 0.02, "poll_max_s": 0.1, "backoff_base_s": 0.01, "backoff_cap_s": 0.1}


# ---------------------------------------------------------------------- helpers


def settings(**overrides: object) -> Settings:
    """Settings from these values alone: no .env file of the machine running the tests."""
    return Settings.load(_env_file=None, **overrides)


def load(w: Writer, records: list[dict], run_id: str, batch_size: int) -> None:
    """Load records in this process (no transform workers: these tests are about the load)."""
    load_records(w, records, run_id=run_id, batch_size=batch_size, workers=0)


def load_run(warehouse: Path, records: list[dict], run_id: str, batch_size: int = 4) -> int:
    """One run as the ledger records it; the snapshot id at its end."""
    with Writer(warehouse, wait_s=30) as w:
        w.start_run(run_id, "test", {}, datetime.now(UTC))
        load(w, records, run_id, batch_size)
        w.finish_run(run_id, status="succeeded", counts={})
        return w.snapshot_id()


def table_rows(warehouse: Path, as_of: object = None) -> dict[str, list[tuple]]:
    """Sorted rows of every data table, without the columns that name a run."""
    con = connect(warehouse, read_only=True, as_of=as_of)
    try:
        out = {}
        for table in DATA_TABLES:
            cols = [c for c in TABLES[table].columns if c not in RUN_COLUMNS.get(table, ())]
            sql = f"SELECT {', '.join(cols)} FROM {table} ORDER BY ALL"  # noqa: S608
            out[table] = con.sql(sql).fetchall()
        return out
    finally:
        con.close()


def assert_same_tables(got: dict[str, list[tuple]], want: dict[str, list[tuple]]) -> None:
    differ = {t: f"{len(got[t])} rows vs {len(want[t])}" for t in DATA_TABLES if got[t] != want[t]}
    assert not differ, f"tables differ (got vs want): {differ}"


def duplicate_keys(warehouse: Path) -> dict[str, list[tuple]]:
    """Per table with a key: key values held by more than one row."""
    con = connect(warehouse)
    try:
        found = {}
        for table, spec in TABLES.items():
            if not spec.key:
                continue
            key = ", ".join(spec.key)
            dupes = con.sql(
                f"SELECT {key}, count(*) FROM {table} GROUP BY ALL HAVING count(*) > 1 LIMIT 3"  # noqa: S608
            ).fetchall()
            if dupes:
                found[table] = dupes
        return found
    finally:
        con.close()


def scalar(warehouse: Path, sql: str, as_of: object = None) -> object:
    con = connect(warehouse, as_of=as_of)
    try:
        return con.sql(sql).fetchall()[0][0]
    finally:
        con.close()


def con_rows(warehouse: Path, sql: str) -> list[tuple]:
    con = connect(warehouse, read_only=True)
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()


def txn_count(record: dict) -> int:
    body = record["responses"].get("transactions")
    return len(body["transactions"]) if isinstance(body, dict) else 0


def with_transactions(record: dict, n: int) -> dict:
    """The record with only its first ``n`` transactions."""
    out = copy.deepcopy(record)
    out["responses"]["transactions"]["transactions"] = out["responses"]["transactions"][
        "transactions"
    ][:n]
    return out


def cli(*args: str, warehouse: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANKCONNECT_")}
    env["BANKCONNECT_WAREHOUSE"] = str(warehouse)
    return subprocess.run(
        [COMMAND, *args], capture_output=True, text=True, timeout=60, check=False, cwd=cwd, env=env
    )


def helper(*args: str, **kw: object) -> subprocess.Popen[str]:
    return subprocess.Popen(  # type: ignore[call-overload]
        [sys.executable, HELPER, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def release(proc: subprocess.Popen[str]) -> None:
    """Tell a ``hold`` helper to let go of the lock and exit."""
    assert proc.stdin is not None
    proc.stdin.write("release\n")
    proc.stdin.flush()


def read_line(
    proc: subprocess.Popen[str], prefix: str, timeout: float = 60, stream: str = "stdout"
) -> str:
    """The first line of ``stream`` starting with ``prefix``; fails with the process's stderr."""
    found: list[str] = []

    def scan() -> None:
        lines = getattr(proc, stream)
        assert lines is not None
        for line in lines:
            if line.startswith(prefix):
                found.append(line.strip())
                return

    t = threading.Thread(target=scan, daemon=True)
    t.start()
    t.join(timeout)
    if not found:
        proc.kill()
        _, err = proc.communicate(timeout=10)
        raise AssertionError(f"no {prefix!r} line from the helper; its stderr:\n{err[-3000:]}")
    return found[0]


# ---------------------------------------------------------------------- data


@pytest.fixture(scope="module")
def records() -> list[dict]:
    """Entity records of 12 sandbox entities, in listing order, fetched once; transactions
    cut to at most 150 per entity to keep the loads quick."""
    with start_in_thread(SandboxConfig(entities=12, seed=11, processing_polls=0)) as sb:
        s = settings(
            base_url=sb.base_url, api_key=SANDBOX_API_KEY, server_hash=SANDBOX_SERVER_HASH, **FAST
        )
        with BankConnectClient(s) as client:
            listing = list_entities(client)
            summaries = {e["entity_id"]: e for e in listing.entities}
            fetched_at = datetime.now(UTC)
            by_id = {
                b.entity_id: entity_record(b, summaries[b.entity_id], fetched_at)
                for b in Extractor(client).fetch(list(summaries))
            }
    out = [by_id[e] for e in summaries]
    assert {r["status"] for r in out} >= {"complete", "empty"}
    return [with_transactions(r, 150) if txn_count(r) else r for r in out]


@pytest.fixture(scope="module")
def rich(records: list[dict]) -> list[dict]:
    """Records of entities with at least 10 transactions, cut to at most 40."""
    out = [with_transactions(r, 40) for r in records if txn_count(r) >= 10]
    assert len(out) >= 8
    return out


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """One sync, as a nightly run makes it, with credentials nobody else uses and the raw
    zone on: the warehouse, the run and the secrets it met. A raw day folder from 2001 is
    planted first, for the retention to delete."""
    root = tmp_path_factory.mktemp("synced")
    warehouse = root / "warehouse"
    old_day = warehouse / "raw" / "2001-01-01" / "old-run"
    old_day.mkdir(parents=True)
    with gzip.open(old_day / "part-00001.jsonl.gz", "wb"):
        pass  # an empty part: harmless to a rebuild if retention failed to delete it
    api_key, server_hash = f"key-{secrets.token_hex(12)}", f"hash-{secrets.token_hex(12)}"
    config = SandboxConfig(
        entities=10, seed=5, processing_polls=0, api_key=api_key, server_hash=server_hash
    )
    with start_in_thread(config) as sb:
        http = requests.Session()
        http.headers.update({"x-api-key": api_key, "server-hash": server_hash})
        ids = [
            e["entity_id"] for e in http.get(f"{sb.base_url}/entity/", timeout=10).json()["results"]
        ]
        assert len(ids) == 10
        passwords = {
            s["pdf_password"]
            for e in ids
            for s in http.get(f"{sb.base_url}/entity/{e}/get_pdfs/", timeout=10).json()[
                "statements"
            ]
            if s.get("pdf_password")
        }
        s = settings(
            base_url=sb.base_url,
            api_key=api_key,
            server_hash=server_hash,
            warehouse=warehouse,
            batch_size=4,
            raw_retention_days=30,
            **FAST,
        )
        run = run_sync(
            s, kind="nightly", params={"entities": None, "settings": s.model_dump(mode="json")}
        )
    assert run.status == "succeeded", run.error
    yield {
        "warehouse": warehouse,
        "run": run,
        "entities": len(ids),
        "secrets": {"api key": api_key, "server hash": server_hash}
        | {f"pdf password {i}": p for i, p in enumerate(sorted(passwords))},
    }


# ---------------------------------------------------------------------- 1. idempotency


def test_every_snapshot_of_a_sync_says_what_it_was(synced) -> None:
    """`FROM lake.snapshots()` is where an analyst picks a time to travel to."""
    run_id = synced["run"].run_id
    con = connect(synced["warehouse"])
    query = "SELECT commit_message FROM lake.snapshots() WHERE snapshot_id > 0 ORDER BY snapshot_id"
    messages = [m for (m,) in con.sql(query).fetchall()]
    con.close()
    assert messages[0] == "tables"
    assert all(m.startswith(f"{run_id} ") for m in messages[1:]), messages
    steps = [m.removeprefix(f"{run_id} ") for m in messages[1:]]
    batches = -(-synced["entities"] // 4)
    assert steps == [
        "started",
        *(f"batch {n}" for n in range(1, batches + 1)),
        "compaction",
        "marts",
        "succeeded",
    ]
    # the run's row names its last snapshot, the one the summary prints: as of it, the
    # warehouse is as the run left it, this row included
    ((last,),) = con_rows(synced["warehouse"], "SELECT snapshot_id FROM runs")
    assert last == synced["run"].snapshot
    at_last = (
        f"SELECT commit_message, (SELECT status FROM runs AT (VERSION => {int(last)})) "  # noqa: S608
        f"FROM lake.snapshots() WHERE snapshot_id = {int(last)}"
    )
    assert con_rows(synced["warehouse"], at_last) == [(f"{run_id} succeeded", "succeeded")]


def test_loading_the_same_records_twice_changes_nothing(tmp_path: Path, records) -> None:
    wh = tmp_path / "wh"
    load_run(wh, records, "run-1")
    first = table_rows(wh)
    load_run(wh, records, "run-2", batch_size=6)  # other batches: the outcome may not care
    assert_same_tables(table_rows(wh), first)
    assert not duplicate_keys(wh)
    assert first["transactions"] and first["statements"] and first["entities"]
    # the second run did replace every entity (not skip them): its id is on every row
    assert scalar(wh, "SELECT list(DISTINCT run_id) FROM entities") == ["run-2"]
    assert scalar(wh, "SELECT count(*) FROM runs WHERE status = 'succeeded'") == 2


# ---------------------------------------------------------------------- 2. Parquet


def test_rows_live_in_partitioned_parquet_not_in_the_catalog(synced) -> None:
    wh: Path = synced["warehouse"]
    db = sqlite3.connect(f"file:{wh / 'catalog.sqlite'}?mode=ro", uri=True)
    try:
        inlined_tables = db.execute(
            "SELECT name FROM sqlite_master WHERE name LIKE 'ducklake_inlined_data_%'"
            " AND name != 'ducklake_inlined_data_tables'"
        ).fetchall()
        inlined = db.execute("SELECT count(*) FROM ducklake_inlined_data_tables").fetchone()[0]
        # files the sync's compaction merged away, kept on disk for readers still on them
        merged_away = {
            str(wh / "data" / path) if relative else path
            for path, relative in db.execute(
                "SELECT path, path_is_relative FROM ducklake_files_scheduled_for_deletion"
            ).fetchall()
        }
    finally:
        db.close()
    assert inlined == 0 and not inlined_tables

    con = connect(wh)
    try:
        for table in TABLES:
            files = con.sql(
                f"SELECT data_file, delete_file FROM ducklake_list_files('lake', '{table}')"  # noqa: S608
            ).fetchall()
            data = [f for f, _ in files]
            deletes = [d for _, d in files if d]
            in_files = sum(pq.ParquetFile(f).metadata.num_rows for f in data)
            deleted = sum(pq.ParquetFile(d).metadata.num_rows for d in deletes)
            count = con.sql(f"SELECT count(*) FROM {table}").fetchall()[0][0]  # noqa: S608
            assert count == in_files - deleted, table
            assert all(Path(f).is_relative_to(wh / "data" / "main" / table) for f in data)
        assert con.sql("SELECT count(*) FROM transactions").fetchall()[0][0] > 100
        txn_files = [
            f
            for (f,) in con.sql(
                "SELECT data_file FROM ducklake_list_files('lake', 'transactions')"
            ).fetchall()
        ]
    finally:
        con.close()

    on_disk = {str(p) for p in (wh / "data" / "main" / "transactions").rglob("*.parquet")}
    assert set(txn_files) <= on_disk
    assert on_disk - set(txn_files) <= merged_away
    assert merged_away & on_disk, "the sync's batches were not merged"
    months = set()
    for path in map(Path, txn_files):
        rel = path.relative_to(wh / "data" / "main" / "transactions").parent.as_posix()
        m = re.fullmatch(r"year=(\d{4})/month=([1-9]|1[0-2])", rel)
        assert m, f"{path} is not under year=YYYY/month=M/"
        inside = duckdb.sql(
            f"SELECT DISTINCT year(txn_date), month(txn_date) FROM read_parquet('{path}')"  # noqa: S608
        ).fetchall()
        assert inside == [(int(m[1]), int(m[2]))], path
        assert inside[0] not in months, f"{inside[0]}: two live files after the compaction"
        months.add(inside[0])
    assert len(months) > 1


def test_a_lake_laid_out_by_an_earlier_version_takes_the_current_partitioning(
    tmp_path: Path, rich
) -> None:
    """A lake whose salary_transactions were partitioned by month and transactions not (an
    older layout): the next writer gives new data the current layout, the old files stay
    readable, and once the layout is current opening a writer adds no snapshot."""
    wh = tmp_path / "wh"
    with Writer(wh, wait_s=30) as w:
        w.con.execute(
            "ALTER TABLE lake.salary_transactions "
            "SET PARTITIONED BY (year(txn_date), month(txn_date))"
        )
        w.con.execute("ALTER TABLE lake.transactions RESET PARTITIONED BY")
        load(w, rich[:4], "run-old", batch_size=4)
    data = wh / "data" / "main"
    old = set(data.rglob("*.parquet"))
    load_run(wh, rich[4:], "run-new", batch_size=4)
    new = set(data.rglob("*.parquet")) - old

    def folders(files: set[Path], table: str) -> set[str]:
        return {p.parent.relative_to(data / table).as_posix() for p in files if table in p.parts}

    month = re.compile(r"year=\d{4}/month=\d{1,2}")
    assert folders(old, "transactions") == {"."}
    assert all(month.fullmatch(f) for f in folders(old, "salary_transactions"))
    assert all(month.fullmatch(f) for f in folders(new, "transactions"))
    assert folders(new, "salary_transactions") == {"."}
    assert folders(new, "transactions") and folders(old, "salary_transactions")

    with Writer(wh, wait_s=30) as w:
        assert _partitioned_tables(w.con) == {"transactions"}
        current = w.snapshot_id()
    with Writer(wh, wait_s=30) as w:
        assert w.snapshot_id() == current
    load_run(tmp_path / "fresh", rich, "run-fresh", batch_size=4)
    assert_same_tables(table_rows(wh), table_rows(tmp_path / "fresh"))


def test_a_lake_written_before_a_column_existed_gains_it(tmp_path: Path, rich) -> None:
    """A lake whose quarantine table predates account_id and txn_seq: the next writer adds
    them (null in the rows written before, filled from then on), and once the columns are
    there opening a writer adds no snapshot."""
    wh = tmp_path / "wh"
    spoiled = copy.deepcopy(rich[:2])
    for r in spoiled:
        r["responses"]["transactions"]["transactions"][3]["amount"] = "abc"

    def where(record: dict) -> tuple[str, int]:  # the 4th row's account, its place there
        txns = record["responses"]["transactions"]["transactions"]
        account = txns[3]["account_id"]
        return account, sum(t["account_id"] == account for t in txns[:4])

    with Writer(wh, wait_s=30) as w:
        w.con.execute("ALTER TABLE lake.quarantine DROP COLUMN account_id")
        w.con.execute("ALTER TABLE lake.quarantine DROP COLUMN txn_seq")
        w.con.execute("ALTER TABLE lake.runs DROP COLUMN snapshot_id")
    with pytest.raises(duckdb.BinderException):  # the old version's lake, as it loaded
        scalar(wh, "SELECT count(txn_seq) FROM quarantine")
    with Writer(wh, wait_s=30) as w:  # the earlier version's rows: no such columns then
        w.con.execute(
            "INSERT INTO lake.quarantine (run_id, quarantined_at, table_name, entity_id, "
            "reason, checks, raw_record) VALUES ('run-old', now()::TIMESTAMP, 'transactions', "
            "'e-old', 'amount: not money', ['money'], '{}')"
        )
    load_run(wh, spoiled, "run-new")

    con = connect(wh, read_only=True)
    try:
        got = con.execute(
            "SELECT run_id, entity_id, account_id, txn_seq FROM quarantine ORDER BY ALL"
        ).fetchall()
    finally:
        con.close()
    want = sorted(("run-new", r["entity_id"], *where(r)) for r in spoiled)
    want.append(("run-old", "e-old", None, None))
    assert got == want
    assert con_rows(wh, "SELECT run_id, snapshot_id > 0 FROM runs") == [("run-new", True)]
    with Writer(wh, wait_s=30) as w:
        current = w.snapshot_id()
    with Writer(wh, wait_s=30) as w:
        assert w.snapshot_id() == current


def test_a_lake_declares_not_null_where_the_contract_requires_a_value(tmp_path: Path, rich) -> None:
    """Required columns are NOT NULL in the catalog (what DESCRIBE and other tools show).
    A lake written before they were declared gets them, except on a table that never held
    a row (DuckLake needs statistics to prove no null), and loses one the contract no
    longer requires. A load that would break one fails in DuckDB too."""
    wh = tmp_path / "wh"

    def nullable(w: Writer, table: str) -> dict[str, bool]:
        return dict(
            w.con.execute(
                "SELECT column_name, is_nullable FROM duckdb_columns() "
                "WHERE database_name = 'lake' AND table_name = ?",
                [table],
            ).fetchall()
        )

    load_run(wh, rich[:2], "run-1")
    with Writer(wh, wait_s=30) as w:
        fresh = {t: nullable(w, t) for t in ("transactions", "entities", "quarantine")}
        assert fresh["transactions"]["amount"] is False
        assert fresh["entities"]["link_id"] is True
        assert fresh["quarantine"]["reason"] is False
        for table, column in (("transactions", "amount"), ("transactions", "txn_seq")):
            w.con.execute(f"ALTER TABLE lake.{table} ALTER COLUMN {column} DROP NOT NULL")
        w.con.execute("ALTER TABLE lake.quarantine ALTER COLUMN reason DROP NOT NULL")
        w.con.execute("ALTER TABLE lake.entities ALTER COLUMN link_id SET NOT NULL")
    with Writer(wh, wait_s=30) as w:
        assert nullable(w, "transactions") == fresh["transactions"]
        assert nullable(w, "entities") == fresh["entities"]
        assert nullable(w, "quarantine") == {**fresh["quarantine"], "reason": True}
        with pytest.raises(duckdb.ConstraintException):
            w.con.execute("INSERT INTO lake.transactions (entity_id) VALUES ('e')")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            [
                "ALTER TABLE lake.quarantine DROP COLUMN txn_seq",
                "ALTER TABLE lake.quarantine ADD COLUMN txn_seq VARCHAR",
            ],
            "quarantine.txn_seq is VARCHAR, and this version writes BIGINT",
        ),
        (
            [
                "ALTER TABLE lake.quarantine ALTER COLUMN reason DROP NOT NULL",
                "INSERT INTO lake.quarantine (run_id, quarantined_at, table_name, checks, "
                "raw_record) VALUES ('r', now()::TIMESTAMP, 't', [], '{}')",
            ],
            "quarantine.reason has nulls, and this version requires a value",
        ),
        (
            ["ALTER TABLE lake.runs DROP COLUMN kind"],
            "runs.kind is missing, and this version requires it",
        ),
    ],
    ids=["other-type", "nulls-in-a-required-column", "required-column-missing"],
)
def test_a_lake_that_cannot_be_brought_up_to_date_is_a_user_error(
    tmp_path: Path, change: list[str], problem: str
) -> None:
    wh = tmp_path / "wh"
    with Writer(wh, wait_s=30) as w:
        for statement in change:
            w.con.execute(statement)
        before = w.snapshot_id()
    with pytest.raises(WarehouseError) as caught, Writer(wh, wait_s=30):
        pass
    assert str(caught.value) == (
        f"the warehouse at {wh}/ was written by another version of bankconnect-etl: {problem}"
    )
    assert "rebuild --from-raw" in caught.value.hint
    # raised before anything changed
    assert scalar(wh, "SELECT max(snapshot_id) FROM lake.snapshots()") == before


# ---------------------------------------------------------------------- 3. a reader


def test_a_reader_during_loads_sees_only_committed_states(tmp_path: Path, rich) -> None:
    """A reader process queries in a loop while this process replaces entities, batch by
    batch, alternately with two versions that differ in each entity's transaction count.
    A committed state is "the first k batches of the load in the new version, the rest in
    the old": an entity with neither count (half replaced), missing (deleted, not yet
    inserted) or a batch half applied is a state no transaction committed."""
    wh = tmp_path / "wh"
    data = rich[:6]
    size = 2  # entities per batch: 3 batches per load
    version_a = data  # up to 40 transactions each; B has a third of them
    version_b = [with_transactions(r, txn_count(r) // 3) for r in data]
    per_entity = "SELECT entity_id, count(*) FROM lake.transactions GROUP BY ALL"
    with Writer(wh) as w:
        load(w, version_b, "b", size)
        count_b = dict(w.con.sql(per_entity).fetchall())  # type: ignore[union-attr]
        load(w, version_a, "a", size)
        count_a = dict(w.con.sql(per_entity).fetchall())  # type: ignore[union-attr]
    ids = [r["entity_id"] for r in data]
    assert set(count_a) == set(count_b) == set(ids)
    assert all(count_a[e] != count_b[e] for e in ids)

    # Loads alternate B, A in the same batches: every committed state is "the first k
    # batches in the new version, the rest in the old". Anything else (an entity with
    # neither count, absent, or one batch half applied) was never committed.
    batches = [ids[i : i + size] for i in range(0, len(ids), size)]

    def state(first_k: int, new: dict, old: dict) -> tuple:
        done = {e for b in batches[:first_k] for e in b}
        return tuple((new if e in done else old)[e] for e in ids)

    committed = {
        state(k, new, old)
        for k in range(len(batches) + 1)
        for new, old in ((count_a, count_b), (count_b, count_a))
    }
    totals = {sum(s) for s in committed}

    def observed() -> list[dict]:
        lines = out.read_text().splitlines() if out.exists() else []
        return [json.loads(line) for line in lines if line.endswith("}")]

    def state_of(o: dict) -> tuple:
        return tuple(o["per_entity"].get(e, 0) for e in ids)

    out, stop = tmp_path / "observed.jsonl", tmp_path / "stop"
    reader = helper("read", str(wh), str(out), str(stop))
    try:
        read_line(reader, "ready")
        with Writer(wh) as w:
            # B, A, B, ... until the reader has seen a load in progress (at most 6 loads)
            for n in range(6):
                load(w, version_b if n % 2 == 0 else version_a, f"load-{n}", size)
                if n >= 1 and len({state_of(o) for o in observed()}) >= 3:
                    break
        time.sleep(0.3)
    finally:
        stop.touch()
        _, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, f"the reader failed: {err[-3000:]}"

    seen = set()
    for o in observed():
        got = state_of(o)
        assert got in committed, f"uncommitted state {got}; committed states: {committed}"
        assert o["distinct"] == len(ids) and o["total"] in totals, o
        seen.add(got)
    slowest = max(max(o["seconds"]) for o in observed())
    assert slowest < 5, f"a reader query waited {slowest:.1f} s"
    assert len(seen) >= 3, f"the reader saw no load in progress ({len(observed())} queries)"


# ---------------------------------------------------------------------- 4. kill -9


def test_a_load_killed_mid_way_then_rerun_equals_a_clean_run(
    tmp_path: Path, records, caplog
) -> None:
    clean = tmp_path / "clean"
    load_run(clean, records, "clean", batch_size=len(records))

    wh = tmp_path / "wh"
    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps({"loads": [{"records": records, "run_id": "killed", "batch_size": 1}]})
    )
    proc = helper("load", str(wh), str(plan), start_new_session=True)
    try:
        read_line(proc, "committed 2")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the loader and any worker it started
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    loaded = scalar(wh, "SELECT count(*) FROM entities")
    assert 2 <= loaded < len(records), "the kill did not land mid-load"
    assert json.loads((wh / "writer.json").read_text())["pid"] == proc.pid  # left behind

    caplog.set_level(logging.WARNING, logger="bankconnect_etl.warehouse")
    t0 = time.monotonic()
    with Writer(wh, wait_s=0) as w:  # a lock still held would raise WarehouseBusyError
        assert time.monotonic() - t0 < 5
        assert "waiting for the warehouse writer lock" not in caplog.text
        load(w, records, "rerun", batch_size=4)
    assert_same_tables(table_rows(wh), table_rows(clean))
    assert not duplicate_keys(wh)


# ---------------------------------------------------------------------- 5. two writers


def test_a_second_writer_waits_then_succeeds_or_gives_up_naming_the_holder(
    tmp_path: Path, caplog
) -> None:
    wh = tmp_path / "wh"
    caplog.set_level(logging.WARNING, logger="bankconnect_etl.warehouse")

    holder = helper("hold", str(wh), stdin=subprocess.PIPE)
    try:
        read_line(holder, "held")
        threading.Timer(1.5, release, [holder]).start()  # A finishes while B waits
        t0 = time.monotonic()
        with Writer(wh, wait_s=30, run_id="b") as w:
            waited = time.monotonic() - t0
            assert w.snapshot_id() >= 0
            assert json.loads((wh / "writer.json").read_text())["pid"] == os.getpid()
        holder.wait(timeout=30)
    finally:
        holder.kill()
        holder.communicate(timeout=30)
    assert 1.0 <= waited < 20
    assert "waiting for the warehouse writer lock" in caplog.text
    assert f"pid {holder.pid} " in caplog.text and "holder-run" in caplog.text

    holder = helper("hold", str(wh), stdin=subprocess.PIPE)
    try:
        read_line(holder, "held")
        t0 = time.monotonic()
        with pytest.raises(WarehouseBusyError) as busy:
            Writer(wh, wait_s=0.5, run_id="c").__enter__()
        assert 0.5 <= time.monotonic() - t0 < 10
    finally:
        holder.kill()
        holder.communicate(timeout=30)
    message = str(busy.value)
    assert "\n" not in message
    assert f"pid {holder.pid} " in message and "holder-run" in message


def test_a_sync_that_waited_for_the_writer_lists_the_entities_again(
    tmp_path: Path, make_sandbox
) -> None:
    """A sync lists the entities while it opens the warehouse. When another writer kept it
    waiting, that listing is stale: the entities created meanwhile are in the run all the
    same, because it lists again once it holds the lock."""
    api = make_sandbox(entities=3, processing_polls=0)
    wh = tmp_path / "wh"
    s = settings(
        base_url=api.base,
        api_key=SANDBOX_API_KEY,
        server_hash=SANDBOX_SERVER_HASH,
        warehouse=wh,
        writer_wait_s=60,
        **FAST,
    )
    done: dict[str, pipeline.RunResult] = {}
    holder = helper("hold", str(wh), stdin=subprocess.PIPE)
    try:
        read_line(holder, "held")
        with BankConnectClient(s) as client:
            sync = threading.Thread(
                target=lambda: done.update(run=run_sync(s, client=client)), daemon=True
            )
            sync.start()
            deadline = time.monotonic() + 30
            while client.metrics.snapshot().total_requests < 1:  # the first listing's page
                assert time.monotonic() < deadline, "the sync never listed the entities"
                time.sleep(0.02)
            time.sleep(0.3)  # its answer read: that listing has the three entities
            late = api.post("/entity/", json={"link_id": "LATE"}).json()["entity_id"]
            release(holder)
            sync.join(timeout=120)
        holder.wait(timeout=30)
    finally:
        holder.kill()
        holder.communicate(timeout=30)
    run = done["run"]
    assert run.status == "succeeded", run.error
    assert run.sync["seen"] == 4 and run.sync["new"] == 4
    assert late in scalar(wh, "SELECT list(entity_id) FROM entities")


# ---------------------------------------------------------------------- 6. time travel


def test_time_travel_in_python_and_the_cli_and_sql_errors_with_hints(tmp_path: Path, rich) -> None:
    wh = tmp_path / "wh"
    data = rich[:4]
    before = load_run(wh, data, "run-1")
    run_1 = table_rows(wh)
    old = len(run_1["transactions"])
    time.sleep(0.05)
    between = datetime.now(UTC)
    time.sleep(0.05)
    load_run(wh, [with_transactions(data[0], 5), *data[1:]], "run-2")  # entity 0 changed
    new = scalar(wh, "SELECT count(*) FROM transactions")
    assert new == old - txn_count(data[0]) + 5

    assert table_rows(wh, as_of=before) == run_1  # snapshot id
    assert table_rows(wh, as_of=between) == run_1  # datetime
    assert scalar(wh, "SELECT count(*) FROM transactions", as_of=between.isoformat()) == old

    query = "SELECT count(*) AS n FROM transactions"
    r = cli(
        "sql", query, "--as-of", between.isoformat(), "--format", "csv", warehouse=wh, cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["n", str(old)]
    r = cli("sql", f"{query}; SELECT 1 AS one", warehouse=wh, cwd=tmp_path)  # pinned, each shown
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["n", "-" * len(str(new)), str(new), "one", "---", "1"]

    r = cli("sql", query, "--as-of", "2001-01-01T00:00:00", warehouse=wh, cwd=tmp_path)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and r.stdout == ""
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "2001-01-01" in errors[0], r.stderr
    assert all(line.startswith(("error:", "hint:")) for line in r.stderr.splitlines())
    # a time to come: DuckLake would answer with now, as if the date had been reached
    r = cli("sql", query, "--as-of", "2999-01-01", warehouse=wh, cwd=tmp_path)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr.splitlines() == [
        "error: --as-of 2999-01-01 is in the future (UTC unless it has an offset)",
        "hint: leave --as-of out to read the warehouse as it is now",
    ]

    # DuckDB's own suggestion is the hint; a write names the read-only warehouse
    for sql, hint in (
        ("SELECT count(*) FROM transaction", 'hint: Did you mean "transactions"?'),
        ("SELECT amout FROM transactions", 'hint: Candidate bindings: "amount"'),
        ("DELETE FROM entities", "hint: the warehouse is read-only here"),
    ):
        r = cli("sql", sql, warehouse=wh, cwd=tmp_path)
        assert r.returncode == 2 and "Traceback" not in r.stderr
        first, second = r.stderr.splitlines()[-2:]
        assert first.startswith("error: sql: ") and second.startswith(hint), r.stderr


def test_compaction_merges_small_files_and_keeps_time_travel_and_the_change_feed(
    tmp_path: Path, rich
) -> None:
    wh = tmp_path / "wh"
    data = rich[:8]
    first = load_run(wh, data, "run-1", batch_size=2)  # four commits: four files a month
    run_1 = table_rows(wh)
    second = load_run(wh, [with_transactions(data[0], 5), *data[1:]], "run-2", batch_size=2)
    run_2 = table_rows(wh)
    data_dir = wh / "data" / "main"
    live = "SELECT count(*) FROM ducklake_list_files('lake', 'transactions')"
    feed = "SELECT change_type, entity_id, rowid FROM table_changes('entities', ?, ?) ORDER BY ALL"

    with Writer(wh, wait_s=30) as w:
        (files_before,) = w.con.execute(live).fetchone()
        feed_before = w.con.execute(feed, [first + 1, second]).fetchall()
        on_disk_before = set(data_dir.rglob("*.parquet"))
        kept = w.compact()  # merged away files stay on disk for two days
        (files_after,) = w.con.execute(live).fetchone()
        assert w.con.execute(feed, [first + 1, second]).fetchall() == feed_before
    assert 0 < kept.written < kept.merged and kept.deleted == 0
    assert files_after < files_before
    assert set(data_dir.rglob("*.parquet")) >= on_disk_before  # nothing deleted yet

    with Writer(wh, wait_s=30) as w:
        gone = w.compact(keep_days=0)  # now the merged-away files go
    assert gone.merged == 0 and gone.deleted == kept.merged
    assert len(set(data_dir.rglob("*.parquet"))) == len(on_disk_before) + kept.written - kept.merged

    # every snapshot still reads what it read before, from the merged files
    assert table_rows(wh) == run_2
    assert table_rows(wh, as_of=first) == run_1
    assert table_rows(wh, as_of=second) == run_2
    # run 2 replaced every entity's row: the feed the marts' refresh reads is unchanged
    assert {c for c, *_ in feed_before} == {"delete", "insert"}
    assert len({e for _, e, _ in feed_before}) == len(data)


def test_compaction_leaves_files_at_or_above_the_bound_as_they_are(tmp_path: Path, rich) -> None:
    """A run's compaction rewrites its new small files, not the lake's older big ones
    (unbounded, every run rewrote whole partitions)."""
    wh = tmp_path / "wh"
    live = "SELECT data_file, data_file_size_bytes FROM ducklake_list_files('lake', ?)"
    load_run(wh, rich[:4], "run-1", batch_size=2)
    with Writer(wh, wait_s=30) as w:
        w.compact()
        tables = ("transactions", "entities")
        before = {t: dict(w.con.execute(live, [t]).fetchall()) for t in tables}
    bound = min(size for files in before.values() for size in files.values())
    load_run(wh, rich[4:8], "run-2", batch_size=2)  # new entities: two commits, new files
    rows = table_rows(wh)
    with Writer(wh, wait_s=30) as w:
        bounded = w.compact(max_file_bytes=bound)
        after = {t: dict(w.con.execute(live, [t]).fetchall()) for t in before}
        default = w.compact()  # the 8 MB bound: these files are all far smaller
        final = {t: dict(w.con.execute(live, [t]).fetchall()) for t in before}
    for table, files in before.items():
        assert set(files) <= set(after[table]), f"{table}: a file over the bound was rewritten"
        assert set(files) - set(final[table]), f"{table}: the default bound merged none of them"
    # the two commits' small entities files were merged with each other, the big one kept
    assert len(after["entities"]) == 2 and bounded.merged >= 2
    assert default.merged > 0
    assert table_rows(wh) == rows


def test_a_failed_compaction_is_logged_and_the_run_still_succeeds(
    tmp_path: Path, monkeypatch, caplog
) -> None:
    def full_disk(self: Writer, **_: object) -> None:
        raise duckdb.IOException("No space left on device")

    monkeypatch.setattr(Writer, "compact", full_disk)
    common = {"api_key": SANDBOX_API_KEY, "server_hash": SANDBOX_SERVER_HASH}
    with start_in_thread(SandboxConfig(entities=4, seed=3, processing_polls=0)) as sb:
        s = settings(base_url=sb.base_url, warehouse=tmp_path / "wh", **common, **FAST)
        with caplog.at_level(logging.WARNING, logger="bankconnect_etl.pipeline"):
            run = run_sync(s)
    assert run.status == "succeeded", run.error
    assert scalar(tmp_path / "wh", "SELECT count(*) FROM entities") == 4
    assert scalar(tmp_path / "wh", "SELECT count(*) FROM entity_credit_summary") == 4
    skipped = [r.getMessage() for r in caplog.records if "compaction" in r.getMessage()]
    assert skipped == ["compaction skipped: No space left on device"]


# ---------------------------------------------------------------------- 7. raw zone


def test_the_raw_zone_rebuilds_the_same_tables(synced, tmp_path: Path, monkeypatch) -> None:
    wh: Path = synced["warehouse"]
    run = synced["run"]
    day = datetime.strptime(run.run_id.split("-")[1][:8], "%Y%m%d").date().isoformat()
    parts = sorted((wh / "raw").glob("*/*/part-*.jsonl.gz"))
    assert {p.parent.relative_to(wh / "raw").as_posix() for p in parts} == {f"{day}/{run.run_id}"}
    assert len(parts) == -(-(synced["entities"] + 1) // 4)  # entities + health, 4 a part
    assert not (wh / "raw" / "2001-01-01").exists(), "retention kept a 2001 raw folder"
    lines = [r for p in parts for r in raw.read_part(p)]
    assert len(lines) == synced["entities"] + 1
    assert sum(1 for r in lines if r.get("kind") == "bank_health") == 1

    fresh = tmp_path / "rebuilt"
    shutil.copytree(wh / "raw", fresh / "raw")
    # parts joined into batches (of 2 here: 3 parts), the second validated in a worker
    monkeypatch.setattr(pipeline, "REBUILD_PARTS_PER_BATCH", 2)
    assert len(parts) == 3
    result = rebuild_from_raw(settings(warehouse=fresh, transform_workers=1))
    assert result.status == "succeeded", result.error
    assert_same_tables(table_rows(fresh), table_rows(wh))
    assert not duplicate_keys(fresh)
    loaded = result.stats.entities
    assert loaded["complete"] + loaded["empty"] == synced["entities"]  # each entity once
    assert summary_lines(result)[1:3] == [  # what it did, not a sync's "0 seen"
        "entities: replayed from 1 archived run",
        f"loaded: {loaded['complete']} complete, {loaded['empty']} empty, 0 pending, 0 failed",
    ]


def test_rebuilding_a_warehouse_in_place_changes_nothing(synced, tmp_path: Path) -> None:
    """`bankconnect-etl rebuild --from-raw` replays <warehouse>/raw into that same warehouse,
    which already holds those runs' rows."""
    wh = tmp_path / "warehouse"
    shutil.copytree(synced["warehouse"] / "raw", wh / "raw")
    assert rebuild_from_raw(settings(warehouse=wh, transform_workers=0)).status == "succeeded"
    before = table_rows(wh)
    again = rebuild_from_raw(settings(warehouse=wh, transform_workers=0))
    assert again.status == "succeeded"
    assert not duplicate_keys(wh)
    assert_same_tables(table_rows(wh), before)
    assert summary_lines(again)[1] == "entities: replayed from 1 archived run"  # not its own


def test_batches_sent_to_a_worker_are_archived_whole_and_load_the_same_rows(
    records: list[dict], tmp_path: Path
) -> None:
    """With a transform worker, each batch travels as JSON lines and the worker writes its
    raw part: every part holds its batch's records, in order, as the API sent them, and
    the tables are the ones a load in this process gives."""
    here, there = tmp_path / "here", tmp_path / "there"
    load_run(here, records, "run-here", batch_size=5)
    archive = raw.RawWriter(there / "raw", "run-there", datetime(2026, 3, 1, tzinfo=UTC))
    with Writer(there, wait_s=30) as w:
        w.start_run("run-there", "test", {}, datetime.now(UTC))
        load_records(w, records, run_id="run-there", batch_size=5, archive=archive, workers=1)
        w.finish_run("run-there", status="succeeded", counts={})
    parts = raw.parts(archive.folder)
    assert [p.name for p in parts] == [f"part-0000{i}.jsonl.gz" for i in (1, 2, 3)]
    assert [list(raw.read_part(p)) for p in parts] == [records[0:5], records[5:10], records[10:]]
    assert not list(archive.folder.glob("*.tmp"))
    assert_same_tables(table_rows(there), table_rows(here))


def test_a_rebuild_batch_joins_parts_of_one_run_only(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    for run, n in (("run-a", 7), ("run-b", 3)):
        writer = raw.RawWriter(root, run, datetime(2026, 3, 1, tzinfo=UTC))
        for i in range(n):
            writer.write([{"entity_id": f"{run}-{i}"}])
    groups = list(raw.part_groups(raw.runs(root), 5))
    assert [len(g) for g in groups] == [5, 2, 3]
    assert [{Path(p).parent.name for p in g} for g in groups] == [{"run-a"}, {"run-a"}, {"run-b"}]
    replayed = [r["entity_id"] for g in groups for p in g for r in raw.read_part(Path(p))]
    assert replayed == [f"run-a-{i}" for i in range(7)] + [f"run-b-{i}" for i in range(3)]


def test_raw_retention_deletes_day_folders_older_than_n_days(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    days = ["2026-02-27", "2026-02-28", "2026-03-01", "2026-03-31"]
    for d in days:
        writer = raw.RawWriter(root, f"nightly-{d}", datetime.fromisoformat(d + "T02:00:00+00:00"))
        writer.write([{"entity_id": "e"}])
    (root / "notes").mkdir()
    (root / "2026-01-01").write_text("a file, not a day folder")

    assert raw.prune(root, 0, today=date(2026, 3, 31)) == []  # 0 keeps everything
    gone = raw.prune(root, 30, today=date(2026, 3, 31))
    assert gone == [root / "2026-02-27", root / "2026-02-28"]
    left = sorted(p.name for p in root.iterdir())
    assert left == ["2026-01-01", "2026-03-01", "2026-03-31", "notes"]
    assert [r.name for r in raw.runs(root)] == ["nightly-2026-03-01", "nightly-2026-03-31"]


# ---------------------------------------------------------------------- 8. secrets


def test_no_secret_reaches_any_file_of_the_warehouse(synced) -> None:
    wh: Path = synced["warehouse"]
    found = synced["secrets"]
    assert any(k.startswith("pdf password") for k in found), "no statement had a password"
    assert scalar(wh, "SELECT count(*) FILTER (has_password) FROM statement_files") >= 1

    leaks = []
    for path in sorted(p for p in wh.rglob("*") if p.is_file()):
        texts = [path.read_bytes()]
        if path.name.endswith(".gz"):
            texts.append(gzip.decompress(texts[0]))
        if path.suffix == ".parquet":  # compressed pages: look at the values too
            texts.append(str(pq.read_table(path).to_pylist()).encode())
        for name, secret in found.items():
            if any(secret.encode() in t for t in texts):
                leaks.append(f"{name} in {path.relative_to(wh)}")
    assert not leaks, leaks

    con = connect(wh)
    try:
        (params,) = con.sql("SELECT params::VARCHAR FROM runs").fetchall()[0]
    finally:
        con.close()
    assert json.loads(params)["settings"]["batch_size"] == 4  # the params were recorded
    assert not [n for n, s in found.items() if s in params]


# ---------------------------------------------------------------------- 9. pending


def test_entities_the_api_did_not_answer_fail_the_run_and_the_rest_stays(tmp_path: Path) -> None:
    """The API out of reach for one entity's transactions, every retry spent (the sandbox
    stopped mid-run, a network outage): its neighbours load, and the run fails, so the
    nightly's monitoring sees it; the next run fetches it again."""
    from bankconnect_etl.errors import TransportError
    from tests.conftest import Api

    wh = tmp_path / "wh"
    common = {"api_key": SANDBOX_API_KEY, "server_hash": SANDBOX_SERVER_HASH, "warehouse": wh}
    common |= {"raw_enabled": False, "transform_workers": 0}
    with start_in_thread(SandboxConfig(entities=5, seed=3, processing_polls=0)) as sb:
        s = settings(base_url=sb.base_url, **common, **FAST)
        victim = sorted(Api(sb).entity_ids())[0]

        class OutOfReach(BankConnectClient):
            def analysis(self, entity_id: str, endpoint: str) -> dict:
                if entity_id == victim and endpoint == "transactions":
                    raise TransportError(
                        "transactions: connection refused", endpoint=endpoint, attempts=6
                    )
                return super().analysis(entity_id, endpoint)

        with OutOfReach(s) as client:
            run = run_sync(s, client=client)
        assert run.status == "failed"
        assert run.error is not None and run.error.startswith(
            "1 entity could not be fetched, the API out of reach after every retry"
        )
        assert run.sync["unreachable"] == 1 and run.stats.entities["failed"] == 1
        loaded = scalar(wh, "SELECT count(*) FROM entities WHERE sync_status <> 'failed'")
        assert loaded == 4
        assert scalar(wh, "SELECT status FROM runs") == "failed"

        again = run_sync(s)  # the API back: only the failed entity is fetched
    assert again.status == "succeeded" and again.sync["retried"] == 1
    assert scalar(wh, "SELECT count(*) FROM entities WHERE sync_status = 'failed'") == 0


def test_a_run_that_stops_on_a_load_error_stops_fetching_before_it_is_recorded(
    tmp_path: Path,
) -> None:
    """The load fails on its second batch (a full disk, say): the fetch thread and its
    requests end with the run, not whenever the failed run's generator is collected, and
    the API hears nothing more."""
    common = {"api_key": SANDBOX_API_KEY, "server_hash": SANDBOX_SERVER_HASH}
    common |= {"warehouse": tmp_path / "wh", "raw_enabled": False, "batch_size": 50}
    with start_in_thread(SandboxConfig(entities=1000, seed=3, processing_polls=1)) as sb:
        s = settings(base_url=sb.base_url, **common, **FAST)
        batches: list[str] = []

        def load(w: Writer, batch, message: str) -> None:  # type: ignore[no-untyped-def]
            batches.append(message)
            if len(batches) == 2:
                raise OSError(28, "No space left on device")
            w.load(batch, message=message)

        with BankConnectClient(s) as client, pytest.raises(OSError, match="No space") as err:
            run_sync(s, client=client, load=load)  # `err` keeps the run's frames alive
        fetching = [t.name for t in threading.enumerate() if t.name.startswith("fetch")]
        sent = client.metrics.snapshot().total_requests
        time.sleep(0.5)
        assert client.metrics.snapshot().total_requests == sent
    assert fetching == [] and err.value.errno == 28
    assert sent < 1000 * (5 * 2 + 2) / 2  # well short of all: 5 endpoints polled twice, 2 not
    runs = scalar(tmp_path / "wh", "SELECT status || ': ' || error FROM runs")
    assert runs == "failed: [Errno 28] No space left on device"


def test_a_pending_entity_keeps_its_rows(tmp_path: Path) -> None:
    wh = tmp_path / "wh"
    common = {"api_key": SANDBOX_API_KEY, "server_hash": SANDBOX_SERVER_HASH, "warehouse": wh}
    common |= {"raw_enabled": False, "transform_workers": 0}
    world = {"entities": 5, "seed": 3}
    with start_in_thread(SandboxConfig(**world, processing_polls=0)) as sb:
        first = run_sync(settings(base_url=sb.base_url, **common, **FAST))
    assert first.status == "succeeded" and first.stats.entities["complete"] >= 3
    before = table_rows(wh)
    con = connect(wh)
    entities_before = {r[0]: r for r in con.sql("FROM entities").fetchall()}
    con.close()

    # The same world, but processing never finishes within the deadline.
    slow = FAST | {"poll_initial_s": 0.05, "poll_deadline_s": 0.5}
    with start_in_thread(SandboxConfig(**world, processing_polls=1000)) as sb:
        second = run_sync(settings(base_url=sb.base_url, **common, **slow))
    assert second.status == "succeeded" and second.stats.entities["pending"] >= 3

    after = table_rows(wh)
    for table in ENTITY_TABLES:
        if table != "entities":
            assert after[table] == before[table], table
    con = connect(wh)
    rows = con.sql(
        "SELECT entity_id, sync_status, last_synced_at, last_attempt_at, pending_endpoints,"
        " run_id FROM entities WHERE sync_status = 'pending'"
    ).fetchall()
    con.close()
    assert len(rows) == second.stats.entities["pending"]
    cols = list(TABLES["entities"].columns)
    for entity_id, _status, synced_at, attempt_at, pending, run_id in rows:
        old = dict(zip(cols, entities_before[entity_id], strict=True))
        assert old["sync_status"] == "complete"
        assert synced_at == old["last_synced_at"]
        assert attempt_at > old["last_attempt_at"]
        assert pending and run_id == second.run_id


# ---------------------------------------------------------------------- an idle reader


def test_an_idle_shell_does_not_block_the_writer(tmp_path: Path, rich) -> None:
    """Someone has `bankconnect-etl shell` open at its prompt while the nightly run loads."""
    wh = tmp_path / "wh"
    load_run(wh, rich[:2], "run-1")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANKCONNECT_")}
    shell = subprocess.Popen(
        [COMMAND, "shell", "--warehouse", str(wh)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    try:
        read_line(shell, "warehouse ", stream="stderr")  # its banner: connected, reading
        t0 = time.monotonic()
        try:
            load_run(wh, rich[2:4], "run-2")
            error = None
        except duckdb.Error as exc:
            error = str(exc).splitlines()[-1]
        took = time.monotonic() - t0
    finally:
        shell.communicate(".quit\n", timeout=30)
    assert error is None, f"the writer failed after {took:.1f} s: {error}"
    assert took < 10
    assert scalar(wh, "SELECT count(DISTINCT entity_id) FROM transactions") == 4


def test_a_script_piped_into_the_shell_runs_every_statement_and_fails_if_one_did(
    synced, tmp_path: Path
) -> None:
    """`bankconnect-etl shell < checks.sql`, as a cron job or a colleague's check script runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANKCONNECT_")}
    command = [COMMAND, "shell", "--warehouse", str(synced["warehouse"])]

    def shell(script: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command, input=script, capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env
        )

    good = shell("SELECT count(*) AS entity_rows\nFROM entities;\nSELECT 'no semicolon' AS tail")
    assert good.returncode == 0
    assert good.stderr.startswith("warehouse ") and len(good.stderr.splitlines()) == 1
    assert good.stdout.split() == [
        "entity_rows",
        "-----------",
        str(synced["entities"]),
        "tail",
        "------------",
        "no",
        "semicolon",
    ]  # no prompts

    bad = shell("SELECT nosuch FROM entities;\n.schema\nSELECT 'still ran' AS after;\n")
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr
    errors = [line for line in bad.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2 and "nosuch" in errors[0] and ".schema" in errors[1]
    assert "still ran" in bad.stdout


# ---------------------------------------------------------------------- Ctrl-C inside DuckDB


@ends_if_hung
@pytest.mark.parametrize("where", ["in a transaction", "between transactions"])
def test_ctrl_c_inside_a_writer_statement_records_the_run_interrupted(
    tmp_path: Path, rich, where: str
) -> None:
    """SIGINT that lands in a DuckDB statement of the writer (a batch's COMMIT, a mart
    refresh) arrives as DuckDB's RuntimeError, and DuckDB may leave the statement running:
    the rollback and the run's own row must not wait for it."""
    s = settings(warehouse=tmp_path / "wh")
    with (
        pytest.raises(KeyboardInterrupt),  # itself, not DuckDB's RuntimeError
        pipeline.recorded_run(s, "nightly", {}) as (w, run),
    ):
        load(w, rich[:3], run.run_id, batch_size=3)
        with ctrl_c_in(0.5):
            if where == "in a transaction":
                with w._commit(f"{run.run_id} batch 2"):
                    w.con.execute(ENDLESS_QUERY).fetchall()
            else:
                w.con.execute(ENDLESS_QUERY).fetchall()
    assert (run.status, run.error) == ("interrupted", "interrupted (Ctrl-C)")
    con = connect(s.warehouse)
    try:
        assert con.execute("SELECT status, error FROM runs").fetchall() == [
            ("interrupted", "interrupted (Ctrl-C)")
        ]
        assert con.execute("SELECT count(*) FROM entities").fetchone() == (3,)
    finally:
        con.close()
    load_run(s.warehouse, rich[3:5], "next")  # the writer lock was let go, the lake is whole


@ends_if_hung
def test_ctrl_c_during_a_sql_query_exits_130_with_one_line(synced, tmp_path: Path) -> None:
    import psutil

    env = {k: v for k, v in os.environ.items() if not k.startswith("BANKCONNECT_")}
    proc = subprocess.Popen(
        [COMMAND, "sql", ENDLESS_QUERY, "--warehouse", str(synced["warehouse"])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        watched, deadline = psutil.Process(proc.pid), time.monotonic() + 30
        while watched.cpu_times().user < 3:  # imports take about 1 s: the query is running
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)  # not left waiting for the query at close
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (proc.returncode, out, err) == (130, "", "interrupted\n")


# ---------------------------------------------------------------------- its path


def test_the_warehouse_opens_by_any_path_to_its_folder(tmp_path: Path, monkeypatch, rich) -> None:
    """Created as ./warehouse (the default BANKCONNECT_WAREHOUSE), then read by its absolute
    path, and after being moved (a restore from backup, a new disk)."""
    monkeypatch.chdir(tmp_path)
    load_run(Path("warehouse"), rich[:1], "run-1")
    n = scalar(Path("warehouse"), "SELECT count(*) FROM transactions")
    assert scalar(tmp_path / "warehouse", "SELECT count(*) FROM transactions") == n
    moved = tmp_path / "restored" / "warehouse"
    shutil.move(tmp_path / "warehouse", moved)
    assert scalar(moved, "SELECT count(*) FROM transactions") == n
    load_run(moved, rich[1:2], "run-2")
    assert scalar(moved, "SELECT count(DISTINCT entity_id) FROM transactions") == 2


def test_a_damaged_catalog_is_named_for_readers_and_the_writer(tmp_path: Path) -> None:
    wh = tmp_path / "wh"
    wh.mkdir()
    (wh / "catalog.sqlite").write_text("not a catalog at all, " * 100)
    for open_it in (lambda: connect(wh), lambda: Writer(wh, wait_s=5).__enter__()):
        with pytest.raises(WarehouseError) as caught:
            open_it()
        assert str(caught.value) == (
            f"{wh / 'catalog.sqlite'} is not a SQLite database: the warehouse's catalog is damaged"
        )
        assert "rebuild --from-raw" in caught.value.hint


def test_a_warehouse_path_under_a_file_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(WarehouseError) as err, Writer(tmp_path / "file" / "wh"):
        pass
    assert "cannot create the warehouse at" in str(err.value)
    assert "BANKCONNECT_WAREHOUSE" in (err.value.hint or "")


def test_a_pinned_connection_keeps_its_snapshot_while_a_sync_commits(tmp_path: Path) -> None:
    """A DuckDB transaction does not hold the lake's snapshot (a commit shows up part-way
    through it); ``connect(pin=True)``, which the report uses, does."""
    from bankconnect_etl.upstream import upstream

    settings = Settings.load(
        _env_file=None, warehouse=tmp_path / "wh", sandbox_entities=3, raw_enabled=False
    )
    with upstream(settings, announce=False) as live:
        assert run_sync(live).status == "succeeded"
        pinned = connect(settings.warehouse, pin=True)
        live_con = connect(settings.warehouse)
        try:
            query = "SELECT (SELECT id FROM lake.current_snapshot()), count(*) FROM runs"
            before = pinned.execute(query).fetchone()
            assert before == live_con.execute(query).fetchone()
            assert run_sync(live).status == "succeeded"  # one more row in runs
            assert pinned.execute(query).fetchone() == before
            snapshot, runs = live_con.execute(query).fetchone()
            assert snapshot > before[0] and runs == before[1] + 1
        finally:
            pinned.close()
            live_con.close()


def test_a_run_whose_process_died_is_marked_failed_by_the_next_run(tmp_path: Path) -> None:
    wh = tmp_path / "wh"
    started = datetime(2026, 11, 21, 2, 0)
    with Writer(wh, run_id="nightly-killed") as w:
        w.start_run("nightly-killed", "nightly", {}, started)  # and never finished: kill -9
    with Writer(wh, run_id="nightly-next") as w:
        w.start_run("nightly-next", "nightly", {}, started)
        w.finish_run("nightly-next", status="succeeded", counts={})
    con = connect(wh)
    try:
        rows = con.execute(
            "SELECT run_id, status, finished_at IS NULL, error, snapshot_id FROM runs "
            "ORDER BY run_id"
        ).fetchall()
        last = con.execute("SELECT id FROM lake.current_snapshot()").fetchone()[0]
    finally:
        con.close()
    assert rows == [
        (
            "nightly-killed",
            "failed",
            True,
            "its process stopped before the run ended (killed or crashed); found by nightly-next",
            None,  # it never ended
        ),
        ("nightly-next", "succeeded", False, None, last),
    ]


# ---------------------------------------------------------------------- a read-only warehouse


@pytest.fixture(scope="module")
def sandbox_synced(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A warehouse of 3 sandbox entities, raw zone on, as a finished nightly run leaves it,
    and one of its entity ids. Its catalog was last closed by a writer, so SQLite removed
    the catalog's -wal and -shm files (a reader leaves them: it may not checkpoint)."""
    from bankconnect_etl.upstream import upstream

    wh = tmp_path_factory.mktemp("sandbox-synced") / "wh"
    with upstream(settings(warehouse=wh, sandbox_entities=3), announce=False) as live:
        assert run_sync(live).status == "succeeded"
    entity = str(scalar(wh, "SELECT min(entity_id) FROM entities"))
    db = sqlite3.connect(wh / "catalog.sqlite")  # closed as the writer closes it
    db.execute("SELECT count(*) FROM ducklake_snapshot").fetchall()
    db.close()
    assert not list(wh.glob("catalog.sqlite-*"))
    return wh, entity


def test_a_backfill_of_an_id_cut_short_names_the_whole_id_in_its_hint(
    sandbox_synced: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo and the report show ids by their first 8 characters; a backfill fetches
    only ids given whole, and says which one was meant."""
    from bankconnect_etl.cli import EXIT_USAGE, main

    wh, entity = tmp_path / "wh", sandbox_synced[1]
    shutil.copytree(sandbox_synced[0], wh)  # a reader leaves the catalog's -shm file
    for given, hint in (
        (entity[:8], f"the one entity id in the warehouse that starts so: --entity-id {entity}"),
        (
            entity[:8].upper(),
            f"the one entity id in the warehouse that starts so: --entity-id {entity}",
        ),
        (
            "zz",
            "copy it from the warehouse: "
            'bankconnect-etl sql "SELECT entity_id, link_id FROM entities"',
        ),
    ):
        assert main(["backfill", "--entity-id", given, "--warehouse", str(wh)]) == EXIT_USAGE
        assert capsys.readouterr().err.splitlines() == [
            f"error: entity id {given!r} is not one: BankConnect's entity ids are UUIDs",
            f"hint: {hint}",
        ]


def files(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


@pytest.mark.parametrize("how", READ_ONLY_WAYS)
def test_a_read_only_warehouse_is_read_by_sql_shell_report_and_a_dry_run(
    sandbox_synced: tuple[Path, str], tmp_path: Path, how: str
) -> None:
    """Analysts read a shared warehouse on a read-only mount, or one they may not write.
    SQLite cannot open a WAL-mode catalog there (it cannot create the -shm file), which
    readers once took for a warehouse with no tables."""
    from tests.conftest import read_only_folder

    wh, entity = tmp_path / "wh", sandbox_synced[1]
    shutil.copytree(sandbox_synced[0], wh)
    assert not (wh / "catalog.sqlite-shm").exists()  # SQLite cannot create it read-only
    before = files(wh)
    with read_only_folder(wh, how) as ro:
        sql = ro.cli("sql", "SELECT count(*) AS n FROM entities")
        assert (sql.returncode, sql.stderr) == (0, "")
        assert sql.stdout.split() == ["n", "-", "3"]

        shell = ro.cli("shell", stdin="SELECT count(*) AS n FROM entities;\n")
        assert shell.returncode == 0, shell.stderr
        assert shell.stdout.split() == ["n", "-", "3"]

        out = tmp_path / "report.html"
        report = ro.cli("report", entity, "--out", str(out))
        assert report.returncode == 0, report.stderr
        assert entity in out.read_text()

        plan = ro.cli("backfill", "--all", "--dry-run")
        assert plan.returncode == 0, plan.stderr
        rows = [line.split() for line in plan.stdout.splitlines() if line.count("-") == 4]
        assert len(rows) == 3 and all(row[-1] != "new" for row in rows), plan.stdout
    assert files(wh) == before
    assert not list(Path(tempfile.gettempdir()).glob("bankconnect-etl-catalog-*"))


@pytest.mark.parametrize("how", READ_ONLY_WAYS)
def test_writing_a_read_only_warehouse_is_a_one_line_error_with_a_hint(
    sandbox_synced: tuple[Path, str], tmp_path: Path, how: str
) -> None:
    from tests.conftest import read_only_folder

    wh = tmp_path / "wh"
    shutil.copytree(sandbox_synced[0], wh)
    before = files(wh)
    with read_only_folder(wh, how) as ro:
        why = (
            "is on a read-only file system"
            if how == "mount"
            else f"is read-only for this user (no write permission on {ro.path})"
        )
        for command in (["nightly"], ["rebuild", "--from-raw"], ["refresh"]):
            r = ro.cli(*command)
            assert r.returncode == 2, (command, r.stderr[-2000:])
            assert "Traceback" not in r.stderr
            lines = [ln for ln in r.stderr.splitlines() if ln.startswith(("error: ", "hint: "))]
            assert lines[0] == f"error: the warehouse at {ro.path}/ {why}, so it cannot be written"
            assert lines[1].startswith("hint: readers (sql, report, shell) can still read it")
    assert files(wh) == before
