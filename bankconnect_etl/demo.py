"""``bankconnect-etl demo``: the embedded sandbox, pulled end to end, summarised.

Until the client and warehouse land (issues 3 and 4) the demo walks the API the way the
pipeline will: list every entity page, then poll each entity's analysis endpoints until
their processing has completed, and print what an analyst would first ask about.
"""

from __future__ import annotations

import time
from collections import Counter

import requests

from bankconnect_etl.sandbox import (
    SANDBOX_API_KEY,
    SANDBOX_SERVER_HASH,
    SandboxConfig,
    start_in_thread,
)

ENDPOINTS = (
    "accounts",
    "identity",
    "transactions",
    "salary",
    "recurring_transactions",
    "lender_transactions",
)


def _poll(session: requests.Session, url: str, attempts: int = 10) -> dict:
    for _ in range(attempts):
        body = session.get(url, timeout=30).json()
        if all(p["status"] != "processing" for p in body["progress"]):
            return body
        time.sleep(0.01)
    return body


def run_demo(entities: int = 60, seed: int = 1) -> int:
    started = time.perf_counter()
    with (
        start_in_thread(SandboxConfig(entities=entities, seed=seed)) as sb,
        requests.Session() as s,
    ):
        s.headers.update({"x-api-key": SANDBOX_API_KEY, "server-hash": SANDBOX_SERVER_HASH})
        print(f"sandbox: {entities} entities, seed {seed}, at {sb.base_url}")
        ids: list[str] = []
        url: str | None = f"{sb.base_url}/entity/"
        while url:
            page = s.get(url, timeout=30).json()
            ids += [e["entity_id"] for e in page["results"]]
            url = page["next"]
        statuses: Counter[str] = Counter()
        rows: Counter[str] = Counter()
        channels: Counter[str] = Counter()
        for entity_id in ids:
            for endpoint in ENDPOINTS:
                body = _poll(s, f"{sb.base_url}/entity/{entity_id}/{endpoint}/")
                if endpoint == "transactions":
                    statuses.update(p["status"] for p in body["progress"])
                    channels.update(t["transaction_channel"] for t in body["transactions"])
                txns = body.get("transactions", body.get("identity", body["accounts"]))
                rows[endpoint] += (
                    len(txns) if isinstance(txns, list) else sum(map(len, txns.values()))
                )
        elapsed = time.perf_counter() - started
    print(f"entities listed: {len(ids)} in {len(ids) // 10 + 1} pages")
    print(
        "statements (transactions endpoint): "
        + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
    )
    print("rows per endpoint: " + ", ".join(f"{k} {v}" for k, v in rows.items()))
    print("top channels: " + ", ".join(f"{k} {v}" for k, v in channels.most_common(6)))
    print(f"done in {elapsed:.1f} s")
    return 0
