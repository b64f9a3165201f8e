"""The backfill deployment: re-sync chosen entities by hand, safely beside the nightly run.

Same code path as the nightly run. It waits for the warehouse writer lock if a run is
writing, and with ``force`` fetches every chosen entity whatever its fingerprint says.
"""

from __future__ import annotations

# isort: off
import flows  # noqa: F401  (first: quiets Prefect's ephemeral mode before Prefect loads)
# isort: on

import argparse
import sys
from collections.abc import Sequence

from prefect import flow
from prefect.states import State

from bankconnect_etl.errors import UserError
from bankconnect_etl.pipeline import check_selection
from flows.tasks import ends_failed_on_error, run_here, runner_parser, sync


@flow(name="bankconnect-backfill", log_prints=False)
def backfill(
    link_ids: list[str] | None = None,
    entity_ids: list[str] | None = None,
    all: bool = False,
    force: bool = False,
    dry_run: bool = False,
    batch_size: int | None = None,
    secret_blocks: dict[str, str] | None = None,
) -> dict | State:
    """Re-sync the entities of ``link_ids`` and ``entity_ids``, or ``all`` of them.

    Args:
        link_ids: every entity of these link ids.
        entity_ids: these entities.
        all: every entity (instead of ids).
        force: fetch them all, ignoring unchanged fingerprints.
        dry_run: only list what would be fetched (an artifact); write nothing.
        batch_size: entities per task and warehouse transaction (default: settings, 100).
        secret_blocks: settings field → Prefect Secret block name (see nightly_sync).
    """

    def body() -> dict:
        entity_ids_, link_ids_ = check_selection(entity_ids, link_ids, all)
        return sync(
            "backfill",
            entity_ids=entity_ids_,
            link_ids=link_ids_,
            force=force,
            dry=dry_run,
            batch_size=batch_size,
            secret_blocks=secret_blocks,
        )

    return ends_failed_on_error(body)


def main(argv: Sequence[str] | None = None) -> int:
    """``python flows/backfill.py --link-id ...``: one flow run in this process (Prefect's
    ephemeral mode unless PREFECT_API_URL is set); 0 if it completed, 1 if it failed."""
    from bankconnect_etl.cli_sync import add_backfill_selection

    parser = runner_parser(
        "flows/backfill.py",
        "Run the backfill flow once, here. Settings come from the environment "
        "(BANKCONNECT_*), as for the deployment.",
    )
    add_backfill_selection(parser)

    def flow_run(args: argparse.Namespace) -> State:
        try:  # here, not 10 s later in a flow run
            check_selection(args.entity_ids, args.link_ids, args.all)
        except UserError as exc:
            parser.error(f"{exc} ({exc.hint})" if exc.hint else str(exc))
        return backfill(
            link_ids=args.link_ids,
            entity_ids=args.entity_ids,
            all=args.all,
            force=args.force,
            dry_run=args.dry_run,
            batch_size=args.batch_size,
            return_state=True,
        )

    return run_here(parser, argv, flow_run)


if __name__ == "__main__":
    sys.exit(main())
