"""The API a run talks to: the configured one, or the embedded sandbox when none is.

With no ``BANKCONNECT_BASE_URL`` every command that syncs (``nightly``, ``backfill``,
``demo``, the flows) starts the sandbox on a free loopback port for the length of the run,
with its own credentials, so the pipeline works out of the box. Real credentials are
configuration: set ``BANKCONNECT_BASE_URL``, ``BANKCONNECT_API_KEY`` and
``BANKCONNECT_SERVER_HASH``.

A warehouse holds one source's data. The embedded sandbox restarts with every command, so
the warehouse remembers which sandbox world it holds (``sandbox-world.json``: entities,
seed, and how many steps time has moved on since) and each run starts the sandbox at that
world again: a ``nightly`` after two ``demo`` runs sees the world the second demo left, as
a real API never moves back in time. Syncing another world, or the sandbox into a
warehouse of real data (or the reverse), is refused: it would mix made-up entities with
the others.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import SecretStr

from bankconnect_etl.config import Settings
from bankconnect_etl.errors import ConfigError, NoWarehouseError

log = logging.getLogger(__name__)

WORLD_FILE = "sandbox-world.json"
# One step of the sandbox's time (POST /sandbox/advance): what each demo after the first adds.
STEP = {"new_entities": 3, "new_statements": 4}


@dataclass(frozen=True)
class SandboxWorld:
    """The embedded sandbox's data: its size, its seed, and the steps time moved on."""

    entities: int
    seed: int
    steps: int = 0

    def describe(self) -> str:
        return f"{self.entities} entities, seed {self.seed}"


def sandbox_world(settings: Settings, *, step: bool = False) -> SandboxWorld:
    """The world the embedded sandbox starts at for a run into ``settings.warehouse``: the
    one the warehouse holds (one step on with ``step``, as each demo after the first), or
    a new one of ``sandbox_entities`` and ``sandbox_seed``. ConfigError when those were set
    (environment, .env, flags) to another world than the warehouse holds, or when it holds
    real data."""
    wanted = SandboxWorld(settings.sandbox_entities, settings.sandbox_seed)
    held = recorded_world(settings.warehouse)
    if held is None:
        entities, held = _catalog_facts(settings.warehouse)
        if held is None and entities:
            raise ConfigError(
                f"{settings.warehouse}/ holds data synced from an API, not the embedded sandbox",
                hint="set BANKCONNECT_BASE_URL and its credentials to sync it, or give the "
                "sandbox another folder (--warehouse or BANKCONNECT_WAREHOUSE)",
            )
        if held is None:
            return wanted
    chosen = settings.model_fields_set  # unset, the size and seed are the warehouse's
    if "sandbox_entities" not in chosen:
        wanted = SandboxWorld(held.entities, wanted.seed)
    if "sandbox_seed" not in chosen:
        wanted = SandboxWorld(wanted.entities, held.seed)
    if (held.entities, held.seed) != (wanted.entities, wanted.seed):
        raise ConfigError(
            f"{settings.warehouse}/ holds the sandbox world of {held.describe()}, "
            f"not {wanted.describe()}",
            hint="give another world its own folder (--warehouse or BANKCONNECT_WAREHOUSE), "
            f"or delete {settings.warehouse}/ to start over",
        )
    return SandboxWorld(held.entities, held.seed, held.steps + (1 if step else 0))


def recorded_world(warehouse: Path) -> SandboxWorld | None:
    """The sandbox world a warehouse holds, or None when it holds none (or is new)."""
    path = warehouse / WORLD_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return SandboxWorld(int(data["entities"]), int(data["seed"]), int(data["steps"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ConfigError(
            f"{path}: not a sandbox world record ({type(exc).__name__}: {exc})",
            hint=f"delete {warehouse}/ to start the sandbox's data over",
        ) from None


def _catalog_facts(warehouse: Path) -> tuple[int, SandboxWorld | None]:
    """How many entities the warehouse holds, and, for one filled by ``demo`` before
    worlds were recorded, its last demo run's world (entities, seed, steps)."""
    from bankconnect_etl.warehouse import close, connect

    try:
        con = connect(warehouse)
    except NoWarehouseError:
        return 0, None
    try:
        (entities,) = con.execute("SELECT count(*) FROM entities").fetchone() or (0,)
        demo = con.execute(
            "SELECT params FROM runs WHERE kind = 'demo' ORDER BY started_at DESC LIMIT 1"
        ).fetchone()
    finally:
        close(con)
    try:
        params = json.loads(demo[0]) if demo else {}
        world = SandboxWorld(int(params["entities"]), int(params["seed"]), int(params["steps"]))
    except (TypeError, ValueError, KeyError):
        world = None
    return int(entities), world


def _record(warehouse: Path, world: SandboxWorld) -> None:
    """Write the world before the run loads any of it. An unusable folder is left for the
    warehouse to report (it names the problem and the fix)."""
    try:
        warehouse.mkdir(parents=True, exist_ok=True)
        path = warehouse / WORLD_FILE
        path.with_suffix(".tmp").write_text(json.dumps(asdict(world) | {"step": STEP}) + "\n")
        path.with_suffix(".tmp").replace(path)
    except OSError as exc:
        log.debug("sandbox world not recorded in %s: %s", warehouse, exc)


def check_source(settings: Settings) -> SandboxWorld | None:
    """The sandbox world a run into ``settings.warehouse`` starts at, or None for the
    configured API, once the warehouse is known to hold that source's data (or none):
    ConfigError when it holds another's."""
    if settings.uses_sandbox:
        return sandbox_world(settings)
    held = recorded_world(settings.warehouse)
    if held is not None and _catalog_facts(settings.warehouse)[0]:
        raise ConfigError(
            f"{settings.warehouse}/ holds the embedded sandbox's made-up data "
            f"({held.describe()}), not {settings.base_url}'s",
            hint="point BANKCONNECT_WAREHOUSE (or --warehouse) at another folder for "
            f"the real API, or delete {settings.warehouse}/",
        )
    return None


@contextmanager
def upstream(
    settings: Settings,
    *,
    announce: bool = True,
    world: SandboxWorld | None = None,
    record: bool = True,
) -> Iterator[Settings]:
    """``settings`` pointing at a live API: as given, or at an embedded sandbox started at
    ``world`` (default: ``check_source(settings)``), logged as a warning unless not
    ``announce``. The warehouse records the world unless not ``record`` (a run that only
    looks, such as a dry run or ``doctor``)."""
    world = world or check_source(settings)
    if world is None:
        yield settings
        return
    import requests

    from bankconnect_etl.sandbox import (
        SANDBOX_API_KEY,
        SANDBOX_SERVER_HASH,
        SandboxConfig,
        start_in_thread,
    )

    # Statements already processed, as on a real API between nightly runs: a sandbox that
    # restarts each run with statements "just uploaded" would look changed every time.
    config = SandboxConfig(entities=world.entities, seed=world.seed, processing_polls=0)
    with start_in_thread(config) as sb:
        for _ in range(world.steps):
            requests.post(f"{sb.url}/sandbox/advance", params=STEP, timeout=30).raise_for_status()
        if record:
            _record(settings.warehouse, world)
        (log.warning if announce else log.debug)(
            "no BANKCONNECT_BASE_URL: using the embedded sandbox (%s%s)",
            world.describe(),
            f", {world.steps} step(s) on" if world.steps else "",
        )
        yield settings.model_copy(
            update={
                "base_url": sb.base_url,
                "api_key": SecretStr(SANDBOX_API_KEY),
                "server_hash": SecretStr(SANDBOX_SERVER_HASH),
            }
        )
