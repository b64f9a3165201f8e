"""Polling schedule: 2 s doubling to 30 s, a deadline, and pending rather than complete."""

from __future__ import annotations

from bankconnect_etl.polling import PollPolicy, poll_until_done, progress_of, still_processing
from tests.conftest import FakeClock

PROCESSING = {"progress": [{"status": "processing", "message": None, "statement_id": "s1"}]}
DONE = {
    "progress": [{"status": "completed", "message": None, "statement_id": "s1"}],
    "transactions": [1],
}
FAILED = {"progress": [{"status": "failed", "message": "could not extract", "statement_id": "s1"}]}


def test_delays_double_from_2s_up_to_30s() -> None:
    p = PollPolicy()
    assert [p.delay(n) for n in range(1, 8)] == [2, 4, 8, 16, 30, 30, 30]


def test_next_poll_never_passes_the_deadline() -> None:
    p = PollPolicy(initial_s=2, max_s=30, deadline_s=20)
    assert p.next_poll(started=0, now=0, polls_done=1) == 2
    assert p.next_poll(started=0, now=14, polls_done=4) == 20  # 14 + 16 capped at the deadline
    assert p.next_poll(started=0, now=20, polls_done=5) is None


def test_polls_until_completed() -> None:
    answers = iter([PROCESSING, PROCESSING, PROCESSING, DONE])
    clock = FakeClock()
    result = poll_until_done(lambda: next(answers), PollPolicy(), clock=clock, sleep=clock.sleep)
    assert result.body is DONE and result.polls == 4 and not result.pending
    assert clock.sleeps == [2, 4, 8]


def test_still_processing_at_the_deadline_is_pending_not_complete() -> None:
    clock = FakeClock()
    result = poll_until_done(
        lambda: PROCESSING, PollPolicy(deadline_s=60), clock=clock, sleep=clock.sleep
    )
    assert result.pending and still_processing(result.body)
    assert clock.now == 60 and clock.sleeps == [2, 4, 8, 16, 30]


def test_failed_ends_polling_with_the_api_message() -> None:
    clock = FakeClock()
    result = poll_until_done(lambda: FAILED, PollPolicy(), clock=clock, sleep=clock.sleep)
    assert result.polls == 1 and not result.pending
    assert progress_of(result.body) == {"s1": ("failed", "could not extract")}
