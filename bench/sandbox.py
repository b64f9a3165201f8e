"""Benchmark of the BankConnect sandbox against its two requirements.

(a) Scale: with ``--entities 100000`` the server's resident memory stays under 500 MB.
    The sandbox keeps no generated entity in memory, only ids, links, poll counters and
    small LRU caches, so RSS is sampled at the three points where that state grows:
    after start, after every entity page has been listed, and after ``accounts/`` has
    been polled for every entity and ``transactions/`` for a sample (which fills the
    poll counters and the entity caches). A sampler also records the peak in between.
    Start-up time is process start to the first 200 from ``GET /sandbox/ping``.

(b) Throughput: entity-list pages are served at 1,500 requests/s or more, with the
    sandbox's added latency left at its default of zero. The same closed-loop load is
    run against ``GET /sandbox/ping`` (no auth, no data), which is what FastAPI and
    uvicorn can do on this machine; the list/ping ratio shows how much of that ceiling
    the route itself costs. Ping and list alternate for a few rounds and the best round of
    each is compared, since other work on a shared machine only ever slows a round down.
    ``transactions/`` (about 125 KB of JSON) is measured for information; with
    ``--quick`` its 500-entity sample fits the server's 512-entity cache, so that figure
    is for cached entities and not comparable with the full run's 2,000. Server, client
    and other CPU over each window are printed so it is visible which side was saturated.

The server is the real CLI (``bankconnect-etl sandbox --port 0``) in a subprocess, always
terminated at the end. Only 127.0.0.1 is contacted.

    .venv/bin/python bench/sandbox.py            # the full run, several minutes
    .venv/bin/python bench/sandbox.py --quick    # 10,000 entities, short windows
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing as mp
import os
import platform
import queue
import random
import shlex
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from _common import Sandbox, cpu_split, table

API = "/bank-connect/v1"
AUTH = {"x-api-key": "sandbox-api-key", "server-hash": "sandbox-server-hash"}
PAGE_SIZE = 10
RSS_BUDGET_MB = 500
TARGET_RPS = 1500
SEED = 20240601

# The load's layout, chosen by measuring on a 2-core machine. The server is one asyncio
# process and can use one core, so it is pinned to the first core and the clients to the
# rest: the load generator then never takes CPU from the server (unpinned, the server got
# 0.75-0.95 of a core and runs varied by 20%). Eight requests in flight keep one queued
# at the server while a client parses a response. Pinned, 1x8, 2x4, 2x8 and 4x2 all kept
# the server at 1.00 core on the entity list and were within noise of each other; 2x4
# had the best ping at the lowest latency. Two processes, so no response waits for one
# GIL; more only add switching on the client core, and more connections only add queueing.
PROCESSES = 2
CONNECTIONS = 4
WARMUP_S = 1.0
CONNECT_TIMEOUT_S = 10.0
READY_TIMEOUT_S = 60.0
SWEEP_BUDGET_S = 0.05  # per request, to bound a sweep that stops making progress
BANNER_LINES = 8  # what `bankconnect-etl sandbox` prints before serving
ROUNDS = 3  # ping and entity list alternate; the best round of each is compared


@dataclass
class Stats:
    ok: int = 0
    nbytes: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    ids: list[str] = field(default_factory=list)

    def merge(self, other: Stats) -> None:
        self.ok += other.ok
        self.nbytes += other.nbytes
        self.latencies.extend(other.latencies)
        self.errors.update(other.errors)
        self.ids.extend(other.ids)


@dataclass
class Job:
    """One client process: ``timed`` loops over random paths, ``sweep`` fetches each path once."""

    mode: str
    port: int
    paths: list[str]
    headers: dict[str, str]
    threads: int
    seed: int = 0
    warmup_s: float = 0.0
    seconds: float = 0.0
    deadline_s: float = 0.0
    collect_ids: bool = False
    cpus: frozenset[int] = frozenset()


@dataclass
class Load:
    stats: Stats
    wall_s: float
    server_cpu: float = 0.0  # cores, over the measuring window
    client_cpu: float = 0.0
    other_cpu: float = 0.0  # everything else on the machine, which the run does not control

    @property
    def rps(self) -> float:
        return self.stats.ok / self.wall_s if self.wall_s else 0.0


# --------------------------------------------------------------------------- client side


def _fetch(
    conn: http.client.HTTPConnection, path: str, headers: dict[str, str]
) -> tuple[int, bytes]:
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    return resp.status, resp.read()


def _record(stats: Stats, status: int, body: bytes, latency: float, collect_ids: bool) -> None:
    if status != 200:
        stats.errors[f"HTTP {status}"] += 1
        return
    stats.ok += 1
    stats.nbytes += len(body)
    stats.latencies.append(latency)
    if collect_ids:
        stats.ids.extend(r["entity_id"] for r in json.loads(body)["results"])


def _request(conn: http.client.HTTPConnection, path: str, job: Job) -> tuple[int, bytes, str]:
    """Status, body and error name; on a failure the connection is reopened by the next call."""
    try:
        status, body = _fetch(conn, path, job.headers)
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        time.sleep(0.01)
        return 0, b"", type(exc).__name__
    return status, body, ""


def _timed_thread(job: Job, start: float, seed: int, out: Stats) -> None:
    rng = random.Random(seed)
    measure_from = start + job.warmup_s
    until = measure_from + job.seconds
    conn = http.client.HTTPConnection("127.0.0.1", job.port, timeout=CONNECT_TIMEOUT_S)
    while (sent := time.monotonic()) < until:
        status, body, error = _request(conn, rng.choice(job.paths), job)
        done = time.monotonic()
        if not measure_from <= done < until:
            continue
        if error:
            out.errors[error] += 1
        else:
            _record(out, status, body, done - sent, collect_ids=False)
    conn.close()


def _sweep_thread(job: Job, paths: list[str], start: float, out: Stats) -> None:
    until = start + job.deadline_s
    conn = http.client.HTTPConnection("127.0.0.1", job.port, timeout=CONNECT_TIMEOUT_S)
    for n, path in enumerate(paths):
        if time.monotonic() >= until:
            out.errors["unfinished (sweep deadline)"] += len(paths) - n
            break
        sent = time.monotonic()
        status, body, error = _request(conn, path, job)
        if error:
            out.errors[error] += 1
        else:
            _record(out, status, body, time.monotonic() - sent, job.collect_ids)
    conn.close()


def _client_process(
    job: Job,
    go: mp.synchronize.Event,
    start_at: mp.sharedctypes.Synchronized,
    results: mp.Queue,
    index: int,
) -> None:
    if job.cpus:
        os.sched_setaffinity(0, job.cpus)
    results.put(("ready", index, None))
    if not go.wait(READY_TIMEOUT_S):
        results.put(("done", index, Stats(errors=Counter({"never started": 1}))))
        return
    start = start_at.value
    parts = [Stats() for _ in range(job.threads)]
    if job.mode == "timed":
        targets = [
            (_timed_thread, (job, start, job.seed + k, parts[k])) for k in range(job.threads)
        ]
    else:
        targets = [
            (_sweep_thread, (job, job.paths[k :: job.threads], start, parts[k]))
            for k in range(job.threads)
        ]
    threads = [threading.Thread(target=fn, args=args, daemon=True) for fn, args in targets]
    for t in threads:
        t.start()
    limit = job.warmup_s + job.seconds if job.mode == "timed" else job.deadline_s
    for t in threads:
        t.join(max(0.0, start + limit + 2 * CONNECT_TIMEOUT_S - time.monotonic()))
    total = Stats()
    for part in parts:
        total.merge(part)
    hung = sum(t.is_alive() for t in threads)
    if hung:
        total.errors["client thread hung"] += hung
    results.put(("done", index, total))


# --------------------------------------------------------------------------- driving clients


def _cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def _collect(results: mp.Queue, want: str, count: int, timeout: float) -> dict[int, Stats | None]:
    got: dict[int, Stats | None] = {}
    until = time.monotonic() + timeout
    while len(got) < count:
        left = until - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"only {len(got)} of {count} client processes reported {want!r}")
        try:
            kind, index, payload = results.get(timeout=left)
        except queue.Empty:
            continue
        if kind == want:
            got[index] = payload
    return got


def run_clients(jobs: list[Job], server: psutil.Process) -> Load:
    """Run one client process per job, started together; return their merged results."""
    ctx = mp.get_context("spawn")  # the parent has threads, so no fork
    go, start_at, results = ctx.Event(), ctx.Value("d", 0.0), ctx.Queue()
    procs = [
        ctx.Process(target=_client_process, args=(job, go, start_at, results, i), daemon=True)
        for i, job in enumerate(jobs)
    ]
    try:
        for p in procs:
            p.start()
        _collect(results, "ready", len(jobs), READY_TIMEOUT_S)
        start = time.monotonic() + 0.05
        start_at.value = start
        go.set()
        job = jobs[0]
        if job.mode == "timed":
            load = _watch_window(job, start, server, [psutil.Process(p.pid) for p in procs])
            limit = job.warmup_s + job.seconds
        else:
            load = Load(Stats(), 0.0)
            limit = job.deadline_s
        done = _collect(
            results, "done", len(jobs), start + limit + 3 * CONNECT_TIMEOUT_S - time.monotonic()
        )
        if job.mode != "timed":
            load.wall_s = time.monotonic() - start
        for stats in done.values():
            if stats is not None:
                load.stats.merge(stats)
        return load
    finally:
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.terminate()
                p.join(5)


def _watch_window(
    job: Job, start: float, server: psutil.Process, clients: list[psutil.Process]
) -> Load:
    """Sleep through the warm-up and the window, reading CPU time at both edges."""
    time.sleep(max(0.0, start + job.warmup_s - time.monotonic()))
    s0, c0, m0, t0 = _cpu_seconds([server]), _cpu_seconds(clients), _busy(), time.monotonic()
    time.sleep(max(0.0, start + job.warmup_s + job.seconds - time.monotonic()))
    s1, c1, m1, t1 = _cpu_seconds([server]), _cpu_seconds(clients), _busy(), time.monotonic()
    srv, cli, machine = ((b - a) / (t1 - t0) for a, b in ((s0, s1), (c0, c1), (m0, m1)))
    return Load(Stats(), job.seconds, srv, cli, max(0.0, machine - srv - cli))


def _busy() -> float:
    """CPU seconds the whole machine has spent not idle."""
    t = psutil.cpu_times()
    return (
        t.user
        + t.system
        + getattr(t, "nice", 0.0)
        + getattr(t, "irq", 0.0)
        + getattr(t, "softirq", 0.0)
    )


def timed_load(
    port: int,
    server: psutil.Process,
    paths: list[str],
    headers: dict[str, str],
    seconds: float,
    warmup_s: float,
) -> Load:
    jobs = [
        Job(
            "timed",
            port,
            paths,
            headers,
            CONNECTIONS,
            seed=SEED + 100 * i,
            warmup_s=warmup_s,
            seconds=seconds,
            cpus=frozenset(cpu_split()[1]),
        )
        for i in range(PROCESSES)
    ]
    return run_clients(jobs, server)


def sweep(
    port: int,
    server: psutil.Process,
    paths: list[str],
    headers: dict[str, str],
    collect_ids: bool = False,
) -> Load:
    deadline = 60.0 + SWEEP_BUDGET_S * len(paths)
    jobs = [
        Job(
            "sweep",
            port,
            paths[i::PROCESSES],
            headers,
            CONNECTIONS,
            deadline_s=deadline,
            collect_ids=collect_ids,
            cpus=frozenset(cpu_split()[1]),
        )
        for i in range(PROCESSES)
    ]
    return run_clients(jobs, server)


# --------------------------------------------------------------------------- the server


class RssSampler:
    """Samples the server's RSS in the background, so a peak between checkpoints shows."""

    def __init__(self, proc: psutil.Process, every_s: float = 0.2) -> None:
        self.proc, self.every_s = proc, every_s
        self.peak = self.overall = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        with contextlib.suppress(psutil.Error):
            return self.proc.memory_info().rss
        return 0

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            value = self.rss()
            self.peak, self.overall = max(self.peak, value), max(self.overall, value)

    def checkpoint(self) -> tuple[int, int]:
        """RSS now and the peak since the previous checkpoint."""
        now = self.rss()
        peak, self.peak = max(self.peak, now), now
        self.overall = max(self.overall, now)
        return now, peak

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)


