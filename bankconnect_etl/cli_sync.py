"""``bankconnect-etl nightly``, ``backfill`` and ``doctor``.

``nightly`` and ``backfill`` run the same library code as the Prefect flows in ``flows/``,
in this process and without Prefect: for a run by hand, a cron job, or a debugger. Under
Prefect, run the deployments instead (docs/operations.md).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from bankconnect_etl.cli_warehouse import folder, whole_number
from bankconnect_etl.errors import NotAnEntityIdError, NotFoundError, UserError

log = logging.getLogger("bankconnect_etl.progress")

NIGHTLY_HELP = """\
Sync every entity into the warehouse, fetching only what changed.

Each entity that was complete last time is asked for its accounts first: if its
fingerprint (statements, their statuses, months) is unchanged, that one request is all it
costs. New, changed, and previously pending or failed entities are fetched whole, polled
until processed, validated and loaded. Pending entities are fetched again next run.

With no BANKCONNECT_BASE_URL it syncs from the embedded sandbox.

examples:
  bankconnect-etl nightly
  BANKCONNECT_BASE_URL=https://portal.finbox.in/bank-connect/v1 bankconnect-etl nightly
  bankconnect-etl nightly --warehouse /data/bankconnect --batch-size 200

exit codes: 0 run succeeded (pending entities included), 1 run failed, 2 usage or
configuration error, 130 interrupted (Ctrl-C), 143 stopped by SIGTERM
"""

BACKFILL_HELP = """\
Re-sync chosen entities by hand; safe while a nightly run writes (it waits for the
writer lock). Unchanged entities are skipped unless --force.

examples:
  bankconnect-etl backfill --entity-id 0b7c2a4e-5e21-4c8f-9d3a-6f1e2b7c8d90
  bankconnect-etl backfill --link-id APP864620249B
  bankconnect-etl backfill --all --force            # re-fetch everything
  bankconnect-etl backfill --link-id APP864620249B --dry-run

exit codes: as for nightly
"""

DOCTOR_HELP = """\
Check that this machine can sync: configuration, connectivity and auth against the
configured API, DuckDB extension loading, catalog access, the writer lock, Prefect.
One line per check, with a fix hint where one fails.

examples:
  bankconnect-etl doctor
  BANKCONNECT_BASE_URL=https://portal.finbox.in/bank-connect/v1 bankconnect-etl doctor

exit codes: 0 every check passed (warnings allowed), 1 a check failed
"""


def add_run_settings(p: argparse.ArgumentParser) -> None:
    """``--warehouse`` and ``--batch-size``: a sync's settings a command line may set (this
    module's commands, and ``python flows/<flow>.py``)."""
    p.add_argument(
        "--warehouse", type=folder, help="warehouse folder (default: BANKCONNECT_WAREHOUSE)"
    )
    p.add_argument(
        "--batch-size",
        type=whole_number(1, 10_000),
        help="entities per warehouse transaction (default: BANKCONNECT_BATCH_SIZE, 100)",
    )


def add_backfill_selection(p: argparse.ArgumentParser) -> None:
    """The backfill's choice of entities and how to fetch them: this command's flags, and
    ``python flows/backfill.py``'s."""
    p.add_argument(
        "--entity-id", dest="entity_ids", action="append", metavar="ID", help="repeatable"
    )
    p.add_argument("--link-id", dest="link_ids", action="append", metavar="ID", help="repeatable")
    p.add_argument("--all", action="store_true", help="every entity")
    p.add_argument("--force", action="store_true", help="fetch even unchanged entities")
    p.add_argument(
        "--dry-run", action="store_true", help="list what would be fetched; write nothing"
    )


def add_commands(
    sub: argparse._SubParsersAction, formatter: Callable[[str], argparse.HelpFormatter]
) -> None:
    p = sub.add_parser(
        "nightly",
        help="sync every entity (incremental)",
        description=NIGHTLY_HELP,
        formatter_class=formatter,
    )
    add_run_settings(p)
    p.set_defaults(run=run_nightly)

    p = sub.add_parser(
        "backfill",
        help="re-sync chosen entities",
        description=BACKFILL_HELP,
        formatter_class=formatter,
    )
    add_backfill_selection(p)
    add_run_settings(p)
    p.set_defaults(run=run_backfill)

    p = sub.add_parser(
        "doctor",
        help="check configuration, API, extensions, catalog, lock",
        description=DOCTOR_HELP,
        formatter_class=formatter,
    )
    p.add_argument(
        "--warehouse", type=folder, help="warehouse folder (default: BANKCONNECT_WAREHOUSE)"
    )
    p.set_defaults(run=run_doctor)


CHECK_THE_IDS = (
    "check the ids: the warehouse's are in "
    'bankconnect-etl sql "SELECT entity_id, link_id FROM entities"'
)


