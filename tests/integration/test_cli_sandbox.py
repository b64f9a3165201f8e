"""`bankconnect-etl sandbox` as a user meets it: help, the address it prints, clean errors."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import COMMAND, run_cli

pytestmark = pytest.mark.integration
run = run_cli


def test_help_names_every_option_with_examples() -> None:
    top = run("--help")
    assert top.returncode == 0 and "sandbox" in top.stdout and "exit codes" in top.stdout
    r = run("sandbox", "--help")
    assert r.returncode == 0
    for option in (
        "--port",
        "--entities",
        "--seed",
        "--latency-ms",
        "--fault-rate",
        "--processing-polls",
    ):
        assert option in r.stdout
    assert "examples:" in r.stdout and "/sandbox/advance" in r.stdout


def test_sandbox_says_where_it_listens_serves_and_stops_on_ctrl_c() -> None:
    proc = subprocess.Popen(
        [COMMAND, "sandbox", "--port", "0", "--entities", "30", "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            lines.append(line)
            if line.startswith("Press Ctrl-C") or not line:
                break
        text = "".join(lines)
        url = re.search(r"listening on\s+(http://127\.0\.0\.1:\d+)", text)
        assert url, text
        assert f"{url.group(1)}/bank-connect/v1" in text and "30 entities, seed 3" in text
        headers = {"x-api-key": "sandbox-api-key", "server-hash": "sandbox-server-hash"}
        assert (
            requests.get(
                f"{url.group(1)}/bank-connect/v1/entity/", headers=headers, timeout=10
            ).json()["count"]
            == 30
        )
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert "sandbox stopped" in out
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["sandbox", "--fault-rate", "2"], "--fault-rate: is a fraction between 0 and 1, got 2"),
        (["sandbox", "--fault-kinds", "429,teapot"], "unknown fault kind 'teapot'"),
        (["sandbox", "--entities", "-5"], "--entities: must be 0 to 1,000,000, got -5"),
        # a demo of nothing would leave an empty world in ./warehouse for the next demo
        (["demo", "--entities", "0"], "--entities: must be 1 to 1,000,000, got 0"),
        (["demo", "--entities", "1000001"], "--entities: must be 1 to 1,000,000, got 1000001"),
        (["backfill", "--all", "--batch-size", "0"], "--batch-size: must be 1 to 10,000, got 0"),
        (["sandbox", "--port", "http"], "--port: expected a port number"),
        (["sandbox", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
        (["no-such-command"], "invalid choice: 'no-such-command'"),
        (
            ["backfill", "--entity-id", "../sandbox/state"],
            "entity id '../sandbox/state' is not one: BankConnect's entity ids are UUIDs",
        ),
        # the API reads a blank link id as no filter: a whole forced re-fetch
        (
            ["backfill", "--link-id", "", "--force", "--dry-run"],
            "link id '' is blank, which the API reads as every entity",
        ),
        # an empty path would be the current folder
        (["backfill", "--all", "--warehouse", ""], "--warehouse: an empty folder name"),
        # its hint was to delete <the file>/ to start the sandbox's data over
        (["nightly", "--warehouse", "/etc/passwd"], "--warehouse: /etc/passwd is a file, not"),
    ],
)
def test_bad_flags_get_one_line_and_a_hint(args: list[str], expected: str) -> None:
    r = run(*args)
    assert r.returncode == 2
    first, *rest = r.stderr.strip().splitlines()
    assert first.startswith("error: ") and expected in first
    assert rest and rest[0].startswith("hint: ")
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("args", "owner"),
    [
        (["backfill", "--all", "--bogus"], "bankconnect-etl backfill"),
        (["--debug", "sql", "--bogus", "select 1"], "bankconnect-etl sql"),
        (["--bogus"], "bankconnect-etl"),
    ],
)
def test_an_unknown_flag_is_reported_by_the_command_that_was_given_it(
    args: list[str], owner: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from bankconnect_etl.cli import EXIT_USAGE, main

    assert main(args) == EXIT_USAGE
    err = capsys.readouterr().err
    # the hint sends the user to the help that lists the flags they can use
    assert f"error: {owner}: unrecognized arguments: --bogus" in err
    assert f"hint: see '{owner} --help'" in err


@pytest.mark.parametrize(
    ("args", "meant"),
    [
        (["backfill", "--entiy-id", "x"], "--entity-id"),
        # a flag is taken whole: a prefix that would pass for another is a typo, not a guess
        (["backfill", "--link", "APP1", "--dry-run"], "--link-id"),
        (["sql", "--formt", "csv", "SELECT 1"], "--format"),
    ],
)
def test_a_mistyped_flag_gets_the_one_it_resembles(
    args: list[str], meant: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from bankconnect_etl.cli import EXIT_USAGE, main

    assert main(args) == EXIT_USAGE
    first = capsys.readouterr().err.splitlines()[0]
    assert first.startswith(f"error: bankconnect-etl {args[0]}: unrecognized arguments: {args[1]}")
    assert first.endswith(f"(did you mean {meant}?)")


def test_port_in_use_is_a_user_error_and_debug_shows_the_traceback() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        r = run("sandbox", "--port", port)
        assert r.returncode == 2
        assert f"error: cannot listen on 127.0.0.1:{port}" in r.stderr and "--port 0" in r.stderr
        assert "Traceback" not in r.stderr
        for args in (
            ["--debug", "sandbox", "--port", port],
            ["sandbox", "--port", port, "--debug"],
        ):
            debug = run(*args)  # before or after the command, as people type it
            assert "Traceback" in debug.stderr, args
            assert debug.returncode == 2  # the traceback shown, the exit code unchanged


def test_access_token_mode_needs_its_secret_from_the_environment() -> None:
    r = run("sandbox", "--port", "0", "--require-access-token")
    assert r.returncode == 2 and "BANKCONNECT_SANDBOX_TOKEN_SECRET" in r.stderr


def test_demo_syncs_the_sandbox_into_a_warehouse_and_queries_it(tmp_path: Path) -> None:
    r = run("demo", "--entities", "25", "--seed", "2", timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # no warnings, no tracebacks
    lines = r.stdout.splitlines()
    assert lines[0].startswith("sandbox: 25 entities, seed 2, at http://127.0.0.1:")
    assert lines[1] == f"warehouse: {tmp_path / 'warehouse'}"
    assert re.search(r"run demo-\S+: succeeded in [\d.]+ s, snapshot \d+", r.stdout)
    assert "entities: 25 seen: 25 new, 0 unchanged (one request each)" in r.stdout
    assert re.search(r"loaded: \d+ complete, \d+ empty, 0 pending, 0 failed", r.stdout)
    assert re.search(r"rows: entities 25, accounts \d+, .*transactions [\d,]+", r.stdout)
    assert re.search(r"requests: [\d,]+ \(0 retries\)", r.stdout)
    assert "quarantined: 0 rows" in r.stdout
    assert "sample query" in r.stdout and "credits_inr" in r.stdout
    report = re.search(r"^credit report for entity (\S+): (\S+\.html)$", r.stdout, re.MULTILINE)
    assert report, r.stdout
    assert report[1] in (tmp_path / report[2]).read_text(encoding="utf-8")
    assert (tmp_path / "warehouse" / "catalog.sqlite").is_file()
    assert list((tmp_path / "warehouse" / "data").rglob("year=*/month=*/*.parquet"))
    counted = run("sql", "SELECT count(*) FROM entities", "--format", "csv", cwd=tmp_path)
    assert counted.returncode == 0, counted.stderr
    assert counted.stdout.splitlines() == ["count_star()", "25"]

    # A second demo: the sandbox's time moved on one step; only what changed is fetched.
    again = run("demo", "--entities", "25", "--seed", "2", timeout=120, cwd=tmp_path)
    assert again.returncode == 0 and again.stderr == ""
    assert "time moved on 1 step(s)" in again.stdout
    seen = re.search(r"entities: 28 seen: 3 new, (\d) changed, (\d+) unchanged", again.stdout)
    assert seen, again.stdout
    assert int(seen[1]) >= 1 and int(seen[1]) + int(seen[2]) == 25

    # A nightly run after it starts the sandbox at the world the demos left: nothing changed
    # (a sandbox back at its first state would look like statements disappearing).
    nightly = run("nightly", timeout=120, cwd=tmp_path)
    assert nightly.returncode == 0, nightly.stderr
    assert "entities: 28 seen: 28 unchanged (one request each)" in nightly.stdout
    assert "embedded sandbox (25 entities, seed 2, 1 step(s) on)" in nightly.stderr

    # An id the API does not know: the dry run says the run would fail, and the run fails
    # before fetching anything
    nope = "00000000-0000-0000-0000-000000000000"
    for dry in (["--dry-run"], []):
        typo = run("backfill", "--entity-id", nope, *dry, cwd=tmp_path)
        assert typo.returncode == 1, typo.stderr
        said = typo.stdout + typo.stderr
        assert f"not found at the API (skipped): entity_id {nope}" in typo.stdout
        assert f"error: none of the ids named is known to the API: entity_id {nope}" in said
        assert "hint: check the ids" in typo.stderr and "Traceback" not in said

    # Another world does not go into this warehouse.
    other = run("demo", "--entities", "25", "--seed", "3", cwd=tmp_path)
    assert other.returncode == 2
    assert other.stderr.splitlines() == [
        "error: warehouse/ holds the sandbox world of 25 entities, seed 2, not 25 entities, seed 3",
        "hint: give another world its own folder (--warehouse or BANKCONNECT_WAREHOUSE), "
        "or delete warehouse/ to start over",
    ]


# Ctrl-C reaches a terminal's whole foreground process group, the transform worker too;
# `kill` and a scheduler's timeout send SIGTERM to the command alone, a service manager's
# stop to the whole group
STOPS = {
    "ctrl-c": (signal.SIGINT, True, 130, "interrupted", "interrupted (Ctrl-C)"),
    "kill": (signal.SIGTERM, False, 143, "stopped by SIGTERM", "stopped by SIGTERM"),
    "service stop": (signal.SIGTERM, True, 143, "stopped by SIGTERM", "stopped by SIGTERM"),
}


@pytest.mark.parametrize("how", list(STOPS))
def test_a_sync_stopped_by_a_signal_says_so_in_one_line_and_in_its_row(
    tmp_path: Path, how: str
) -> None:
    """Only the run reports the stop; what it committed stays, and its row counts it."""
    import os

    import psutil

    env = {k: v for k, v in os.environ.items() if not k.startswith("BANKCONNECT_")}
    env |= {"BANKCONNECT_SANDBOX_ENTITIES": "3000", "BANKCONNECT_WAREHOUSE": str(tmp_path / "wh")}
    proc = subprocess.Popen(
        [COMMAND, "nightly"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        deadline = time.monotonic() + 60
        while not any(
            "transform_worker" in " ".join(c.cmdline())
            for c in psutil.Process(proc.pid).children(recursive=True)
        ):
            assert proc.poll() is None and time.monotonic() < deadline, "no worker started"
            time.sleep(0.2)
        while True:  # a batch committed, more in flight
            count = "SELECT count(*) FROM entities"
            loaded = subprocess.run(
                [COMMAND, "sql", count, "--format", "csv"], capture_output=True, text=True, env=env
            ).stdout.splitlines()[1:]
            if loaded and int(loaded[0]) > 0:
                break
            assert proc.poll() is None and time.monotonic() < deadline, "no batch committed"
            time.sleep(0.3)
        signum, whole_group, code, said, recorded = STOPS[how]
        (os.killpg if whole_group else os.kill)(proc.pid, signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    assert err.strip().splitlines()[-1] == said
    assert "Traceback" not in err
    runs = subprocess.run(
        [COMMAND, "sql", "SELECT kind, status, error FROM runs", "--format", "csv"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    ).stdout.splitlines()
    assert runs == ["kind,status,error", f"nightly,interrupted,{recorded}"]
    # what it committed before the Ctrl-C is counted in its row, as in the tables
    counted, loaded = (
        subprocess.run(
            [
                COMMAND,
                "sql",
                "SELECT (SELECT sum(v::BIGINT) FROM (SELECT unnest(map_values("
                "CAST(counts->'entities' AS MAP(VARCHAR, BIGINT)))) AS v)) AS counted, "
                "(SELECT count(*) FROM entities) AS loaded FROM runs",
                "--format",
                "csv",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=True,
        )
        .stdout.splitlines()[1]
        .split(",")
    )
    assert counted == loaded and int(loaded) > 0


def test_the_commands_take_as_many_sandbox_entities_as_the_setting_does() -> None:
    from pydantic import ValidationError

    from bankconnect_etl.cli import MAX_SANDBOX_ENTITIES
    from bankconnect_etl.config import Settings

    assert Settings(sandbox_entities=MAX_SANDBOX_ENTITIES).sandbox_entities == MAX_SANDBOX_ENTITIES
    with pytest.raises(ValidationError):
        Settings(sandbox_entities=MAX_SANDBOX_ENTITIES + 1)


def test_a_warehouse_under_the_home_folder_may_be_written_with_a_quoted_tilde() -> None:
    """`--warehouse="~/lake"` and BANKCONNECT_WAREHOUSE="~/lake" reach the program with
    the ~: taken literally, they made a folder named ~ in the current one."""
    from bankconnect_etl.cli_warehouse import folder
    from bankconnect_etl.config import Settings

    assert folder("~/lake") == Path.home() / "lake"
    assert Settings(warehouse="~/lake").warehouse == Path.home() / "lake"
