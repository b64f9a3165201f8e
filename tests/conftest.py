"""Shared fixtures: sandboxes on free loopback ports, started and stopped by the tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from bankconnect_etl.sandbox import (
    SANDBOX_API_KEY,
    SANDBOX_SERVER_HASH,
    RunningSandbox,
    SandboxConfig,
    start_in_thread,
)

AUTH = {"x-api-key": SANDBOX_API_KEY, "server-hash": SANDBOX_SERVER_HASH}

# A test run started in the background of a non-interactive shell (`make test &`, some CI
# runners) inherits SIGINT ignored, as POSIX has it, and every process it starts would too:
# the Ctrl-C tests would see a command carry on past Ctrl-C, as it should when ignored.
# Python's own handler here makes the commands start with SIGINT at its default (an exec
# resets a handled signal, not an ignored one).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


class FakeClock:
    """Time that moves only when slept in; every sleep is recorded. Call it for the time."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Api:
    """A requests session against one sandbox, with the sandbox's credentials."""

    def __init__(self, sandbox: RunningSandbox) -> None:
        self.sandbox = sandbox
        self.base = sandbox.base_url
        self.http = requests.Session()
        self.http.headers.update(AUTH)

    def get(self, path: str, **kw: object) -> requests.Response:
        kw.setdefault("timeout", 10)
        return self.http.get(self.base + path, **kw)  # type: ignore[arg-type]

    def post(self, path: str, **kw: object) -> requests.Response:
        kw.setdefault("timeout", 10)
        return self.http.post(self.base + path, **kw)  # type: ignore[arg-type]

    def admin(self, method: str, path: str, **kw: object) -> requests.Response:
        kw.setdefault("timeout", 10)
        return requests.request(method, self.sandbox.url + path, **kw)  # type: ignore[arg-type]  # noqa: S113

    def entity_ids(self) -> list[str]:
        ids, url = [], self.base + "/entity/"
        while url:
            page = self.http.get(url, timeout=10).json()
            ids += [e["entity_id"] for e in page["results"]]
            url = page["next"]
        return ids

    def until_done(self, entity_id: str, endpoint: str, polls: int = 20) -> dict:
        """Poll one endpoint until no statement is processing."""
        for _ in range(polls):
            body = self.get(f"/entity/{entity_id}/{endpoint}/").json()
            if all(p["status"] != "processing" for p in body["progress"]):
                return body
        raise AssertionError(f"{endpoint} of {entity_id} still processing after {polls} polls")


@pytest.fixture
def make_sandbox() -> Iterator[Callable[..., Api]]:
    """Start sandboxes with any SandboxConfig fields; all stop at the end of the test."""
    running: list[RunningSandbox] = []

    def start(**config: object) -> Api:
        config.setdefault("entities", 50)
        sb = start_in_thread(SandboxConfig(**config))  # type: ignore[arg-type]
        running.append(sb)
        return Api(sb)

    yield start
    for sb in running:
        sb.stop()


@pytest.fixture(scope="module")
def shared_sandbox() -> Iterator[Api]:
    """One read-only world of 60 entities for tests that only look (processing off)."""
    with start_in_thread(SandboxConfig(entities=60, seed=1, processing_polls=0)) as sb:
        yield Api(sb)


COMMAND = str(Path(sys.executable).with_name("bankconnect-etl"))


def run_cli(
    *args: str, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``bankconnect-etl ARGS`` in a subprocess, without this machine's BANKCONNECT_* env."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANKCONNECT_")}
    return subprocess.run(
        [COMMAND, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
        env=env,
    )


# ---------------------------------------------------------------------- a read-only folder

# Root writes any folder whatever its mode: its commands run without the capabilities that
# let it (setpriv lowers the bounding set; root keeps owning, reading and running its files).
AS_A_USER = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]
# How a test makes a folder read-only: by its modes anywhere; by a read-only bind mount
# (a read-only file system: SQLite fails otherwise) where the tests run as root
READ_ONLY_WAYS = ["permissions", "mount"] if os.geteuid() == 0 else ["permissions"]


@dataclass(frozen=True)
class ReadOnlyFolder:
    """A folder this test's commands cannot write, and how to run a command on it."""

    path: Path
    how: str  # "permissions": modes a-w; "mount": a read-only bind mount (root only)
    prefix: tuple[str, ...] = ()

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """``bankconnect-etl ARGS --warehouse <the folder>``, without BANKCONNECT_* env."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("BANKCONNECT_")}
        return subprocess.run(
            [*self.prefix, COMMAND, *args, "--warehouse", str(self.path)],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=self.path.parent,
            env=env,
        )


def _set_modes(folder: Path, writable: bool) -> None:
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755 if writable else 0o555)
        else:
            path.chmod(0o644 if writable else 0o444)


@contextmanager
def read_only_folder(folder: Path, how: str) -> Iterator[ReadOnlyFolder]:
    """``folder`` made read-only for the commands run through the result; fails the test,
    saying why, when this machine cannot make it so."""
    if how == "permissions":
        prefix: tuple[str, ...] = ()
        _set_modes(folder, writable=False)
        try:
            if os.geteuid() == 0:
                prefix = tuple(AS_A_USER)
                probe = _run([*prefix, "test", "-w", str(folder)])
                if probe is None or probe.returncode != 1:
                    pytest.fail("running as root, and setpriv cannot drop CAP_DAC_OVERRIDE here")
            yield ReadOnlyFolder(folder, how, prefix)
        finally:
            _set_modes(folder, writable=True)
        return
    assert how == "mount" and os.geteuid() == 0, how  # READ_ONLY_WAYS
    view = folder.with_name(folder.name + "-ro")
    view.mkdir()
    bind = _run(["mount", "--bind", str(folder), str(view)])
    if bind is None or bind.returncode != 0:
        view.rmdir()
        pytest.fail(f"cannot bind-mount here (no CAP_SYS_ADMIN?): {bind and bind.stderr.strip()}")
    try:
        remount = _run(["mount", "-o", "remount,bind,ro", str(view)])
        assert remount is not None and remount.returncode == 0, remount and remount.stderr
        yield ReadOnlyFolder(view, how)
    finally:
        _run(["umount", str(view)])
        view.rmdir()


def _run(command: list[str]) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except OSError:  # not installed
        return None


# a query that runs for minutes unless it is cancelled
ENDLESS_QUERY = "SELECT count(*) FROM range(1000000000000) t(i) WHERE i % 7 = 3"

# for tests that interrupt DuckDB: a query it leaves running hangs the test in C code,
# where only the thread method of pytest-timeout ends it (the whole session, with stacks)
ends_if_hung = pytest.mark.timeout(60, method="thread")


@contextmanager
def ctrl_c_in(seconds: float) -> Iterator[None]:
    """SIGINT to this process after ``seconds``, as Ctrl-C at a terminal sends it, with
    Python's own handler (KeyboardInterrupt in the main thread) for the span."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
