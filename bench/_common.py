"""What the benchmarks share: the sandbox CLI in a pinned subprocess, and plain tables.

On a 2-core machine the sandbox runs on core 0 and the measuring side on core 1, so one
side's load does not skew the other's figures.
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

import psutil

START_TIMEOUT_S = 180.0


_SHARED = False

# The machine's cores, read once at import: ``pin_to_client_cores`` narrows this process's
# own affinity, and a sandbox started after it must still get core 0, not inherit core 1.
_CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def share_cores() -> None:
    """Pin nothing: the sandbox and the measured processes share every core, scheduled by
    the OS (``--cores shared``), as the pipeline would be on a machine of its own."""
    global _SHARED
    _SHARED = True


def cpu_split() -> tuple[set[int], set[int]]:
    """The server's core and the clients' cores; both empty if there is only one or when
    the cores are shared."""
    if _SHARED:
        return set(), set()
    if len(_CPUS) < 2:
        return set(), set()
    return {_CPUS[0]}, set(_CPUS[1:])


def _prepare_server() -> None:
    """In the server's process before exec: pin it, and have Linux send it SIGTERM if this
    benchmark dies without cleaning up."""
    server_cpus = cpu_split()[0]
    if server_cpus:
        os.sched_setaffinity(0, server_cpus)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def server_command(entities: int, *extra: str) -> list[str]:
    script = Path(sys.executable).parent / "bankconnect-etl"
    head = [str(script)] if script.exists() else [sys.executable, "-m", "bankconnect_etl.cli"]
    return [*head, "sandbox", "--port", "0", "--entities", str(entities), *extra]


class Sandbox:
    """The sandbox CLI in a subprocess, with its output kept for the report."""

    def __init__(self, entities: int, *extra: str) -> None:
        self.command = server_command(entities, *extra)
        self.lines: deque[str] = deque(maxlen=200)
        self.line_count = 0
        self._lines: queue.Queue[str] = queue.Queue()
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0
        self.listening_s = self.ready_s = 0.0

    def start(self) -> None:
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            self.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=_prepare_server,
        )
        threading.Thread(target=self._read_output, daemon=True).start()
        self.port = self._wait_for_port(t0 + START_TIMEOUT_S)
        self.listening_s = time.monotonic() - t0
        self._wait_for_ping(t0 + START_TIMEOUT_S)
        self.ready_s = time.monotonic() - t0

    def _read_output(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())
            self.line_count += 1
            if not self.port:
                self._lines.put(line)

    def _wait_for_port(self, until: float) -> int:
        while (left := until - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=min(left, 1.0))
            except queue.Empty:
                self._check_alive()
                continue
            match = re.search(r"listening on\s+http://127\.0\.0\.1:(\d+)", line)
            if match:
                return int(match.group(1))
        raise TimeoutError("the sandbox printed no 'listening on' line")

    def _wait_for_ping(self, until: float) -> None:
        while time.monotonic() < until:
            self._check_alive()
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1.0)
            try:
                conn.request("GET", "/sandbox/ping")
                if conn.getresponse().status == 200:
                    return
            except (OSError, http.client.HTTPException):
                pass
            finally:
                conn.close()
            time.sleep(0.01)
        raise TimeoutError("the sandbox never answered /sandbox/ping")

    def _check_alive(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            tail = "\n".join(list(self.lines)[-20:])
            raise RuntimeError(f"the sandbox exited with {self.proc.returncode}:\n{tail}")

    def process(self) -> psutil.Process:
        assert self.proc is not None
        return psutil.Process(self.proc.pid)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join([first, *(c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))])

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def pin_to_client_cores() -> None:
    """Keep the measuring process off the sandbox's core."""
    cores = cpu_split()[1]
    if cores:
        os.sched_setaffinity(0, cores)
