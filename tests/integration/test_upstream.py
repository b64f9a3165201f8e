"""Which API a run syncs from, and that a warehouse keeps to one source: the embedded
sandbox's world (entities, seed, steps) is remembered, so it never moves back in time,
and worlds or real data are never mixed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from pydantic import SecretStr

from bankconnect_etl.config import Settings
from bankconnect_etl.errors import ConfigError
from bankconnect_etl.pipeline import run_sync
from bankconnect_etl.sandbox import SANDBOX_API_KEY, SANDBOX_SERVER_HASH
from bankconnect_etl.upstream import (
    WORLD_FILE,
    SandboxWorld,
    check_source,
    sandbox_world,
    upstream,
)

FAST = {"raw_enabled": False, "poll_initial_s": 0.01, "poll_max_s": 0.05}


@pytest.fixture(autouse=True)
def _no_bankconnect_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in [n for n in os.environ if n.startswith("BANKCONNECT_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no .env but the test's own


def record(warehouse: Path, entities: int, seed: int, steps: int) -> None:
    warehouse.mkdir(parents=True, exist_ok=True)
    (warehouse / WORLD_FILE).write_text(
        json.dumps({"entities": entities, "seed": seed, "steps": steps})
    )


def listed(settings: Settings) -> int:
    page = requests.get(
        f"{settings.base_url}/entity/",
        headers={
            "x-api-key": SANDBOX_API_KEY,
            "server-hash": SANDBOX_SERVER_HASH,
        },
        timeout=10,
    )
    page.raise_for_status()
    return int(page.json()["count"])


def test_a_new_warehouse_gets_the_configured_world_and_remembers_it(tmp_path: Path) -> None:
    wh = tmp_path / "wh"
    settings = Settings.load(warehouse=wh, sandbox_entities=7, sandbox_seed=3)
    assert sandbox_world(settings, step=True) == SandboxWorld(7, 3, 0)  # a first demo: no step
    with upstream(settings, announce=False) as live:
        assert live.base_url and live.base_url.startswith("http://127.0.0.1:")
        assert listed(live) == 7
    assert json.loads((wh / WORLD_FILE).read_text())["steps"] == 0


def test_a_later_run_starts_the_sandbox_where_the_warehouse_left_it(tmp_path: Path) -> None:
    """Two demos moved time on twice: a nightly run sees that world, not the initial one
    (which would look like statements and entities disappearing)."""
    wh = tmp_path / "wh"
    record(wh, entities=7, seed=3, steps=2)
    unset = Settings.load(warehouse=wh)  # size and seed not configured: the warehouse's
    assert sandbox_world(unset) == SandboxWorld(7, 3, 2)
    assert sandbox_world(unset, step=True) == SandboxWorld(7, 3, 3)
    with upstream(unset, announce=False) as live:
        assert listed(live) == 7 + 2 * 3  # each step adds three entities
    same = Settings.load(warehouse=wh, sandbox_entities=7, sandbox_seed=3)
    assert sandbox_world(same) == SandboxWorld(7, 3, 2)


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        (
            {"sandbox_entities": 60},
            "holds the sandbox world of 7 entities, seed 3, not 60 entities, seed 3",
        ),
        (
            {"sandbox_seed": 1},
            "holds the sandbox world of 7 entities, seed 3, not 7 entities, seed 1",
        ),
    ],
)
def test_another_world_is_refused(tmp_path: Path, configured: dict, expected: str) -> None:
    wh = tmp_path / "wh"
    record(wh, entities=7, seed=3, steps=1)
    with pytest.raises(ConfigError, match=expected) as caught:
        check_source(Settings.load(warehouse=wh, **configured))
    assert "another folder" in (caught.value.hint or "") or "own folder" in (
        caught.value.hint or ""
    )


def test_the_world_comes_from_dot_env_and_bad_values_are_config_errors(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("BANKCONNECT_SANDBOX_SEED=9\nBANKCONNECT_SANDBOX_ENTITIES=4\n")
    settings = Settings.load(warehouse=tmp_path / "wh")
    assert sandbox_world(settings) == SandboxWorld(4, 9, 0)
    (tmp_path / ".env").write_text("BANKCONNECT_SANDBOX_ENTITIES=-5\n")
    with pytest.raises(ConfigError, match="BANKCONNECT_SANDBOX_ENTITIES: Input should be greater"):
        Settings.load()


def test_a_damaged_world_record_is_named(tmp_path: Path) -> None:
    wh = tmp_path / "wh"
    wh.mkdir()
    (wh / WORLD_FILE).write_text("{")
    with pytest.raises(ConfigError, match=f"{WORLD_FILE}: not a sandbox world record"):
        check_source(Settings.load(warehouse=wh))


def test_sandbox_and_real_data_never_share_a_warehouse(
    tmp_path: Path, make_sandbox: Callable[..., object]
) -> None:
    api = make_sandbox(entities=5, seed=4, processing_polls=0)
    real = Settings.load(
        base_url=api.base,  # type: ignore[attr-defined]
        api_key="a-real-looking-key",
        server_hash=SANDBOX_SERVER_HASH,
        warehouse=tmp_path / "sandbox-wh",
    )
    record(real.warehouse, entities=3, seed=1, steps=0)
    assert check_source(real) is None  # a world recorded, but nothing of it loaded
    with upstream(Settings.load(warehouse=real.warehouse, **FAST), announce=False) as live:
        assert run_sync(live).status == "succeeded"
    with pytest.raises(ConfigError) as caught:
        check_source(real)
    assert "holds the embedded sandbox's made-up data (3 entities, seed 1)" in str(caught.value)
    assert "a-real-looking-key" not in str(caught.value) + (caught.value.hint or "")

    # A warehouse filled from an API (no world record) is not topped up from the sandbox.
    api_wh = tmp_path / "api-wh"
    from_api = real.model_copy(
        update={"warehouse": api_wh, "api_key": SecretStr(SANDBOX_API_KEY), **FAST}
    )
    assert run_sync(from_api).status == "succeeded"
    assert check_source(from_api) is None  # the same API again is fine
    with pytest.raises(
        ConfigError, match="holds data synced from an API, not the embedded sandbox"
    ):
        check_source(Settings.load(warehouse=api_wh))


def test_a_demo_warehouse_from_before_worlds_were_recorded_keeps_its_world(
    tmp_path: Path,
) -> None:
    wh = tmp_path / "wh"
    settings = Settings.load(warehouse=wh, sandbox_entities=4, sandbox_seed=5, **FAST)
    with upstream(settings, announce=False, world=SandboxWorld(4, 5, 1)) as live:
        params = {"entities": 4, "seed": 5, "steps": 1}
        assert run_sync(live, kind="demo", params=params).status == "succeeded"
    (wh / WORLD_FILE).unlink()  # as an earlier version left it: the world only in runs
    assert sandbox_world(Settings.load(warehouse=wh)) == SandboxWorld(4, 5, 1)
    assert sandbox_world(Settings.load(warehouse=wh), step=True) == SandboxWorld(4, 5, 2)
