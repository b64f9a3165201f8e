"""pipeline.prefetch_batches: a sync's fetching runs on its own thread, ahead
of the loader, and hands it batches: full ones, or what came within the wait."""

from __future__ import annotations

import threading
import time

import pytest

from bankconnect_etl.pipeline import prefetch_batches


def prefetch(items, ahead: int):  # type: ignore[no-untyped-def]
    """One item at a time, as the tests of the fetch thread read it."""
    for batch in prefetch_batches(items, 1, ahead=ahead):
        yield from batch


def test_items_arrive_in_order_and_all_of_them() -> None:
    assert list(prefetch(iter(range(1000)), 7)) == list(range(1000))


def test_the_producer_runs_ahead_while_the_consumer_is_busy() -> None:
    produced: list[int] = []

    def items():  # type: ignore[no-untyped-def]
        for i in range(10):
            produced.append(i)
            yield i

    it = prefetch(items(), 4)
    assert next(it) == 0
    deadline = time.monotonic() + 5
    while len(produced) < 6 and time.monotonic() < deadline:  # 1 taken + 4 queued + 1 waiting
        time.sleep(0.01)
    assert len(produced) == 6  # ahead of the consumer, and bounded by the queue
    assert list(it) == list(range(1, 10))


def test_an_error_in_the_producer_is_raised_to_the_consumer() -> None:
    def items():  # type: ignore[no-untyped-def]
        yield 1
        raise ValueError("bad page")

    it = prefetch(items(), 2)
    assert next(it) == 1
    with pytest.raises(ValueError, match="bad page"):
        next(it)


def test_stopping_early_closes_the_producer_on_its_thread() -> None:
    closed = threading.Event()

    def items():  # type: ignore[no-untyped-def]
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    it = prefetch_batches(items(), 2, ahead=3)
    assert next(it) == [0, 1]
    it.close()  # the consumer gave up (e.g. a load failed)
    assert closed.wait(5)
    assert not [t for t in threading.enumerate() if t.name == "fetch"]


def test_batches_are_full_until_the_last() -> None:
    got = list(prefetch_batches(iter(range(25)), 10, ahead=5, max_wait_s=60))
    assert got == [list(range(10)), list(range(10, 20)), list(range(20, 25))]


def test_a_batch_that_fills_slowly_is_handed_over_after_the_wait() -> None:
    resume = threading.Event()

    def items():  # type: ignore[no-untyped-def]
        yield from (0, 1, 2)
        assert resume.wait(10)  # the producer stalls until the test has the first batch
        yield from (3, 4)

    it = prefetch_batches(items(), 10, ahead=20, max_wait_s=0.2)
    started = time.monotonic()
    assert next(it) == [0, 1, 2]  # not full: only the wait can have ended it
    assert 0.15 < time.monotonic() - started < 5
    resume.set()
    assert list(it) == [[3, 4]]


def test_without_a_wait_a_stalled_batch_waits_to_fill() -> None:
    resume = threading.Event()

    def items():  # type: ignore[no-untyped-def]
        yield 0
        resume.wait(10)
        yield 1

    it = prefetch_batches(items(), 2, ahead=4)
    threading.Timer(0.3, resume.set).start()
    assert next(it) == [0, 1]
    assert resume.is_set()


def test_the_batch_before_an_error_is_handed_over_then_the_error_raised() -> None:
    def items():  # type: ignore[no-untyped-def]
        yield from (1, 2)
        raise ValueError("bad page")

    it = prefetch_batches(items(), 10, ahead=4, max_wait_s=60)
    assert next(it) == [1, 2]  # fetched before the error: still loaded
    with pytest.raises(ValueError, match="bad page"):
        next(it)
