"""Peer benchmark: our full load against dlt's ``rest_api`` source, same pull, same world.

Three pulls of one sandbox world (same seed, entities and latency; processing-polls 0, so
no endpoint ever answers ``processing`` and neither tool has to poll: dlt has no
poll-until-complete), each in a fresh subprocess against a freshly started sandbox:

- floor: plain threaded ``requests`` (one session per thread, bodies read, nothing else):
         entity-list page 1, the other pages, then every endpoint of every entity
         (``bench/extract.py``'s floor), then ``net_banking_health``. No parsing beyond
         the listing, no storage: the raw threaded-fetch floor of the client issue.
- ours:  ``pipeline.run_sync(settings, kind="bench")`` into a fresh DuckLake warehouse:
         parallel listing, every endpoint of every entity, transform, validation, load.
- dlt:   ``dlt.sources.rest_api.rest_api_source`` into a fresh DuckDB file: the entity
         list as the parent resource, one parallelized child resource per endpoint,
         extract + normalize + load by ``pipeline.run``.

Both tools get the same number of HTTP workers (``--concurrency``). Wall time is measured
inside each subprocess around the pull alone (imports, sandbox start-up and the row
counts after it are outside). Requests are counted the same way for all three, at
``urllib3.connectionpool.HTTPConnectionPool.urlopen``, under requests and ours alike
(retries included).

Printed: a table (tool, configuration, wall s, requests, transactions loaded) and the
ratios dlt/ours (target at least 1.4) and ours/floor (target at most 1.15). The sandbox
runs pinned on core 0 and the measured process on core 1 (its worker processes too);
``--cores shared`` pins nothing, so every process may use both cores.

dlt is installed only by the ``[bench]`` extra (``make .venv/.bench``); nothing else in
the project imports it.

    .venv/bin/python bench/peer_dlt.py                      # about 3 minutes
    .venv/bin/python bench/peer_dlt.py --rounds 3           # best of 3 alternating rounds
    .venv/bin/python bench/peer_dlt.py --entities 500       # quicker, noisier
    .venv/bin/python bench/peer_dlt.py --dlt-format default # dlt's insert_values files
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import requests
import urllib3
from _common import Sandbox, pin_to_client_cores, share_cores, table

HERE = Path(__file__).resolve().parent
DATASET = "bankconnect"


# --------------------------------------------------------------------------- children


def _count_requests() -> itertools.count:
    """Count every HTTP request this process sends: all three send through urllib3's
    connection pools (the floor and dlt by way of requests, ours directly)."""
    counter = itertools.count()
    urlopen = urllib3.connectionpool.HTTPConnectionPool.urlopen

    def counted(self, method, url, *args, **kwargs):  # type: ignore[no-untyped-def]
        next(counter)  # atomic under the GIL
        return urlopen(self, method, url, *args, **kwargs)

    urllib3.connectionpool.HTTPConnectionPool.urlopen = counted  # type: ignore[method-assign]
    return counter


def _sent(counter: itertools.count) -> int:
    return next(counter)  # the number of calls before this one


def _cpu() -> float:
    """CPU seconds of this process and its reaped children (our transform worker)."""
    t = psutil.Process().cpu_times()
    return t.user + t.system + t.children_user + t.children_system


def child_floor(base: str, concurrency: int, _tmp: Path) -> dict:
    from extract import AUTH, entity_urls, floor

    counter = _count_requests()
    local = threading.local()

    def get_json(url: str) -> dict:
        if not hasattr(local, "s"):
            local.s = requests.Session()
        r = local.s.get(url, headers=AUTH, timeout=60)
        r.raise_for_status()
        return r.json()

    c0, t0 = _cpu(), time.perf_counter()
    first = get_json(f"{base}/entity/?page=1")
    pages = max(1, math.ceil(first["count"] / max(1, len(first["results"]))))
    with ThreadPoolExecutor(concurrency) as pool:
        rest = list(pool.map(get_json, [f"{base}/entity/?page={p}" for p in range(2, pages + 1)]))
    ids = [e["entity_id"] for body in [first, *rest] for e in body["results"]]
    list_s = time.perf_counter() - t0
    entity_s, ok = floor(entity_urls(base, ids), concurrency)
    t1 = time.perf_counter()
    get_json(f"{base}/net_banking_health/")
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "cpu": _cpu() - c0,
        "list_seconds": list_s,
        "entity_seconds": entity_s,
        "health_seconds": time.perf_counter() - t1,
        "requests": _sent(counter),
        "ok": ok + pages + 1,
        "entities": len(ids),
        "transactions": None,
    }


def child_ours(base: str, concurrency: int, tmp: Path) -> dict:
    from bankconnect_etl import warehouse
    from bankconnect_etl.config import Settings
    from bankconnect_etl.pipeline import run_sync
    from bankconnect_etl.sandbox import SANDBOX_API_KEY, SANDBOX_SERVER_HASH

    counter = _count_requests()
    wh = tmp / "warehouse"
    settings = Settings.load(
        base_url=base,
        api_key=SANDBOX_API_KEY,
        server_hash=SANDBOX_SERVER_HASH,
        warehouse=wh,
        concurrency=concurrency,
        poll_initial_s=0.1,  # never used: the sandbox answers completed at once
    )
    c0, t0 = _cpu(), time.perf_counter()
    run = run_sync(settings, kind="bench")
    seconds = time.perf_counter() - t0
    cpu = _cpu() - c0
    sent = _sent(counter)
    con = warehouse.connect(wh)
    try:
        txns = con.sql("SELECT count(*) FROM transactions").fetchone()[0]
        entities = con.sql("SELECT count(*) FROM entities").fetchone()[0]
    finally:
        con.close()
    return {
        "seconds": seconds,
        "cpu": cpu,
        "requests": sent,
        "client_requests": run.requests,
        "retries": run.retries,
        "status": run.status,
        "entities": entities,
        "transactions": txns,
        "config": (
            f"run_sync: concurrency {settings.concurrency} (HTTP workers and pool), "
            f"batch {settings.batch_size}, transform_workers {settings.transform_workers}, "
            f"raw zone {'on' if settings.raw_enabled else 'off'}"
        ),
    }


def dlt_env(concurrency: int, tmp: Path, loader_format: str | None) -> dict[str, str]:
    """dlt's configuration, as environment variables (set before dlt is imported)."""
    env = {
        "RUNTIME__DLTHUB_TELEMETRY": "false",  # no anonymous telemetry: nothing leaves the box
        "DLT_DATA_DIR": str(tmp / "dlt-data"),  # not ~/.dlt
        "EXTRACT__WORKERS": str(concurrency),  # thread pool running parallelized items
        "EXTRACT__MAX_PARALLEL_ITEMS": str(concurrency),  # items in flight (default 20)
        "NORMALIZE__WORKERS": "1",  # one normaliser, like our one transform worker
        # dlt gzips its intermediate files by default; off, as a user tuning for speed would.
        "DATA_WRITER__DISABLE_COMPRESSION": "true",
        "RUNTIME__LOG_LEVEL": "WARNING",
    }
    if loader_format and loader_format != "default":
        env["BENCH_DLT_LOADER_FILE_FORMAT"] = loader_format  # read by child_dlt
    return env


