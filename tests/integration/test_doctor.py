"""``bankconnect-etl doctor``: one line per check, and each failure names its fix."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from bankconnect_etl.config import Settings
from bankconnect_etl.doctor import Check, run_checks
from bankconnect_etl.pipeline import run_sync
from bankconnect_etl.sandbox import SANDBOX_API_KEY, SANDBOX_SERVER_HASH
from bankconnect_etl.upstream import WORLD_FILE, upstream
from bankconnect_etl.warehouse import Writer
from tests.conftest import COMMAND, READ_ONLY_WAYS


@pytest.fixture(autouse=True)
def _no_bankconnect_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [n for n in os.environ if n.startswith("BANKCONNECT_")]:
        monkeypatch.delenv(name)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.chdir(tmp_path)


def checks(**overrides: object) -> dict[str, Check]:
    return {c.name: c for c in run_checks(overrides)}


def test_out_of_the_box_every_check_passes_but_the_warehouse_is_yet_to_come(
    tmp_path: Path,
) -> None:
    found = checks(warehouse=tmp_path / "wh", sandbox_entities=12)
    assert list(found) == [
        "configuration",
        "warehouse source",
        "API connectivity and auth",
        "DuckDB extensions",
        "catalog",
        "writer lock",
        "Prefect",
    ]
    assert found["API connectivity and auth"].detail == "12 entities listed"
    assert (
        found["catalog"].status == "warn" and found["catalog"].hint == "the first sync creates it"
    )
    assert all(c.status == "ok" for n, c in found.items() if n != "catalog")


def test_a_wrong_key_fails_auth_without_printing_it(
    tmp_path: Path, make_sandbox: Callable[..., object]
) -> None:
    api = make_sandbox(entities=3)
    found = checks(
        base_url=api.base,  # type: ignore[attr-defined]
        api_key="wrong-key-1234",
        server_hash=SANDBOX_SERVER_HASH,
        warehouse=tmp_path / "wh",
    )
    auth = found["API auth"]
    assert auth.status == "fail" and "BANKCONNECT_API_KEY" in auth.detail
    assert "BANKCONNECT_ACCESS_TOKEN_SECRET" in (auth.hint or "")
    assert "wrong-key-1234" not in repr(list(found.values()))
    assert found["catalog"].status == "warn"  # the other checks still ran


def test_a_signer_that_does_not_import_is_a_configuration_failure_with_a_fix() -> None:
    found = checks(access_token_signer="no_such_module:sign")
    assert list(found) == ["configuration"]
    (config,) = found.values()
    assert config.status == "fail"
    assert config.detail.startswith("BANKCONNECT_ACCESS_TOKEN_SIGNER: cannot import")
    assert "module:function" in (config.hint or "")


def test_a_signer_that_takes_other_arguments_is_a_configuration_failure() -> None:
    found = checks(access_token_signer="os:getcwd")  # takes no arguments
    (config,) = found.values()
    assert config.status == "fail"
    assert config.detail == (
        "BANKCONNECT_ACCESS_TOKEN_SIGNER: os:getcwd does not take (timestamp, secret)"
    )


def test_a_misspelt_variable_is_a_configuration_failure_naming_the_setting_it_meant(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Ignored, BANKCONNECT_WAREHOSE would leave the lake in ./warehouse without a word."""
    monkeypatch.setenv("BANKCONNECT_WAREHOSE", str(tmp_path / "lake"))
    found = checks()["configuration"]
    assert found.status == "fail"
    assert found.detail == "BANKCONNECT_WAREHOSE is not a setting (in the environment or .env)"
    assert found.hint == "did you mean BANKCONNECT_WAREHOUSE?"
    monkeypatch.delenv("BANKCONNECT_WAREHOSE")
    (tmp_path / ".env").write_text("bankconnect_batch_size=50\nBANKCONNECT_NIGHTLY_MODE=fast\n")
    found = checks()["configuration"]  # a name far from every setting: pointed to the table
    assert found.detail.startswith("BANKCONNECT_NIGHTLY_MODE is not a setting")
    assert "README.md" in (found.hint or "")
    (tmp_path / ".env").write_text("bankconnect_batch_size=50\nBANKCONNECT_SANDBOX_SEED=3\n")
    assert checks()["configuration"].status == "ok"  # any case, as pydantic-settings reads it


