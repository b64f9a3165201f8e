"""pipeline.prefetch: a sync's fetching runs on its own thread, ahead of the loader."""

from __future__ import annotations

import threading
import time

import pytest

from bankconnect_etl.pipeline import prefetch


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

    it = prefetch(items(), 3)
    assert next(it) == 0
    it.close()  # the consumer gave up (e.g. a load failed)
    assert closed.wait(5)
    assert not [t for t in threading.enumerate() if t.name == "fetch"]