# --------------------------------------------------------------------------- report


def _mb(nbytes: int) -> float:
    return nbytes / 2**20


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _errors(stats: Stats) -> str:
    return ", ".join(f"{k} x{v}" for k, v in stats.errors.most_common()) or "0"


def load_row(name: str, load: Load) -> list[str]:
    s = load.stats
    return [
        name,
        f"{load.rps:,.0f}",
        f"{s.ok:,}",
        _errors(s),
        f"{_pct(s.latencies, 0.5) * 1000:.2f}",
        f"{_pct(s.latencies, 0.99) * 1000:.2f}",
        f"{s.nbytes / max(1, s.ok) / 1024:.1f}",
        f"{load.server_cpu:.2f}",
        f"{load.client_cpu:.2f}",
        f"{load.other_cpu:.2f}",
    ]


def memory_row(name: str, point: tuple[int, int]) -> list[str]:
    now, peak = point
    return [
        name,
        f"{_mb(now):.1f}",
        f"{_mb(peak):.1f}",
        f"{_mb(now) / RSS_BUDGET_MB:.2f}",
        f"{_mb(peak) / RSS_BUDGET_MB:.2f}",
    ]


def sweep_row(name: str, load: Load) -> list[str]:
    return [
        name,
        f"{load.stats.ok:,}",
        _errors(load.stats),
        f"{load.wall_s:.1f}",
        f"{load.rps:,.0f}",
    ]


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def machine_header(sandbox: Sandbox) -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")), "?"
    )
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    ram_gib = psutil.virtual_memory().total / 2**30
    server_cpus, client_cpus = cpu_split()
    pinning = (
        f"server on CPU {sorted(server_cpus)}, clients on CPU {sorted(client_cpus)}"
        if server_cpus
        else "none (one CPU)"
    )
    return "\n".join(
        [
            f"machine   nproc {usable} ({cpu}), {ram_gib:.1f} GiB RAM, "
            f"{platform.system()} {platform.release()}",
            f"python    {platform.python_version()} ({sys.executable})",
            f"command   {shlex.join([sys.executable, *sys.argv])}",
            f"server    {shlex.join(sandbox.command)}",
            f"clients   {PROCESSES} processes x {CONNECTIONS} keep-alive http.client connections, "
            f"{WARMUP_S:g} s warm-up",
            f"pinning   {pinning}",
        ]
    )


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


