"""Worker processes that run ``pipeline.transform_chunk`` while the caller loads.

Each worker is ``python -m bankconnect_etl.transform_worker``, fed over its pipes with
length-prefixed pickles: ``(run_id, chunk)`` in, ``(ok, Batch or exception)`` out. Not
``multiprocessing``: its spawn and forkserver modes re-import the caller's ``__main__``
(a script without an ``if __name__ == "__main__"`` guard would start its own run again
in every worker), and fork copies the locks of a process that already runs DuckDB and
HTTP threads.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import subprocess
import sys
from typing import IO, Any

_HEADER = 8
# Added to the worker's nice value. A sync's HTTP threads wait on the network most of the
# time and must get the CPU as soon as a response arrives, or the pool of in-flight
# requests idles; a transform can wait a few milliseconds without cost. With the client
# and its worker on one core (2,000 sandbox entities): fetch phase 33.5 -> 31.5 s, run
# 38.3 -> 36.2 s, medians of 5 alternating pairs (docs/decisions.md).
NICENESS = 10


def _write(stream: IO[bytes], value: object) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(len(data).to_bytes(_HEADER, "big"))
    stream.write(data)
    stream.flush()


def _read(stream: IO[bytes]) -> Any:
    header = stream.read(_HEADER)
    if len(header) < _HEADER:
        raise EOFError("the transform worker stopped")
    size = int.from_bytes(header, "big")
    data = stream.read(size)
    if len(data) < size:  # the other side closed the pipe mid-message (Ctrl-C)
        raise EOFError("the transform worker's pipe closed mid-message")
    return pickle.loads(data)  # noqa: S301 - our own child process's output


EXIT_WAIT_S = 10.0  # for an idle worker to leave its loop once its pipe is closed


class Worker:
    """One worker process; at most one chunk in flight (so neither side blocks the other)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bankconnect_etl.transform_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.busy = False

    def submit(self, run_id: str, chunk: object) -> None:
        assert self.proc.stdin is not None
        _write(self.proc.stdin, (run_id, chunk))
        self.busy = True

    def result(self) -> Any:
        assert self.proc.stdout is not None
        self.busy = False
        ok, value = _read(self.proc.stdout)
        if not ok:
            raise value
        return value

    def close(self) -> None:
        """End the process: at once when its result was not read (the run stopped on an
        error or Ctrl-C), since it would wait for ever to write a result nobody reads."""
        if self.busy:
            self.proc.kill()  # a raw part it was writing stays a .tmp file, never read
        if self.proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=EXIT_WAIT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def main() -> None:
    from bankconnect_etl.pipeline import cycle_collector_paused, transform_chunk

    if hasattr(os, "nice"):  # POSIX
        os.nice(NICENESS)
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed by accident goes to stderr, not into the protocol
    inp = sys.stdin.buffer
    while True:
        try:
            with cycle_collector_paused():  # unpickling a chunk builds its records
                run_id, chunk = _read(inp)
        except EOFError:
            return
        try:
            _write(out, (True, transform_chunk(run_id, chunk)))
        except Exception as exc:  # handed back to the caller, which raises it
            _write(out, (False, exc))


if __name__ == "__main__":
    # Ctrl-C reaches the whole process group, and so may SIGTERM (a service manager's
    # stop): the run that owns this worker handles it and closes the pipe, which ends the
    # loop above. A pipe the run closed mid-batch is the same end, not an error to print.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        main()
    except BrokenPipeError:
        os._exit(0)
    # Out without tearing down the interpreter: every result was written and flushed, the
    # raw-zone parts closed, and the teardown (pandas, pyarrow, pandera and the heap of the
    # last batch) took 0.16 s of CPU at the end of every run, on the core the run's last
    # load and compaction need.
    sys.stderr.flush()
    os._exit(0)
