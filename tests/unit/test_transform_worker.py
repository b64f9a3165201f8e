"""The transform worker process: its protocol and its scheduling priority."""

from __future__ import annotations

import os

import psutil

from bankconnect_etl.sandbox.records import offline_records
from bankconnect_etl.transform_worker import NICENESS, Worker


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
