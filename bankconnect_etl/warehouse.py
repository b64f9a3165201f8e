"""The warehouse: a DuckLake (SQLite catalog + partitioned Parquet) attached by DuckDB.

Layout under ``BANKCONNECT_WAREHOUSE`` (default ``./warehouse``)::

    catalog.sqlite     DuckLake catalog: tables, snapshots (time travel), file lists
    data/              Parquet files; transaction tables under year=YYYY/month=M/
    raw/               each run's responses, gzipped JSON lines (see bankconnect_etl.raw)
    writer.lock        held by the one writer; writer.json says who holds it

Readers (``connect()``) attach read-only and never wait: DuckLake gives each query a
committed snapshot, so a reader sees an entity's rows from before or after a batch, never
half. A warehouse folder this user cannot write (a read-only mount, another user's folder)
can still be read: see ``_reader_catalog``. Writers (``Writer``) refuse it with a
``WarehouseError``, and hold ``writer.lock`` for their whole session: two DuckLake writers
on one SQLite catalog fail with "database is locked", so a second writer waits with a
message and a timeout instead.

An entity's rows in every table are replaced in one transaction (delete, then insert),
many entities per transaction. A process killed mid-batch leaves the last committed
snapshot; the entity rows it had not committed are simply fetched again by the next run.

The DuckDB extensions come from their pip packages and are loaded by path: nothing is
downloaded. DDL is generated from the pandera models in ``schemas/``.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import socket
import sqlite3
import tempfile
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import util as importlib_util
from itertools import zip_longest
from pathlib import Path

import duckdb
import filelock
import pyarrow as pa

from bankconnect_etl.errors import (
    BankConnectETLError,
    NoWarehouseError,
    UserError,
    WarehouseBusyError,
    WarehouseError,
    stopped_by,
)
from bankconnect_etl.schemas.tables import ENTITY_TABLES, JSON_COLUMNS, TABLES
from bankconnect_etl.transform import Batch, arrow_schema

log = logging.getLogger(__name__)

LAKE = "lake"
EXTENSION_PACKAGES = ("duckdb_extension_sqlite_scanner", "duckdb_extension_ducklake")


@dataclass(frozen=True)
class Paths:
    root: Path

    @property
    def catalog(self) -> Path:
        return self.root / "catalog.sqlite"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def lock(self) -> Path:
        return self.root / "writer.lock"

    @property
    def holder(self) -> Path:
        return self.root / "writer.json"

    def sidecar(self, suffix: str) -> Path:
        """The catalog's SQLite ``-wal`` or ``-shm`` file."""
        return self.root / f"catalog.sqlite{suffix}"


# ---------------------------------------------------------------------- connections


def extension_paths() -> list[Path]:
    """The ducklake and sqlite extension binaries inside their pip packages."""
    found = []
    for package in EXTENSION_PACKAGES:
        spec = importlib_util.find_spec(package)
        if spec is None or spec.origin is None:
            raise WarehouseError(
                f"the Python package {package.replace('_', '-')} is not installed",
                hint="run `make install` to install the project's dependencies",
            )
        binary = next(Path(spec.origin).parent.rglob("*.duckdb_extension"), None)
        if binary is None:
            raise WarehouseError(f"{package}: no .duckdb_extension file in the package")
        found.append(binary)
    return found


def _duckdb() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(config={"autoinstall_known_extensions": False})
    for path in extension_paths():
        con.execute(f"LOAD '{_quote(str(path))}'")
    return con


def stop_interrupted(con: duckdb.DuckDBPyConnection, exc: BaseException) -> BaseException:
    """After ``exc`` on ``con``: what to raise, once ``con`` is fit to use again.

    When a signal (Ctrl-C, SIGTERM) lands in a query, DuckDB 1.5.5's Python client raises
    a plain ``RuntimeError('Query interrupted')`` from the signal's exception. That stop is
    returned, to be raised as itself: taken for a RuntimeError, a Prefect task retries it
    and the run goes on. And about half the time the query's tasks go on after the raise;
    the connection's next statement, or its close, then waits for them (for ever, for a
    long query): ``interrupt()`` stops them (with nothing running, it does nothing).
    Any other error is returned as it is."""
    stop = stopped_by(exc)
    if stop is None:
        return exc
    con.interrupt()
    return stop


