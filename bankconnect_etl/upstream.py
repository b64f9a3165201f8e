"""The API a run talks to: the configured one, or the embedded sandbox when none is.

With no ``BANKCONNECT_BASE_URL`` every command that syncs (``nightly``, ``backfill``, the
flows) starts the sandbox on a free loopback port for the length of the run, with its own
credentials, so the pipeline works out of the box. Real credentials are configuration:
set ``BANKCONNECT_BASE_URL``, ``BANKCONNECT_API_KEY`` and ``BANKCONNECT_SERVER_HASH``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import SecretStr

from bankconnect_etl.config import Settings

log = logging.getLogger(__name__)


def sandbox_size() -> tuple[int, int]:
    """Entities and seed of the embedded sandbox (BANKCONNECT_SANDBOX_ENTITIES, _SEED)."""
    from bankconnect_etl.errors import ConfigError

    values = []
    for name, default in (("ENTITIES", 60), ("SEED", 1)):
        text = os.environ.get(f"BANKCONNECT_SANDBOX_{name}", str(default))
        try:
            values.append(int(text))
        except ValueError:
            raise ConfigError(
                f"BANKCONNECT_SANDBOX_{name}: expected a whole number, got {text!r}"
            ) from None
    return values[0], values[1]


@contextmanager
def upstream(settings: Settings, *, announce: bool = True) -> Iterator[Settings]:
    """``settings`` pointing at a live API: as given, or at an embedded sandbox (logged
    as a warning unless not ``announce``)."""
    if not settings.uses_sandbox:
        yield settings
        return
    from bankconnect_etl.sandbox import (
        SANDBOX_API_KEY,
        SANDBOX_SERVER_HASH,
        SandboxConfig,
        start_in_thread,
    )

    entities, seed = sandbox_size()
    # Statements already processed, as on a real API between nightly runs: a sandbox that
    # restarts each run with statements "just uploaded" would look changed every time.
    with start_in_thread(SandboxConfig(entities=entities, seed=seed, processing_polls=0)) as sb:
        (log.warning if announce else log.debug)(
            "no BANKCONNECT_BASE_URL: syncing from the embedded sandbox (%d entities, seed %d)",
            entities,
            seed,
        )
        yield settings.model_copy(
            update={
                "base_url": sb.base_url,
                "api_key": SecretStr(SANDBOX_API_KEY),
                "server_hash": SecretStr(SANDBOX_SERVER_HASH),
            }
        )
