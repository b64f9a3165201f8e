"""Warehouse commands of ``bankconnect-etl``: ``sql``, ``shell``, ``rebuild``, ``dictionary``."""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import duckdb

from bankconnect_etl.errors import UserError, stopped_by

Formatter = Callable[[str], argparse.HelpFormatter]

SQL_HELP = """\
Run SQL against the warehouse (read-only) and print the result. Several statements
separated by ';' run in order and print a result each (--format table only).

Tables are selected already (FROM transactions works); `lake.snapshots()` lists the
snapshots you can travel to with --as-of.

examples:
  bankconnect-etl sql "FROM entities LIMIT 5"
  bankconnect-etl sql "SELECT sync_status, count(*) FROM entities GROUP BY ALL" --format csv
  bankconnect-etl sql "FROM lake.snapshots() ORDER BY snapshot_id DESC LIMIT 5"
  bankconnect-etl sql "SELECT count(*) FROM transactions" --as-of 2026-11-20T02:00:00
"""

SHELL_HELP = """\
An interactive SQL prompt on the warehouse (read-only). End statements with ';'.
.tables lists the tables, .describe TABLE its columns, .quit (or Ctrl-D) leaves. Piped a
script (shell < checks.sql), it runs every statement and exits 1 if any failed.

examples:
  bankconnect-etl shell
  bankconnect-etl shell --as-of 12
"""

REBUILD_HELP = """\
Rebuild the tables from the raw zone (<warehouse>/raw/), without calling the API: every
archived run is replayed, oldest first, through the same validation and load as a sync.

examples:
  bankconnect-etl rebuild --from-raw
  BANKCONNECT_WAREHOUSE=/data/lake bankconnect-etl rebuild --from-raw
"""

DICTIONARY_HELP = """\
Print the data dictionary (every table and column, from the pandera schemas) as Markdown.

examples:
  bankconnect-etl dictionary > docs/data-dictionary.md
"""