def close(con: duckdb.DuckDBPyConnection) -> None:
    """Close ``con``, stopping first any query a Ctrl-C left running (see
    `stop_interrupted`): a reader closes in a ``finally`` as the interrupt goes by."""
    con.interrupt()
    con.close()


def _attach(
    con: duckdb.DuckDBPyConnection,
    paths: Paths,
    *,
    read_only: bool,
    as_of: datetime | int | None = None,
    catalog: Path | None = None,
) -> None:
    # The data folder is always the one beside the catalog, wherever the warehouse now is:
    # DuckLake stores the path it was created with and refuses another unless overridden.
    options = [f"DATA_PATH '{_quote(str(paths.data.resolve()))}/'", "OVERRIDE_DATA_PATH TRUE"]
    if read_only:
        options.append("READ_ONLY")
    else:
        options.append("DATA_INLINING_ROW_LIMIT 0")  # rows land in Parquet, not the catalog
    if isinstance(as_of, int):
        options.append(f"SNAPSHOT_VERSION {as_of}")
    elif isinstance(as_of, datetime):
        options.append(f"SNAPSHOT_TIME '{_utc(as_of).isoformat(sep=' ')}'")
    con.execute(
        f"ATTACH 'ducklake:sqlite:{_quote(str(catalog or paths.catalog))}' AS {LAKE} "
        f"({', '.join(options)})"
    )
    con.execute(f"USE {LAKE}")


