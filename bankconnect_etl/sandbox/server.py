"""Running the sandbox: in the foreground (the CLI) or on a background thread (tests, demo)."""

from __future__ import annotations

import gc
import socket
import threading
from dataclasses import dataclass

import uvicorn

from bankconnect_etl.sandbox.app import API_PREFIX, create_app
from bankconnect_etl.sandbox.faults import quiet_dropped_connections
from bankconnect_etl.sandbox.world import SandboxConfig


def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening socket; port 0 picks a free one. Raises OSError when the port is taken."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def build_server(config: SandboxConfig, log_level: str = "warning") -> uvicorn.Server:
    """The app with its world built, ready to serve: build before announcing the address."""
    quiet_dropped_connections()
    app = create_app(config)
    uv = uvicorn.Config(
        app,
        # no logging.config.dictConfig of uvicorn's: it flushes and closes every handler
        # already set up, and closing Prefect's API log handler waits 5 s for its queue
        # (a flow that starts the embedded sandbox stalled, "EventsWorker - Still
        # processing items"). uvicorn's loggers propagate to the process's own.
        log_config=None,
        log_level=log_level,
        access_log=False,
        loop="auto",  # uvloop when installed
        http="auto",  # httptools when installed
        timeout_keep_alive=30,
        lifespan="off",
        server_header=False,
    )
    return uvicorn.Server(uv)


@dataclass
class RunningSandbox:
    """A sandbox serving on a background thread. Use as a context manager."""

    config: SandboxConfig
    host: str
    port: int
    _server: uvicorn.Server
    _thread: threading.Thread

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What BANKCONNECT_BASE_URL should be to use this sandbox."""
        return self.url + API_PREFIX

    @property
    def app(self):  # type: ignore[no-untyped-def]
        return self._server.config.app

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_in_thread(
    config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 0
) -> RunningSandbox:
    """Start a sandbox on a loopback port and return once it accepts connections."""
    config = config or SandboxConfig()
    sock = bind(host, port)
    server = build_server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="bankconnect-sandbox", daemon=True
    )
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the sandbox server stopped while starting")
        thread.join(0.01)
    return RunningSandbox(config, host, sock.getsockname()[1], server, thread)


def serve_forever(server: uvicorn.Server, sock: socket.socket) -> None:
    """Serve on ``sock`` in the foreground until interrupted (Ctrl-C).

    This process is the sandbox alone, so it may tune the collector: the world's index
    lives as long as the server, so it is kept out of the cyclic collector, and young
    objects are collected less often (measured: full passes of up to 139 ms stalled every
    open request under a transactions/ load). A sandbox on a thread leaves the host
    process's collector alone.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    server.run(sockets=[sock])
