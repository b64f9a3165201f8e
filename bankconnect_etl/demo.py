"""``bankconnect-etl demo``: the embedded sandbox, synced into a local warehouse, summarised.

Starts the sandbox on a free loopback port, runs the nightly sync into ``./warehouse`` (or
``BANKCONNECT_WAREHOUSE``) exactly as a scheduled run would (list, fetch, poll, validate,
load, record the run), prints the run summary and a sample query, and stops the sandbox.

Each demo after the first moves the sandbox's time on by one more step than the last
(new entities, new statements for some others), so a second ``demo`` shows what a nightly
run does: fetch the new and changed entities, skip the rest after one request each.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import requests

from bankconnect_etl.config import Settings
from bankconnect_etl.errors import NoWarehouseError
from bankconnect_etl.pipeline import run_sync
from bankconnect_etl.render import format_table, summary_lines
from bankconnect_etl.sandbox import (
    SANDBOX_API_KEY,
    SANDBOX_SERVER_HASH,
    SandboxConfig,
    start_in_thread,
)
from bankconnect_etl.warehouse import connect


def run_demo(
    say: Callable[[str], None],
    entities: int = 60,
    seed: int = 1,
    warehouse: Path | None = None,
) -> int:
    """Run the demo, reporting each line through ``say`` (the CLI prints them)."""
    steps = _previous_demos(warehouse or Settings.load().warehouse)
    # Statements already processed, as a real API has them between nightly runs (a fresh
    # sandbox would otherwise show every statement as just uploaded, so changed).
    with start_in_thread(SandboxConfig(entities=entities, seed=seed, processing_polls=0)) as sb:
        overrides: dict = {
            "base_url": sb.base_url,
            "api_key": SANDBOX_API_KEY,
            "server_hash": SANDBOX_SERVER_HASH,
        }
        if warehouse is not None:
            overrides["warehouse"] = warehouse
        settings = Settings.load(**overrides)
        for _ in range(steps):  # the world as the last demo left it, then one step on
            requests.post(
                f"{sb.url}/sandbox/advance", params=ADVANCE, timeout=30
            ).raise_for_status()
        said = f"sandbox: {entities} entities, seed {seed}, at {sb.base_url}"
        if steps:
            new, statements = ADVANCE["new_entities"], ADVANCE["new_statements"]
            said += (
                f"; time moved on {steps} step(s) since the first demo "
                f"(+{new} entities, +{statements} statements each)"
            )
        say(said)
        say(f"warehouse: {settings.warehouse.resolve()}")
        run = run_sync(
            settings, kind="demo", params={"entities": entities, "seed": seed, "steps": steps}
        )
    for line in summary_lines(run):
        say(line)
    con = connect(settings.warehouse)
    try:
        say("")
        say("sample query: money in and out per entity over its statements (top 5 by credits)")
        say(format_table(con.sql(SAMPLE_QUERY)))
        sample = con.sql(
            "SELECT entity_id FROM transactions GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
        ).fetchone()
        if sample is not None:
            from bankconnect_etl import report

            out = report.write(
                con, sample[0], settings.warehouse / "reports" / f"report-{sample[0]}.html"
            )
            say("")
            say(f"credit report for entity {sample[0]}: {out}")
    finally:
        con.close()
    say("")
    say(
        f"explore: .venv/bin/bankconnect-etl sql "
        f'"FROM entities LIMIT 5" --warehouse {settings.warehouse}'
    )
    return 0 if run.status == "succeeded" else 1


ADVANCE = {"new_entities": 3, "new_statements": 4}


def _previous_demos(warehouse: Path) -> int:
    """How many demo runs succeeded in this warehouse before (0 if there is none)."""
    try:
        con = connect(warehouse)
    except NoWarehouseError:
        return 0
    try:
        (n,) = con.execute(
            "SELECT count(*) FROM runs WHERE kind = 'demo' AND status = 'succeeded'"
        ).fetchone()
    finally:
        con.close()
    return int(n)


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