def connect(
    warehouse: str | Path | None = None,
    *,
    read_only: bool = True,
    as_of: datetime | int | str | None = None,
    pin: bool = False,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the warehouse attached as ``lake`` (and selected).

    ``as_of`` is a snapshot id, a datetime (UTC if naive) or an ISO timestamp: the
    warehouse as it was then. Read-only connections never block the writer. Each query
    reads the newest snapshot, even inside a transaction (``BEGIN`` does not hold the
    lake's snapshot in DuckLake for DuckDB 1.5.5: a writer's commit shows up part-way
    through one); ``pin`` holds the snapshot current at connection, so several queries agree.
    """
    paths = Paths(Path(warehouse or os.environ.get("BANKCONNECT_WAREHOUSE", "warehouse")))
    catalog, copy = paths.catalog, None
    if read_only:
        if not paths.catalog.exists():
            raise NoWarehouseError(
                f"no warehouse at {paths.root}/ (no catalog.sqlite)",
                hint="run `bankconnect-etl demo` or a sync first, or set BANKCONNECT_WAREHOUSE",
            )
        catalog, copy = _reader_catalog(paths)
    con = _duckdb()
    if copy is not None:  # deleted when the connection is (or at exit)
        weakref.finalize(con, shutil.rmtree, copy, ignore_errors=True)
    try:
        _attach(con, paths, read_only=read_only, as_of=parse_as_of(as_of), catalog=catalog)
        if pin and as_of is None:
            (current,) = con.execute(f"SELECT id FROM {LAKE}.current_snapshot()").fetchone()
            con.execute(f"USE memory; DETACH {LAKE}")
            _attach(con, paths, read_only=read_only, as_of=int(current), catalog=catalog)
    except duckdb.Error as exc:
        con.close()
        raise _as_of_error(exc, as_of) from exc
    return con


def parse_as_of(value: datetime | int | str | None) -> datetime | int | None:
    """``--as-of`` as given by a user: a snapshot id (``12``) or an ISO timestamp."""
    if value is None or isinstance(value, datetime | int):
        return value
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(
            f"--as-of {text!r} is neither a snapshot id nor an ISO timestamp",
            hint="e.g. --as-of 2026-11-20T02:00:00 (UTC unless it has an offset) or --as-of 12",
        ) from None
    # DuckLake reads a time to come as now: say so, rather than answer for a date not reached
    if (when if when.tzinfo else when.replace(tzinfo=UTC)) > datetime.now(UTC):
        raise UserError(
            f"--as-of {text} is in the future (UTC unless it has an offset)",
            hint="leave --as-of out to read the warehouse as it is now",
        )
    return when


def _as_of_error(exc: duckdb.Error, as_of: object) -> BankConnectETLError:
    text = str(exc).splitlines()[0]
    if as_of is not None and ("snapshot" in text.lower() or "timestamp" in text.lower()):
        return UserError(
            f"no snapshot at --as-of {as_of}: {text}",
            hint='`bankconnect-etl sql "FROM lake.snapshots()"` lists the snapshots',
        )
    return WarehouseError(f"cannot attach the warehouse: {text}")


def _use_wal(catalog: Path) -> None:
    """Put the SQLite catalog in WAL mode (it stays so): a reader holding a read
    transaction, an idle shell included, then never blocks the writer's commit; in the
    default rollback-journal mode it does ("database is locked")."""
    db = sqlite3.connect(catalog, timeout=60)
    try:
        db.execute("PRAGMA journal_mode=WAL")
    except sqlite3.DatabaseError as exc:
        if "not a database" not in str(exc):
            raise
        raise _not_a_catalog(catalog) from exc
    finally:
        db.close()


def _not_a_catalog(catalog: Path) -> WarehouseError:
    return WarehouseError(
        f"{catalog} is not a SQLite database: the warehouse's catalog is damaged",
        hint="restore it from a backup, or copy raw/ into an empty folder and run "
        "`bankconnect-etl rebuild --from-raw --warehouse <that folder>`",
    )


def _reader_catalog(paths: Paths) -> tuple[Path, Path | None]:
    """The catalog file a reader attaches, and the temporary folder holding it (or None).

    SQLite opens a database in WAL mode (see ``_use_wal``) only if its ``-shm`` file exists
    or can be created, read-only included. A warehouse folder this user cannot write (a
    read-only mount, another user's folder) whose writer closed cleanly has no ``-shm``, so
    neither SQLite nor DuckDB can read its catalog there ("unable to open database file",
    or "attempt to write a readonly database"), and DuckDB's sqlite extension takes no
    ``immutable`` URI. Then the reader attaches a
    private copy of ``catalog.sqlite`` (and of its ``-wal``, if one is left), in a temporary
    folder, and reads the Parquet files in place. With no ``-shm`` no process has the
    catalog open, so the copy is consistent; the connection reads the warehouse as it was
    when it connected.
    """
    try:
        tables = _catalog_tables(paths.catalog)
    except sqlite3.OperationalError as exc:
        if not _needs_a_copy(paths, exc):
            raise _unreadable(paths, exc) from exc
    else:
        if not tables:
            raise _no_tables(paths)
        return paths.catalog, None
    copy = Path(tempfile.mkdtemp(prefix="bankconnect-etl-catalog-"))
    try:
        shutil.copyfile(paths.catalog, copy / paths.catalog.name)
        if paths.sidecar("-wal").exists():
            shutil.copyfile(paths.sidecar("-wal"), copy / paths.sidecar("-wal").name)
        tables = _catalog_tables(copy / paths.catalog.name)
    except OSError as exc:
        shutil.rmtree(copy, ignore_errors=True)
        raise _unreadable(paths, exc) from exc
    except BaseException:
        shutil.rmtree(copy, ignore_errors=True)
        raise
    if not tables:
        shutil.rmtree(copy, ignore_errors=True)
        raise _no_tables(paths)
    log.debug("%s/ is read-only: reading a copy of its catalog in %s", paths.root, copy)
    return copy / paths.catalog.name, copy


def _needs_a_copy(paths: Paths, exc: sqlite3.Error) -> bool:
    """Whether SQLite could not open the catalog because it cannot create its ``-shm``:
    SQLITE_CANTOPEN on a read-only file system, SQLITE_READONLY_DIRECTORY in a folder
    this user may not write."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    return (
        code in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY)
        and not os.access(paths.root, os.W_OK)
        and not paths.sidecar("-shm").exists()
        and os.access(paths.catalog, os.R_OK)
    )


def _catalog_tables(catalog: Path) -> int:
    """How many tables the lake has now: 0 in a catalog DuckLake has not set up."""
    try:
        db = sqlite3.connect(f"{catalog.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            (count,) = db.execute(
                "SELECT count(*) FROM ducklake_table WHERE end_snapshot IS NULL"
            ).fetchone()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        if "no such table" in str(exc):
            return 0
        if "not a database" in str(exc):
            raise _not_a_catalog(catalog) from exc
        raise
    return int(count)


