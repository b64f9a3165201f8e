"""Progress of long work (entities done of total): a bar on a terminal, log lines elsewhere.

Both are ``(done, total)`` callables, as ``pipeline.run_sync`` takes. The log form writes
a line at most every ``interval_s`` seconds, plus the last one, so a scheduled run's log
shows the rate and the time left without a line per batch.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

Progress = Callable[[int, int], None]


def _eta(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class LogProgress:
    """Writes ``synced 4,200/10,000 entities (42%), 310/s, about 19s left`` to a logger."""

    def __init__(
        self,
        log: logging.Logger | logging.LoggerAdapter,
        *,
        what: str = "entities",
        interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log, self.what, self.interval_s, self.clock = log, what, interval_s, clock
        self.started: float | None = None
        self.last = 0.0
        self.last_done = -1

    def __call__(self, done: int, total: int) -> None:
        now = self.clock()
        if self.started is None:
            self.started = self.last = now
            return
        if done == self.last_done or (done < total and now - self.last < self.interval_s):
            return
        self.last, self.last_done = now, done
        self.log.info("%s", self.line(done, total, now - self.started))

    def line(self, done: int, total: int, elapsed: float) -> str:
        rate = done / elapsed if elapsed > 0 else 0.0
        share = f" ({done / total:.0%})" if total else ""
        text = f"synced {done:,}/{total:,} {self.what}{share}, {rate:,.0f}/s"
        if 0 < done < total and rate > 0:
            text += f", about {_eta((total - done) / rate)} left"
        return text


@contextmanager
def progress_bar(
    description: str, *, log: logging.Logger, stream: TextIO | None = None
) -> Iterator[Progress]:
    """A rich progress bar when ``stream`` (stderr) is a terminal; ``LogProgress`` lines
    otherwise."""
    stream = stream or sys.stderr
    if not stream.isatty():
        yield LogProgress(log)
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    class Rate(TextColumn):
        def render(self, task):  # type: ignore[no-untyped-def]
            speed = task.finished_speed or task.speed
            return self.text_format.format(f"{speed:,.0f}/s" if speed else "")

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        Rate("{}"),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(file=stream),
        transient=True,
    )
    task = bar.add_task(description, total=None)
    with bar:
        yield lambda done, total: bar.update(task, completed=done, total=total)
