"""Analytics commands of ``bankconnect-etl``: ``report`` and ``refresh``."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from bankconnect_etl.cli_warehouse import folder
from bankconnect_etl.errors import UserError

Formatter = Callable[[str], argparse.HelpFormatter]

REPORT_HELP = """\
Write one entity's credit report: a single HTML file with the summary an underwriter
opens first (income, EMIs, FOIR, ABB, bounces, salary, fraud and integrity signals), an
end-of-day balance chart, monthly inflow and outflow bars with salary and EMI markers,
and the bounce and statement-integrity findings. The file is self-contained: opening it
fetches nothing. Figures come from the analytics marts (docs/metrics.md).

ENTITY_ID may be the start of an id when only one entity id starts with it.

examples:
  bankconnect-etl report 3f2a9c1e-5b7d-4c1a-9e2f-0a1b2c3d4e5f
  bankconnect-etl report 3f2a9c1e --out reports/applicant.html
  bankconnect-etl report 3f2a9c1e --as-of 2026-11-20T02:00:00
"""

REFRESH_HELP = """\
Rebuild every analytics mart (sql/, defined in docs/metrics.md) from the warehouse
tables now, in one transaction: readers see all the old marts or all the new ones. Syncs
do this after loading; run it after changing sql/, or when a refresh failed. Takes the
writer lock, so it waits for a running sync (BANKCONNECT_WRITER_WAIT_S).

examples:
  bankconnect-etl refresh
  bankconnect-etl refresh --warehouse /data/lake
"""


def add_commands(sub: argparse._SubParsersAction, formatter: Formatter) -> None:
    from bankconnect_etl.cli_warehouse import _warehouse_args

    p = sub.add_parser(
        "report",
        help="write an entity's credit report (HTML)",
        description=REPORT_HELP,
        formatter_class=formatter,
    )
    p.add_argument("entity_id", metavar="ENTITY_ID", help="the entity (or the start of its id)")
    p.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="where to write it (default: report-<entity id>.html here)",
    )
    _warehouse_args(p)
    p.set_defaults(run=run_report)

    p = sub.add_parser(
        "refresh",
        help="rebuild the analytics marts now",
        description=REFRESH_HELP,
        formatter_class=formatter,
    )
    p.add_argument(
        "--warehouse", type=folder, help="warehouse folder (default: BANKCONNECT_WAREHOUSE)"
    )
    p.set_defaults(run=run_refresh)


def run_report(args: argparse.Namespace) -> int:
    from bankconnect_etl.config import Settings
    from bankconnect_etl.report import resolve_entity, write
    from bankconnect_etl.warehouse import close, connect

    root = args.warehouse or Settings.load().warehouse
    # pinned: the report's queries all read the snapshot it names, even while a sync commits
    con = connect(root, read_only=True, as_of=args.as_of, pin=True)
    try:
        entity_id = resolve_entity(con, args.entity_id)
        (snapshot,) = con.execute("SELECT id FROM lake.current_snapshot()").fetchone() or (None,)
        out = args.out or Path(f"report-{entity_id}.html")
        if out.is_dir():
            out = out / f"report-{entity_id}.html"
        try:
            path = write(con, entity_id, out, snapshot=None if snapshot is None else str(snapshot))
        except OSError as exc:
            raise UserError(
                f"cannot write {out}: {exc.strerror or exc}",
                hint="choose another --out",
            ) from exc
    finally:
        close(con)
    print(f"report: {path.resolve()}")
    return 0


def run_refresh(args: argparse.Namespace) -> int:
    from bankconnect_etl.analytics import refresh
    from bankconnect_etl.config import Settings
    from bankconnect_etl.errors import NoWarehouseError, WarehouseError
    from bankconnect_etl.warehouse import Paths, Writer

    overrides = {"warehouse": args.warehouse} if args.warehouse else {}
    settings = Settings.load(**overrides)
    if not Paths(settings.warehouse).catalog.exists():
        raise NoWarehouseError(
            f"no warehouse at {settings.warehouse}/ (no catalog.sqlite)",
            hint="run `bankconnect-etl demo` or a sync first, or set BANKCONNECT_WAREHOUSE",
        )
    started = time.monotonic()
    with Writer(settings.warehouse, wait_s=settings.writer_wait_s, run_id="refresh") as w:
        if w.con is None:
            raise WarehouseError("the warehouse writer did not open")
        rows = refresh(w.con, message="bankconnect-etl refresh")
        snapshot = w.snapshot_id()
    seconds = time.monotonic() - started
    print(f"refreshed {len(rows)} marts in {seconds:.1f} s, snapshot {snapshot}")
    width = max(map(len, rows), default=0)
    for name, n in rows.items():
        print(f"  {name:<{width}}  {n:>12,} rows")
    return 0
