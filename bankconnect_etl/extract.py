"""Extraction: list every entity, then fetch each entity's endpoints until processing ends.

Listing reads page 1, then every other page concurrently by number (the API gives
``count``), and again from the old last page if ``count`` grew meanwhile (new entities
are appended in creation order). Without ``count`` it follows ``next``.

Fetching schedules one request per (entity, endpoint) on a bounded pool; an endpoint still
processing goes back into a time-ordered queue, so waiting costs no worker. Results are
yielded per entity as soon as all its endpoints are settled. An entity whose fingerprint
is known is asked for its accounts first: the same fingerprint means nothing changed, and
the entity costs that one request.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from queue import Empty, SimpleQueue
from urllib.parse import parse_qs, urlsplit, urlunsplit

import orjson

from bankconnect_etl.client import BankConnectClient
from bankconnect_etl.errors import ApiError, AuthError, NotFoundError, RetriableApiError
from bankconnect_etl.polling import (
    COMPLETED,
    FAILED,
    PROCESSING,
    PollPolicy,
    progress_of,
    still_processing,
)
from bankconnect_etl.vocab import ANALYSIS_ENDPOINTS

ONCE_ENDPOINTS = ("entity", "get_pdfs")
ALL_ENDPOINTS = ANALYSIS_ENDPOINTS + ONCE_ENDPOINTS
PAGE_SIZE = 10
_STOP_CHECK_S = 0.2  # how often a fetch with a stop event looks at it while it waits
log = logging.getLogger(__name__)
MAX_LISTING_ROUNDS = 5  # re-reads when the count grows while listing; then accept what we have


# ---------------------------------------------------------------------- listing


@dataclass(frozen=True)
class Listing:
    entities: list[dict]  # entity_id, link_id, meta_data (None where the API omits it)
    count: int | None  # what the API said last
    pages: int
    duplicates: int

    @property
    def complete(self) -> bool:
        return self.count is None or len(self.entities) >= self.count


def list_entities(
    client: BankConnectClient, *, link_id: str | None = None, workers: int | None = None
) -> Listing:
    """Every entity (or every entity of ``link_id``), in creation order, de-duplicated.

    A listing that ends with fewer entities than the API's ``count`` is logged as a warning
    and reported by ``Listing.complete``; the missing entities are picked up next run.
    """
    first = client.entity_page(1, link_id)
    pages: dict[int, list] = {1: _results(first)}
    count = first.get("count")
    if not isinstance(count, int):  # the older shape: follow `next`, by its page number
        body = first
        while (n := _next_page(body)) is not None and n not in pages:
            body = client.entity_page(n, link_id)
            pages[n] = _results(body)
        return _listing(pages, None)
    # "10 records per page at max": take the size the API uses from a full first page.
    size = len(pages[1]) if first.get("next") and pages[1] else PAGE_SIZE
    last = max(1, math.ceil(count / size))
    todo = list(range(2, last + 1))
    with ThreadPoolExecutor(
        max(1, workers or client.settings.concurrency), thread_name_prefix="list"
    ) as pool:
        for _ in range(MAX_LISTING_ROUNDS):
            for n, page in zip(
                todo, pool.map(lambda p: _page(client, p, link_id), todo), strict=True
            ):
                if page is not None:
                    pages[n] = _results(page)
                    count = max(count, int(page.get("count") or 0))
            grown = max(1, math.ceil(count / size))
            short = len(pages.get(last, [])) < _expected(count, last, size)
            if grown == last and not short:
                break
            # Entities created meanwhile were appended: re-read the old last page and any new ones.
            todo, last = list(range(last, grown + 1)), grown
    listing = _listing(pages, count)
    if not listing.complete:
        log.warning(
            "entity listing incomplete: %d of the %d entities the API counts%s; "
            "the rest are picked up next run",
            len(listing.entities),
            count,
            f" for link_id {link_id}" if link_id else "",
        )
    return listing


def _next_page(body: dict) -> int | None:
    """The page number in a ``next`` link. Only the number is used: credentials are never
    sent to a URL the server names."""
    nxt = body.get("next")
    if not nxt:
        return None
    try:
        return int(parse_qs(urlsplit(str(nxt)).query)["page"][0])
    except (KeyError, IndexError, ValueError):
        return None


def _expected(count: int, page: int, size: int) -> int:
    return max(0, min(size, count - (page - 1) * size))


def _page(client: BankConnectClient, page: int, link_id: str | None) -> dict | None:
    try:
        return client.entity_page(page, link_id)
    except NotFoundError:
        return None  # past the end: the count shrank


def _results(body: dict) -> list:
    results = body.get("results")
    return results if isinstance(results, list) else []


def _listing(pages: dict[int, list], count: int | None) -> Listing:
    seen: set[str] = set()
    out, dupes = [], 0
    for n in sorted(pages):
        for item in pages[n]:
            if not isinstance(item, dict) or "entity_id" not in item:
                continue
            eid = str(item["entity_id"])
            if eid in seen:
                dupes += 1
                continue
            seen.add(eid)
            out.append(
                {
                    "entity_id": eid,
                    "link_id": item.get("link_id"),
                    "meta_data": item.get("meta_data"),
                }
            )
    return Listing(out, count, len(pages), dupes)


# ---------------------------------------------------------------------- entities


def fingerprint(accounts_body: dict) -> str:
    """Digest of what the accounts endpoint says: statement ids, their statuses, months.

    The same fingerprint as last time, on an entity that was complete, means nothing new
    to fetch: a new statement adds an id (and months), and reprocessing shows in a status.
    """
    accounts = sorted(
        (
            str(a.get("account_id")),
            sorted(map(str, a.get("statements") or [])),
            sorted(map(str, a.get("months") or [])),
        )
        for a in accounts_body.get("accounts") or []
        if isinstance(a, dict)
    )
    progress = sorted(
        (str(p.get("statement_id")), str(p.get("status")))
        for p in accounts_body.get("progress") or []
        if isinstance(p, dict)
    )
    return hashlib.sha256(orjson.dumps([accounts, progress])).hexdigest()[:32]


@dataclass
class EntityBundle:
    """Everything fetched for one entity, and how far its processing got."""

    entity_id: str
    status: str = "complete"  # complete | pending | failed | empty | unchanged
    responses: dict[str, dict] = field(default_factory=dict)
    statements: dict[str, dict[str, tuple[str, str | None]]] = field(default_factory=dict)
    pending_endpoints: list[str] = field(default_factory=list)
    error: str | None = None
    unreachable: bool = False  # failed because the API could not be reached, not on the data
    polls: int = 0

    def statement_outcome(self, statement_id: str) -> tuple[str, str | None]:
        """completed, failed (with the API's message) or processing, across endpoints."""
        per = self.statements.get(statement_id, {})
        for status, message in per.values():
            if status == FAILED:
                return FAILED, message
        if any(status != COMPLETED for status, _ in per.values()):
            return PROCESSING, None
        return COMPLETED, None


@dataclass(order=True)
class _Due:
    at: float
    seq: int
    entity_id: str = field(compare=False)
    endpoint: str = field(compare=False)
    polls: int = field(compare=False, default=0)


@dataclass
class _Active:
    bundle: EntityBundle
    outstanding: set[str]
    started: float  # the entity's first request: its polling deadline runs from here
    known: str | None = None  # fingerprint to compare its first accounts answer with


class Extractor:
    """Fetches entities' endpoints on a bounded pool, polling until processing ends.

    Entities are admitted as capacity frees up, at most ``max_active`` at a time (which
    bounds memory), and each entity's deadline runs from its own first request. Polls
    that fall due are sent before the first requests of newly admitted entities, so an
    entity waiting on processing is never starved by a long list behind it.
    """

    def __init__(
        self,
        client: BankConnectClient,
        *,
        policy: PollPolicy | None = None,
        workers: int | None = None,
        max_active: int = 256,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        s = client.settings
        self.client = client
        self.policy = policy or PollPolicy(s.poll_initial_s, s.poll_max_s, s.poll_deadline_s)
        self.workers = workers or s.concurrency
        self.max_active = max(1, max_active)
        self.clock, self.sleep = clock, sleep

    def fetch(
        self,
        entity_ids: Iterable[str],
        endpoints: tuple[str, ...] = ALL_ENDPOINTS,
        known: Mapping[str, str] | None = None,
        stop: threading.Event | None = None,
    ) -> Iterator[EntityBundle]:
        """Yield one bundle per entity, in the order they finish.

        An entity in ``known`` (entity id → fingerprint) is asked for its accounts alone
        first: if they give the same fingerprint, its bundle has status ``unchanged`` and
        that one response; otherwise every other endpoint follows.

        Once ``stop`` is set (the run is stopping) this ends within a fraction of a second,
        without waiting for an entity to finish; ended early, by ``stop`` or by
        ``close()``, it sends nothing more and the client retries nothing more.
        """
        known = known or {}
        first = ("accounts",) if "accounts" in endpoints else ()
        seq = itertools.count()
        waiting = iter(dict.fromkeys(entity_ids))
        more = True
        active: dict[str, _Active] = {}
        queue: list[_Due] = []
        inflight: dict[Future, _Due] = {}
        # Up to two requests per worker: one running, one queued in the pool, so no worker
        # waits for this loop to hand it the next request.
        cap = 2 * self.workers

        # Finished requests arrive here, so each costs this loop O(1), not a wait() over all.
        completed: SimpleQueue[Future] = SimpleQueue()

        def submit_due(now: float) -> None:
            while queue and queue[0].at <= now and len(inflight) < cap:
                item = heapq.heappop(queue)
                if item.entity_id in active:  # not already finished (failed)
                    fut = pool.submit(self._call, item)
                    inflight[fut] = item
                    fut.add_done_callback(completed.put)

        with ThreadPoolExecutor(self.workers, thread_name_prefix="fetch") as pool:
            try:
                while stop is None or not stop.is_set():
                    now = self.clock()
                    submit_due(now)
                    while more and len(inflight) < cap and len(active) < self.max_active:
                        eid = next(waiting, None)
                        if eid is None:
                            more = False
                            break
                        check = known.get(eid) if first else None
                        todo = first if check is not None else endpoints
                        active[eid] = _Active(EntityBundle(eid), set(todo), now, check)
                        for endpoint in todo:
                            heapq.heappush(queue, _Due(now, next(seq), eid, endpoint))
                        submit_due(now)
                    if not inflight:
                        if not queue:
                            break
                        wait = max(0.0, queue[0].at - self.clock())
                        self.sleep(wait if stop is None else min(wait, _STOP_CHECK_S))
                        continue
                    # Full, or nothing else scheduled: wait for a result. Otherwise wake for
                    # the next poll that falls due. Either way, look at ``stop`` now and then.
                    timeout = (
                        None if len(inflight) >= cap or not queue else max(0.0, queue[0].at - now)
                    )
                    if stop is not None:
                        timeout = _STOP_CHECK_S if timeout is None else min(timeout, _STOP_CHECK_S)
                    try:
                        done = [completed.get(timeout=timeout)]
                    except Empty:
                        continue
                    while not completed.empty():
                        done.append(completed.get_nowait())
                    for fut in done:
                        finished = self._settle(
                            inflight.pop(fut), fut, active, queue, seq, endpoints
                        )
                        if finished is not None:
                            del active[finished.entity_id]
                            yield finished
            finally:
                if inflight:  # ended early: the requests running now are the last
                    self.client.cancel()
                for fut in inflight:
                    fut.cancel()

    def _call(self, item: _Due) -> dict:
        c = self.client
        if item.endpoint == "entity":
            return c.entity(item.entity_id)
        if item.endpoint == "get_pdfs":
            return sanitize_pdfs(c.get_pdfs(item.entity_id), c.redact.add)
        return c.analysis(item.entity_id, item.endpoint)

    def _settle(
        self,
        item: _Due,
        fut: Future,
        active: dict[str, _Active],
        queue: list[_Due],
        seq: Iterator[int],
        endpoints: tuple[str, ...] = ALL_ENDPOINTS,
    ) -> EntityBundle | None:
        """Record one response; the entity's bundle once all its endpoints are settled."""
        entry = active.get(item.entity_id)
        if entry is None:
            return None  # the entity already failed on another endpoint
        bundle = entry.bundle
        bundle.polls += 1
        try:
            body = fut.result()
        except AuthError:
            raise  # every request would fail the same way: stop the run
        except ApiError as exc:
            bundle.status = "failed"
            bundle.error = str(exc)
            bundle.unreachable = isinstance(exc, RetriableApiError)  # its retries ran out
            bundle.responses.clear()
            return bundle
        if entry.known is not None:  # the fingerprint check: its first accounts answer
            unchanged = fingerprint(body) == entry.known if isinstance(body, dict) else False
            entry.known = None
            if unchanged:
                bundle.status = "unchanged"
                bundle.responses[item.endpoint] = body
                return bundle
            now = self.clock()
            for endpoint in endpoints:
                if endpoint != item.endpoint:
                    entry.outstanding.add(endpoint)
                    heapq.heappush(queue, _Due(now, next(seq), item.entity_id, endpoint))
        done = True
        if item.endpoint in ANALYSIS_ENDPOINTS:
            for sid, status in progress_of(body).items():
                bundle.statements.setdefault(sid, {})[item.endpoint] = status
            if still_processing(body):
                at = self.policy.next_poll(entry.started, self.clock(), item.polls + 1)
                if at is not None:
                    heapq.heappush(
                        queue, _Due(at, next(seq), item.entity_id, item.endpoint, item.polls + 1)
                    )
                    done = False
                else:
                    bundle.pending_endpoints.append(item.endpoint)
        bundle.responses[item.endpoint] = body
        if done:
            entry.outstanding.discard(item.endpoint)
        if entry.outstanding:
            return None
        if bundle.pending_endpoints:
            bundle.status = "pending"
        elif not bundle.statements:
            bundle.status = "empty"
        return bundle


def sanitize_pdfs(body: dict, learn_secret: Callable[[str], None] | None = None) -> dict:
    """get_pdfs without secrets: no ``pdf_password`` (``has_password`` instead) and no signed
    query string on ``pdf_url``. A password seen is handed to ``learn_secret`` for redaction."""
    out = []
    for s in body.get("statements") or []:
        if not isinstance(s, dict):
            continue
        s = dict(s)
        password = s.pop("pdf_password", None)
        if password and learn_secret is not None:
            learn_secret(str(password))
        s["has_password"] = bool(password)
        url = s.get("pdf_url")
        if isinstance(url, str) and url:
            s["pdf_url"] = urlunsplit(urlsplit(url)._replace(query="", fragment=""))
        out.append(s)
    return {**{k: v for k, v in body.items() if k != "statements"}, "statements": out}
