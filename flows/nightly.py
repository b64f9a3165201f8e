"""The nightly deployment: every entity, fetched only where something changed.

Each entity is asked for its accounts first; an unchanged fingerprint on an entity that
was complete costs that one request. New, changed and previously pending or failed
entities are fetched whole, polled, validated and loaded in batches.
"""

from __future__ import annotations

# isort: off
import flows  # noqa: F401  (first: quiets Prefect's ephemeral mode before Prefect loads)
# isort: on

import sys
from collections.abc import Sequence

from prefect import flow
from prefect.states import State

from flows.tasks import ends_failed_on_error, run_here, runner_parser, sync


@flow(name="bankconnect-nightly", log_prints=False)
def nightly_sync(
    batch_size: int | None = None, secret_blocks: dict[str, str] | None = None
) -> dict | State:
    """Sync every entity into the warehouse; fails only if the run failed.

    Args:
        batch_size: entities per task and warehouse transaction (default: settings, 100).
        secret_blocks: settings field → Prefect Secret block name, e.g.
            {"api_key": "bankconnect-api-key", "server_hash": "bankconnect-server-hash"};
            unset fields come from the environment (BANKCONNECT_*).
    """
    return ends_failed_on_error(
        lambda: sync("nightly", batch_size=batch_size, secret_blocks=secret_blocks)
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python flows/nightly.py``: one flow run in this process (Prefect's ephemeral mode
    unless PREFECT_API_URL is set); 0 if it completed, 1 if it failed."""
    parser = runner_parser(
        "flows/nightly.py",
        "Run the nightly flow once, here: every entity, fetched only where something "
        "changed. Settings come from the environment (BANKCONNECT_*), as for the deployment; "
        "with no BANKCONNECT_BASE_URL it syncs from the embedded sandbox.",
    )
    return run_here(
        parser, argv, lambda args: nightly_sync(batch_size=args.batch_size, return_state=True)
    )


if __name__ == "__main__":
    sys.exit(main())
