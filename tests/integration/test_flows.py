"""The Prefect flows and the sync commands, end to end against the sandbox.

Prefect runs in ephemeral mode here (no server): a temporary API in this process, its
database under a temporary PREFECT_HOME. The sandbox answers with statements already
processed (``processing_polls=0``), so every request a run makes can be counted exactly:
listing pages, one accounts request per unchanged entity, eight requests per fetched one
(entity, six analysis endpoints, get_pdfs), one net_banking_health.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

# Before Prefect loads: a private home for the ephemeral server (removed at exit: its
# database is about 5 MB a session), no telemetry.
if "PREFECT_HOME" not in os.environ:
    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="bankconnect-prefect-")
    atexit.register(shutil.rmtree, os.environ["PREFECT_HOME"], ignore_errors=True)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")  # no "Stopping temporary server" at exit

import pytest
import requests
import yaml
from bankconnect_etl.schemas.tables import TABLES

from bankconnect_etl.config import Settings
from bankconnect_etl.pipeline import run_sync
from bankconnect_etl.sandbox import (
    SANDBOX_API_KEY,
    SANDBOX_SERVER_HASH,
    SandboxConfig,
    start_in_thread,
)
from bankconnect_etl.warehouse import connect
from tests.conftest import COMMAND

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PER_ENTITY = 8  # entity, accounts, identity, transactions, salary, recurring, lender, get_pdfs
# Columns that say when or by which run a row was written, not what the API said; and
# pdf_url, which the API blanks 30 days after upload (the sandbox's advance moves 30 days):
# an unchanged entity is not fetched again, so it keeps the link it was fetched with.
WHEN = {"run_id", "first_seen_at", "last_attempt_at", "last_synced_at", "quarantined_at", "pdf_url"}
FAST = {
    "BANKCONNECT_POLL_INITIAL_S": "0.02",
    "BANKCONNECT_POLL_MAX_S": "0.1",
    "BANKCONNECT_BACKOFF_BASE_S": "0.01",
    "BANKCONNECT_BACKOFF_CAP_S": "0.1",
    "BANKCONNECT_TRANSFORM_WORKERS": "0",
}


# ---------------------------------------------------------------------- helpers


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator:
    """A sandbox of 25 entities (every edge case once), and the environment pointing at it."""
    with start_in_thread(SandboxConfig(entities=25, seed=5, processing_polls=0)) as sb:
        env = {
            "BANKCONNECT_BASE_URL": sb.base_url,
            "BANKCONNECT_API_KEY": SANDBOX_API_KEY,
            "BANKCONNECT_SERVER_HASH": SANDBOX_SERVER_HASH,
            "BANKCONNECT_WAREHOUSE": str(tmp_path / "wh"),
            "BANKCONNECT_BATCH_SIZE": "7",
            **FAST,
        }
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        yield sb


def advance(sb, new_entities: int, new_statements: int) -> dict:  # type: ignore[no-untyped-def]
    r = requests.post(
        f"{sb.url}/sandbox/advance",
        params={"new_entities": new_entities, "new_statements": new_statements},
        timeout=30,
    )
    r.raise_for_status()
    return r.json()


def listing(sb, link_id: str | None = None) -> list[dict]:  # type: ignore[no-untyped-def]
    out, page = [], 1
    while True:
        body = requests.get(
            f"{sb.base_url}/entity/",
            params={"page": page, **({"link_id": link_id} if link_id else {})},
            headers={"x-api-key": SANDBOX_API_KEY, "server-hash": SANDBOX_SERVER_HASH},
            timeout=30,
        ).json()
        out += body["results"]
        if not body.get("next"):
            return out
        page += 1


def rows(warehouse: Path) -> dict[str, list[tuple]]:
    """What the API said, per table: every data table but the bank_health history, without
    the columns that only say when or by which run a row was written."""
    con = connect(warehouse)
    try:
        out = {}
        for table, spec in TABLES.items():
            if table in ("runs", "bank_health"):
                continue
            cols = [c for c in spec.columns if c not in WHEN]
            out[table] = con.sql(f"SELECT {', '.join(cols)} FROM {table} ORDER BY ALL").fetchall()  # noqa: S608
        return out
    finally:
        con.close()


def clean_load(sb, warehouse: Path) -> dict[str, list[tuple]]:  # type: ignore[no-untyped-def]
    """The sandbox as it is now, loaded from scratch into ``warehouse``."""
    run = run_sync(Settings.load(_env_file=None, warehouse=warehouse, raw_enabled=False))
    assert run.status == "succeeded", run.error
    return rows(warehouse)


def synced_by(warehouse: Path, run_id: str) -> set[str]:
    con = connect(warehouse)
    try:
        return {
            e
            for (e,) in con.execute(
                "SELECT entity_id FROM entities WHERE run_id = ?", [run_id]
            ).fetchall()
        }
    finally:
        con.close()


def run_row(warehouse: Path, run_id: str) -> tuple:
    con = connect(warehouse)
    try:
        return con.execute(
            "SELECT kind, status, requests, params FROM runs WHERE run_id = ?", [run_id]
        ).fetchone()
    finally:
        con.close()


def expected_requests(entities: int, unchanged: int, fetched: int) -> int:
    return math.ceil(entities / 10) + unchanged + PER_ENTITY * fetched + 1


# ---------------------------------------------------------------------- prefect.yaml


def test_prefect_yaml_entrypoints_import_and_take_their_parameters() -> None:
    from prefect.flows import Flow, load_flow_from_entrypoint

    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    deployments = {d["name"]: d for d in config["deployments"]}
    assert set(deployments) == {"nightly", "backfill"}
    for name, d in deployments.items():
        path, _, func = d["entrypoint"].partition(":")
        flow = load_flow_from_entrypoint(f"{ROOT / path}:{func}")
        assert isinstance(flow, Flow), name
        params = d.get("parameters") or {}
        assert set(params) <= set(flow.parameters.properties), name
        flow.validate_parameters(params)  # raises if a value does not fit the signature
        # secrets are named (Secret blocks), never written in the file
        assert set(params["secret_blocks"]) == {"api_key", "server_hash"}
        assert all(
            isinstance(v, str) and v.startswith("bankconnect-")
            for v in params["secret_blocks"].values()
        )
    assert set(deployments["backfill"]["parameters"]) >= {
        "link_ids",
        "entity_ids",
        "all",
        "force",
        "dry_run",
    }
    (schedule,) = deployments["nightly"]["schedules"]
    assert schedule["cron"] == "0 2 * * *" and schedule["timezone"] == "Asia/Kolkata"
    assert not deployments["backfill"].get("schedules")
    text = (ROOT / "prefect.yaml").read_text()
    assert SANDBOX_API_KEY not in text and SANDBOX_SERVER_HASH not in text


# ---------------------------------------------------------------------- nightly


def test_nightly_flow_fetches_only_new_and_changed_entities(api, tmp_path: Path) -> None:
    from flows.nightly import nightly_sync

    wh = tmp_path / "wh"
    first = nightly_sync()
    assert first["sync"] == {"seen": 25, "new": 25}
    assert run_row(wh, first["run_id"])[:3] == (
        "nightly",
        "succeeded",
        expected_requests(25, 0, 25),
    )

    moved = advance(api, new_entities=4, new_statements=3)
    new = {e for e in (moved["entities_added"])}
    changed = {s["entity_id"] for s in moved["statements_added"]}
    assert len(new) == 4 and changed and not new & changed

    second = nightly_sync()
    unchanged = 25 - len(changed)
    assert second["sync"] == {"seen": 29, "new": 4, "changed": len(changed), "unchanged": unchanged}
    # from the request metrics: the listing, one request per unchanged entity, the rest whole
    kind, status, requests_made, _ = run_row(wh, second["run_id"])
    assert (kind, status) == ("nightly", "succeeded")
    assert requests_made == expected_requests(29, unchanged, len(new) + len(changed))
    assert synced_by(wh, second["run_id"]) == new | changed

    assert rows(wh) == clean_load(api, tmp_path / "clean")

    third = nightly_sync()  # nothing changed: one request per entity plus the listing
    assert third["sync"] == {"seen": 29, "unchanged": 29}
    assert run_row(wh, third["run_id"])[2] == expected_requests(29, 29, 0)


def test_nightly_flow_leaves_a_markdown_artifact(api) -> None:
    """Read back from Prefect's API, as the UI shows it (with fastapi 0.151+ the server
    answered artifact queries with 422: pinned to 0.150)."""
    from prefect.artifacts import Artifact

    from flows.nightly import nightly_sync

    result = nightly_sync()
    artifact = Artifact.get("bankconnect-nightly")
    assert artifact is not None and artifact.type == "markdown"
    text = str(artifact.data)
    assert result["run_id"] in text
    assert "| entities | 25 seen: 25 new" in text and "## Rows loaded" in text
    assert SANDBOX_API_KEY not in text and SANDBOX_SERVER_HASH not in text


def flow_run_errors(state, level: int = 40) -> list[str]:  # type: ignore[no-untyped-def]
    """The ERROR (or ``level`` and up) lines a flow run logged, as Prefect's UI shows them;
    none may carry a traceback."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    run = LogFilterFlowRunId(any_=[state.state_details.flow_run_id])
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=run))
    assert logs, "the flow run logged nothing"
    assert not [log.message for log in logs if "Traceback" in log.message]
    return [log.message for log in logs if log.level >= level]


