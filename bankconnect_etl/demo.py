"""``bankconnect-etl demo``: the embedded sandbox, synced into a local warehouse, summarised.

Starts the sandbox on a free loopback port, runs the nightly sync into ``./warehouse`` (or
``BANKCONNECT_WAREHOUSE``) exactly as a scheduled run would (list, fetch, poll, validate,
load, record the run), prints the run summary and a sample query, and stops the sandbox.

Each demo after the first moves the sandbox's time on one step from where the warehouse's
last run left it (new entities, new statements for some others), so a second ``demo``
shows what a nightly run does: fetch the new and changed entities, skip the rest after one
request each. The warehouse remembers the world (``upstream.sandbox_world``), so a
``nightly`` between demos sees the same data as the last run, and another world (other
``--entities`` or ``--seed``) needs its own warehouse.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bankconnect_etl.config import Settings
from bankconnect_etl.pipeline import run_sync
from bankconnect_etl.render import format_table, summary_lines
from bankconnect_etl.upstream import STEP, sandbox_world, upstream
from bankconnect_etl.warehouse import close, connect


def run_demo(
    say: Callable[[str], None],
    entities: int | None = None,
    seed: int | None = None,
    warehouse: Path | None = None,
) -> int:
    """Run the demo, reporting each line through ``say`` (the CLI prints them). Entities
    and seed default to BANKCONNECT_SANDBOX_ENTITIES and _SEED (60 and 1)."""
    # Always the embedded sandbox, whatever API and credentials are configured.
    overrides: dict = dict.fromkeys(("base_url", "api_key", "server_hash", "access_token_secret"))
    given = {"sandbox_entities": entities, "sandbox_seed": seed, "warehouse": warehouse}
    overrides |= {name: value for name, value in given.items() if value is not None}
    settings = Settings.load(**overrides)
    world = sandbox_world(settings, step=True)
    with upstream(settings, announce=False, world=world) as live:
        said = f"sandbox: {world.describe()}, at {live.base_url}"
        if world.steps:
            said += (
                f"; time moved on {world.steps} step(s) since the first demo "
                f"(each step: {STEP['new_entities']} new entities, "
                f"{STEP['new_statements']} new statements)"
            )
        say(said)
        say(f"warehouse: {settings.warehouse.resolve()}")
        run = run_sync(
            live,
            kind="demo",
            params={"entities": world.entities, "seed": world.seed, "steps": world.steps},
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
        close(con)
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
