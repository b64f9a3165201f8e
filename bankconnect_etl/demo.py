"""``bankconnect-etl demo``: the embedded sandbox, synced into a local warehouse, summarised.

Starts the sandbox on a free loopback port, runs a sync into ``./warehouse`` (or
``BANKCONNECT_WAREHOUSE``) exactly as a scheduled run would (list, fetch, poll, validate,
load, record the run), prints the run summary and a sample query, and stops the sandbox.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bankconnect_etl.config import Settings
from bankconnect_etl.pipeline import RunResult, run_sync
from bankconnect_etl.sandbox import (
    SANDBOX_API_KEY,
    SANDBOX_SERVER_HASH,
    SandboxConfig,
    start_in_thread,
)
from bankconnect_etl.warehouse import connect

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


def run_demo(
    say: Callable[[str], None],
    entities: int = 60,
    seed: int = 1,
    warehouse: Path | None = None,
) -> int:
    """Run the demo, reporting each line through ``say`` (the CLI prints them)."""
    with start_in_thread(SandboxConfig(entities=entities, seed=seed)) as sb:
        overrides: dict = {
            "base_url": sb.base_url,
            "api_key": SANDBOX_API_KEY,
            "server_hash": SANDBOX_SERVER_HASH,
            "poll_initial_s": 0.2,  # the sandbox finishes processing after one poll
        }
        if warehouse is not None:
            overrides["warehouse"] = warehouse
        settings = Settings.load(**overrides)
        say(f"sandbox: {entities} entities, seed {seed}, at {sb.base_url}")
        say(f"warehouse: {settings.warehouse.resolve()}")
        run = run_sync(settings, kind="demo", params={"entities": entities, "seed": seed})
    for line in summary_lines(run):
        say(line)
    con = connect(settings.warehouse)
    try:
        say("")
        say("sample query: money in and out per entity over its statements (top 5 by credits)")
        say(format_table(con.sql(SAMPLE_QUERY)))
    finally:
        con.close()
    say("")
    say(
        f"explore: .venv/bin/bankconnect-etl sql "
        f'"FROM entities LIMIT 5" --warehouse {settings.warehouse}'
    )
    return 0 if run.status == "succeeded" else 1


SAMPLE_QUERY = """
SELECT e.entity_id[:8] AS entity,
       count(*) AS transactions,
       sum(amount) FILTER (transaction_type = 'credit') AS credits_inr,
       sum(amount) FILTER (transaction_type = 'debit') AS debits_inr,
       min(txn_date) AS first_day,
       max(txn_date) AS last_day
FROM transactions t JOIN entities e USING (entity_id)
GROUP BY ALL ORDER BY credits_inr DESC LIMIT 5
"""


def summary_lines(run: RunResult) -> list[str]:
    """The run summary as printed by the CLI."""
    s = run.stats.as_json()
    entities = ", ".join(f"{n} {k}" for k, n in sorted(s["entities"].items())) or "none"
    rows = ", ".join(f"{k} {n:,}" for k, n in s["rows"].items() if n)
    lines = [
        f"run {run.run_id}: {run.status} in {run.seconds:.1f} s, snapshot {run.snapshot}",
        f"entities: {entities}",
        f"rows: {rows}",
        f"requests: {run.requests:,} ({run.retries} retries)",
    ]
    quarantined = sum(n for per in s["quarantined"].values() for n in per.values())
    lines.append(
        f"quarantined: {quarantined} rows"
        + (f" ({_nested(s['quarantined'])})" if quarantined else "")
    )
    if s["schema_drift"]:
        lines.append(f"schema drift (unknown fields, kept): {_nested(s['schema_drift'])}")
    if s["unknown_values"]:
        lines.append(f"values outside the documented lists (kept): {_nested(s['unknown_values'])}")
    for f in s["failed_entities"][:5]:
        lines.append(f"failed: {f['entity_id']}: {f['reason']}")
    if run.error:
        lines.append(f"error: {run.error}")
    return lines


def _nested(d: dict) -> str:
    return "; ".join(
        f"{a}: " + ", ".join(f"{b} {n}" for b, n in inner.items()) for a, inner in d.items()
    )


def format_table(rel) -> str:  # type: ignore[no-untyped-def]
    """A DuckDB relation as a plain aligned text table."""
    names = rel.columns
    rows = [[_cell(v) for v in r] for r in rel.fetchall()]
    widths = (
        [max(len(n), *(len(r[i]) for r in rows)) for i, n in enumerate(names)]
        if rows
        else [len(n) for n in names]
    )
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))  # noqa: E731
    return "\n".join([line(names), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def _cell(v: object) -> str:
    if v is None:
        return ""
    if hasattr(v, "quantize"):
        return f"{v:,.2f}"
    return str(v)
