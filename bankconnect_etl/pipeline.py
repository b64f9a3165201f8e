"""A run, start to finish: list, fetch, archive raw, transform, validate, load, record.

Plain functions over the library (no Prefect): the flows in ``flows/`` call these with
batches, the CLI calls them directly. Every run leaves a row in ``runs`` (succeeded or
failed, with its counts), and every batch is one warehouse transaction.
"""

from __future__ import annotations

import gc
import itertools
import logging
import os
import queue
import secrets
import signal
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import duckdb

from bankconnect_etl import raw
from bankconnect_etl.client import BankConnectClient, RunMetrics
from bankconnect_etl.config import Settings
from bankconnect_etl.errors import (
    ApiError,
    BankConnectETLError,
    NotAnEntityIdError,
    NotFoundError,
    NoWarehouseError,
    RetriableApiError,
    UserError,
    stop_reason,
    stopped_by,
)
from bankconnect_etl.extract import Extractor, list_entities
from bankconnect_etl.progress import Progress  # (entities done, total)
from bankconnect_etl.transform import Batch, BatchTransform, ShapeError, Stats, entity_record
from bankconnect_etl.transform_worker import Worker
from bankconnect_etl.warehouse import (
    Paths,
    Writer,
    close,
    connect,
    known_entities,
    stop_interrupted,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

Loader = Callable[[Writer, Batch, str], object]  # writer.load(batch, message=...), or a wrapper


@dataclass
class RunResult:
    run_id: str
    kind: str
    status: str  # succeeded | failed | interrupted
    stats: Stats = field(default_factory=Stats)
    requests: int = 0
    retries: int = 0
    seconds: float = 0.0
    snapshot: int = 0
    error: str | None = None
    started_at: datetime | None = None
    # entities by what the run did: seen, new, changed, retried, forced, unchanged; a
    # rebuild: replayed_runs, the archived runs it read
    sync: Counter = field(default_factory=Counter)
    plan: Counter = field(default_factory=Counter)  # by planned action (Plan.action)
    not_found: list[str] = field(default_factory=list)  # named ids the API does not know

    def counts(self) -> dict:
        """What ``runs.counts`` holds: the sync counts, then the batch statistics."""
        seconds = {"seconds": round(self.seconds, 1)}
        missing = {"not_found": self.not_found} if self.not_found else {}
        return {"sync": dict(self.sync)} | missing | self.stats.as_json() | seconds


def new_run_id(kind: str, now: datetime | None = None) -> str:
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{kind}-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def batched(items: Iterable, size: int) -> Iterator[list]:
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def prefetch_batches(
    items: Iterator[T],
    size: int,
    *,
    ahead: int,
    max_wait_s: float | None = None,
    stop: threading.Event | None = None,
) -> Iterator[list[T]]:
    """``items`` in lists of ``size``, iterated on a thread of its own up to ``ahead`` items
    ahead of the caller.

    A sync's fetching must not pause while the caller validates and commits a batch: the
    extractor's requests in flight would run out and its pool would idle. An error in
    ``items`` is raised here, after the list of the items before it; if the caller stops
    early, ``items`` is closed (which cancels its requests) on its own thread.

    With ``max_wait_s``, a list is also handed over, shorter, once its first item has
    waited that long: when items trickle in (a nightly run where one entity in a hundred
    changed), they are loaded during the run instead of all after its last request, and
    a run that stops early has committed all but its last few seconds of fetching.

    ``stop`` is set when the caller stops (or the items end): give the same event to the
    producer of ``items``, so it can end without yielding again. Close this generator
    when done with it (``contextlib.closing``): until then a caller that stopped early
    leaves the thread fetching.
    """
    q: queue.Queue = queue.Queue(maxsize=max(1, ahead))
    stop = stop or threading.Event()
    end = object()

    def put(entry: tuple) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    break
            else:
                put((end, None))
        except BaseException as exc:  # handed to the caller, raised there
            put((end, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=run, name="fetch", daemon=True)
    thread.start()
    batch: list[T] = []
    due = 0.0  # when the batch's first item has waited max_wait_s
    try:
        while True:
            waits = bool(batch) and max_wait_s is not None
            try:
                item, exc = q.get(timeout=max(0.0, due - time.monotonic()) if waits else None)
            except queue.Empty:
                yield batch
                batch = []
                continue
            if item is end:
                if batch:
                    yield batch
                if exc is not None:
                    raise exc
                return
            if not batch and max_wait_s is not None:
                due = time.monotonic() + max_wait_s
            batch.append(item)
            if len(batch) >= size:
                yield batch
                batch = []
    finally:
        stop.set()
        thread.join()


# Raw part files (their paths) loaded as one batch: a path, or several from one run.
RawChunk = str | tuple[str, ...]


@dataclass(frozen=True)
class EncodedChunk:
    """A batch of entity records on its way to a worker: ``raw.encode``'s JSON lines, and the
    raw-zone part the worker writes them to (gzipped) before it transforms them."""

    lines: bytes
    raw_part: str | None = None


Chunk = list[dict] | RawChunk | EncodedChunk


def transform_chunk(run_id: str, chunk: Chunk) -> Batch:
    """One batch of entity records (or raw part files) → rows for the warehouse.

    Records with ``"kind": "bank_health"`` are health observations. Runs in a worker
    process when ``load_records`` has one, so it takes and returns picklable values only.
    """
    with cycle_collector_paused():
        if isinstance(chunk, list):
            records: Iterable[dict] = chunk
        elif isinstance(chunk, EncodedChunk):
            if chunk.raw_part is not None:
                raw.write_part(Path(chunk.raw_part), chunk.lines)
            records = raw.decode(chunk.lines)
        else:
            paths = (chunk,) if isinstance(chunk, str) else chunk
            records = itertools.chain.from_iterable(raw.read_part(Path(p)) for p in paths)
        bt = BatchTransform(run_id)
        for record in records:
            if record.get("kind") == "bank_health":
                try:
                    bt.add_bank_health(
                        record["body"], datetime.fromisoformat(record["observed_at"])
                    )
                except ShapeError as exc:
                    log.warning("net_banking_health not loaded: %s", exc)
            else:
                bt.add(record)
        return bt.result()


@contextmanager
def cycle_collector_paused() -> Iterator[None]:
    """Python's cycle collector off for the block.

    A batch allocates millions of small objects (the records' dicts, rows, tuples) that
    reference counting frees and none of which form cycles; with the collector on, its
    repeated passes over them were a fifth of a batch's transform time (measured: 3.42 →
    2.75 s for 1,000 entities).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_records(
    writer: Writer,
    chunks: Iterable[list[dict] | RawChunk] | Iterable[dict],
    *,
    run_id: str,
    batch_size: int | None = None,
    archive: raw.RawWriter | None = None,
    progress: Callable[[int], None] | None = None,
    workers: int = 1,
    load: Loader | None = None,
    stats: Stats | None = None,
) -> Stats:
    """Transform and load batches of entity records, one warehouse transaction per batch.
    Each committed batch's counts are added to ``stats`` (a new one when not given) as it
    commits, so a run stopped half-way still says what it wrote.

    ``chunks`` are lists of entity records or raw part files (``RawChunk``); with
    ``batch_size`` they are single records, batched here. Each list is written to the raw
    zone (when ``archive`` is given) before its batch is committed.

    With ``workers`` > 0, batches are transformed in that many worker processes
    (``transform_worker``) while this one loads the previous batch: on two cores,
    validation and loading overlap instead of taking turns. The first batch is transformed
    here while a worker takes the second, so a run of one batch never starts a process.
    A batch of records goes to a worker as JSON lines (``raw.encode``), which the worker
    also writes to the raw zone: during a sync this process shares its GIL with the HTTP
    threads, and encoding 100 sandbox entities takes it 11 ms against 69 ms to pickle
    them, while the gzip moves to the worker. DuckDB's threads leave a core to each worker
    while batches load (measured on two cores with one worker: 92,000 → 104,000
    transactions/s), and are restored afterwards.
    """
    stats = Stats() if stats is None else stats
    pool: list[Worker] = []
    pending: deque[Worker] = deque()  # busy workers, in the order of their chunks
    n = 0

    def commit(batch: Batch) -> None:
        nonlocal n
        n += 1
        # a stop waits for the commit and its count: one landing between the two, or in a
        # COMMIT that took effect before DuckDB noticed, would leave the batch uncounted
        with stops_deferred():
            if load is None:
                writer.load(batch, message=f"{run_id} batch {n}")
            else:
                load(writer, batch, f"{run_id} batch {n}")
            stats.merge(batch.stats)
        if progress is not None:
            progress(len(batch.replace) + len(batch.touch))
        stop_if_stopped()  # a stop whose exception was lost: it acts here

    def take(chunk: list[dict] | RawChunk) -> list[dict] | RawChunk:
        """``chunk``, archived here, for this process to transform."""
        if archive is not None and isinstance(chunk, list):
            archive.write(chunk)
        return chunk

    def shipped(chunk: list[dict] | RawChunk) -> Chunk:
        """``chunk`` as a worker takes it: records encoded, with the raw part to write."""
        if not isinstance(chunk, list):
            return chunk
        part = None if archive is None else str(archive.reserve())
        return EncodedChunk(raw.encode(chunk), part)

    def submit(chunk: Chunk) -> Batch | None:
        """Hand ``chunk`` to a free worker; when all were busy, the oldest one's result."""
        ready = None
        if len(pending) == workers:
            ready = pending.popleft().result()
        if len(pool) < workers:
            pool.append(Worker())
        worker = next(w for w in pool if not w.busy)
        worker.submit(run_id, chunk)
        pending.append(worker)
        return ready

    todo = iter(batched(chunks, batch_size) if batch_size is not None else chunks)
    first = next(todo, None)
    if first is None:
        return stats
    try:
        with stops_latched() as stop_if_stopped, _threads_beside(writer, workers):
            first = take(first)
            if workers > 0 and (second := next(todo, None)) is not None:
                submit(shipped(second))  # a worker validates the second chunk ...
            commit(transform_chunk(run_id, first))  # ... while this process does the first
            for chunk in todo:
                if workers <= 0:
                    commit(transform_chunk(run_id, take(chunk)))
                elif (ready := submit(shipped(chunk))) is not None:
                    commit(ready)  # loaded here while the workers validate later chunks
            while pending:
                commit(pending.popleft().result())
    finally:
        for worker in pool:
            worker.close()
    return stats


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _deliver(signum: int, handler: object, frame: object = None) -> None:
    """Act on ``signum`` as ``handler`` (what ``signal.signal`` returned) would have."""
    if callable(handler):
        handler(signum, frame)
    elif handler in (signal.SIG_DFL, None):
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)  # its default action, as if it came now


@contextmanager
def stops_deferred() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block is done, then act as they would have (the
    first one, through the handler that was in place: KeyboardInterrupt, `Terminated`,
    Prefect's TerminationSignal). For work that must not be cut in two, such as a batch's
    commit and the count of what it committed. Only the main thread gets signals; in any
    other this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []

    def hold(signum: int, _frame: object) -> None:
        held.append(signum)

    previous = {s: signal.signal(s, hold) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        if held:
            _deliver(held[0], previous[held[0]])


@contextmanager
def stops_latched() -> Iterator[Callable[[], None]]:
    """Ctrl-C and SIGTERM as the handlers in place take them (KeyboardInterrupt,
    `Terminated`, Prefect's TerminationSignal), noted as well; yields a check that acts on
    a noted stop again. Python raises a signal's exception wherever the main thread is
    when it runs the handler: a signal that comes late (on a busy machine its delivery can
    lag) may land in a finalizer (``__del__``, a weakref callback), where Python prints it
    as "Exception ignored" and drops it, and the run would go on. Call the check at points
    where stopping is safe. Only the main thread gets signals; in any other the check does
    nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    noted: list[int] = []
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}

    def note(signum: int, frame: object) -> None:
        noted.append(signum)
        _deliver(signum, previous[signum], frame)

    def check() -> None:
        if noted:
            _deliver(noted[0], previous[noted[0]])

    for signum, handler in previous.items():
        if handler is not signal.SIG_IGN:  # an ignored signal stays ignored
            signal.signal(signum, note)
    try:
        yield check
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)


@contextmanager
def _threads_beside(writer: Writer, workers: int) -> Iterator[None]:
    """DuckDB's thread count lowered by ``workers`` (at least one) for the block."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if workers <= 0 or writer.con is None:
        yield
        return
    writer.con.execute(f"SET threads = {max(1, (cores or 1) - workers)}")
    try:
        yield
    finally:
        with suppress(duckdb.Error):
            writer.con.execute("RESET threads")


@contextmanager
def recorded_run(
    settings: Settings,
    kind: str,
    params: dict,
    metrics: Callable[[], RunMetrics] | None = None,
) -> Iterator[tuple[Writer, RunResult]]:
    """The writer for one run, with its row in ``runs``: running on entry; succeeded,
    interrupted (Ctrl-C), or failed with the error's first line, on exit (the error still
    propagates)."""
    started = datetime.now(UTC)
    t0 = time.monotonic()
    run = RunResult(new_run_id(kind, started), kind, "failed", started_at=started)
    with Writer(settings.warehouse, wait_s=settings.writer_wait_s, run_id=run.run_id) as w:
        w.start_run(run.run_id, kind, params, started)
        try:
            yield w, run
            run.status = "succeeded"
        except BaseException as exc:
            if (stop := stopped_by(exc)) is None:
                run.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise
            run.status, run.error = "interrupted", stop_reason(stop)  # nothing went wrong
            if w.con is not None:  # its row is written on the same connection, next
                stop_interrupted(w.con, exc)
            raise stop  # noqa: B904 - itself, not as DuckDB's RuntimeError
        finally:
            if metrics is not None:
                m = metrics()
                run.requests, run.retries = m.total_requests, m.total_retries
            run.seconds = time.monotonic() - t0
            run.snapshot = w.finish_run(
                run.run_id,
                status=run.status,
                counts=run.counts(),
                requests=run.requests,
                retries=run.retries,
                error=run.error,
            )


@dataclass
class Plan:
    """The entities a run covers and what it will do with each, decided before fetching.

    ``action`` per entity: ``new`` (not in the warehouse), ``check`` (complete last time:
    its accounts fingerprint decides), ``retry`` (pending or failed last time, so fetched
    again), ``forced`` (fetched whatever its fingerprint says).
    """

    entities: dict[str, dict]  # entity_id → its listing summary (link_id, meta_data)
    action: dict[str, str]
    fingerprints: dict[str, str]  # the ``check`` entities → their stored fingerprint
    listing_complete: bool = True
    not_found: tuple[str, ...] = ()  # the named ids the API does not know ("link_id X")

    def counts(self) -> Counter:
        return Counter(self.action.values())

    def check_found(self) -> None:
        """A selection whose every id is unknown to the API is a typo, not an empty run."""
        if self.not_found and not self.entities:
            raise NotFoundError(
                f"none of the ids named is known to the API: {', '.join(self.not_found)}"
            )


@dataclass(frozen=True)
class Selection:
    """The entities a run covers, as listed by the API, before the warehouse is consulted."""

    entities: dict[str, dict]  # entity_id → its listing summary (link_id, meta_data)
    complete: bool = True  # every listing read to the API's count
    not_found: tuple[str, ...] = ()  # the named ids the API does not know ("link_id X")


def select_entities(
    client: BankConnectClient,
    *,
    entity_ids: Iterable[str] | None = None,
    link_ids: Iterable[str] | None = None,
) -> Selection:
    """Every listed entity, or those of ``link_ids`` and ``entity_ids`` (both may be given).

    A named entity is looked up first (one request each, concurrently): one the API does
    not know is left out with a warning, as a link id with no entities is, rather than
    written to the warehouse as a failed entity that never existed (a typo)."""
    entities: dict[str, dict] = {}
    complete = True
    not_found: list[str] = []
    if entity_ids is None and link_ids is None:
        listing = list_entities(client)
        entities.update((e["entity_id"], e) for e in listing.entities)
        complete = listing.complete
    for link_id in link_ids or ():
        listing = list_entities(client, link_id=link_id)
        if not listing.entities:
            log.warning("link_id %s: no entities", link_id)
            not_found.append(f"link_id {link_id}")
        entities.update((e["entity_id"], e) for e in listing.entities)
        complete = complete and listing.complete
    named = [e for e in dict.fromkeys(map(str, entity_ids or ())) if e not in entities]
    for entity_id, detail in _look_up(client, named):
        if detail is None:
            log.warning("entity_id %s: not found at the API; skipped", entity_id)
            not_found.append(f"entity_id {entity_id}")
        else:  # the shape a listing gives
            entities[entity_id] = {
                "entity_id": entity_id,
                "link_id": detail.get("link_id"),
                "meta_data": detail.get("meta_data"),
            }
    return Selection(entities, complete, tuple(not_found))


def _look_up(client: BankConnectClient, entity_ids: list[str]) -> list[tuple[str, dict | None]]:
    """Each entity's detail, or None where the API answers 404; in the order given."""

    def detail(entity_id: str) -> dict | None:
        try:
            return client.entity(entity_id)
        except NotFoundError:
            return None

    if not entity_ids:
        return []
    workers = min(len(entity_ids), client.settings.concurrency)  # both at least 1
    with ThreadPoolExecutor(workers, thread_name_prefix="look-up") as pool:
        return list(zip(entity_ids, pool.map(detail, entity_ids), strict=True))


def plan_entities(
    selection: Selection, known: dict[str, tuple[str | None, str]], *, force: bool = False
) -> Plan:
    """What to do with each selected entity, from what the warehouse knows of it (``known``
    is ``warehouse.known_entities``)."""
    action, check = {}, {}
    for eid in selection.entities:
        fp, status = known.get(eid, (None, None))
        if status is None:
            action[eid] = "new"
        elif force:
            action[eid] = "forced"
        elif fp is not None and status in ("complete", "empty"):
            action[eid] = "check"
            check[eid] = fp
        else:
            action[eid] = "retry"
    return Plan(selection.entities, action, check, selection.complete, selection.not_found)


def plan_sync(
    client: BankConnectClient,
    known: dict[str, tuple[str | None, str]],
    *,
    entity_ids: Iterable[str] | None = None,
    link_ids: Iterable[str] | None = None,
    force: bool = False,
) -> Plan:
    """Which entities to sync and how: every listed entity, or those of ``link_ids`` and
    ``entity_ids`` (both may be given). ``known`` is ``warehouse.known_entities``."""
    selection = select_entities(client, entity_ids=entity_ids, link_ids=link_ids)
    return plan_entities(selection, known, force=force)


def run_sync(
    settings: Settings,
    *,
    kind: str = "nightly",
    entity_ids: Iterable[str] | None = None,
    link_ids: Iterable[str] | None = None,
    force: bool = False,
    params: dict | None = None,
    progress: Progress | None = None,
    client: BankConnectClient | None = None,
    load: Loader | None = None,
) -> RunResult:
    """Sync every entity (or those of ``link_ids`` / ``entity_ids``) into the warehouse.

    An entity that was complete is asked for its accounts first and skipped when its
    fingerprint is unchanged (unless ``force``); new, changed, pending and failed ones are
    fetched whole, polled, validated and loaded. ``load`` replaces ``Writer.load`` (the
    Prefect flow passes a task, so each batch is a task run with retries).

    Returns the run, succeeded or failed (a failure is recorded in ``runs`` and carries its
    error); raises only for errors before the run starts (configuration, writer lock).
    Needs ``settings.base_url``.
    """
    root = settings.warehouse
    if settings.raw_enabled:
        for gone in raw.prune(root / "raw", settings.raw_retention_days):
            log.info("raw zone: deleted %s (older than %d days)", gone, settings.raw_retention_days)
    entity_ids = None if entity_ids is None else list(entity_ids)
    link_ids = None if link_ids is None else list(link_ids)
    own_client = client is None
    client = client or BankConnectClient(settings)
    params = params if params is not None else _params(entity_ids, link_ids, force)
    run: RunResult | None = None
    # The entities are listed while the warehouse opens: on a first run each takes about
    # 0.4 s, and listing 100,000 entities 17 s. A listing error is raised in the run.
    lister = ThreadPoolExecutor(1, thread_name_prefix="listing")
    listed = lister.submit(select_entities, client, entity_ids=entity_ids, link_ids=link_ids)
    try:
        with recorded_run(settings, kind, params, client.metrics.snapshot) as (w, run):
            archive = (
                raw.RawWriter(root / "raw", run.run_id, run.started_at)
                if settings.raw_enabled
                else None
            )
            selection = listed.result()
            if w.lock_waited_s:  # listed before another run ended: list again
                selection = select_entities(client, entity_ids=entity_ids, link_ids=link_ids)
            plan = plan_entities(selection, known_entities(w.con), force=force)
            run.plan = plan.counts()
            run.not_found = list(plan.not_found)
            plan.check_found()  # before anything is fetched or written
            total = len(plan.entities)
            run.sync["seen"] = total
            done = 0
            counting = threading.Lock()  # advanced by the fetch thread and the loader

            def advance(n: int) -> None:
                nonlocal done
                with counting:
                    done += n
                    if progress is not None:
                        progress(done, total)

            if progress is not None:
                progress(0, total)
            fetched_at = datetime.now(UTC)
            unreachable: list[str] = []  # why each entity the API did not answer failed

            stopping = threading.Event()  # the load ended, early on an error or Ctrl-C

            def records() -> Iterator[dict]:
                fetched = Extractor(client).fetch(
                    plan.entities, known=plan.fingerprints, stop=stopping
                )
                for b in fetched:
                    if b.status == "unchanged":
                        run.sync["unchanged"] += 1
                        advance(1)
                        continue
                    run.sync[_FETCHED_AS[plan.action[b.entity_id]]] += 1
                    if b.unreachable:
                        run.sync["unreachable"] += 1
                        unreachable.append(b.error or "")
                    yield entity_record(b, plan.entities.get(b.entity_id), fetched_at)
                if not stopping.is_set():  # the fetch ended early: so does the run
                    yield from _health(client)

            # fetching runs ahead (up to two batches) while batches are validated and
            # committed; a batch that fills slowly is loaded early. Closed on the way out,
            # so a run that stops also stops fetching before its row is written.
            with (
                stops_latched() as stop_if_stopped,
                closing(
                    prefetch_batches(
                        records(),
                        settings.batch_size,
                        ahead=2 * settings.batch_size,
                        max_wait_s=settings.batch_max_wait_s,
                        stop=stopping,
                    )
                ) as batches,
            ):
                load_records(
                    w,
                    batches,
                    run_id=run.run_id,
                    archive=archive,
                    progress=advance,
                    workers=settings.transform_workers,
                    load=load,
                    stats=run.stats,  # counted as batches commit: kept if the run stops
                )
                _compact(w)
                stop_if_stopped()  # one lost in the compaction: acted on before the marts
            _refresh_marts(w, run)
            if unreachable:  # fetched again next run; until then the warehouse lags the API
                n = len(unreachable)
                raise RetriableApiError(
                    f"{n:,} entit{'y' if n == 1 else 'ies'} could not be fetched, the API out "
                    f"of reach after every retry (first: {unreachable[0]}); the next run "
                    f"fetches {'it' if n == 1 else 'them'} again"
                )
    except BankConnectETLError:
        if run is None or run.status == "succeeded":
            raise  # before the run started (lock, configuration) or after it was recorded
        log.debug("run %s failed", run.run_id, exc_info=True)
    finally:
        lister.shutdown(wait=False, cancel_futures=True)
        if own_client:
            client.close()
    assert run is not None
    return run


def check_selection(
    entity_ids: Sequence[str] | None, link_ids: Sequence[str] | None, all: bool
) -> tuple[list[str] | None, list[str] | None]:
    """A backfill names what it covers: ``all``, or some link ids and/or entity ids. The
    ids as the API writes them: an entity id in its canonical form (lower case, hyphens)."""
    if all and (entity_ids or link_ids):
        raise UserError(
            "a backfill of all entities takes no entity or link ids",
            hint="drop --all (a flow: all) to backfill only the ids given, or drop the ids",
        )
    if not all and not entity_ids and not link_ids:
        raise UserError(
            "a backfill needs entities to cover",
            hint="give --entity-id ID, --link-id ID (each repeatable) or --all; "
            "a flow: entity_ids, link_ids or all",
        )
    for link_id in link_ids or ():
        if not str(link_id).strip():  # the API reads a blank link id as no filter at all
            raise UserError(
                f"link id {link_id!r} is blank, which the API reads as every entity",
                hint="give the lender's link id (an empty shell variable gives '')",
            )
    canonical = []
    for entity_id in entity_ids or ():
        try:
            canonical.append(str(uuid.UUID(str(entity_id))))
        except ValueError:
            raise NotAnEntityIdError(str(entity_id)) from None
    return (canonical if entity_ids else entity_ids), (list(link_ids) if link_ids else link_ids)


def dry_run(
    settings: Settings,
    *,
    entity_ids: Iterable[str] | None = None,
    link_ids: Iterable[str] | None = None,
    force: bool = False,
    client: BankConnectClient | None = None,
) -> Plan:
    """What a sync would fetch, without writing anything (nor waiting for the writer)."""
    own_client = client is None
    client = client or BankConnectClient(settings)
    try:
        known: dict = {}
        if Paths(settings.warehouse).catalog.exists():
            with suppress(NoWarehouseError):
                con = connect(settings.warehouse)
                try:
                    known = known_entities(con)
                finally:
                    close(con)
        return plan_sync(client, known, entity_ids=entity_ids, link_ids=link_ids, force=force)
    finally:
        if own_client:
            client.close()


_FETCHED_AS = {"new": "new", "check": "changed", "retry": "retried", "forced": "forced"}


def _params(entity_ids: Iterable[str] | None, link_ids: Iterable[str] | None, force: bool) -> dict:
    out: dict = {"force": force}
    if entity_ids is not None:
        out["entity_ids"] = list(entity_ids)
    if link_ids is not None:
        out["link_ids"] = list(link_ids)
    return out


def _health(client: BankConnectClient) -> Iterator[dict]:
    """One net_banking_health observation, as a record; none if the endpoint fails."""
    try:
        body = client.net_banking_health()
    except ApiError as exc:
        log.warning("net_banking_health not recorded: %s", exc)
        return
    yield {"kind": "bank_health", "observed_at": datetime.now(UTC).isoformat(), "body": body}


# A rebuild is a bulk load: five parts of a run (500 entities, when synced in batches of
# 100) per transaction write a fifth of the Parquet files and catalog entries per row, as a
# DuckLake commit pays per file written (measured with every transaction-like table
# partitioned: loading 1,000 entities 2.55 s in batches of 100, 0.94 s in batches of 500).
REBUILD_PARTS_PER_BATCH = 5


def rebuild_from_raw(
    settings: Settings, *, progress: Callable[[int], None] | None = None
) -> RunResult:
    """Replay the raw zone, oldest run first, through the same transform and load."""
    folders = raw.runs(settings.warehouse / "raw")
    params = {"runs": [f.name for f in folders]}
    with recorded_run(settings, "rebuild", params) as (w, run):
        run.sync["replayed_runs"] = len(folders)
        with stops_latched() as stop_if_stopped:
            load_records(
                w,
                raw.part_groups(folders, REBUILD_PARTS_PER_BATCH),
                run_id=run.run_id,
                progress=progress,
                workers=settings.transform_workers,
                stats=run.stats,
            )
            _compact(w)
            stop_if_stopped()  # one lost in the compaction: acted on before the marts
        _refresh_marts(w, run, full=True)
    return run


def _compact(w: Writer) -> None:
    """The run's small files merged before the marts read them (``Writer.compact``). The
    run's data is committed by now: a failed compaction leaves it as it was, is logged,
    and is tried again by the next run."""
    try:
        w.compact()
    except duckdb.Error as exc:
        log.warning("compaction skipped: %s", str(exc).splitlines()[0])
        log.debug("compaction failed", exc_info=True)


def _refresh_marts(w: Writer, run: RunResult, *, full: bool = False) -> None:
    """The credit-analytics marts, brought up to date with the tables as this run left
    them in one transaction (readers see every mart from the same snapshot): only the
    entities written since the marts' last refresh are recomputed, unless ``full``."""
    from bankconnect_etl import analytics

    t0 = time.monotonic()
    rows = analytics.refresh(w.con, message=f"{run.run_id} marts", incremental=not full)
    log.info("marts refreshed in %.1f s: %s", time.monotonic() - t0, rows)