# --------------------------------------------------------------------------- the run


@dataclass
class Plan:
    entities: int
    seconds: float
    accounts_sweep: int
    transactions_sample: int

    @property
    def pages(self) -> int:
        return -(-self.entities // PAGE_SIZE)


def plan_from(args: argparse.Namespace) -> Plan:
    if args.quick:
        return Plan(10_000, 2.0, 5_000, 500)
    return Plan(args.entities, args.seconds, args.entities, min(2_000, args.entities))


@dataclass
class Results:
    memory: list[list[str]] = field(default_factory=list)
    sweeps: list[list[str]] = field(default_factory=list)
    loads: list[tuple[str, Load]] = field(default_factory=list)
    peak_rss: int = 0
    distinct_ids: int = 0

    def best(self, name: str) -> float:
        return max((load.rps for n, load in self.loads if n.split(" #")[0] == name), default=0.0)


def measure(sandbox: Sandbox, plan: Plan) -> Results:
    port, server = sandbox.port, sandbox.process()
    res = Results()
    with RssSampler(server) as rss:
        res.memory.append(memory_row("after start", rss.checkpoint()))
        ids = list_every_page(port, server, plan, res)
        res.memory.append(memory_row(f"after listing {plan.pages:,} pages", rss.checkpoint()))
        compare_ping_and_list(port, server, plan, res)
        tx_paths = poll_entities(port, server, plan, ids, res)
        res.memory.append(memory_row("after accounts/ + transactions/ sweep", rss.checkpoint()))
        say("throughput: transactions/ ...")
        res.loads.append(
            ("transactions/", timed_load(port, server, tx_paths, AUTH, plan.seconds, WARMUP_S))
        )
        res.memory.append(memory_row("at the end", rss.checkpoint()))
        res.peak_rss = rss.overall
    return res


def list_every_page(port: int, server: psutil.Process, plan: Plan, res: Results) -> list[str]:
    pages = plan.pages
    say(f"listing {pages:,} entity pages ...")
    paths = [f"{API}/entity/?page={n}" for n in range(1, pages + 1)]
    listed = sweep(port, server, paths, AUTH, collect_ids=True)
    res.sweeps.append(sweep_row(f"entity list, {pages:,} pages", listed))
    ids = sorted(set(listed.stats.ids))
    res.distinct_ids = len(ids)
    return ids


def compare_ping_and_list(port: int, server: psutil.Process, plan: Plan, res: Results) -> None:
    pages = plan.pages
    rng = random.Random(SEED)
    list_paths = [f"{API}/entity/?page={rng.randint(1, pages)}" for _ in range(10_000)]
    for n in range(1, ROUNDS + 1):
        say(f"throughput round {n}/{ROUNDS}: ping, then entity list ...")
        ping = timed_load(port, server, ["/sandbox/ping"], {}, plan.seconds, WARMUP_S)
        listing = timed_load(port, server, list_paths, AUTH, plan.seconds, WARMUP_S)
        res.loads += [(f"ping #{n}", ping), (f"entity list #{n}", listing)]


def poll_entities(
    port: int, server: psutil.Process, plan: Plan, ids: list[str], res: Results
) -> list[str]:
    """accounts/ of the first entities, transactions/ of a sample; the sample's paths."""
    swept = ids[: plan.accounts_sweep]
    say(f"polling accounts/ of {len(swept):,} entities ...")
    accounts = sweep(port, server, [f"{API}/entity/{i}/accounts/" for i in swept], AUTH)
    res.sweeps.append(sweep_row(f"accounts/, {len(swept):,} entities", accounts))
    sample = random.Random(SEED).sample(ids, min(plan.transactions_sample, len(ids)))
    tx_paths = [f"{API}/entity/{i}/transactions/" for i in sample]
    say(f"polling transactions/ of {len(sample):,} entities ...")
    txs = sweep(port, server, tx_paths, AUTH)
    res.sweeps.append(sweep_row(f"transactions/, {len(sample):,} entities", txs))
    return tx_paths


def report(sandbox: Sandbox, plan: Plan, res: Results) -> None:
    print()
    print(
        f"start-up  'listening on' after {sandbox.listening_s:.2f} s, "
        f"first 200 from /sandbox/ping after {sandbox.ready_s:.2f} s"
    )
    print()
    print(f"(a) memory, {plan.entities:,} entities, budget {RSS_BUDGET_MB} MB")
    print(table(["server RSS", "MB", "peak MB", "/budget", "peak/budget"], res.memory))
    print()
    print(table(["sweep", "200s", "errors", "s", "req/s"], res.sweeps))
    if res.distinct_ids != plan.entities:
        print(f"!! the list pages named {res.distinct_ids:,} entities, not {plan.entities:,}")
    print()
    print(
        f"(b) throughput, {plan.seconds:g} s windows after {WARMUP_S:g} s warm-up; "
        "CPU in cores (server, all clients, rest of the machine)"
    )
    header = ["endpoint", "req/s", "200s", "errors", "p50 ms", "p99 ms", "KB/resp"]
    header += ["srv CPU", "cli CPU", "other CPU"]
    print(table(header, [load_row(name, load) for name, load in res.loads]))
    print()
    listing, ping = res.best("entity list"), res.best("ping")
    peak = _mb(res.peak_rss)
    print(
        table(
            [f"ratio (best of {ROUNDS} rounds)", "value"],
            [
                ["entity list / ping", f"{listing / ping:.2f}" if ping else "n/a"],
                [f"entity list / {TARGET_RPS:,} req/s target", f"{listing / TARGET_RPS:.2f}"],
                [f"peak RSS / {RSS_BUDGET_MB} MB budget", f"{peak / RSS_BUDGET_MB:.2f}"],
            ],
        )
    )
    print()
    print(
        f"verdict   memory {'PASS' if peak < RSS_BUDGET_MB else 'FAIL'} ({peak:.0f} MB peak), "
        f"entity-list throughput {'PASS' if listing >= TARGET_RPS else 'FAIL'} "
        f"({listing:,.0f} req/s)"
    )
    extra = sandbox.line_count - BANNER_LINES
    if extra > 0:
        print(f"\nserver printed {extra} line(s) after its banner; the last ones:")
        print("\n".join(f"  | {line}" for line in list(sandbox.lines)[-min(extra, 15) :]))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--entities", type=int, default=100_000, help="sandbox entities (default: %(default)s)"
    )
    p.add_argument(
        "--seconds", type=float, default=5.0, help="measuring window (default: %(default)s)"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="10,000 entities, 2 s windows, accounts/ of 5,000 and transactions/ of 500",
    )
    return p.parse_args(argv)


def _terminate_on_sigterm() -> None:
    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def main() -> int:
    args = parse_args()
    plan = plan_from(args)
    _terminate_on_sigterm()
    began = time.monotonic()
    sandbox = Sandbox(plan.entities)
    print(machine_header(sandbox), flush=True)
    try:
        sandbox.start()
        report(sandbox, plan, measure(sandbox, plan))
    finally:
        sandbox.stop()
    print(f"\nbenchmark took {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
