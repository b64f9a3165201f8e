"""A run, start to finish: list, fetch, archive raw, transform, validate, load, record.

Plain functions over the library (no Prefect): the flows in ``flows/`` call these with
batches, the CLI calls them directly. Every run leaves a row in ``runs`` (succeeded or
failed, with its counts), and every batch is one warehouse transaction.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bankconnect_etl import raw
from bankconnect_etl.client import BankConnectClient, RunMetrics
from bankconnect_etl.config import Settings
from bankconnect_etl.errors import ApiError
from bankconnect_etl.extract import Extractor, list_entities
from bankconnect_etl.transform import Batch, BatchTransform, ShapeError, Stats, entity_record
from bankconnect_etl.transform_worker import Worker
from bankconnect_etl.warehouse import Writer

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (entities done, total)


@dataclass
class RunResult:
    run_id: str
    kind: str
    status: str  # succeeded | failed
    stats: Stats = field(default_factory=Stats)
    requests: int = 0
    retries: int = 0
    seconds: float = 0.0
    snapshot: int = 0
    error: str | None = None
    started_at: datetime | None = None


def new_run_id(kind: str, now: datetime | None = None) -> str:
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{kind}-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def batched(items: Iterable, size: int) -> Iterator[list]:
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def transform_chunk(run_id: str, chunk: list[dict] | str) -> Batch:
    """One batch of entity records (or a raw part file's path) → rows for the warehouse.

    Records with ``"kind": "bank_health"`` are health observations. Runs in a worker
    process when ``load_records`` has one, so it takes and returns picklable values only.
    """
    records = raw.read_part(Path(chunk)) if isinstance(chunk, str) else chunk
    bt = BatchTransform(run_id)
    for record in records:
        if record.get("kind") == "bank_health":
            try:
                bt.add_bank_health(record["body"], datetime.fromisoformat(record["observed_at"]))
            except ShapeError as exc:
                log.warning("net_banking_health not loaded: %s", exc)
        else:
            bt.add(record)
    return bt.result()


def load_records(
    writer: Writer,
    chunks: Iterable[list[dict] | str] | Iterable[dict],
    *,
    run_id: str,
    batch_size: int | None = None,
    archive: raw.RawWriter | None = None,
    progress: Callable[[int], None] | None = None,
    workers: int = 1,
) -> Stats:
    """Transform and load batches of entity records, one warehouse transaction per batch.

    ``chunks`` are lists of entity records or paths of raw part files; with ``batch_size``
    they are single records, batched here. Each list is written to the raw zone (when
    ``archive`` is given) before its batch is committed.

    With ``workers`` > 0, batches after the first are transformed in that many worker
    processes (``transform_worker``) while this one loads the previous batch: on two
    cores, validation and loading overlap instead of taking turns. The first batch is
    transformed here, so a run of one batch never starts a process.
    """
    stats = Stats()
    pool: list[Worker] = []
    pending: deque[Worker] = deque()  # busy workers, in the order of their chunks

    def commit(batch: Batch) -> None:
        nonlocal n
        n += 1
        writer.load(batch, message=f"{run_id} batch {n}")
        stats.merge(batch.stats)
        if progress is not None:
            progress(len(batch.replace) + len(batch.touch))

    if batch_size is not None:
        chunks = batched(chunks, batch_size)
    n = 0
    try:
        for i, chunk in enumerate(chunks):
            if archive is not None and not isinstance(chunk, str):
                archive.write(chunk)
            if i == 0 or workers <= 0:
                commit(transform_chunk(run_id, chunk))
                continue
            ready = None
            if len(pending) == workers:  # all busy: take the oldest result, freeing its worker
                ready = pending[0].result()
                pending.popleft()
            if len(pool) < workers:
                pool.append(Worker())
            worker = next(w for w in pool if not w.busy)
            worker.submit(run_id, chunk)  # the worker validates this chunk ...
            pending.append(worker)
            if ready is not None:
                commit(ready)  # ... while this process loads the previous one
        while pending:
            commit(pending[0].result())
            pending.popleft()
    finally:
        for worker in pool:
            worker.close()
    return stats


@contextmanager
def recorded_run(
    settings: Settings,
    kind: str,
    params: dict,
    metrics: Callable[[], RunMetrics] | None = None,
) -> Iterator[tuple[Writer, RunResult]]:
    """The writer for one run, with its row in ``runs``: running on entry; succeeded, or
    failed with the error's first line, on exit (the error still propagates)."""
    started = datetime.now(UTC)
    t0 = time.monotonic()
    run = RunResult(new_run_id(kind, started), kind, "failed", started_at=started)
    with Writer(settings.warehouse, wait_s=settings.writer_wait_s, run_id=run.run_id) as w:
        w.start_run(run.run_id, kind, params, started)
        try:
            yield w, run
            run.status = "succeeded"
        except BaseException as exc:
            run.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise
        finally:
            if metrics is not None:
                m = metrics()
                run.requests, run.retries = m.total_requests, m.total_retries
            run.seconds = time.monotonic() - t0
            w.finish_run(
                run.run_id,
                status=run.status,
                counts=run.stats.as_json() | {"seconds": round(run.seconds, 1)},
                requests=run.requests,
                retries=run.retries,
                error=run.error,
            )
            run.snapshot = w.snapshot_id()


def run_sync(
    settings: Settings,
    *,
    kind: str = "nightly",
    entity_ids: Iterable[str] | None = None,
    params: dict | None = None,
    progress: Progress | None = None,
    client: BankConnectClient | None = None,
) -> RunResult:
    """Fetch every entity (or ``entity_ids``) and load it. Needs ``settings.base_url``."""
    root = settings.warehouse
    if settings.raw_enabled:
        for gone in raw.prune(root / "raw", settings.raw_retention_days):
            log.info("raw zone: deleted %s (older than %d days)", gone, settings.raw_retention_days)
    own_client = client is None
    client = client or BankConnectClient(settings)
    try:
        with recorded_run(settings, kind, params or {}, client.metrics.snapshot) as (w, run):
            archive = (
                raw.RawWriter(root / "raw", run.run_id, run.started_at)
                if settings.raw_enabled
                else None
            )
            listing = list_entities(client)
            summaries = {e["entity_id"]: e for e in listing.entities}
            wanted = list(summaries) if entity_ids is None else list(entity_ids)
            done = 0

            def advance(n: int) -> None:
                nonlocal done
                done += n
                if progress is not None:
                    progress(done, len(wanted))

            fetched_at = datetime.now(UTC)
            records = (
                entity_record(b, summaries.get(b.entity_id), fetched_at)
                for b in Extractor(client).fetch(wanted)
            )
            run.stats = load_records(
                w,
                batched(itertools.chain(records, _health(client)), settings.batch_size),
                run_id=run.run_id,
                archive=archive,
                progress=advance,
                workers=settings.transform_workers,
            )
    finally:
        if own_client:
            client.close()
    return run


def _health(client: BankConnectClient) -> Iterator[dict]:
    """One net_banking_health observation, as a record; none if the endpoint fails."""
    try:
        body = client.net_banking_health()
    except ApiError as exc:
        log.warning("net_banking_health not recorded: %s", exc)
        return
    yield {"kind": "bank_health", "observed_at": datetime.now(UTC).isoformat(), "body": body}


def rebuild_from_raw(
    settings: Settings, *, progress: Callable[[int], None] | None = None
) -> RunResult:
    """Replay the raw zone, oldest run first, through the same transform and load."""
    folders = raw.runs(settings.warehouse / "raw")
    params = {"runs": [f.name for f in folders]}
    with recorded_run(settings, "rebuild", params) as (w, run):
        run.stats = load_records(
            w,
            (str(part) for folder in folders for part in raw.parts(folder)),
            run_id=run.run_id,
            progress=progress,
            workers=settings.transform_workers,
        )
    return run
