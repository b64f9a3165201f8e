"""`bankconnect-etl refresh` and `bankconnect-etl report` as a user meets them, on a
warehouse synced from the sandbox: entities with no statements, with a failed statement,
and with a normal history; help with examples; one-line errors with a hint."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bankconnect_etl.config import Settings
from bankconnect_etl.pipeline import run_sync
from bankconnect_etl.sandbox import (
    SANDBOX_API_KEY,
    SANDBOX_SERVER_HASH,
    SandboxConfig,
    start_in_thread,
)
from bankconnect_etl.warehouse import connect
from tests.conftest import run_cli

pytestmark = pytest.mark.integration
FAST = {"poll_initial_s": 0.02, "poll_max_s": 0.1, "backoff_base_s": 0.01, "backoff_cap_s": 0.1}
EXTERNAL = re.compile(r"https?://|<script|<link|<img|@import|\bsrc=", re.IGNORECASE)


def run(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=cwd, timeout=timeout)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """25 sandbox entities (one of each edge case) synced, then the marts refreshed."""
    root = tmp_path_factory.mktemp("report") / "wh"
    with start_in_thread(SandboxConfig(entities=25, seed=2, processing_polls=0)) as sb:
        settings = Settings.load(
            _env_file=None,
            base_url=sb.base_url,
            api_key=SANDBOX_API_KEY,
            server_hash=SANDBOX_SERVER_HASH,
            warehouse=root,
            **FAST,
        )
        assert run_sync(settings, kind="demo").status == "succeeded"
    r = run("refresh", "--warehouse", str(root), cwd=root.parent)
    assert r.returncode == 0, r.stderr
    assert re.match(r"refreshed 9 marts in [\d.]+ s, snapshot \d+\n", r.stdout)
    assert re.search(r"^  entity_credit_summary\s+25 rows$", r.stdout, re.MULTILINE)
    yield root


def entity(warehouse: Path, where: str) -> str:
    con = connect(warehouse)
    try:
        rows = con.execute(
            f"SELECT entity_id FROM entity_credit_summary WHERE {where} "  # noqa: S608
            "ORDER BY balance_breaks + bounces_last_6_months DESC, entity_id LIMIT 1"
        ).fetchall()
    finally:
        con.close()
    assert rows, where
    return rows[0][0]


@pytest.mark.parametrize(
    ("case", "where", "charts"),
    [
        ("normal", "statement_count > failed_statement_count AND months_covered >= 3", 2),
        ("no statements", "statement_count = 0", 0),
        ("failed statement", "statement_count = failed_statement_count AND statement_count > 0", 0),
    ],
)
def test_report_writes_one_self_contained_file(
    warehouse: Path, tmp_path: Path, case: str, where: str, charts: int
) -> None:
    entity_id = entity(warehouse, where)
    r = run("report", entity_id[:13], "--warehouse", str(warehouse), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / f"report-{entity_id}.html"
    assert r.stdout == f"report: {out}\n" and r.stderr == ""
    doc = out.read_text(encoding="utf-8")
    assert doc.count("<svg ") == charts, case
    assert EXTERNAL.search(doc) is None
    assert entity_id in doc and "<h2>Summary</h2>" in doc
    assert re.search(r"<title>Credit report — [^<]+</title>", doc)
    # Without transactions the report must say so before any figure, not look clean.
    no_data = "No transactions could be read; the figures below are not evidence"
    assert (no_data in doc) == (case != "normal"), case
    if case != "normal":
        assert doc.index(no_data) < doc.index("<h2>Summary</h2>")
    if case == "failed statement":
        assert ">failed<" in doc


def test_report_out_and_as_of(warehouse: Path, tmp_path: Path) -> None:
    entity_id = entity(warehouse, "statement_count > 0")
    out = tmp_path / "nested" / "applicant.html"
    now = datetime.now(UTC).isoformat()
    args = ["report", entity_id, "--out", str(out), "--as-of", now]
    r = run(*args, "--warehouse", str(warehouse), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert out.is_file() and r.stdout.strip() == f"report: {out}"


def test_report_as_of_an_older_snapshot_shows_the_figures_of_then(
    warehouse: Path, tmp_path: Path
) -> None:
    """A copy of the warehouse loses an entity's last month and is refreshed; the report
    as of the snapshot before shows the last transaction of then, the current one not."""
    import shutil

    from bankconnect_etl.report import day
    from bankconnect_etl.warehouse import Writer

    copy = tmp_path / "wh"
    shutil.copytree(warehouse, copy)
    entity_id = entity(warehouse, "months_covered >= 3")
    con = connect(copy)
    try:
        (before,) = con.execute("SELECT id FROM current_snapshot()").fetchone() or (None,)
        (last,) = con.execute(
            "SELECT last_txn_date FROM entity_credit_summary WHERE entity_id = ?", [entity_id]
        ).fetchone() or (None,)
    finally:
        con.close()
    with Writer(copy, run_id="test-as-of") as w:
        assert w.con is not None
        w.con.execute(
            "DELETE FROM transactions WHERE entity_id = ? AND txn_date >= date_trunc('month', ?)",
            [entity_id, last],
        )
    assert run("refresh", "--warehouse", str(copy), cwd=tmp_path).returncode == 0
    then, now = tmp_path / "then.html", tmp_path / "now.html"
    for out, as_of in ((then, [str(before)]), (now, [])):
        args = ["report", entity_id, "--out", str(out), *(["--as-of", *as_of] if as_of else [])]
        r = run(*args, "--warehouse", str(copy), cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    cell = re.compile(r'Last transaction</span><span class="v">([^<]+)<')
    then_doc, now_doc = then.read_text(encoding="utf-8"), now.read_text(encoding="utf-8")
    assert cell.findall(then_doc) == [day(last)]
    assert f"warehouse snapshot {before} " in then_doc
    (shown_now,) = cell.findall(now_doc)
    assert datetime.strptime(shown_now, "%d %b %Y").date() < last.replace(day=1)


@pytest.mark.parametrize(
    ("args", "expected", "hint"),
    [
        (["report", "no-such-entity"], "error: no entity 'no-such-entity'", "SELECT entity_id"),
        (["report", "x", "--as-of", "0"], "no analytics marts at this snapshot", "refresh"),
        (["report", "x", "--as-of", "yesterday"], "--as-of 'yesterday' is neither", "e.g."),
    ],
)
def test_report_errors_are_one_line_with_a_hint(
    warehouse: Path, tmp_path: Path, args: list[str], expected: str, hint: str
) -> None:
    r = run(*args, "--warehouse", str(warehouse), cwd=tmp_path)
    assert r.returncode == 2
    first, second, *rest = r.stderr.strip().splitlines()
    assert expected in first and first.startswith("error: ")
    assert second.startswith("hint: ") and hint in second
    assert not rest and "Traceback" not in r.stderr


def test_refresh_without_a_warehouse_is_a_user_error(tmp_path: Path) -> None:
    r = run("refresh", "--warehouse", str(tmp_path / "none"), cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.startswith("error: no warehouse at ") and "hint: " in r.stderr
    assert not (tmp_path / "none").exists()


def test_help_shows_examples(tmp_path: Path) -> None:
    for command, options in (("report", ("--out", "--as-of", "--warehouse")), ("refresh", ())):
        r = run(command, "--help", cwd=tmp_path)
        assert r.returncode == 0
        assert "examples:" in r.stdout and f"bankconnect-etl {command}" in r.stdout
        assert all(o in r.stdout for o in options)
