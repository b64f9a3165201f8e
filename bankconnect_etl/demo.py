"""``bankconnect-etl demo``: the embedded sandbox, pulled end to end, summarised.

Until the warehouse lands (issue 4) the demo runs extraction as the nightly run will:
list every entity, fetch each entity's endpoints, poll until processing has ended, and
print what came back with the run's request metrics.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from bankconnect_etl.client import BankConnectClient
from bankconnect_etl.config import Settings
from bankconnect_etl.extract import Extractor, list_entities
from bankconnect_etl.sandbox import (
    SANDBOX_API_KEY,
    SANDBOX_SERVER_HASH,
    SandboxConfig,
    start_in_thread,
)


def run_demo(say: Callable[[str], None], entities: int = 60, seed: int = 1) -> int:
    """Run the demo, reporting each line through ``say`` (the CLI prints them)."""
    started = time.perf_counter()
    with start_in_thread(SandboxConfig(entities=entities, seed=seed)) as sb:
        settings = Settings.load(
            base_url=sb.base_url,
            api_key=SANDBOX_API_KEY,
            server_hash=SANDBOX_SERVER_HASH,
            poll_initial_s=0.2,  # the sandbox finishes processing after one poll
        )
        say(f"sandbox: {entities} entities, seed {seed}, at {sb.base_url}")
        with BankConnectClient(settings) as client:
            listing = list_entities(client)
            bundles = list(Extractor(client).fetch(e["entity_id"] for e in listing.entities))
            metrics = client.metrics.snapshot()
    statuses = Counter(b.status for b in bundles)
    outcomes = Counter(b.statement_outcome(s)[0] for b in bundles for s in b.statements)
    rows = Counter()
    channels: Counter[str] = Counter()
    for b in bundles:
        for endpoint in ("transactions", "salary", "lender_transactions"):
            rows[endpoint] += len(b.responses.get(endpoint, {}).get("transactions", []))
        channels.update(
            t["transaction_channel"]
            for t in b.responses.get("transactions", {}).get("transactions", [])
        )
    say(
        f"entities: {len(listing.entities)} listed in {listing.pages} pages; "
        + ", ".join(f"{n} {k}" for k, n in sorted(statuses.items()))
    )
    say("statements: " + ", ".join(f"{n} {k}" for k, n in sorted(outcomes.items())))
    say("rows: " + ", ".join(f"{k} {n:,}" for k, n in rows.items()))
    say("top channels: " + ", ".join(f"{k} {n:,}" for k, n in channels.most_common(6)))
    say(
        f"requests: {metrics.total_requests:,} ({metrics.total_retries} retries), "
        f"{metrics.bytes_received / 1e6:.1f} MB, latency p50 {metrics.latency_ms['p50']} ms "
        f"p99 {metrics.latency_ms['p99']} ms"
    )
    say(f"done in {time.perf_counter() - started:.1f} s")
    return 0