def _no_tables(paths: Paths) -> NoWarehouseError:
    return NoWarehouseError(
        f"the warehouse at {paths.root}/ has no tables yet",
        hint="run `bankconnect-etl demo` or a sync first",
    )


def _unreadable(paths: Paths, exc: Exception) -> WarehouseError:
    why = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
    return WarehouseError(
        f"cannot read the warehouse's catalog {paths.catalog}: {why}",
        hint=f"check that this user can read {paths.root}/ and the files in it",
    )


READ_ONLY_FS = "is on a read-only file system"


def read_only_reason(paths: Paths) -> str | None:
    """Why a writer could not write the warehouse at ``paths`` (None when it could), to
    follow "the warehouse at ...": its folder is on a read-only file system, or this user
    may not write it or one of its files."""
    for path in (paths.root, paths.data, paths.catalog, paths.lock, paths.holder):
        if path.exists() and not os.access(path, os.W_OK):
            if _on_read_only_fs(path):
                return READ_ONLY_FS
            return f"is read-only for this user (no write permission on {path})"
    return None


def _on_read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _read_only_error(paths: Paths, why: str) -> WarehouseError:
    return WarehouseError(
        f"the warehouse at {paths.root}/ {why}, so it cannot be written",
        hint="readers (sql, report, shell) can still read it; run syncs, rebuilds and "
        "refreshes on a writable warehouse (remount it read-write, or use a writable copy)",
    )


# ---------------------------------------------------------------------- DDL


DUCKDB_TYPES = {
    pa.string(): "VARCHAR",
    pa.date32(): "DATE",
    pa.timestamp("us"): "TIMESTAMP",
    pa.decimal128(18, 2): "DECIMAL(18,2)",
    pa.int64(): "BIGINT",
    pa.bool_(): "BOOLEAN",
    pa.list_(pa.string()): "VARCHAR[]",
}


def column_types(table: str) -> dict[str, str]:
    """``table``'s columns and their DuckDB types, in order, from its pandera model."""
    return {
        f.name: "JSON" if (table, f.name) in JSON_COLUMNS else DUCKDB_TYPES[f.type]
        for f in arrow_schema(table)
    }


def not_null(table: str) -> set[str]:
    """``table``'s columns its pandera model requires (declared NOT NULL in the catalog)."""
    return {n for n, col in TABLES[table].model.to_schema().columns.items() if not col.nullable}


def ddl(table: str) -> list[str]:
    """CREATE TABLE (and partitioning) for ``table``, from its pandera model."""
    required = not_null(table)
    columns = ", ".join(
        f"{name} {kind}{' NOT NULL' if name in required else ''}"
        for name, kind in column_types(table).items()
    )
    create = f"CREATE TABLE IF NOT EXISTS {LAKE}.{table} ({columns})"
    return [create, partitioning(table)] if TABLES[table].partition_date else [create]


def partitioning(table: str) -> str:
    """The statement that gives ``table`` its spec's partitioning (or none)."""
    d = TABLES[table].partition_date
    if d:
        return f"ALTER TABLE {LAKE}.{table} SET PARTITIONED BY (year({d}), month({d}))"
    return f"ALTER TABLE {LAKE}.{table} RESET PARTITIONED BY"


# ---------------------------------------------------------------------- the writer

# How long files merged away by a compaction stay on disk (a reader that started before the
# merge may still be scanning them): DuckLake's own default for its cleanup.
MERGED_FILES_KEEP_DAYS = 2.0

# A compaction merges only files smaller than this and leaves the rest as they are. Without
# a bound, DuckLake merges every file under its target size (512 MB) with the run's new
# ones, so each run rewrote whole partitions: at 10 M transactions (14 month files of about
# 12 MB), a batch of 100 new entities loaded in 0.2 s and its compaction took 3.6 s,
# growing with the lake. With 8 MB, 0.7 to 1.0 s, bounded by 8 MB a partition or table.
MERGE_MAX_FILE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Compaction:
    """What ``Writer.compact`` did: files merged, files written, old files deleted."""

    merged: int
    written: int
    deleted: int
    seconds: float


