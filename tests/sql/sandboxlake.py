"""A real DuckLake warehouse of sandbox data, loaded without HTTP: the sandbox's responses
for a few entities go through the pipeline's own transform and load."""

from __future__ import annotations

from pathlib import Path

from bankconnect_etl.pipeline import load_records
from bankconnect_etl.sandbox.records import offline_records
from bankconnect_etl.warehouse import Writer


def sandbox_records(entities: int, seed: int = 1) -> list[dict]:
    """Entity records exactly as a sync archives them: every endpoint's response."""
    return offline_records(entities, seed)


def load(warehouse: Path, records: list[dict]) -> None:
    """Load ``records`` into ``warehouse`` (created if need be), one transaction per 10."""
    with Writer(warehouse, wait_s=30) as w:
        load_records(w, records, run_id="test", batch_size=10, workers=0)
