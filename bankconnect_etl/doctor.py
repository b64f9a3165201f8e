"""``bankconnect-etl doctor``: is this machine ready to sync? One check per line, with a fix.

Each check returns a ``Check``; none raises. The API checks use the configured API, or the
embedded sandbox when ``BANKCONNECT_BASE_URL`` is unset (then they show that the pipeline
works out of the box, not that real credentials do).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bankconnect_etl.errors import AuthError, BankConnectETLError, stopped_by


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str
    hint: str | None = None


def _error(exc: BaseException) -> tuple[str, str | None]:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__, getattr(exc, "hint", None)


def run_checks(overrides: dict | None = None) -> Iterator[Check]:
    """Configuration, the API (connectivity and auth), extensions, catalog, writer lock,
    Prefect. Later checks that need an earlier one's result are skipped when it failed."""
    from bankconnect_etl.config import Settings
    from bankconnect_etl.upstream import check_source

    try:
        settings = Settings.load(**(overrides or {}))
        settings.signer()
    except BankConnectETLError as exc:
        detail, hint = _error(exc)
        yield Check("configuration", "fail", detail, hint)
        return
    where = settings.base_url or "the embedded sandbox (BANKCONNECT_BASE_URL unset)"
    yield Check("configuration", "ok", f"API {where}; warehouse {settings.warehouse}/")
    try:
        world = check_source(settings)
    except BankConnectETLError as exc:
        detail, hint = _error(exc)
        yield Check("warehouse source", "fail", detail, hint)
    else:
        if world is not None:
            steps = f", {world.steps} step(s) on" if world.steps else ""
            yield Check("warehouse source", "ok", f"sandbox world of {world.describe()}{steps}")
        yield _api(settings)
    yield _extensions()
    yield _catalog(settings)
    yield _writer_lock(settings)
    yield _prefect()


def _api(settings: object) -> Check:
    from bankconnect_etl.client import BankConnectClient
    from bankconnect_etl.upstream import upstream

    try:
        with upstream(settings, announce=False, record=False) as live:  # type: ignore[arg-type]
            quick = live.model_copy(update={"max_attempts": 2, "max_retry_time_s": 15.0})
            with BankConnectClient(quick) as client:
                page = client.entity_page(1)
    except AuthError as exc:
        return Check(
            "API auth",
            "fail",
            # the message already names the two settings; the fix adds what it cannot know
            _error(exc)[0],
            "if both are right, the access token secret (BANKCONNECT_ACCESS_TOKEN_SECRET) "
            "if your account uses one",
        )
    except BankConnectETLError as exc:
        detail, hint = _error(exc)
        return Check(
            "API connectivity",
            "fail",
            detail,
            hint
            or (
                "check the proxy (HTTPS_PROXY, NO_PROXY), BANKCONNECT_BASE_URL, and that "
                "this machine can reach them"
                if "_PROXY " in detail
                else "check BANKCONNECT_BASE_URL and that this machine can reach it"
            ),
        )
    count = page.get("count") if isinstance(page, dict) else None
    listed = f"{count:,} entities listed" if isinstance(count, int) else "entity listing answered"
    return Check("API connectivity and auth", "ok", listed)


def _extensions() -> Check:
    from bankconnect_etl.warehouse import _duckdb

    try:
        _duckdb().close()
    except BankConnectETLError as exc:
        detail, hint = _error(exc)
        return Check("DuckDB extensions", "fail", detail, hint)
    except Exception as exc:  # duckdb.Error: a binary that does not load
        if stopped_by(exc) is not None:
            raise
        return Check(
            "DuckDB extensions",
            "fail",
            _error(exc)[0],
            "reinstall with `make install`; the duckdb and extension package versions must match",
        )
    return Check("DuckDB extensions", "ok", "ducklake and sqlite_scanner load from their packages")


def _unwritable(root: Path) -> str | None:
    """Why a sync could not create a warehouse at ``root`` (None when it could): a file in
    the way, or no write permission on the nearest existing directory."""
    for path in (root, *root.parents):
        if path.exists():
            if not path.is_dir():
                return f"{path} is a file, not a directory"
            if not os.access(path, os.W_OK | os.X_OK):
                return f"{path} is not writable"
            return None
    return None


def _catalog(settings: object) -> Check:
    from bankconnect_etl.errors import NoWarehouseError
    from bankconnect_etl.warehouse import Paths, close, connect

    root = settings.warehouse  # type: ignore[attr-defined]
    if not Paths(root).catalog.exists():
        problem = _unwritable(Path(root))
        if problem:
            return Check(
                "catalog",
                "fail",
                f"cannot create a warehouse at {root}/: {problem}",
                "set BANKCONNECT_WAREHOUSE to a directory this user can write",
            )
        return Check("catalog", "warn", f"no warehouse at {root}/ yet", "the first sync creates it")
    try:
        con = connect(root)
    except NoWarehouseError as exc:
        detail, hint = _error(exc)
        return Check("catalog", "warn", detail, hint)
    except BankConnectETLError as exc:
        detail, hint = _error(exc)
        return Check("catalog", "fail", detail, hint)
    try:
        entities, snapshot = con.execute(
            "SELECT (SELECT count(*) FROM entities), (SELECT id FROM lake.current_snapshot())"
        ).fetchone()
    except Exception as exc:  # duckdb.Error: a damaged or foreign catalog
        if stopped_by(exc) is not None:
            raise
        return Check("catalog", "fail", _error(exc)[0], f"inspect {root}/catalog.sqlite")
    finally:
        close(con)
    return Check("catalog", "ok", f"{root}/: {entities:,} entities, snapshot {snapshot}")


def _writer_lock(settings: object) -> Check:
    import filelock

    from bankconnect_etl.warehouse import Paths, Writer, read_only_reason

    paths = Paths(settings.warehouse)  # type: ignore[attr-defined]
    if not paths.catalog.exists():  # creates nothing in a folder that is not a warehouse
        return Check("writer lock", "ok", "free (no warehouse yet)")
    why = read_only_reason(paths)
    if why:
        return Check(
            "writer lock",
            "fail",
            f"the warehouse at {paths.root}/ {why}: readers can read it, a sync cannot write it",
            "sync into a writable warehouse (remount it read-write, or use a writable copy)",
        )
    if not paths.lock.exists():  # a writer creates it, and it stays
        return Check("writer lock", "ok", "free")
    lock = filelock.FileLock(str(paths.lock))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        holder = Writer(paths.root)._holder()
        return Check(
            "writer lock",
            "warn",
            f"held by {holder}",
            "a sync is running; another one waits for it (BANKCONNECT_WRITER_WAIT_S)",
        )
    except OSError as exc:
        return Check("writer lock", "fail", f"cannot open {paths.lock}: {exc}", "check permissions")
    lock.release()
    return Check("writer lock", "ok", "free")


def _prefect() -> Check:
    url = os.environ.get("PREFECT_API_URL")
    if not url:
        return Check(
            "Prefect",
            "ok",
            "no PREFECT_API_URL: flows run in ephemeral mode",
            None,
        )
    import requests

    try:
        requests.get(url.rstrip("/") + "/health", timeout=5).raise_for_status()
    except requests.RequestException as exc:
        return Check(
            "Prefect",
            "fail",
            f"PREFECT_API_URL={url} does not answer: {type(exc).__name__}",
            "start the server (`prefect server start`) or unset PREFECT_API_URL",
        )
    return Check("Prefect", "ok", f"server at {url} answers")
