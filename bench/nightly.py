"""Benchmark of the nightly run: full load, then 1% changed, then nothing changed.

Against a sandbox of N entities (default 10,000) with 50 ms of added latency and its
default processing (each analysis endpoint answers ``processing`` once, so a fetched
entity is polled once more; ``--processing-polls 0``: statements already processed,
nothing polled), in its own process on core 0 (this one on core 1):

1. full:      ``run_sync`` into an empty warehouse (every entity fetched whole).
2. 1% changed: the sandbox's time moves on (``/sandbox/advance``) with new statements
               for 1% of the entities; ``run_sync`` again.
3. unchanged: ``run_sync`` once more, nothing changed.

Printed: wall time of each, the ratio of (2) to (1) (target at most 0.10), and the
requests of (3) against the listing pages + one per entity + one net_banking_health
(target: equal).

    .venv/bin/python bench/nightly.py                         # about 6 minutes
    .venv/bin/python bench/nightly.py --entities 2000         # quicker
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Sandbox, pin_to_client_cores, table

from bankconnect_etl.config import Settings
from bankconnect_etl.pipeline import run_sync
from bankconnect_etl.sandbox import SANDBOX_API_KEY, SANDBOX_SERVER_HASH


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entities", type=int, default=10_000)
    ap.add_argument("--latency-ms", type=float, default=50.0)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--changed", type=float, default=0.01, help="share of entities changed")
    ap.add_argument(
        "--processing-polls",
        type=int,
        default=1,
        help="polls each endpoint answers 'processing' before it completes (default: the "
        "sandbox's own, 1; 0: statements already processed, nothing polled)",
    )
    args = ap.parse_args()

    sandbox = Sandbox(
        args.entities,
        "--latency-ms",
        str(args.latency_ms),
        "--processing-polls",
        str(args.processing_polls),
    )
    sandbox.start()
    pin_to_client_cores()
    base = f"http://127.0.0.1:{sandbox.port}"
    try:
        with tempfile.TemporaryDirectory(prefix="bench-nightly-") as tmp:
            settings = Settings.load(
                _env_file=None,
                base_url=f"{base}/bank-connect/v1",
                api_key=SANDBOX_API_KEY,
                server_hash=SANDBOX_SERVER_HASH,
                warehouse=Path(tmp) / "wh",
                concurrency=args.concurrency,
                raw_enabled=True,
            )
            results = []

            def timed(label: str) -> None:
                t0 = time.perf_counter()
                run = run_sync(settings, kind="bench")
                seconds = time.perf_counter() - t0
                assert run.status == "succeeded", run.error
                results.append((label, seconds, run))
                s = run.sync
                print(
                    f"  {label}: {seconds:.1f} s, {run.requests:,} requests, "
                    f"{s['new']} new, {s['changed']} changed, {s['unchanged']} unchanged, "
                    f"{run.stats.rows['transactions']:,} transactions",
                    flush=True,
                )

            print(
                f"sandbox: {args.entities:,} entities, {args.latency_ms:g} ms latency, "
                f"{args.processing_polls} processing poll(s); concurrency {args.concurrency}",
                flush=True,
            )
            timed("full load")
            changed = max(1, round(args.entities * args.changed))
            requests.post(
                f"{base}/sandbox/advance",
                params={"new_entities": 0, "new_statements": changed},
                timeout=600,
            ).raise_for_status()
            timed(f"{args.changed:.0%} changed")
            timed("nothing changed")
    finally:
        sandbox.stop()

    (_, full_s, _), (_, inc_s, inc), (_, _, none) = results
    floor = math.ceil(args.entities / 10) + args.entities + 1
    rows = [[label, f"{s:.1f}", f"{r.requests:,}", f"{s / full_s:.3f}"] for label, s, r in results]
    print()
    print(
        f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}"
    )
    print(table(["run", "wall s", "requests", "÷ full"], rows))
    print()
    print(f"{args.changed:.0%} changed ÷ full load: {inc_s / full_s:.3f}  (target <= 0.10)")
    print(
        f"nothing changed: {none.requests:,} requests; listing pages + one per entity + "
        f"health = {floor:,}  ({'equal' if none.requests == floor else 'DIFFERENT'})"
    )
    print(f"changed entities fetched: {inc.sync['changed']} of {args.entities:,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
