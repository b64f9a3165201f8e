"""Credit analytics: the SQL models in ``sql/``, run in dependency order in one transaction.

    sql/macros.sql        helper macros (money means and medians, exact to the paisa)
    sql/staging/*.sql     intermediate models: TEMP views, or TEMP tables when the file says
                          ``-- materialized: table``; dropped again before the commit
    sql/marts/*.sql       the marts: (re)created as tables in the attached lake

Each model file holds one SELECT and is named by its file; its first line is a comment
sentence stating the grain (``-- Grain: one row per ...``). A model reads the warehouse
tables and any model it names; the run order follows those names.

``refresh(con)`` replaces every mart in one transaction on the connection it is given (the
writer's, with the lake attached and selected), so a reader sees all marts from one
snapshot of the base tables, never a mix. Metric definitions: ``docs/metrics.md``.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from bankconnect_etl.errors import WarehouseError

log = logging.getLogger(__name__)

LAYERS = ("staging", "marts")
_GRAIN = re.compile(r"--\s*Grain:\s*(?P<grain>.+)")
_MATERIALIZED = re.compile(r"^--\s*materialized:\s*(?P<kind>table|view)\s*$", re.MULTILINE)
_COMMENT = re.compile(r"--[^\n]*")
_STRING = re.compile(r"'(?:[^']|'')*'")


@dataclass(frozen=True)
class Model:
    """One SQL model: a SELECT named by its file."""

    name: str
    layer: str  # staging | marts
    path: Path
    sql: str  # the file's text, comments included, without a trailing semicolon
    grain: str  # the opening sentence, without "-- Grain:"
    materialized: str  # staging: view | table; marts: always table

    def create_statement(self) -> str:
        if self.layer == "marts":
            return f"CREATE OR REPLACE TABLE {self.name} AS\n{self.sql}\n"
        kind = "TABLE" if self.materialized == "table" else "VIEW"
        return f"CREATE OR REPLACE TEMP {kind} {self.name} AS\n{self.sql}\n"

    def drop_statement(self) -> str:
        kind = "TABLE" if self.materialized == "table" else "VIEW"
        return f"DROP {kind} IF EXISTS temp.main.{self.name}"


def sql_dir() -> Path:
    """The ``sql/`` folder: shipped as package data (``bankconnect_etl.sql``) when the
    project is installed that way, else the one beside the package in a source checkout."""
    try:
        spec = importlib.util.find_spec("bankconnect_etl.sql")
    except ImportError:
        spec = None
    places = list(spec.submodule_search_locations or []) if spec else []
    places.append(str(Path(__file__).resolve().parent.parent / "sql"))
    for place in places:
        if (Path(place) / "marts").is_dir():
            return Path(place)
    raise WarehouseError(
        "the analytics SQL (sql/marts/) was not found beside the bankconnect_etl package",
        hint="reinstall the project (`make install`); sql/ ships with it",
    )


def models(root: Path | None = None) -> list[Model]:
    """Every model under ``root`` (default ``sql_dir()``), staging before marts, each after
    the models it names."""
    root = root or sql_dir()
    found: dict[str, Model] = {}
    for layer in LAYERS:
        for path in sorted((root / layer).glob("*.sql")):
            model = _read(path, layer)
            if model.name in found:
                raise WarehouseError(f"two SQL models named {model.name}: {path}")
            found[model.name] = model
    return _in_dependency_order(found)


def marts(root: Path | None = None) -> list[str]:
    """The mart names, in run order."""
    return [m.name for m in models(root) if m.layer == "marts"]


def _read(path: Path, layer: str) -> Model:
    text = path.read_text(encoding="utf-8").strip().rstrip(";").rstrip()
    first = text.splitlines()[0] if text else ""
    grain = _GRAIN.match(first)
    if grain is None:
        raise WarehouseError(
            f"{path}: the first line must state the grain ('-- Grain: one row per ...')"
        )
    kind = _MATERIALIZED.search(text)
    materialized = "table" if layer == "marts" else (kind.group("kind") if kind else "view")
    return Model(path.stem, layer, path, text, grain.group("grain").strip(), materialized)


def _references(model: Model, names: set[str]) -> set[str]:
    code = _STRING.sub("''", _COMMENT.sub("", model.sql))
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", code))
    return (words & names) - {model.name}


def _in_dependency_order(found: dict[str, Model]) -> list[Model]:
    names = set(found)
    needs = {name: _references(m, names) for name, m in found.items()}
    for name, deps in needs.items():
        if found[name].layer == "staging" and any(found[d].layer == "marts" for d in deps):
            raise WarehouseError(f"staging model {name} reads a mart: {sorted(deps)}")
    ordered: list[Model] = []
    done: set[str] = set()
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in done:
            return
        if name in visiting:
            cycle = " -> ".join([*visiting[visiting.index(name) :], name])
            raise WarehouseError(f"SQL models depend on each other in a cycle: {cycle}")
        visiting.append(name)
        for dep in sorted(needs[name]):
            visit(dep)
        visiting.pop()
        done.add(name)
        ordered.append(found[name])

    for layer in LAYERS:  # staging first, then marts; alphabetical otherwise
        for name in sorted(n for n, m in found.items() if m.layer == layer):
            visit(name)
    return ordered


def refresh(con: duckdb.DuckDBPyConnection, *, message: str | None = None) -> dict[str, int]:
    """(Re)create every mart in the selected database (the lake) in one transaction;
    rows per mart, in run order.

    ``con`` has the lake attached and selected (``USE lake``) and no transaction open:
    the writer's connection after its loads have committed. Empty base tables give empty
    marts. ``message`` becomes the DuckLake snapshot's commit message. On any error the
    transaction rolls back, leaving the previous marts, and a ``WarehouseError`` names the
    model that failed.
    """
    root = sql_dir()
    plan = models(root)
    macros = (root / "macros.sql").read_text(encoding="utf-8")
    rows: dict[str, int] = {}
    started = time.perf_counter()
    current = "macros.sql"
    (keep_order,) = con.execute(
        "SELECT current_setting('preserve_insertion_order')"
    ).fetchone() or (True,)
    restore = f"SET preserve_insertion_order = {'true' if keep_order else 'false'}"
    if _in_transaction(con):  # a failed BEGIN would abort the caller's transaction
        raise WarehouseError(
            "analytics: cannot start the refresh transaction: the connection has one open",
            hint="call refresh() after the loads have committed",
        )
    con.execute("BEGIN")
    try:
        # Marts that need an order say ORDER BY; the rest may be written in any order,
        # which spares DuckDB buffering millions of rows to keep the order produced.
        con.execute("SET preserve_insertion_order = false")
        if message:
            con.execute(
                f"CALL {_database(con)}.set_commit_message('bankconnect-etl', ?)", [message]
            )
        con.execute(macros)
        for model in plan:
            current = model.path.name
            t0 = time.perf_counter()
            con.execute(model.create_statement())
            if model.layer == "marts":
                # a model's name is its file's stem, never user input
                sql = f"SELECT count(*) FROM {model.name}"  # noqa: S608
                (count,) = con.execute(sql).fetchone() or (0,)
                rows[model.name] = int(count)
            log.debug("analytics: %s in %.3f s", model.name, time.perf_counter() - t0)
        current = "cleanup"
        for model in reversed(plan):
            if model.layer == "staging":
                con.execute(model.drop_statement())
        con.execute("COMMIT")
    except duckdb.Error as exc:
        _rollback(con)
        raise WarehouseError(
            f"analytics: {current}: {str(exc).splitlines()[0]}",
            hint="the marts were left as they were; --debug shows the traceback",
        ) from exc
    except BaseException:
        _rollback(con)
        raise
    finally:
        con.execute(restore)
    log.info("analytics: %d marts refreshed in %.1f s", len(rows), time.perf_counter() - started)
    return rows


def _in_transaction(con: duckdb.DuckDBPyConnection) -> bool:
    """True if an explicit transaction is open: two statements then share its id."""
    first, second = (
        (con.execute("SELECT current_transaction_id()").fetchone() or (None,))[0] for _ in range(2)
    )
    return first == second


def _database(con: duckdb.DuckDBPyConnection) -> str:
    (name,) = con.execute("SELECT current_database()").fetchone() or ("lake",)
    return str(name)


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        log.debug("analytics: nothing to roll back")