def dlt_config(base: str) -> dict:
    """The same pull as ours, as a rest_api source: listing, 8 endpoints per entity, health."""
    from bankconnect_etl.extract import ANALYSIS_ENDPOINTS
    from bankconnect_etl.sandbox import SANDBOX_API_KEY, SANDBOX_SERVER_HASH

    per_entity = "entity/{resources.entities.entity_id}/"
    children = [
        {"name": e, "endpoint": {"path": per_entity + e + "/"}, "parallelized": True}
        for e in ANALYSIS_ENDPOINTS
    ] + [
        {"name": "entity_detail", "endpoint": {"path": per_entity}, "parallelized": True},
        {
            "name": "get_pdfs",
            "endpoint": {"path": per_entity + "get_pdfs/"},
            "include_from_parent": ["entity_id"],  # the only body without its entity_id
            "parallelized": True,
        },
    ]
    return {
        "client": {
            "base_url": base + "/",
            "auth": {
                "type": "api_key",
                "name": "x-api-key",
                "api_key": SANDBOX_API_KEY,
                "location": "header",
            },
            "headers": {"server-hash": SANDBOX_SERVER_HASH},
        },
        "resource_defaults": {
            "write_disposition": "append",
            # Each body is one record; its lists become nested tables (transactions ->
            # transactions__transactions), as our warehouse gets every part of it too.
            "endpoint": {"data_selector": "$", "paginator": "single_page"},
        },
        "resources": [
            {
                "name": "entities",
                "endpoint": {
                    "path": "entity/",
                    "data_selector": "results",
                    # `count` is entities, not pages, so the page_number paginator's
                    # total_path cannot stop it; the absolute `next` link can.
                    "paginator": {"type": "json_link", "next_url_path": "next"},
                },
            },
            *children,
            {"name": "net_banking_health", "endpoint": {"path": "net_banking_health/"}},
        ],
    }