def folder(text: str) -> Path:
    """A folder named on the command line (``--warehouse``): an empty name would be the
    current folder, never what was meant; ``~`` is the home folder, quoted or not."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty folder name")
    path = Path(text).expanduser()  # "--warehouse=~/lake" reaches us with its ~
    if path.is_file():
        raise argparse.ArgumentTypeError(f"{path} is a file, not a folder")
    return path


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high``, named in the error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {low:,} to {high:,}, got {text}")
        return value

    return parse


def add_commands(sub: argparse._SubParsersAction, formatter: Formatter) -> None:
    p = sub.add_parser(
        "sql", help="run SQL on the warehouse", description=SQL_HELP, formatter_class=formatter
    )
    p.add_argument("query", help="SQL: one statement, or several separated by ';'")
    p.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        default="table",
        help="output format (default: %(default)s); json is one object per line",
    )
    _warehouse_args(p)
    p.set_defaults(run=run_sql)

    p = sub.add_parser(
        "shell",
        help="interactive SQL on the warehouse",
        description=SHELL_HELP,
        formatter_class=formatter,
    )
    _warehouse_args(p)
    p.set_defaults(run=run_shell)

    p = sub.add_parser(
        "rebuild",
        help="rebuild the tables from archived raw responses",
        description=REBUILD_HELP,
        formatter_class=formatter,
    )
    p.add_argument("--from-raw", action="store_true", required=True, help="replay <warehouse>/raw/")
    p.add_argument(
        "--warehouse", type=folder, help="warehouse folder (default: BANKCONNECT_WAREHOUSE)"
    )
    p.set_defaults(run=run_rebuild)

    p = sub.add_parser(
        "dictionary",
        help="print the data dictionary (Markdown)",
        description=DICTIONARY_HELP,
        formatter_class=formatter,
    )
    p.set_defaults(run=run_dictionary)


def _warehouse_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--warehouse", type=folder, help="warehouse folder (default: BANKCONNECT_WAREHOUSE)"
    )
    p.add_argument(
        "--as-of",
        metavar="WHEN",
        help="read the warehouse as it was: an ISO timestamp (UTC unless it has an offset) "
        "or a snapshot id",
    )


def _connect(args: argparse.Namespace, *, pin: bool = False) -> duckdb.DuckDBPyConnection:
    from bankconnect_etl.config import Settings
    from bankconnect_etl.warehouse import connect

    root = args.warehouse or Settings.load().warehouse
    return connect(root, read_only=True, as_of=args.as_of, pin=pin)


def run_sql(args: argparse.Namespace) -> int:
    from bankconnect_etl.warehouse import close

    try:  # several statements read one snapshot, even while a sync commits
        several = len(duckdb.connect().extract_statements(args.query)) > 1
    except duckdb.Error:
        several = False  # query_outputs reports the syntax error
    con = _connect(args, pin=several)
    try:
        for n, out in enumerate(query_outputs(con, args.query, args.format)):
            sys.stdout.write(("\n" if n else "") + out + "\n")
            sys.stdout.flush()  # before a later statement's error, on stderr
    finally:
        close(con)
    return 0


def query_output(con: duckdb.DuckDBPyConnection, query: str, fmt: str = "table") -> str:
    """Run ``query``, statement by statement; their results as text, a blank line between
    two. A SQL error is a one-line UserError naming the statement when there are several."""
    return "\n\n".join(query_outputs(con, query, fmt))


def query_outputs(con: duckdb.DuckDBPyConnection, query: str, fmt: str = "table") -> Iterator[str]:
    """Each statement's result as text, as it runs (statements with none give none), so
    the results before a failing statement are shown before its error."""
    try:
        statements = [s.query for s in con.extract_statements(query)]
    except duckdb.Error as exc:
        first, hint = _sql_error(str(exc))
        raise UserError(f"sql: {first}", hint=hint) from exc
    if len(statements) > 1 and fmt != "table":
        raise UserError(
            f"sql: --format {fmt} prints one result, and the query has {len(statements)} "
            "statements",
            hint="run them one at a time, or leave out --format",
        )
    for n, statement in enumerate(statements, start=1):
        try:
            out = _statement_output(con, statement, fmt)
        except duckdb.Error as exc:
            first, hint = _sql_error(str(exc))
            where = f"statement {n} of {len(statements)}: " if len(statements) > 1 else ""
            raise UserError(f"sql: {where}{first}", hint=hint) from exc
        if out:
            yield out


def _statement_output(con: duckdb.DuckDBPyConnection, statement: str, fmt: str) -> str:
    from bankconnect_etl.render import format_table

    rel = con.sql(statement)
    if rel is None:
        return ""
    if fmt == "table":
        return format_table(rel)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(rel.columns)
        w.writerows(rel.fetchall())
        return buf.getvalue().rstrip("\n")
    # JSON columns lose their type in Arrow: cast back, so they nest instead of being quoted
    quoted = ['"' + name.replace('"', '""') + '"' for name in rel.columns]
    json_columns = [
        f"CAST({q} AS JSON) AS {q}"
        for q, kind in zip(quoted, rel.types, strict=True)
        if str(kind) == "JSON"
    ]
    rows = "FROM query_result"
    if json_columns:  # the user's own column names, quoted: they may run any SQL anyway
        rows = f"SELECT * REPLACE ({', '.join(json_columns)}) FROM query_result"  # noqa: S608
    con.register("query_result", rel.to_arrow_table())
    try:
        lines = con.sql(f"SELECT to_json(q)::VARCHAR FROM ({rows}) q").fetchall()  # noqa: S608
    finally:
        con.unregister("query_result")
    return "\n".join(line for (line,) in lines)


def _sql_error(text: str) -> tuple[str, str | None]:
    """DuckDB's error as one line, and the best hint: its own suggestion when it has one
    ('Did you mean "transactions"?', 'Candidate bindings: ...'), unless it suggests one of
    its system views for a name that is nothing like it ("entitys": "pg_settings")."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else text
    for line in lines[1:]:
        if line.startswith("Candidate bindings") or (
            line.startswith("Did you mean") and not _SYSTEM_VIEW.search(line)
        ):
            return first, line
    if "read-only mode" in first:
        return (
            first,
            "the warehouse is read-only here: only syncs write (nightly, backfill, rebuild)",
        )
    if "explicit type casts" in first:  # e.g. 1 + 'x': a Binder Error about types
        return first, _TYPES_HINT
    for kind, hint in _SQL_HINTS:
        if first.startswith(kind):
            return first, hint
    return first, None


_SYSTEM_VIEW = re.compile(r'"(pg_|duckdb_|sqlite_|information_schema)', re.IGNORECASE)
_TYPES_HINT = "ids are text (entity_id = '...'), money DECIMAL, dates DATE ('2026-01-31')"
_SQL_HINTS = (  # by DuckDB's error type, when it has no suggestion of its own
    ("Parser Error", "check the SQL at the word named; the shell may have eaten quotes or $"),
    ("Catalog Error", 'tables: bankconnect-etl sql "SHOW TABLES"'),
    ("Binder Error", 'a table\'s columns: bankconnect-etl sql "DESCRIBE transactions"'),
    ("Conversion Error", _TYPES_HINT),
)


