"""Entity records of a sandbox world without HTTP: for benchmarks and tests of the load.

Each record is what a sync archives in the raw zone (``transform.entity_record``): every
endpoint's response as the sandbox would serve it with statements already processed,
``get_pdfs`` sanitised as the extractor stores it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from bankconnect_etl.extract import ANALYSIS_ENDPOINTS, sanitize_pdfs
from bankconnect_etl.sandbox.world import SandboxConfig, World, payload

FETCHED_AT = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def offline_records(entities: int, seed: int = 1, fetched_at: datetime = FETCHED_AT) -> list[dict]:
    """Records of the first ``entities`` entities of the world of ``seed``."""
    world = World(SandboxConfig(seed=seed, entities=entities, processing_polls=0))
    out = []
    for pos in range(entities):
        responses: dict = {}
        data = None
        for endpoint in ANALYSIS_ENDPOINTS:
            data, statuses = world.observe(pos, endpoint)
            body = payload(endpoint, data, statuses)
            body["entity_id"] = world.ids[pos]
            responses[endpoint] = orjson.loads(orjson.dumps(body))
        assert data is not None
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
        out.append(
            {
                "entity_id": world.ids[pos],
                "summary": summary,
                "fetched_at": fetched_at.isoformat(),
                "status": "complete" if data.statements else "empty",
                "error": None,
                "pending_endpoints": [],
                "responses": responses,
            }
        )
    return out
