"""Extraction: list every entity, then fetch each entity's endpoints until processing ends.

Listing reads page 1, then every other page concurrently by number (the API gives
``count``), and again from the old last page if ``count`` grew meanwhile (new entities
are appended in creation order). Without ``count`` it follows ``next``.

Fetching schedules one request per (entity, endpoint) on a bounded pool; an endpoint still
processing goes back into a time-ordered queue, so waiting costs no worker. Results are
yielded per entity as soon as all its endpoints are settled.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from bankconnect_etl.client import BankConnectClient
from bankconnect_etl.errors import ApiError, AuthError, NotFoundError
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
    client: BankConnectClient, *, link_id: str | None = None, workers: int = 8
) -> Listing:
    first = client.entity_page(1, link_id)
    pages: dict[int, list] = {1: _results(first)}
    count = first.get("count")
    if not isinstance(count, int):
        url, n = first.get("next"), 1
        while url:
            body = client.entity_page(url=url)
            n += 1
            pages[n] = _results(body)
            url = body.get("next")
        return _listing(pages, None)
    last = max(1, math.ceil(count / PAGE_SIZE))
    todo = list(range(2, last + 1))
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="list") as pool:
        for _ in range(MAX_LISTING_ROUNDS):
            for n, body in zip(
                todo, pool.map(lambda p: _page(client, p, link_id), todo), strict=True
            ):
                if body is not None:
                    pages[n] = _results(body)
                    count = max(count, int(body.get("count") or 0))
            grown = max(1, math.ceil(count / PAGE_SIZE))
            short = len(pages.get(last, [])) < _expected(count, last)
            if grown == last and not short:
                break
            # Entities created meanwhile were appended: re-read the old last page and any new ones.
            todo, last = list(range(last, grown + 1)), grown
    return _listing(pages, count)


def _expected(count: int, page: int) -> int:
    return max(0, min(PAGE_SIZE, count - (page - 1) * PAGE_SIZE))


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


@dataclass
class EntityBundle:
    """Everything fetched for one entity, and how far its processing got."""

    entity_id: str
    status: str = "complete"  # complete | pending | failed | empty
    responses: dict[str, dict] = field(default_factory=dict)
    statements: dict[str, dict[str, tuple[str, str | None]]] = field(default_factory=dict)
    pending_endpoints: list[str] = field(default_factory=list)
    error: str | None = None
    polls: int = 0

    def statement_outcome(self, statement_id: str) -> tuple[str, str | None]:
        """completed, failed (with the API's message) or processing, across endpoints."""
        per = self.statements.get(statement_id, {})
        for status, message in per.values():
            if status == FAILED:
                return FAILED, message
        if any(status == PROCESSING for status, _ in per.values()):
            return PROCESSING, None
        return COMPLETED, None


@dataclass(order=True)
class _Due:
    at: float
    seq: int
    entity_id: str = field(compare=False)
    endpoint: str = field(compare=False)
    polls: int = field(compare=False, default=0)


class Extractor:
    def __init__(
        self,
        client: BankConnectClient,
        *,
        policy: PollPolicy | None = None,
        workers: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        s = client.settings
        self.client = client
        self.policy = policy or PollPolicy(s.poll_initial_s, s.poll_max_s, s.poll_deadline_s)
        self.workers = workers or s.concurrency
        self.clock, self.sleep = clock, sleep

    def fetch(
        self, entity_ids: Iterable[str], endpoints: tuple[str, ...] = ALL_ENDPOINTS
    ) -> Iterator[EntityBundle]:
        """Yield one bundle per entity, in the order they finish."""
        seq = itertools.count()
        bundles: dict[str, EntityBundle] = {}
        outstanding: dict[str, set[str]] = {}
        started: dict[str, float] = {}
        queue: list[_Due] = []
        now = self.clock()
        for eid in dict.fromkeys(entity_ids):
            bundles[eid] = EntityBundle(eid)
            outstanding[eid] = set(endpoints)
            started[eid] = now
            for endpoint in endpoints:
                heapq.heappush(queue, _Due(now, next(seq), eid, endpoint))
        inflight: dict[Future, _Due] = {}
        with ThreadPoolExecutor(self.workers, thread_name_prefix="fetch") as pool:
            try:
                while queue or inflight:
                    now = self.clock()
                    # Up to two requests per worker: one running, one queued in the pool, so
                    # no worker waits for this loop to hand it the next request.
                    cap = 2 * self.workers
                    while queue and queue[0].at <= now and len(inflight) < cap:
                        item = heapq.heappop(queue)
                        if bundles[item.entity_id].status == "failed":
                            continue
                        inflight[pool.submit(self._call, item)] = item
                    if not inflight:
                        if queue:
                            self.sleep(max(0.0, queue[0].at - self.clock()))
                        continue
                    # Full, or nothing else scheduled: wait for a result. Otherwise wake for
                    # the next poll that falls due (never 0 here: due work was submitted).
                    timeout = (
                        None if len(inflight) >= cap or not queue else max(0.0, queue[0].at - now)
                    )
                    done, _ = wait(list(inflight), timeout=timeout, return_when=FIRST_COMPLETED)
                    for fut in done:
                        item = inflight.pop(fut)
                        finished = self._settle(
                            item, fut, bundles, outstanding, started, queue, seq
                        )
                        if finished is not None:
                            yield finished
            finally:
                for fut in inflight:
                    fut.cancel()

    def _call(self, item: _Due) -> dict:
        c = self.client
        if item.endpoint == "entity":
            return c.entity(item.entity_id)
        if item.endpoint == "get_pdfs":
            return sanitize_pdfs(c.get_pdfs(item.entity_id), c.redact.add)
        return c.analysis(item.entity_id, item.endpoint)

    def _settle(self, item, fut, bundles, outstanding, started, queue, seq) -> EntityBundle | None:  # type: ignore[no-untyped-def]
        bundle = bundles[item.entity_id]
        if bundle.status == "failed":
            return None
        bundle.polls += 1
        try:
            body = fut.result()
        except AuthError:
            raise  # every request would fail the same way: stop the run
        except ApiError as exc:
            bundle.status = "failed"
            bundle.error = str(exc)
            bundle.responses.clear()
            return bundle
        done = True
        if item.endpoint in ANALYSIS_ENDPOINTS:
            for sid, status in progress_of(body).items():
                bundle.statements.setdefault(sid, {})[item.endpoint] = status
            if still_processing(body):
                at = self.policy.next_poll(started[item.entity_id], self.clock(), item.polls + 1)
                if at is not None:
                    heapq.heappush(
                        queue, _Due(at, next(seq), item.entity_id, item.endpoint, item.polls + 1)
                    )
                    done = False
                else:
                    bundle.pending_endpoints.append(item.endpoint)
        bundle.responses[item.endpoint] = body
        if done:
            outstanding[item.entity_id].discard(item.endpoint)
        if outstanding[item.entity_id]:
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
