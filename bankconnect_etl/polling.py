"""Polling an analysis endpoint until every statement's processing has ended.

Each endpoint has its own ``progress`` (the API tracks them separately), so each is
polled on its own schedule: first again after ``initial_s``, doubling up to ``max_s``,
and never past the entity's deadline. What is still ``processing`` at the deadline is
*pending*: it is never treated as complete, and never loaded as empty.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

COMPLETED, FAILED, PROCESSING = "completed", "failed", "processing"


@dataclass(frozen=True)
class PollPolicy:
    initial_s: float = 2.0
    max_s: float = 30.0
    deadline_s: float = 900.0

    def delay(self, polls_done: int) -> float:
        """Wait before poll number ``polls_done + 1`` (the first poll is immediate)."""
        return min(self.max_s, self.initial_s * 2 ** max(polls_done - 1, 0))

    def next_poll(self, started: float, now: float, polls_done: int) -> float | None:
        """When to poll next, or None when the deadline has passed (the endpoint is pending)."""
        deadline = started + self.deadline_s
        if now >= deadline:
            return None
        return min(now + self.delay(polls_done), deadline)


def progress_of(body: dict) -> dict[str, tuple[str, str | None]]:
    """statement_id -> (status, message) from a response's ``progress``."""
    out = {}
    for item in body.get("progress") or []:
        if isinstance(item, dict) and "statement_id" in item:
            out[str(item["statement_id"])] = (str(item.get("status")), item.get("message"))
    return out


def still_processing(body: dict) -> bool:
    """True while any statement is not yet completed or failed (an unknown status counts as
    processing: never as complete)."""
    return any(status not in (COMPLETED, FAILED) for status, _ in progress_of(body).values())


@dataclass(frozen=True)
class PollResult:
    body: dict
    polls: int
    pending: bool  # still processing at the deadline


def poll_until_done(
    fetch: Callable[[], dict],
    policy: PollPolicy,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> PollResult:
    """Poll one endpoint in the calling thread until no statement is processing."""
    started = clock()
    polls = 0
    while True:
        body = fetch()
        polls += 1
        if not still_processing(body):
            return PollResult(body, polls, pending=False)
        at = policy.next_poll(started, clock(), polls)
        if at is None:
            return PollResult(body, polls, pending=True)
        sleep(max(0.0, at - clock()))