def child_dlt(base: str, concurrency: int, tmp: Path) -> dict:
    import dlt
    from dlt.sources.rest_api import rest_api_source

    counter = _count_requests()
    db = tmp / "dlt.duckdb"
    pipeline = dlt.pipeline(
        pipeline_name="peer_bench",
        pipelines_dir=str(tmp / "pipelines"),
        destination=dlt.destinations.duckdb(str(db)),
        dataset_name=DATASET,
    )
    source = rest_api_source(dlt_config(base), name="bankconnect")
    fmt = os.environ.get("BENCH_DLT_LOADER_FILE_FORMAT") or None  # None: duckdb's preferred
    c0, t0 = _cpu(), time.perf_counter()
    info = pipeline.run(source, loader_file_format=fmt)
    seconds = time.perf_counter() - t0
    cpu = _cpu() - c0
    sent = _sent(counter)
    info.raise_on_failed_jobs()
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        q = f"SELECT count(*) FROM {DATASET}.%s"  # noqa: S608 - fixed table names
        txns = con.sql(q % "transactions__transactions").fetchone()[0]
        entities = con.sql(q % "entities").fetchone()[0]
        tables = con.sql(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ?",
            params=[DATASET],
        ).fetchone()[0]
    finally:
        con.close()
    norm = pipeline.last_trace.last_normalize_info
    steps = {
        s.step: round(s.finished_at.timestamp() - s.started_at.timestamp(), 2)
        for s in pipeline.last_trace.steps
        if s.finished_at
    }
    return {
        "seconds": seconds,
        "cpu": cpu,
        "requests": sent,
        "entities": entities,
        "transactions": txns,
        "tables": tables,
        "rows_normalized": sum(norm.row_counts.values()) if norm else None,
        "steps": steps,
        "version": dlt.__version__,
        "config": (
            f"rest_api_source, dlt {dlt.__version__}: 8 parallelized child resources, "
            f"extract.workers {os.environ['EXTRACT__WORKERS']}, "
            f"extract.max_parallel_items {os.environ['EXTRACT__MAX_PARALLEL_ITEMS']}, "
            f"normalize.workers {os.environ['NORMALIZE__WORKERS']}, "
            "load.workers 20 (default), "
            f"loader file format {fmt or 'insert_values (duckdb default)'}, "
            "intermediate-file gzip off"
        ),
    }


CHILDREN = {"floor": child_floor, "ours": child_ours, "dlt": child_dlt}


def run_child(kind: str, base: str, concurrency: int, tmp: Path, env: dict[str, str]) -> dict:
    tmp.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            kind,
            base,
            str(concurrency),
            str(tmp),
        ],
        capture_output=True,
        text=True,
        cwd=tmp,  # no project .env or .dlt/ config picked up by either tool
        env={**os.environ, **env},
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{kind} failed ({out.returncode}):\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- main