def run_shell(args: argparse.Namespace) -> int:
    import contextlib

    from bankconnect_etl.config import Settings
    from bankconnect_etl.warehouse import close

    with contextlib.suppress(ImportError):
        import readline  # noqa: F401 - line editing and history for input()

    con = _connect(args)
    # fetchall: a result left half-read would hold a read transaction on the catalog
    snapshot = con.sql("SELECT id FROM lake.current_snapshot()").fetchall()
    where = (
        f"as of {args.as_of}" if args.as_of else f"snapshot {snapshot[0][0] if snapshot else '?'}"
    )
    root = args.warehouse or Settings.load().warehouse
    interactive = sys.stdin.isatty()
    # a script piped in gets only its results on stdout: no prompts, the banner on stderr
    banner = sys.stdout if interactive else sys.stderr
    print(f"warehouse {root}/ (read-only, {where})", file=banner, flush=True)
    if interactive:
        print(SHELL_GREETING)
    read = input if interactive else _read_line
    try:
        failed = shell_session(con, read, sys.stdout, sys.stderr, at_a_prompt=interactive)
        if interactive:
            print()  # the prompt's line, left open by Ctrl-D
    except KeyboardInterrupt:
        print()
        failed = 0
    finally:
        close(con)
    # a script piped in (`shell < checks.sql`) fails like `sql` would; at a prompt the
    # person saw each error already
    return 1 if failed and not interactive else 0


def _read_line(_prompt: str) -> str:
    """``input()`` without its prompt, for a script piped in."""
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line.rstrip("\n")


SHELL_GREETING = "end statements with ';'  .tables lists tables  .help  .quit leaves"

SHELL_COMMANDS = """.tables          list the tables
.describe TABLE  its columns and types
.help            this list
.quit, .exit     leave (so does Ctrl-D)
Ctrl-C           cancel the running statement, or the one being typed"""


def shell_session(
    con: duckdb.DuckDBPyConnection,
    read: Callable[[str], str],
    out: IO[str],
    err: IO[str],
    *,
    at_a_prompt: bool = False,
) -> int:
    """Read lines with ``read(prompt)`` until ``.quit`` or EOFError, running each
    statement once a line ends with ';' (and the last one at the end of the input, with or
    without it). A line starting with '.' between statements is a shell command. Results go
    to ``out``, errors to ``err``; returns how many statements or commands failed.

    ``at_a_prompt``: Ctrl-C cancels the running statement, or the one being typed, and the
    session goes on, as in psql; Ctrl-C at an empty prompt leaves. Otherwise (a script piped
    in) Ctrl-C stops the whole session."""
    failed = 0
    buffer: list[str] = []

    def run(statement: str) -> None:
        nonlocal failed
        try:
            for n, text in enumerate(query_outputs(con, statement)):
                out.write(("\n" if n else "") + text + "\n")
                out.flush()  # before a later statement's error, on err
        except UserError as exc:
            failed += 1
            err.write(f"error: {exc}\n" + (f"hint: {exc.hint}\n" if exc.hint else ""))
            err.flush()
        except BaseException as exc:  # DuckDB raises Ctrl-C inside a query as its own error
            if not (at_a_prompt and isinstance(stopped_by(exc), KeyboardInterrupt)):
                raise
            con.interrupt()  # DuckDB may leave it running (see warehouse.stop_interrupted)
            failed += 1
            err.write("interrupted: the statement was cancelled\n")
            err.flush()

    while True:
        try:
            line = read("sql> " if not buffer else " ..> ")
        except KeyboardInterrupt:
            if not (at_a_prompt and buffer):
                raise
            buffer.clear()  # the statement being typed is dropped, the session goes on
            err.write("\n")
            err.flush()
            continue
        except EOFError:
            if "\n".join(buffer).strip():
                run("\n".join(buffer))
            return failed
        stripped = line.strip()
        if not buffer and stripped.startswith("."):
            command, _, rest = stripped.partition(" ")
            rest = rest.strip().rstrip(";").strip()
            if command in (".quit", ".exit"):
                return failed
            if command == ".help":
                out.write(SHELL_COMMANDS + "\n")
            elif command == ".tables":
                run("SHOW TABLES")
            elif command == ".describe" and rest:
                run(f"DESCRIBE {rest}")
            else:
                failed += 1
                what = "needs a table name" if command == ".describe" else "is not a command"
                err.write(f"error: {command} {what}\nhint: {SHELL_GREETING}\n")
                err.flush()
            continue
        if not buffer and not stripped:
            continue
        buffer.append(line)
        if stripped.endswith(";"):
            run("\n".join(buffer))
            buffer.clear()


def run_rebuild(args: argparse.Namespace) -> int:
    from bankconnect_etl.config import Settings
    from bankconnect_etl.pipeline import rebuild_from_raw
    from bankconnect_etl.render import summary_lines

    overrides = {"warehouse": args.warehouse} if args.warehouse else {}
    settings = Settings.load(**overrides)
    if not (settings.warehouse / "raw").is_dir():
        raise UserError(
            f"no raw zone at {settings.warehouse / 'raw'}/",
            hint="raw responses are kept by syncs unless BANKCONNECT_RAW_ENABLED=false",
        )
    run = rebuild_from_raw(settings)
    for line in summary_lines(run):
        print(line)
    return 0 if run.status == "succeeded" else 1


def run_dictionary(args: argparse.Namespace) -> int:
    from bankconnect_etl.dictionary import markdown

    sys.stdout.write(markdown())
    return 0