def test_a_malformed_env_file_line_is_named_by_file_and_line_never_quoted(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "# settings\nBANKCONNECT_BATCH_SIZE=50\nBANKCONNECT_API_KEY key-f00d-secret\n"
    )
    proc = subprocess.run(
        [COMMAND, "doctor"], capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False
    )
    assert proc.returncode == 1
    assert f"FAIL  configuration: {tmp_path / '.env'} line 3: not NAME=value" in proc.stdout
    assert "f00d" not in proc.stdout + proc.stderr  # the line may hold a secret
    assert "could not parse" not in proc.stderr  # python-dotenv's own warning, naming no file


def test_a_warehouse_path_under_a_file_fails_the_catalog_check(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    found = checks(warehouse=tmp_path / "afile" / "wh", sandbox_entities=2)
    assert found["catalog"].status == "fail"
    assert "is a file, not a directory" in found["catalog"].detail


def test_a_held_writer_lock_says_who_holds_it(tmp_path: Path) -> None:
    wh = tmp_path / "wh"
    with Writer(wh, run_id="nightly-held-by-test"):
        found = checks(warehouse=wh, sandbox_entities=2)
    lock = found["writer lock"]
    assert lock.status == "warn" and "run nightly-held-by-test" in lock.detail
    assert "BANKCONNECT_WRITER_WAIT_S" in (lock.hint or "")


def test_the_cli_prints_one_line_per_check_and_fails_on_a_mixed_warehouse(tmp_path: Path) -> None:
    wh = tmp_path / "wh"
    with upstream(Settings.load(warehouse=wh, sandbox_entities=2), announce=False) as live:
        assert run_sync(live).status == "succeeded"
    assert (wh / WORLD_FILE).is_file()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANKCONNECT_")}
    env |= {
        "BANKCONNECT_BASE_URL": "https://bankconnect.example.in/bank-connect/v1",
        "BANKCONNECT_API_KEY": SANDBOX_API_KEY,
        "BANKCONNECT_SERVER_HASH": SANDBOX_SERVER_HASH,
        "BANKCONNECT_WAREHOUSE": str(wh),
    }
    r = subprocess.run(
        [COMMAND, "doctor"], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert r.returncode == 1 and r.stderr == ""
    lines = r.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "ok    configuration",
        "FAIL  warehouse source",
        "ok    DuckDB extensions",
        "ok    catalog",
        "ok    writer lock",
        "ok    Prefect",
    ]
    assert "holds the embedded sandbox's made-up data (2 entities, seed 1)" in lines[1]
    assert "(fix: point BANKCONNECT_WAREHOUSE (or --warehouse) at another folder" in lines[1]
    assert SANDBOX_API_KEY not in r.stdout and SANDBOX_SERVER_HASH not in r.stdout


def test_doctor_creates_nothing_in_a_folder_that_is_not_a_warehouse(tmp_path: Path) -> None:
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a warehouse\n")
    found = checks(warehouse=folder, sandbox_entities=2)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]  # no writer.lock
    assert found["catalog"].status == "warn" and "no warehouse at" in found["catalog"].detail
    assert (found["writer lock"].status, found["writer lock"].detail) == (
        "ok",
        "free (no warehouse yet)",
    )


@pytest.mark.parametrize("how", READ_ONLY_WAYS)
def test_a_read_only_warehouse_is_read_by_the_catalog_check_and_fails_the_writer_lock(
    tmp_path: Path, how: str
) -> None:
    """The catalog was last closed by a writer (no -shm file, which SQLite cannot create
    there): readers can read it, but no sync can write it."""
    from tests.conftest import read_only_folder

    wh = tmp_path / "wh"
    with upstream(Settings.load(warehouse=wh, sandbox_entities=2), announce=False) as live:
        assert run_sync(live).status == "succeeded"
    assert not (wh / "catalog.sqlite-shm").exists()
    with read_only_folder(wh, how) as ro:
        r = ro.cli("doctor")
    assert r.returncode == 1 and r.stderr == "", r.stderr
    lines = {line.split(":")[0]: line for line in r.stdout.splitlines()}
    assert lines["ok    catalog"].startswith(f"ok    catalog: {ro.path}/: 2 entities, snapshot ")
    why = (
        "is on a read-only file system"
        if how == "mount"
        else f"is read-only for this user (no write permission on {ro.path})"
    )
    assert lines["FAIL  writer lock"].startswith(
        f"FAIL  writer lock: the warehouse at {ro.path}/ {why}: readers can read it, "
        "a sync cannot write it"
    )