def _settings(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from bankconnect_etl.config import Settings

    overrides: dict = {}
    if args.warehouse:
        overrides["warehouse"] = args.warehouse
    if getattr(args, "batch_size", None):
        overrides["batch_size"] = args.batch_size
    return Settings.load(**overrides)


def _sync(args: argparse.Namespace, kind: str, **selection: object) -> int:
    from bankconnect_etl.pipeline import run_sync
    from bankconnect_etl.progress import progress_bar
    from bankconnect_etl.render import summary_lines
    from bankconnect_etl.upstream import upstream

    with upstream(_settings(args)) as settings, progress_bar(f"{kind} sync", log=log) as progress:
        run = run_sync(settings, kind=kind, progress=progress, **selection)  # type: ignore[arg-type]
    for line in summary_lines(run):
        print(line)
    if run.status == "succeeded":
        return 0
    print(
        f"hint: {CHECK_THE_IDS}"
        if run.not_found and not run.sync.get("seen")
        else "hint: `bankconnect-etl doctor` checks the settings, the API and the warehouse; "
        "the next run picks up where this one stopped",
        file=sys.stderr,
    )
    return 1


def run_nightly(args: argparse.Namespace) -> int:
    return _sync(args, "nightly")


def run_backfill(args: argparse.Namespace) -> int:
    from bankconnect_etl.pipeline import check_selection, dry_run
    from bankconnect_etl.render import plan_lines
    from bankconnect_etl.upstream import upstream

    try:
        entity_ids, link_ids = check_selection(args.entity_ids, args.link_ids, args.all)
    except NotAnEntityIdError as exc:
        raise _with_the_full_id(exc, args) from None
    selection = {"entity_ids": entity_ids, "link_ids": link_ids, "force": args.force}
    if args.dry_run:
        with upstream(_settings(args), record=False) as settings:
            plan = dry_run(settings, **selection)  # type: ignore[arg-type]
        for line in plan_lines(plan):
            print(line)
        try:
            plan.check_found()
        except NotFoundError as exc:  # the run would fail so: the dry run says it first
            print(f"error: {exc}\nhint: {CHECK_THE_IDS}", file=sys.stderr)
            return 1
        return 0
    return _sync(args, "backfill", **selection)


def _with_the_full_id(exc: NotAnEntityIdError, args: argparse.Namespace) -> UserError:
    """An entity id cut short (the demo and `report` show the first 8 characters): the
    error's hint names the one entity of the warehouse it starts, when there is one. A
    backfill fetches only ids given whole, so it is not taken as the id."""
    import uuid

    from bankconnect_etl.warehouse import close, connect

    if not exc.given.strip():
        return exc
    try:
        con = connect(_settings(args).warehouse)
    except UserError:  # no warehouse (yet): nothing to look in
        return exc
    try:
        found = con.execute(
            "SELECT entity_id FROM entities WHERE starts_with(entity_id, lower(?)) LIMIT 2",
            [exc.given.strip()],
        ).fetchall()
    finally:
        close(con)
    if len(found) != 1:
        return exc
    full = str(uuid.UUID(found[0][0]))
    return UserError(
        str(exc), hint=f"the one entity id in the warehouse that starts so: --entity-id {full}"
    )


def run_doctor(args: argparse.Namespace) -> int:
    from bankconnect_etl.doctor import run_checks

    failed = False
    overrides = {"warehouse": args.warehouse} if args.warehouse else {}
    for check in run_checks(overrides):
        mark = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}[check.status]
        line = f"{mark}  {check.name}: {check.detail}"
        if check.hint and check.status != "ok":
            line += f"  (fix: {check.hint})"
        print(line, flush=True)
        failed = failed or check.status == "fail"
    return 1 if failed else 0


class _Plain(logging.Formatter):
    """``warning: ...`` like the CLI's ``error: ...``; progress lines (INFO) bare."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        return text if record.levelno <= logging.INFO else f"{record.levelname.lower()}: {text}"


class _Stderr(logging.StreamHandler):
    """A handler on whatever ``sys.stderr`` is when it writes (a caller that swaps it, as a
    test does, is not left with a handler on a closed stream)."""

    @property  # type: ignore[override]
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def configure_logging(debug: bool) -> None:
    """Warnings and errors of the library on stderr; progress lines (INFO) when not on a
    terminal; everything with ``--debug``. Called again (``main`` run twice in one process),
    it replaces its handler."""
    handler = _Stderr()
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s") if debug else _Plain()
    )
    root = logging.getLogger("bankconnect_etl")
    for old in [h for h in root.handlers if isinstance(h, _Stderr)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    logging.getLogger("bankconnect_etl.progress").setLevel(logging.INFO)
