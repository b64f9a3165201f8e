"""The deployments as an operator runs them: a real Prefect server on a loopback port,
the work pool and Secret blocks of docs/operations.md, ``prefect deploy --all`` from
prefect.yaml, ``prefect deployment run`` and a process worker, against the sandbox.

Every Prefect command runs in a subprocess with PREFECT_API_URL set, as on an operator's
machine; nothing here uses the ephemeral API the other flow tests use. About 30 s.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bankconnect_etl.sandbox import (
    SANDBOX_API_KEY,
    SANDBOX_SERVER_HASH,
    SandboxConfig,
    start_in_thread,
)
from bankconnect_etl.warehouse import connect
from tests.conftest import Api

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PREFECT = str(BIN / "prefect")
ENTITIES = 12


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A Prefect server of its own (SQLite under a temporary PREFECT_HOME); the
    environment every command of the test runs with."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "BANKCONNECT_"))}
    env |= {
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        # the scheduler makes a schedule's runs every minute by default: every second here
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "1",
    }
    log = (home / "server.log").open("w")
    proc = subprocess.Popen(
        [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(api + "/health", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                started = (home / "server.log").read_text()
                pytest.fail(f"the Prefect server did not start:\n{started}")
            time.sleep(0.3)
        yield env | {"PREFECT_API_URL": api}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def prefect(env: dict[str, str], *args: str, cwd: Path, timeout: float = 120) -> str:
    done = subprocess.run(
        [PREFECT, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, f"prefect {' '.join(args)} failed:\n{out}"
    return out


def api(env: dict[str, str], path: str, body: dict | None = None) -> list[dict]:
    r = requests.post(env["PREFECT_API_URL"] + path, json=body or {}, timeout=10)
    r.raise_for_status()
    return r.json()


def test_deployments_run_through_a_prefect_server_and_a_worker(
    server: dict[str, str], tmp_path: Path
) -> None:
    project = tmp_path / "project"  # a copy: `prefect deploy` runs in the project's root
    shutil.copytree(ROOT / "flows", project / "flows", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "prefect.yaml", project)
    warehouse = tmp_path / "warehouse"
    with start_in_thread(SandboxConfig(entities=ENTITIES, seed=3, processing_polls=0)) as sb:
        env = server | {  # the worker's environment; the credentials come from blocks
            "BANKCONNECT_BASE_URL": sb.base_url,
            "BANKCONNECT_WAREHOUSE": str(warehouse),
            "BANKCONNECT_TRANSFORM_WORKERS": "0",
        }
        blocks = (
            "from prefect.blocks.system import Secret\n"
            "import sys\n"
            "Secret(value=sys.argv[1]).save('bankconnect-api-key', overwrite=True)\n"
            "Secret(value=sys.argv[2]).save('bankconnect-server-hash', overwrite=True)\n"
        )
        subprocess.run(
            [sys.executable, "-c", blocks, SANDBOX_API_KEY, SANDBOX_SERVER_HASH],
            env=env,
            check=True,
            timeout=60,
        )
        prefect(env, "work-pool", "create", "bankconnect", "--type", "process", cwd=project)
        out = prefect(env, "--no-prompt", "deploy", "--all", cwd=project)
        assert "bankconnect-nightly/nightly" in out and "bankconnect-backfill/backfill" in out

        named = {"deployments": {"name": {"any_": ["nightly"]}}}
        (nightly,) = api(env, "/deployments/filter", named)
        schedule = nightly["schedules"][0]["schedule"]
        assert (schedule["cron"], schedule["timezone"]) == ("0 2 * * *", "Asia/Kolkata")
        assert nightly["parameters"]["secret_blocks"] == {
            "api_key": "bankconnect-api-key",
            "server_hash": "bankconnect-server-hash",
        }
        # the server's scheduler makes the nightly's runs: 02:00 in Kolkata is 20:30 UTC
        # (with SQLAlchemy 2.1 it failed on every loop, "Can't evaluate bulk DML statement")
        upcoming = {
            "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}},
            "deployments": {"id": {"any_": [nightly["id"]]}},
        }
        deadline = time.monotonic() + 60
        while not (scheduled := api(env, "/flow_runs/filter", upcoming)):
            assert time.monotonic() < deadline, "the server's scheduler made no nightly run"
            time.sleep(0.5)
        assert {r["expected_start_time"][11:16] for r in scheduled} == {"20:30"}

        def run_once(deployment: str, *params: str) -> str:
            """`prefect deployment run` with ``params`` (name=value), then a worker that
            takes that one run; the worker's output."""
            given = [arg for param in params for arg in ("--param", param)]
            prefect(env, "deployment", "run", deployment, *given, cwd=project)
            return prefect(
                env, "worker", "start", "--pool", "bankconnect", "--run-once", cwd=project
            )

        logs = run_once("bankconnect-nightly/nightly")
        pick = Api(sb).entity_ids()[:2]
        logs += run_once(
            "bankconnect-backfill/backfill", f"entity_ids={json.dumps(pick)}", "force=true"
        )
        # a mistyped id: the flow run fails with one line in its log, and no traceback
        typo = ["6886dd3c"]
        logs += run_once("bankconnect-backfill/backfill", f"entity_ids={json.dumps(typo)}")

    ran = {"flow_runs": {"state": {"type": {"not_any_": ["SCHEDULED"]}}}}
    runs = api(env, "/flow_runs/filter", ran | {"sort": "EXPECTED_START_TIME_ASC"})
    assert [(r["state_type"], r["parameters"].get("force")) for r in runs] == [
        ("COMPLETED", None),
        ("COMPLETED", True),
        ("FAILED", False),
    ], logs
    failed = {"logs": {"flow_run_id": {"any_": [runs[2]["id"]]}, "level": {"ge_": 40}}}
    errors = [r["message"] for r in api(env, "/logs/filter", failed)]
    assert len(errors) == 1 and "entity id '6886dd3c' is not one" in errors[0], errors
    artifacts = api(env, "/artifacts/filter", {"artifacts": {"type": {"any_": ["markdown"]}}})
    assert len(artifacts) == 2 and all("succeeded" in a["data"] for a in artifacts), artifacts
    con = connect(warehouse)
    try:
        rows = [
            (kind, status, sum(json.loads(counts)["entities"].values()))
            for kind, status, counts in con.execute(
                "SELECT kind, status, counts FROM runs ORDER BY started_at"
            ).fetchall()
        ]
        (loaded,) = con.execute("SELECT count(*) FROM entities").fetchone() or (0,)
    finally:
        con.close()
    assert rows == [("nightly", "succeeded", ENTITIES), ("backfill", "succeeded", 2)]
    assert loaded == ENTITIES
    for secret in (SANDBOX_API_KEY, SANDBOX_SERVER_HASH):
        assert secret not in logs
        assert all(secret not in a["data"] for a in artifacts)
    assert "Traceback" not in logs