def test_a_failed_run_fails_the_flow_and_is_recorded(api, monkeypatch, tmp_path: Path) -> None:
    from flows.nightly import nightly_sync
    from flows.tasks import RunFailed

    monkeypatch.setenv("BANKCONNECT_API_KEY", "wrong-key")
    state = nightly_sync(return_state=True)
    with pytest.raises(RunFailed, match="failed"):  # what a direct caller gets
        state.result()
    errors = flow_run_errors(state)  # one line, once, no traceback: the row says why
    assert len(errors) == 1 and errors[0].startswith("run nightly-"), errors
    assert state.message == errors[0]
    assert "HTTP 401" in errors[0] and "wrong-key" not in errors[0]
    con = connect(tmp_path / "wh")
    try:
        status, error = con.sql("SELECT status, error FROM runs").fetchone()
    finally:
        con.close()
    assert status == "failed" and "wrong-key" not in error


def test_a_stop_during_a_batch_load_waits_for_its_commit_then_ends_the_flow(
    api, monkeypatch, tmp_path: Path
) -> None:
    """Ctrl-C, or a Prefect cancel (SIGTERM, which Prefect raises as TerminationSignal; its
    handler then ends the process, so this test sends SIGINT), while the load-batch task
    runs. Raised inside the task, the stop could cut a commit from its count, or (inside
    DuckDB, where it becomes a RuntimeError) be retried as a failure: it waits for the
    batch to commit and be counted, then stops the flow."""
    import signal

    from bankconnect_etl.warehouse import Writer
    from flows.nightly import nightly_sync

    loads: list[str] = []
    real_load = Writer.load

    def load_with_ctrl_c(self: Writer, batch: object, message: str | None = None) -> object:
        loads.append(message or "")
        os.kill(os.getpid(), signal.SIGINT)  # lands before the batch's statements
        return real_load(self, batch, message=message)  # type: ignore[arg-type]

    monkeypatch.setattr(Writer, "load", load_with_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        nightly_sync()
    assert len(loads) == 1  # not retried, and nothing loaded after it
    con = connect(tmp_path / "wh")
    try:
        status, error, counts = con.sql("SELECT status, error, counts FROM runs").fetchone()
        loaded = con.sql("SELECT count(*) FROM entities").fetchone()[0]
    finally:
        con.close()
    assert (status, error) == ("interrupted", "interrupted (Ctrl-C)")
    # the batch (BANKCONNECT_BATCH_SIZE), committed and counted: complete, empty, ...
    assert loaded == 7 and sum(json.loads(counts)["entities"].values()) == loaded


class _StopInFinalizer:
    """Sends ``signum`` to this process from its finalizer: the handler's exception is
    raised inside ``__del__``, where Python prints it and drops it."""

    def __init__(self, signum: int) -> None:
        self.signum = signum

    def __del__(self) -> None:
        import signal

        signal.raise_signal(self.signum)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_stop_lost_during_the_compaction_ends_the_run_before_the_marts(
    api, monkeypatch, tmp_path: Path
) -> None:
    """A Ctrl-C whose KeyboardInterrupt Python dropped (it landed in a finalizer) while the
    lake was being compacted: the run stops when the compaction ends, as interrupted,
    with every batch kept and the marts not refreshed."""
    import signal

    from bankconnect_etl.warehouse import Writer

    real_compact = Writer.compact

    def compact_with_a_lost_ctrl_c(self: Writer, **kwargs: object) -> object:
        _StopInFinalizer(signal.SIGINT)  # dropped at once: its stop is lost
        return real_compact(self, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Writer, "compact", compact_with_a_lost_ctrl_c)
    settings = Settings.load(_env_file=None, warehouse=tmp_path / "wh", raw_enabled=False)
    with pytest.raises(KeyboardInterrupt):
        run_sync(settings)
    con = connect(tmp_path / "wh")
    try:
        status, error = con.sql("SELECT status, error FROM runs").fetchone()
        loaded = con.sql("SELECT count(*) FROM entities").fetchone()[0]
        marts = con.sql(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'mart_refreshes'"
        ).fetchone()[0]
    finally:
        con.close()
    assert (status, error) == ("interrupted", "interrupted (Ctrl-C)")
    assert loaded == 25  # every batch, committed before the compaction
    assert marts == 0  # no refresh was started


# ---------------------------------------------------------------------- backfill


def test_backfill_entity_ids_fetches_exactly_those(
    api, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.backfill import backfill  # noqa: I001 - first: it quiets Prefect before it loads
    from prefect.logging.configuration import setup_logging

    # Prefect's first logging setup in a process replaces the root's handlers, caplog's
    # among them (when this test runs first); later setups keep them
    setup_logging()
    root = logging.getLogger()
    if caplog.handler not in root.handlers:
        monkeypatch.setattr(root, "handlers", [*root.handlers, caplog.handler])

    ids = [e["entity_id"] for e in listing(api)][:3]
    typo = "00000000-0000-0000-0000-000000000000"
    state = backfill(entity_ids=[ids[0].upper(), *ids[1:], typo], return_state=True)
    result = state.result()  # the case of an id does not matter
    assert result["sync"] == {"seen": 3, "new": 3}
    # the skipped id is in the flow run's own log (the UI), not only the worker's terminal
    warning = f"entity_id {typo}: not found at the API; skipped"
    assert warning in flow_run_errors(state, 30)
    # and once on the terminal: through the run logger, not a second time from the library
    assert [r.name for r in caplog.records if r.getMessage() == warning] == ["prefect.flow_runs"]
    assert result["not_found"] == [f"entity_id {typo}"]  # in runs.counts and the artifact
    assert synced_by(tmp_path / "wh", result["run_id"]) == set(ids)
    # no listing: each named entity looked up (the typo too), then fetched whole
    assert run_row(tmp_path / "wh", result["run_id"])[2] == 4 + PER_ENTITY * 3 + 1
    con = connect(tmp_path / "wh")
    try:  # an id the API does not know leaves no row behind
        found = con.execute("SELECT count(*) FROM entities WHERE entity_id = ?", [typo])
        assert found.fetchone() == (0,)
    finally:
        con.close()


def test_a_backfill_of_only_ids_the_api_does_not_know_fails(api, tmp_path: Path) -> None:
    from flows.backfill import backfill

    state = backfill(link_ids=["APPNOPE"], return_state=True)
    assert state.is_failed()
    assert "none of the ids named is known to the API: link_id APPNOPE" in (state.message or "")
    con = connect(tmp_path / "wh")
    try:
        status, counts = con.sql("SELECT status, counts FROM runs").fetchone()
    finally:
        con.close()
    assert status == "failed" and json.loads(counts)["not_found"] == ["link_id APPNOPE"]
    # failed before fetching: no health observation, no compaction, no marts
    con = connect(tmp_path / "wh")
    try:
        steps = con.sql(
            "SELECT list(split_part(commit_message, ' ', 2) ORDER BY snapshot_id) "
            "FROM lake.snapshots() WHERE commit_message LIKE 'backfill-%'"
        ).fetchone()[0]
        assert con.sql("SELECT count(*) FROM bank_health").fetchone()[0] == 0
    finally:
        con.close()
    assert steps == ["started", "failed"]


def test_backfill_link_ids_fetches_the_entities_of_the_link(api, tmp_path: Path) -> None:
    from flows.backfill import backfill

    everyone = listing(api)
    link = next(
        e["link_id"] for e in everyone if sum(x["link_id"] == e["link_id"] for x in everyone) > 1
    )
    members = {e["entity_id"] for e in everyone if e["link_id"] == link}
    result = backfill(link_ids=[link])
    assert synced_by(tmp_path / "wh", result["run_id"]) == members
    assert result["sync"] == {"seen": len(members), "new": len(members)}


def test_backfill_all_and_force(api, tmp_path: Path) -> None:
    from flows.backfill import backfill

    first = backfill(all=True)
    assert first["sync"] == {"seen": 25, "new": 25}
    again = backfill(all=True)  # nothing changed: skipped after one request each
    assert again["sync"] == {"seen": 25, "unchanged": 25}
    forced = backfill(all=True, force=True)
    assert forced["sync"] == {"seen": 25, "forced": 25}
    assert synced_by(tmp_path / "wh", forced["run_id"]) == {e["entity_id"] for e in listing(api)}
    assert rows(tmp_path / "wh") == clean_load(api, tmp_path / "clean")


def test_backfill_dry_run_writes_nothing(api, tmp_path: Path) -> None:
    from flows.backfill import backfill

    ids = [e["entity_id"] for e in listing(api)]
    backfill(entity_ids=ids[:2])
    result = backfill(entity_ids=[*ids[:4], "00000000-0000-0000-0000-000000000000"], dry_run=True)
    # an id the API does not know is not "new": it is left out (with a warning)
    assert result == {
        "dry_run": True,
        "entities": 4,
        "actions": {"check": 2, "new": 2},
        "not_found": ["entity_id 00000000-0000-0000-0000-000000000000"],
    }
    # every id unknown: the run would fail so, and the dry run's flow run fails first
    typo = backfill(link_ids=["APPNOPE"], dry_run=True, return_state=True)
    assert typo.is_failed()
    assert "none of the ids named is known to the API: link_id APPNOPE" in (typo.message or "")
    forced = backfill(all=True, force=True, dry_run=True)
    assert forced["actions"] == {"forced": 2, "new": 23}
    con = connect(tmp_path / "wh")
    try:
        assert con.sql("SELECT count(*) FROM runs").fetchone()[0] == 1
        assert con.sql("SELECT count(*) FROM entities").fetchone()[0] == 2
    finally:
        con.close()


def test_a_dry_run_logs_its_plan_in_the_flow_run(api, caplog: pytest.LogCaptureFixture) -> None:
    from flows.backfill import backfill

    caplog.set_level(logging.INFO, logger="prefect.flow_runs")  # the module's env says WARNING
    ids = [e["entity_id"] for e in listing(api)]
    state = backfill(entity_ids=ids[:3], dry_run=True, return_state=True)
    assert state.is_completed()
    (plan,) = [m for m in flow_run_errors(state, level=logging.INFO) if m.startswith("dry run")]
    # what an operator reads in the flow run's log: the counts and the entities
    assert plan.splitlines()[0] == "dry run: 3 entities; nothing fetched or written"
    assert all(i in plan for i in ids[:3])


def test_python_flows_nightly_py_runs_one_nightly_and_help_runs_nothing(
    api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from flows.nightly import main

    with pytest.raises(SystemExit) as helped:
        main(["--help"])
    assert helped.value.code == 0 and "--batch-size" in capsys.readouterr().out
    assert not (tmp_path / "wh").exists()  # --help is not a sync
    assert main(["--warehouse", str(tmp_path / "other"), "--batch-size", "10"]) == 0
    assert not (tmp_path / "wh").exists()
    con = connect(tmp_path / "other")
    try:
        assert con.sql("SELECT count(*) FROM entities").fetchone()[0] == 25
        assert con.sql("SELECT kind, status FROM runs").fetchall() == [("nightly", "succeeded")]
    finally:
        con.close()


def test_python_flows_backfill_py_runs_one_backfill(api, tmp_path: Path) -> None:
    from flows.backfill import main

    ids = [e["entity_id"] for e in listing(api)]
    assert main(["--entity-id", ids[0], "--dry-run"]) == 0
    assert not (tmp_path / "wh").exists()  # a dry run writes nothing
    assert main(["--entity-id", ids[0], "--entity-id", ids[1], "--batch-size", "1"]) == 0
    assert main(["--entity-id", "00000000-0000-0000-0000-000000000000"]) == 1  # a failed run
    con = connect(tmp_path / "wh")
    try:
        assert con.sql("SELECT count(*) FROM entities").fetchone()[0] == 2
        assert con.sql("SELECT kind, status FROM runs ORDER BY started_at").fetchall() == [
            ("backfill", "succeeded"),
            ("backfill", "failed"),
        ]
    finally:
        con.close()
    for bad in (["--bogus"], [], ["--all", "--entity-id", ids[0]]):  # before any flow run
        with pytest.raises(SystemExit) as usage:
            main(bad)
        assert usage.value.code == 2


def test_backfill_needs_a_selection(api) -> None:
    from bankconnect_etl.errors import UserError
    from flows.backfill import backfill

    with pytest.raises(UserError, match="needs entities"):
        backfill()
    with pytest.raises(UserError, match="takes no entity or link ids"):
        backfill(all=True, entity_ids=["x"])


def test_a_missing_secret_block_fails_the_flow_run_with_one_line(api) -> None:
    from flows.nightly import nightly_sync

    state = nightly_sync(secret_blocks={"api_key": "no-such-block"}, return_state=True)
    assert state.is_failed()
    expected = (
        "secret_blocks: api_key: no Prefect Secret block named 'no-such-block' (hint: create "
        "it once: Secret(value=...).save('no-such-block'), see docs/operations.md (Secrets))"
    )
    assert state.message == expected
    assert flow_run_errors(state) == [expected]


def test_secret_blocks_supply_the_credentials(api, monkeypatch, tmp_path: Path) -> None:
    from prefect.blocks.system import Secret

    from flows.backfill import backfill

    Secret(value=SANDBOX_API_KEY).save("test-bankconnect-api-key", overwrite=True)
    monkeypatch.setenv("BANKCONNECT_API_KEY", "not-the-key")  # the block wins
    ids = [e["entity_id"] for e in listing(api)][:1]
    result = backfill(entity_ids=ids, secret_blocks={"api_key": "test-bankconnect-api-key"})
    assert result["sync"] == {"seen": 1, "new": 1}
    _, _, _, params = run_row(tmp_path / "wh", result["run_id"])
    assert SANDBOX_API_KEY not in params


# ---------------------------------------------------------------------- together


def test_nightly_and_backfill_started_together_both_finish(api, tmp_path: Path) -> None:
    """Two processes, one warehouse: the second waits for the writer lock, then runs."""
    wh = tmp_path / "wh"
    advance(api, new_entities=5, new_statements=0)
    env = dict(os.environ)
    procs = [
        subprocess.Popen(
            [COMMAND, "nightly"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ),
        subprocess.Popen(
            [COMMAND, "backfill", "--all", "--force"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ),
    ]
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert "succeeded" in out
    con = connect(wh)
    try:
        runs = con.sql("SELECT kind, status FROM runs ORDER BY started_at").fetchall()
    finally:
        con.close()
    assert sorted(runs) == [("backfill", "succeeded"), ("nightly", "succeeded")]
    assert rows(wh) == clean_load(api, tmp_path / "clean")
