"""The transform worker process: its protocol and its scheduling priority."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil

from bankconnect_etl.sandbox.records import offline_records
from bankconnect_etl.transform_worker import EXIT_WAIT_S, NICENESS, Worker


def test_a_worker_transforms_a_chunk_at_a_lower_priority_than_its_caller() -> None:
    worker = Worker()
    try:
        worker.submit("run-1", offline_records(2, 5))
        batch = worker.result()
        assert batch.tables["entities"].num_rows == 2 and batch.tables["transactions"].num_rows
        caller, child = os.nice(0), psutil.Process(worker.proc.pid).nice()
        assert child > caller and child == min(caller + NICENESS, 19)
    finally:
        worker.close()
    assert worker.proc.returncode == 0


def test_a_worker_whose_result_nobody_reads_is_ended_not_waited_for(tmp_path: Path) -> None:
    """A run stopped mid-batch (Ctrl-C, an error) does not wait for the batch in the
    worker, which would block writing a result larger than the pipe holds."""
    part = tmp_path / "part-00001.jsonl.gz"
    os.mkfifo(part)  # a raw part nobody writes: the worker waits for it for ever
    worker = Worker()
    worker.submit("run-1", str(part))
    started = time.monotonic()
    worker.close()
    assert worker.proc.returncode == -signal.SIGKILL
    assert time.monotonic() - started < EXIT_WAIT_S / 2  # killed, not left to time out


def test_a_worker_ignores_the_stop_signals_its_run_handles() -> None:
    """Ctrl-C, or a service manager's SIGTERM to the whole group, is for the run: the
    worker ends when the run closes its pipe."""
    worker = Worker()
    try:
        worker.submit("run-1", offline_records(1, 5))
        worker.result()  # running its loop, signal handlers set
        for signum in (signal.SIGINT, signal.SIGTERM):
            os.kill(worker.proc.pid, signum)
        worker.submit("run-1", offline_records(1, 5))
        assert worker.result().tables["entities"].num_rows == 1
    finally:
        worker.close()
    assert worker.proc.returncode == 0