class Writer:
    """The one writing session on a warehouse. Use as a context manager.

    Holds the writer lock from ``__enter__`` to ``__exit__``; waits for it up to
    ``wait_s``, logging who holds it, then raises ``WarehouseBusyError``.
    """

    def __init__(self, warehouse: str | Path, *, wait_s: float = 7200.0, run_id: str = "") -> None:
        self.paths = Paths(Path(warehouse))
        self.wait_s = wait_s
        self.run_id = run_id
        self.con: duckdb.DuckDBPyConnection | None = None
        self._lock: filelock.FileLock | None = None
        self.lock_waited_s = 0.0  # how long another writer kept this one waiting

    def __enter__(self) -> Writer:
        if why := read_only_reason(self.paths):
            raise _read_only_error(self.paths, why)
        try:
            self.paths.data.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if exc.errno == errno.EROFS and self.paths.root.is_dir():
                raise _read_only_error(self.paths, READ_ONLY_FS) from exc
            raise WarehouseError(
                f"cannot create the warehouse at {self.paths.root}/: {exc.strerror or exc}",
                hint="set BANKCONNECT_WAREHOUSE to a directory this user can write",
            ) from exc
        self._acquire()
        try:
            _use_wal(self.paths.catalog)
            self.con = _duckdb()
            _attach(self.con, self.paths, read_only=False)
            self._create_tables()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.con is not None:
            with suppress(duckdb.Error):
                close(self.con)
            self.con = None
        if self._lock is not None:
            with suppress(OSError):
                self.paths.holder.unlink()
            self._lock.release()
            self._lock = None

    def _acquire(self) -> None:
        lock = filelock.FileLock(str(self.paths.lock))
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:  # first: it is an OSError too
            log.warning(
                "waiting for the warehouse writer lock at %s: held by %s; giving up after %.0f s "
                "(BANKCONNECT_WRITER_WAIT_S)",
                self.paths.lock,
                self._holder(),
                self.wait_s,
            )
            started = time.monotonic()
            try:
                lock.acquire(timeout=self.wait_s, poll_interval=0.2)
            except filelock.Timeout:
                raise WarehouseBusyError(
                    f"another writer held the warehouse for {self.wait_s:.0f} s: {self._holder()}",
                    hint="wait for it to finish, or raise BANKCONNECT_WRITER_WAIT_S",
                ) from None
            self.lock_waited_s = time.monotonic() - started
            log.warning("writer lock acquired after %.1f s", self.lock_waited_s)
        except OSError as exc:  # checked in __enter__; a folder made read-only since, say
            raise self._unwritable(exc) from exc
        self._lock = lock
        try:
            self._write_holder()
        except OSError as exc:
            self.close()
            raise self._unwritable(exc) from exc

    def _unwritable(self, exc: OSError) -> WarehouseError:
        if exc.errno == errno.EROFS:
            return _read_only_error(self.paths, READ_ONLY_FS)
        return WarehouseError(
            f"cannot write {exc.filename or self.paths.lock}: {exc.strerror or exc}",
            hint="check that this user can write the warehouse's folder and its files",
        )

    def _write_holder(self) -> None:
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "run_id": self.run_id,
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self.paths.holder.write_text(json.dumps(holder))

    def _holder(self) -> str:
        try:
            h = json.loads(self.paths.holder.read_text())
        except (OSError, ValueError):
            return "another process"
        run = f", run {h['run_id']}" if h.get("run_id") else ""
        return f"pid {h.get('pid')} on {h.get('host')}{run}, since {h.get('since')}"

    def _create_tables(self) -> None:
        """Create the missing tables, and bring an existing table (a lake written by an
        earlier version) up to its spec: the nullable columns added since (null in the
        rows written before), NOT NULL as the spec says, and the partitioning. DuckLake
        applies a new partitioning to data written from then on; older files stay as they
        were written. What cannot be brought up to date without guessing (a column of
        another type, a required column the older rows lack or leave null) is an error,
        raised before anything changes."""
        con = self._con
        existing: dict[str, dict[str, tuple[str, bool]]] = {}
        for table, column, kind, nullable in con.execute(
            "SELECT table_name, column_name, data_type, is_nullable FROM duckdb_columns() "
            "WHERE database_name = ? AND schema_name = 'main'",
            [LAKE],
        ).fetchall():
            existing.setdefault(table, {})[column] = (kind, nullable)
        partitioned = _partitioned_tables(con) if existing else set()
        has_nulls = _column_nulls(con) if existing else {}
        statements = []
        constraints: dict[str, list[str]] = {}  # by table, after the rest: see below
        for table, spec in TABLES.items():
            if table not in existing:
                statements += ddl(table)
                continue
            required = not_null(table)
            alter = f"ALTER TABLE {LAKE}.{table}"
            for column, kind in column_types(table).items():
                where = f"{table}.{column}"
                found, nullable = existing[table].get(column, (None, True))
                if found is None and column in required:
                    raise self._out_of_date(f"{where} is missing, and this version requires it")
                if found is None:
                    statements.append(f"{alter} ADD COLUMN {column} {kind}")
                elif found.replace(" ", "") != kind:
                    raise self._out_of_date(f"{where} is {found}, and this version writes {kind}")
                elif nullable and column in required and (table, column) in has_nulls:
                    if has_nulls[table, column]:
                        raise self._out_of_date(
                            f"{where} has nulls, and this version requires a value"
                        )
                    constraints.setdefault(table, []).append(
                        f"{alter} ALTER COLUMN {column} SET NOT NULL"
                    )
                elif not nullable and column not in required:
                    constraints.setdefault(table, []).append(
                        f"{alter} ALTER COLUMN {column} DROP NOT NULL"
                    )
            if bool(spec.partition_date) != (table in partitioned):
                statements.append(partitioning(table))
        # DuckLake sets NOT NULL only when a table's statistics prove no null (a table that
        # never held a row has none: it is left to a later run, when it has rows), and on a
        # table the transaction has not changed: so one column a table per transaction.
        rounds = [statements, *map(list, zip_longest(*constraints.values()))]
        message = "tables brought up to this version's schema" if existing else "tables"
        for batch in filter(None, rounds):
            with self._commit(message):
                for statement in filter(None, batch):
                    con.execute(statement)

    def _out_of_date(self, problem: str) -> WarehouseError:
        return WarehouseError(
            f"the warehouse at {self.paths.root}/ was written by another version of "
            f"bankconnect-etl: {problem}",
            hint="copy its raw/ folder into an empty one and run `bankconnect-etl rebuild "
            "--from-raw --warehouse <that folder>`, or keep using the version that wrote it",
        )

    @property
    def _con(self) -> duckdb.DuckDBPyConnection:
        if self.con is None:
            raise WarehouseError("the writer is not open")
        return self.con

    # ------------------------------------------------------------------ writing

    def load(self, batch: Batch, *, message: str = "") -> int:
        """Replace the batch's entities in one transaction; the new snapshot id."""
        con = self._con
        # Only entities already in the warehouse have rows to delete or a row to merge
        # with: a first load (or the new entities of a nightly run) skips both.
        entities = batch.tables["entities"]
        con.register("batch_entities", entities)
        existing = {
            e
            for (e,) in con.execute(
                f"SELECT entity_id FROM {LAKE}.entities "
                "WHERE entity_id IN (SELECT entity_id FROM batch_entities)"
            ).fetchall()
        }
        con.unregister("batch_entities")
        known = [e for e in batch.replace if e in existing]
        con.register("batch_replace", pa.table({"entity_id": pa.array(known, pa.string())}))
        try:
            with self._commit(message):
                if existing:
                    self._load_entities(entities)
                else:
                    self._insert("entities", entities)
                for table in ENTITY_TABLES:
                    if table == "entities":
                        continue
                    if known:
                        con.execute(
                            f"DELETE FROM {LAKE}.{table} "
                            "WHERE entity_id IN (SELECT entity_id FROM batch_replace)"
                        )
                    self._insert(table, batch.tables[table])
                health = batch.tables["bank_health"]
                if health.num_rows:  # a history, appended; a replayed observation replaces itself
                    con.register("batch_health", health)
                    try:
                        con.execute(
                            f"DELETE FROM {LAKE}.bank_health WHERE (observed_at, bank) IN "
                            "(SELECT observed_at, bank FROM batch_health)"
                        )
                    finally:
                        con.unregister("batch_health")
                    self._insert("bank_health", health)
        finally:
            con.unregister("batch_replace")
        return self.snapshot_id()

    def _load_entities(self, rows: pa.Table) -> None:
        """Upsert entity rows, keeping when each was first seen and, for entities that did
        not complete, when their rows were last replaced."""
        con = self._con
        con.register("batch_entities", rows)
        try:
            cols = arrow_schema("entities").names
            select = [
                "least(n.first_seen_at, coalesce(o.first_seen_at, n.first_seen_at)) "
                "AS first_seen_at"
                if c == "first_seen_at"
                else "coalesce(n.last_synced_at, o.last_synced_at) AS last_synced_at"
                if c == "last_synced_at"
                else f"n.{c}"
                for c in cols
            ]
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE merged_entities AS SELECT {', '.join(select)} "
                f"FROM batch_entities n LEFT JOIN {LAKE}.entities o USING (entity_id)"
            )
            con.execute(
                f"DELETE FROM {LAKE}.entities "
                "WHERE entity_id IN (SELECT entity_id FROM batch_entities)"
            )
            con.execute(f"INSERT INTO {LAKE}.entities BY NAME SELECT * FROM merged_entities")
        finally:
            con.unregister("batch_entities")

    def _insert(self, table: str, rows: pa.Table) -> None:
        if rows.num_rows == 0:
            return
        name = f"batch_{table}"
        self._con.register(name, rows)
        try:
            # by name: a column added to a lake written by an earlier version comes last
            self._con.execute(f"INSERT INTO {LAKE}.{table} BY NAME SELECT * FROM {name}")
        finally:
            self._con.unregister(name)

    # ------------------------------------------------------------------ runs

    @contextmanager
    def _commit(self, message: str | None) -> Iterator[None]:
        """One transaction, committed with ``message`` (what `lake.snapshots()` shows
        beside its snapshot), rolled back on any error."""
        con = self._con
        con.execute("BEGIN")
        try:
            if message:
                con.execute(f"CALL {LAKE}.set_commit_message('bankconnect-etl', ?)", [message])
            yield
            con.execute("COMMIT")
        except BaseException as exc:
            raising = stop_interrupted(con, exc)
            with suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise raising  # noqa: B904 - exc, or the stop itself with DuckDB's error its context

    def start_run(self, run_id: str, kind: str, params: dict, started_at: datetime) -> None:
        # Only the lock holder writes runs, so a run still 'running' now has no process: it
        # was killed or its machine went down. It failed; its finished_at stays unknown.
        died = self._con.execute(
            f"SELECT run_id FROM {LAKE}.runs WHERE status = 'running'"
        ).fetchall()
        why = f"its process stopped before the run ended (killed or crashed); found by {run_id}"
        with self._commit(f"{run_id} started"):
            for (dead,) in died:
                log.warning("run %s never finished (its process stopped): marked failed", dead)
                self._con.execute(
                    f"UPDATE {LAKE}.runs SET status = 'failed', error = ? WHERE run_id = ?",
                    [why, dead],
                )
            self._con.execute(
                f"INSERT INTO {LAKE}.runs (run_id, kind, params, started_at, status, counts, "
                "requests, retries) VALUES (?, ?, ?, ?, 'running', '{}', 0, 0)",
                [run_id, kind, json.dumps(params, default=str, sort_keys=True), _naive(started_at)],
            )

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        counts: dict,
        requests: int = 0,
        retries: int = 0,
        error: str | None = None,
    ) -> int:
        """The run's row at its end, in the run's last commit; returns that commit's
        snapshot, which the row names. DuckLake numbers snapshots one after another, and
        only the lock holder commits, so this commit's is the current one plus one (a test
        holds DuckLake to it)."""
        ending = self.snapshot_id() + 1
        with self._commit(f"{run_id} {status}"):
            self._con.execute(
                f"UPDATE {LAKE}.runs SET finished_at = ?, status = ?, counts = ?, requests = ?, "
                "retries = ?, error = ?, snapshot_id = ? WHERE run_id = ?",
                [
                    _naive(datetime.now(UTC)),
                    status,
                    json.dumps(counts, default=str, sort_keys=True),
                    requests,
                    retries,
                    error,
                    ending,
                    run_id,
                ],
            )
        return ending

    def snapshot_id(self) -> int:
        rows = self._con.execute(f"SELECT id FROM {LAKE}.current_snapshot()").fetchall()
        return int(rows[0][0]) if rows else 0

    # ------------------------------------------------------------------ upkeep

    def compact(
        self,
        *,
        keep_days: float = MERGED_FILES_KEEP_DAYS,
        max_file_bytes: int = MERGE_MAX_FILE_BYTES,
    ) -> Compaction:
        """Merge the lake's Parquet files smaller than ``max_file_bytes`` (larger ones stay
        as they are); delete the files merged away more than ``keep_days`` ago.

        Each batch commit writes a file per table, and per month for ``transactions``, so
        a sync of 10,000 entities leaves about 1,400 files in ``transactions`` and 100 in
        each other table. Every later scan and every replacement pays per file: a nightly
        run's replacement of 100 scattered entities wrote a delete file into each (4.5 s
        against 0.9 s after merging), and the marts' refresh read them all (6.2 s against
        1.6 s). ``ducklake_merge_adjacent_files`` keeps time travel and the change feed
        (an old snapshot reads its rows from part of the merged file). The files it
        replaces stay on disk for readers that may still be scanning them, and are
        deleted by a compaction at least ``keep_days`` later.
        """
        con = self._con
        t0 = time.monotonic()
        with self._commit(f"{self.run_id} compaction".strip()):
            merged = con.execute(
                f"CALL ducklake_merge_adjacent_files('{LAKE}', max_file_size => ?)",
                [max_file_bytes],
            ).fetchall()
        cutoff = datetime.now(UTC) - timedelta(days=keep_days)
        deleted = con.execute(
            f"CALL ducklake_cleanup_old_files('{LAKE}', older_than => ?::TIMESTAMPTZ)",
            [cutoff],
        ).fetchall()
        result = Compaction(
            merged=sum(int(r[2]) for r in merged),
            written=sum(int(r[3]) for r in merged),
            deleted=len(deleted),
            seconds=time.monotonic() - t0,
        )
        log.info(
            "compacted the lake in %.1f s: %d small files merged into %d; %d old files deleted",
            result.seconds,
            result.merged,
            result.written,
            result.deleted,
        )
        return result


