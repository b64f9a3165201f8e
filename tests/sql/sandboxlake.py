"""A real DuckLake warehouse of sandbox data, loaded without HTTP: the sandbox's responses
for a few entities go through the pipeline's own transform and load."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson

from bankconnect_etl.extract import ANALYSIS_ENDPOINTS, sanitize_pdfs
from bankconnect_etl.pipeline import load_records
from bankconnect_etl.sandbox.world import SandboxConfig, World, payload
from bankconnect_etl.warehouse import Writer

FETCHED = datetime(2026, 11, 20, 2, 0, tzinfo=UTC).isoformat()


def sandbox_records(entities: int, seed: int = 1) -> list[dict]:
    """Entity records exactly as a sync archives them: every endpoint's response."""
    world = World(SandboxConfig(seed=seed, entities=entities, processing_polls=0))
    records = []
    for pos in range(entities):
        responses: dict = {}
        for endpoint in ANALYSIS_ENDPOINTS:
            data, statuses = world.observe(pos, endpoint)
            body = payload(endpoint, data, statuses)
            body["entity_id"] = world.ids[pos]
            responses[endpoint] = orjson.loads(orjson.dumps(body))
        responses["get_pdfs"] = sanitize_pdfs(
            {
                "statements": [
                    {
                        "statement_id": s.statement_id,
                        "bank_name": s.bank,
                        "pdf_password": s.pdf_password,
                        "pdf_url": f"https://files.example/{s.statement_id}.pdf?sig=x",
                        "account_id": s.account_id,
                    }
                    for s in data.statements
                ]
            }
        )
        summary = world.summary(pos)
        responses["entity"] = summary
        records.append(
            {
                "entity_id": world.ids[pos],
                "summary": summary,
                "fetched_at": FETCHED,
                "status": "complete" if data.statements else "empty",
                "error": None,
                "pending_endpoints": [],
                "responses": responses,
            }
        )
    return records


def load(warehouse: Path, records: list[dict]) -> None:
    """Load ``records`` into ``warehouse`` (created if need be), one transaction per 10."""
    with Writer(warehouse, wait_s=30) as w:
        load_records(w, records, run_id="test", batch_size=10, workers=0)
