"""Latency and upstream faults, injected in front of the API routes.

Kinds (``--fault-kinds``, default all):

- ``429``        throttled, with ``Retry-After`` in seconds or as an HTTP date
- ``500``        Django's HTML "Server Error (500)" page
- ``502``, ``504`` a load balancer's HTML error page
- ``503``        a JSON ``detail`` body
- ``slow``       the real response, held for ``slow_ms`` (longer than a client's read timeout)

``latency_ms`` makes every API answer take at least that long from arrival, the route's
own work overlapping the wait, without blocking other requests.
- ``drop``       headers and half the body, then the connection is closed
- ``truncated``  200 with a JSON body cut short
- ``html``       200 with an HTML maintenance page instead of JSON

Faults hit only the API under the base path, never ``/sandbox/*`` or ``/openapi.json``.
A fault is drawn at random at ``fault_rate``; ``POST /sandbox/faults`` can also queue an
exact sequence for the next requests, which is how tests hit each kind on purpose.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from email.utils import formatdate
from time import time

FAULT_KINDS = ("429", "500", "502", "503", "504", "slow", "drop", "truncated", "html")

_HTML_500 = (
    b'<!doctype html>\n<html lang="en">\n<head><title>Server Error (500)</title></head>\n'
    b"<body><h1>Server Error (500)</h1><p></p></body>\n</html>\n"
)
_HTML_GATEWAY = (
    "<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{code} {reason}</h1></center>\r\n"
    "<hr><center>awselb/2.0</center>\r\n</body>\r\n</html>\r\n"
)
_HTML_MAINTENANCE = (
    b"<!DOCTYPE html><html><head><title>We'll be back soon</title></head><body>"
    b"<h1>Scheduled maintenance</h1>"
    b"<p>BankConnect is being upgraded. Please try again in a few minutes.</p></body></html>"
)


class DroppedConnection(Exception):
    """Raised after half a body has been sent, so the server closes the connection."""


class _QuietDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection)


def quiet_dropped_connections() -> None:
    """Keep uvicorn from logging a traceback for each injected dropped connection."""
    logging.getLogger("uvicorn.error").addFilter(_QuietDrops())


class FaultState:
    def __init__(
        self,
        rate: float,
        kinds: tuple[str, ...],
        slow_ms: float,
        retry_after_s: int,
        latency_ms: float,
        seed: int,
    ) -> None:
        self.rate = rate
        self.kinds = kinds or FAULT_KINDS
        self.slow_ms = slow_ms
        self.retry_after_s = retry_after_s
        self.latency_ms = latency_ms
        self.queued: deque[str] = deque()
        self.injected: dict[str, int] = dict.fromkeys(FAULT_KINDS, 0)
        self._rng = random.Random(seed * 7919 + 17)

    def draw(self) -> str | None:
        if self.queued:
            return self.queued.popleft()
        if self.rate > 0 and self._rng.random() < self.rate:
            return self._rng.choice(self.kinds)
        return None

    def retry_after(self) -> str:
        if self._rng.random() < 0.5:
            return str(self.retry_after_s)
        return formatdate(time() + self.retry_after_s, usegmt=True)

    def describe(self) -> dict:
        return {
            "rate": self.rate,
            "kinds": list(self.kinds),
            "queued": list(self.queued),
            "slow_ms": self.slow_ms,
            "latency_ms": self.latency_ms,
            "injected": dict(self.injected),
        }


class FaultMiddleware:
    def __init__(self, app, state: FaultState, api_prefix: str) -> None:  # type: ignore[no-untyped-def]
        self.app = app
        self.state = state
        self.prefix = api_prefix

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        st = self.state
        kind = st.draw()
        if kind is None:
            await self._answer_after_latency(scope, receive, send)
            return
        if st.latency_ms > 0:
            await asyncio.sleep(st.latency_ms / 1000)
        st.injected[kind] += 1
        if kind == "429":
            after = st.retry_after()
            body = (
                b'{"detail":"Request was throttled. Expected available in %d seconds."}'
                % st.retry_after_s
            )
            await _respond(send, 429, body, b"application/json", [(b"retry-after", after.encode())])
        elif kind == "500":
            await _respond(send, 500, _HTML_500, b"text/html; charset=utf-8")
        elif kind in ("502", "504"):
            reason = "Bad Gateway" if kind == "502" else "Gateway Time-out"
            await _respond(
                send,
                int(kind),
                _HTML_GATEWAY.format(code=kind, reason=reason).encode(),
                b"text/html",
            )
        elif kind == "503":
            await _respond(
                send,
                503,
                b'{"detail":"Service temporarily unavailable, try again later."}',
                b"application/json",
            )
        elif kind == "html":
            await _respond(send, 200, _HTML_MAINTENANCE, b"text/html; charset=utf-8")
        elif kind == "slow":
            await asyncio.sleep(st.slow_ms / 1000)
            await self.app(scope, receive, send)
        else:
            await self._mangle(kind, scope, receive, send)

    async def _answer_after_latency(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        """Answer ``latency_ms`` after the request arrived, the route's own work included.

        Sleeping first and working after would make requests that arrive together wake
        together and queue for the one core: each would take the latency plus everyone's
        work. A real API works while the network delays, so the work overlaps the wait.
        """
        delay = self.state.latency_ms / 1000
        if delay <= 0:
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        started = loop.time()
        messages: list = []

        async def hold(message) -> None:  # type: ignore[no-untyped-def]
            messages.append(message)

        await self.app(scope, receive, hold)
        await asyncio.sleep(max(0.0, started + delay - loop.time()))
        for message in messages:
            await send(message)

    async def _mangle(self, kind: str, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        """Run the real route, then damage what it sends."""
        start: dict = {}
        chunks: list[bytes] = []

        async def capture(message) -> None:  # type: ignore[no-untyped-def]
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        body = b"".join(chunks)
        cut = body[: max(1, len(body) // 2)]
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        if kind == "truncated":
            headers.append((b"content-length", str(len(cut)).encode()))
            await send(
                {
                    "type": "http.response.start",
                    "status": start.get("status", 200),
                    "headers": headers,
                }
            )
            await send({"type": "http.response.body", "body": cut})
            return
        # drop: promise the whole body, deliver half, hang up.
        headers.append((b"content-length", str(len(body)).encode()))
        await send(
            {"type": "http.response.start", "status": start.get("status", 200), "headers": headers}
        )
        await send({"type": "http.response.body", "body": cut, "more_body": True})
        raise DroppedConnection


async def _respond(
    send, status: int, body: bytes, content_type: bytes, extra: list | None = None
) -> None:  # type: ignore[no-untyped-def]
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    headers.extend(extra or [])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
