"""Benchmark of extraction against the sandbox with 50 ms of added latency.

Measured side by side in one run, for each concurrency (8 and 32):

- ours:  ``Extractor.fetch`` pulling every endpoint of N entities (6 analysis endpoints,
         entity detail, get_pdfs), through the real client (retries, pacing, metrics).
- floor: a minimal threaded loop issuing the same GETs with plain ``requests`` (one
         session per thread, reading each body, nothing else).

Ours and the floor alternate for ``--rounds`` rounds and the best round of each is
compared: other work on a shared machine only ever slows a round down.

Printed: requests/s against the limit concurrency allows (concurrency / latency; target
at least 0.85 of it) and ours/floor wall time (target at most 1.15). Then listing: our
``list_entities`` over 100,000 entities against the floor fetching the same 10,000 pages
at the same concurrency (target at most 1.2).

By default the sandbox serves warm: one untimed pass first makes it build every entity's
data, and N (480) fits its 512-entity cache. That is how the real API answers (results are
stored when processing completes), and it keeps the sandbox's data generation, about 4 ms
of its one core per entity, out of a measure of the client. ``--cold`` pulls 600 entities
with no warm-up instead, so both sides also pay that generation cost. The sandbox runs
pinned on core 0 and this process on core 1.

    .venv/bin/python bench/extract.py                 # about 5 minutes
    .venv/bin/python bench/extract.py --cold          # generation on the sandbox's core too
    .venv/bin/python bench/extract.py --entities 200  # quicker, noisier
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

import requests
from _common import Sandbox, pin_to_client_cores, table

from bankconnect_etl.client import BankConnectClient
from bankconnect_etl.config import Settings
from bankconnect_etl.extract import ALL_ENDPOINTS, Extractor, list_entities
from bankconnect_etl.sandbox import SANDBOX_API_KEY, SANDBOX_SERVER_HASH

LATENCY_MS = 50
AUTH = {"x-api-key": SANDBOX_API_KEY, "server-hash": SANDBOX_SERVER_HASH}


def settings(base_url: str, concurrency: int) -> Settings:
    return Settings.load(
        base_url=base_url,
        api_key=SANDBOX_API_KEY,
        server_hash=SANDBOX_SERVER_HASH,
        concurrency=concurrency,
    )


def floor(urls: list[str], concurrency: int) -> tuple[float, int]:
    """Wall time of plain threaded GETs of ``urls``, and how many answered 200."""
    local = threading.local()

    def get(url: str) -> int:
        if not hasattr(local, "s"):
            local.s = requests.Session()
        r = local.s.get(url, headers=AUTH, timeout=60)
        r.content  # noqa: B018 - read the whole body, as the client does
        return r.status_code

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        ok = sum(code == 200 for code in pool.map(get, urls))
    return time.perf_counter() - t0, ok


def timed(fn: Callable[[], int]) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = fn()
    return time.perf_counter() - t0, n


def _range(runs: Iterable[tuple[float, int]]) -> str:
    rates = [n / t for t, n in runs]
    return f"{min(rates):,.0f}-{max(rates):,.0f}"


def entity_urls(base: str, ids: list[str]) -> list[str]:
    paths = {"entity": "/entity/{}/", "get_pdfs": "/entity/{}/get_pdfs/"}
    return [
        base + paths.get(e, "/entity/{}/" + e + "/").format(eid)
        for eid in ids
        for e in ALL_ENDPOINTS
    ]


def pull(base: str, ids: list[str], concurrency: int) -> tuple[float, int, dict]:
    with BankConnectClient(settings(base, concurrency)) as c:
        seconds, _ = timed(lambda: sum(1 for _ in Extractor(c).fetch(ids)))
        m = c.metrics.snapshot()
    return seconds, m.total_requests, m.latency_ms


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entities", type=int, help="default 480 warm, 600 cold")
    parser.add_argument(
        "--cold", action="store_true", help="no warm-up pass, more entities than the cache"
    )
    parser.add_argument("--list-entities", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32])
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating rounds; the best of each is compared"
    )
    args = parser.parse_args()
    args.entities = args.entities or (600 if args.cold else 480)
    pin_to_client_cores()
    print(f"machine   nproc {os.cpu_count()}, python {platform.python_version()}")
    print(f"command   {' '.join([os.path.relpath(sys.executable), *sys.argv])}")
    print(f"sandbox   --latency-ms {LATENCY_MS} --processing-polls 0, on core 0; client on core 1")
    print(f"mode      {'cold: no warm-up' if args.cold else 'warm: one untimed pass first'}")

    pulls, ratios = [], []
    sb = Sandbox(
        args.entities, "--latency-ms", str(LATENCY_MS), "--processing-polls", "0", "--seed", "11"
    )
    sb.start()
    try:
        base = f"http://127.0.0.1:{sb.port}/bank-connect/v1"
        with BankConnectClient(settings(base, 8)) as c:
            ids = [e["entity_id"] for e in list_entities(c).entities]
        urls = entity_urls(base, ids)
        if not args.cold:
            floor(urls, 8)
        for conc in args.concurrency:
            limit = conc / (LATENCY_MS / 1000)
            ours_runs, floor_runs = [], []
            for _ in range(args.rounds):  # alternate, so drift on a shared machine hits both
                ours_runs.append(pull(base, ids, conc))
                floor_runs.append(floor(urls, conc))
            ours_s, ours_n, lat = min(ours_runs, key=lambda r: r[0])
            floor_s, floor_ok = min(floor_runs, key=lambda r: r[0])
            spread = _range(run[:2] for run in ours_runs)
            floor_spread = _range(floor_runs)
            pulls.append(
                [
                    f"ours, concurrency {conc}",
                    f"{ours_n:,}",
                    f"{ours_s:.2f}",
                    f"{ours_n / ours_s:,.0f}",
                    spread,
                    f"{limit:,.0f}",
                    f"{ours_n / ours_s / limit:.2f}",
                    f"{lat['p50']:.0f}/{lat['p99']:.0f}",
                ]
            )
            pulls.append(
                [
                    f"floor, concurrency {conc}",
                    f"{floor_ok:,}",
                    f"{floor_s:.2f}",
                    f"{floor_ok / floor_s:,.0f}",
                    floor_spread,
                    f"{limit:,.0f}",
                    f"{floor_ok / floor_s / limit:.2f}",
                    "",
                ]
            )
            ratios.append(
                [
                    f"ours / floor wall time, concurrency {conc}",
                    f"{ours_s / floor_s:.2f}",
                    "<= 1.15",
                ]
            )
            ratios.append(
                [
                    f"ours req/s / limit, concurrency {conc}",
                    f"{ours_n / ours_s / limit:.2f}",
                    ">= 0.85",
                ]
            )
    finally:
        sb.stop()

    conc = max(args.concurrency)
    big = Sandbox(args.list_entities, "--latency-ms", str(LATENCY_MS), "--seed", "11")
    big.start()
    try:
        base = f"http://127.0.0.1:{big.port}/bank-connect/v1"
        pages = -(-args.list_entities // 10)
        with BankConnectClient(settings(base, conc)) as c:
            list_s, listed = timed(lambda: len(list_entities(c, workers=conc).entities))
        page_s, page_ok = floor([f"{base}/entity/?page={p}" for p in range(1, pages + 1)], conc)
    finally:
        big.stop()
    listing = [
        [f"list_entities, {listed:,} entities", f"{pages:,}", f"{list_s:.2f}"],
        [f"floor: {page_ok:,} pages by number", f"{page_ok:,}", f"{page_s:.2f}"],
    ]
    ratios.append([f"listing / page floor, concurrency {conc}", f"{list_s / page_s:.2f}", "<= 1.2"])

    print(
        f"\npull of every endpoint for {len(ids):,} entities ({len(ALL_ENDPOINTS)} requests each)"
    )
    print(f"best of {args.rounds} alternating rounds each; 'range' is req/s over the rounds")
    print(table(["run", "200s", "s", "req/s", "range", "limit", "/limit", "p50/p99 ms"], pulls))
    print(f"\nlisting at concurrency {conc}")
    print(table(["run", "requests", "s"], listing))
    print()
    print(table(["ratio", "value", "target"], ratios))
    return 0


if __name__ == "__main__":
    sys.exit(main())