def run_once(kind: str, args: argparse.Namespace, sandbox_flags: list[str], tmp: Path) -> dict:
    """One pull by ``kind`` against a freshly started sandbox (the same world each time)."""
    sb = Sandbox(args.entities, *sandbox_flags)
    sb.start()
    try:
        base = f"http://127.0.0.1:{sb.port}/bank-connect/v1"
        env = dlt_env(args.concurrency, tmp / kind, args.dlt_format) if kind == "dlt" else {}
        before = sb.process().cpu_times()
        result = run_child(kind, base, args.concurrency, tmp / kind, env)
        after = sb.process().cpu_times()
    finally:
        sb.stop()
    result["sandbox_cpu"] = (after.user + after.system) - (before.user + before.system)
    return result


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        sys.path.insert(0, str(HERE))
        kind, base, conc, tmp = sys.argv[2], sys.argv[3], int(sys.argv[4]), Path(sys.argv[5])
        print(json.dumps(CHILDREN[kind](base, conc, tmp)))
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entities", type=int, default=2000)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--concurrency", type=int, default=32, help="HTTP workers, both tools")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--dlt-format",
        choices=["insert_values", "jsonl", "parquet", "default"],
        default="parquet",
        help="dlt's loader file format; parquet, its fastest into DuckDB here, by default "
        "('default': duckdb's own preference, insert_values)",
    )
    parser.add_argument(
        "--only", nargs="+", choices=list(CHILDREN), default=list(CHILDREN), help="runs to do"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="alternating rounds of every run; each tool's best (lowest wall time) is "
        "compared, and every round's wall time printed (this machine's speed drifts by "
        "a fifth within minutes)",
    )
    parser.add_argument(
        "--cores",
        choices=["split", "shared"],
        default="split",
        help="split: sandbox on core 0, the measured process on the others (default); "
        "shared: nothing pinned, the OS schedules all processes over every core",
    )
    args = parser.parse_args()
    if args.cores == "shared":
        share_cores()
    pin_to_client_cores()
    sandbox_flags = [
        "--latency-ms", f"{args.latency_ms:g}", "--processing-polls", "0", "--seed",
        str(args.seed),
    ]  # fmt: skip
    print(f"machine   nproc {os.cpu_count()}, python {platform.python_version()}")
    print(f"command   {' '.join([os.path.relpath(sys.executable), *sys.argv])}")
    print(
        f"sandbox   --entities {args.entities} {' '.join(sandbox_flags)}, started afresh "
        "for each run; "
        + (
            "on core 0, measured process on core 1"
            if args.cores == "split"
            else "nothing pinned: sandbox and measured process share both cores"
        )
    )
    print(
        "polling   none: --processing-polls 0 makes every endpoint answer completed at once, "
        "for all three (dlt has no poll-until-complete)"
    )
    results: dict[str, dict] = {}
    rounds: dict[str, list[float]] = {kind: [] for kind in args.only}
    for n in range(1, max(1, args.rounds) + 1):
        for kind in args.only:
            with tempfile.TemporaryDirectory(prefix="bench-peer-dlt-") as tmp:
                r = run_once(kind, args, sandbox_flags, Path(tmp))
            rounds[kind].append(r["seconds"])
            if kind not in results or r["seconds"] < results[kind]["seconds"]:
                results[kind] = r
            print(
                f"  round {n} {kind:<5} {r['seconds']:7.1f} s  {r['requests']:,} requests",
                flush=True,
            )

    floor_cfg = (
        f"plain requests, {args.concurrency} threads, one session each: listing, "
        "every endpoint of every entity, health; bodies read, nothing stored"
    )
    configs = {"floor": floor_cfg}
    rows = []
    if args.rounds > 1:
        print(f"\nbest of {args.rounds} alternating rounds; every round's wall time (s):")
        for kind in args.only:
            print(f"  {kind:<5} " + "  ".join(f"{s:.1f}" for s in rounds[kind]))
    for kind in args.only:
        r = results[kind]
        configs.setdefault(kind, r.get("config", ""))
        txns = r.get("transactions")
        rows.append(
            [
                kind,
                f"{r['seconds']:.1f}",
                f"{r['requests']:,}",
                f"{r['requests'] / r['seconds']:,.0f}",
                f"{r['cpu']:.1f}",
                f"{r['sandbox_cpu']:.1f}",
                f"{r['entities']:,}",
                "" if txns is None else f"{txns:,}",
            ]
        )
    print(f"\nfull pull of {args.entities:,} entities at concurrency {args.concurrency}")
    header = ["tool", "wall s", "requests", "req/s", "CPU s", "sandbox CPU s", "entities"]
    print(table([*header, "transactions"], rows))
    where = "one core: core 1" if args.cores == "split" else "cores shared with the sandbox"
    print(f"CPU s: the measured process and its workers, in the timed window ({where})")
    print()
    for kind in args.only:
        print(f"{kind:<6}{configs[kind]}")
    if "floor" in results:
        f = results["floor"]
        print(
            f"      floor split: listing {f['list_seconds']:.2f} s, entity endpoints "
            f"{f['entity_seconds']:.2f} s, health {f['health_seconds']:.2f} s; "
            f"{f['ok']:,} answered 200"
        )
    if "ours" in results:
        o = results["ours"]
        print(
            f"      ours: run {o['status']}, client counted {o['client_requests']:,} requests "
            f"({o['retries']} retries)"
        )
    if "dlt" in results:
        d = results["dlt"]
        steps = ", ".join(f"{k} {v:.1f} s" for k, v in d["steps"].items())
        print(f"      dlt steps: {steps}; {d['tables']} tables, {d['rows_normalized']:,} rows")

    ratios = []
    if {"ours", "dlt"} <= results.keys():
        o, d = results["ours"], results["dlt"]
        ratios.append(["dlt / ours, wall time", f"{d['seconds'] / o['seconds']:.2f}", ">= 1.4"])
        if o["transactions"] != d["transactions"]:
            print(
                f"\nWARNING: transactions differ: ours {o['transactions']:,}, "
                f"dlt {d['transactions']:,}"
            )
        else:
            print(f"\ntransactions loaded: ours {o['transactions']:,} = dlt {d['transactions']:,}")
    if {"ours", "floor"} <= results.keys():
        ratios.append(
            [
                "ours / floor, wall time",
                f"{results['ours']['seconds'] / results['floor']['seconds']:.2f}",
                "<= 1.15",
            ]
        )
    if ratios:
        print()
        print(table(["ratio", "value", "target"], ratios))
    return 0


if __name__ == "__main__":
    sys.exit(main())