def _column_nulls(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], bool]:
    """(table, column) → whether the column holds a null, for the columns of the lake's
    tables that have statistics (a table that never held a row has none), from its
    catalog."""
    meta = f"__ducklake_metadata_{LAKE}"
    rows = con.execute(
        f"SELECT t.table_name, c.column_name, s.contains_null FROM {meta}.ducklake_table t "
        f"JOIN {meta}.ducklake_column c ON c.table_id = t.table_id "
        f"JOIN {meta}.ducklake_table_column_stats s "
        "ON s.table_id = t.table_id AND s.column_id = c.column_id "
        "WHERE t.end_snapshot IS NULL AND c.end_snapshot IS NULL "
        "AND c.parent_column IS NULL AND s.contains_null IS NOT NULL"
    ).fetchall()
    return {(table, column): bool(nulls) for table, column, nulls in rows}


def _partitioned_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The lake's tables that have partition keys now, read from its catalog (DuckLake
    attaches it as ``__ducklake_metadata_<name>``; a reset leaves a partitioning with no
    keys)."""
    meta = f"__ducklake_metadata_{LAKE}"
    rows = con.execute(
        f"SELECT DISTINCT t.table_name FROM {meta}.ducklake_table t "
        f"JOIN {meta}.ducklake_partition_info p ON p.table_id = t.table_id "
        f"JOIN {meta}.ducklake_partition_column c "
        "ON c.partition_id = p.partition_id AND c.table_id = t.table_id "
        "WHERE t.end_snapshot IS NULL AND p.end_snapshot IS NULL"
    ).fetchall()
    return {name for (name,) in rows}


def known_entities(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str | None, str]]:
    """What the warehouse knows of each entity: entity id → (fingerprint, sync_status)."""
    rows = con.execute(f"SELECT entity_id, fingerprint, sync_status FROM {LAKE}.entities")
    return {e: (fp, status) for e, fp, status in rows.fetchall()}


def _quote(text: str) -> str:
    return text.replace("'", "''")


def _utc(ts: datetime) -> datetime:
    return ts.astimezone(UTC) if ts.tzinfo else ts.replace(tzinfo=UTC)


def _naive(ts: datetime) -> datetime:
    return _utc(ts).replace(tzinfo=None)
