"""BankConnectClient: one pooled urllib3 ``PoolManager``, auth headers, retries, redaction.

The client returns plain JSON data (dicts and lists) and raises the typed errors of
:mod:`bankconnect_etl.errors`. It is safe to share between threads.

Retries. Connection errors, timeouts, 429, 500/502/503/504 and malformed bodies are
retried with exponential backoff and full jitter (``uniform(0, min(cap, base * 2**n))``),
at most ``max_attempts`` tries and ``max_retry_time_s`` per request; a 429's
``Retry-After`` (seconds or HTTP date, parsed by urllib3) is a floor on the wait, and it
pauses every worker sharing the client, so a burst of 429s slows the whole pool. 400,
401, 403 and 404 are raised at once. urllib3's ``Retry`` is not used as the loop itself:
it has no full jitter, cannot retry a 200 whose body is not JSON, has no total-time cap
and no pool-wide pause.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit
from urllib.request import getproxies, proxy_bypass

import certifi
import orjson
import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import (
    InvalidHeader,
    LocationValueError,
    NewConnectionError,
    ProxySchemeUnknown,
    SSLError,
)
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.util import Retry

from bankconnect_etl import __version__
from bankconnect_etl.config import Settings
from bankconnect_etl.errors import (
    ApiError,
    AuthError,
    BadRequestError,
    ConfigError,
    ConnectionSetupError,
    MalformedResponseError,
    NotFoundError,
    RateLimitedError,
    RetriableApiError,
    ServerError,
    TransportError,
    UnexpectedStatusError,
)

SNIPPET = 200
RETRIABLE_STATUS = frozenset({500, 502, 503, 504})
_SECRET_PARAM = re.compile(r"(key|token|secret|sign|signature|password|credential|hash)", re.I)
# A quoted body may carry a secret the client has not seen yet (a cut get_pdfs body).
_SECRET_FIELD = re.compile(
    r'("(?:pdf_password|api_key|password|server_hash)"\s*:\s*")((?:\\.|[^"\\])*)', re.I
)


def redact_url(url: str) -> str:
    """The URL with every query value that could be a credential replaced by ``***``."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = [
        (k, "***" if _SECRET_PARAM.search(k) else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*")))


class Redactor:
    """Replaces known secret values in any text; thread-safe, and can learn new ones."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        self._secrets = {s for s in secrets or [] if len(s) >= 3}
        self._lock = threading.Lock()

    def add(self, secret: str | None) -> None:
        if secret and len(secret) >= 3:
            with self._lock:
                self._secrets.add(secret)

    def __call__(self, text: str) -> str:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for s in secrets:
            text = text.replace(s, "***")
        return _SECRET_FIELD.sub(r"\1***", text)


class RateGate:
    """Shared by all workers: an optional requests-per-second pace and a common pause."""

    def __init__(
        self, rps: float, clock: Callable[[], float], sleep: Callable[[float], None]
    ) -> None:
        self.interval = 1 / rps if rps > 0 else 0.0
        self.clock, self.sleep = clock, sleep
        self._next = 0.0
        self._paused_until = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = self.clock()
            at = max(now, self._paused_until, self._next if self.interval else now)
            if self.interval:
                self._next = at + self.interval
        if at > now:
            self.sleep(at - now)

    def pause(self, seconds: float) -> None:
        """Nobody sends before ``seconds`` from now (a 429's Retry-After)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self.clock() + seconds)


@dataclass(frozen=True)
class RunMetrics:
    requests: dict[str, dict[str, int]]  # endpoint -> status (or error kind) -> count
    retries: dict[str, dict[str, int]]  # endpoint -> reason -> count
    bytes_received: int
    latency_ms: dict[str, float]  # p50, p90, p99, max

    @property
    def total_requests(self) -> int:
        return sum(sum(v.values()) for v in self.requests.values())

    @property
    def total_retries(self) -> int:
        return sum(sum(v.values()) for v in self.retries.values())


@dataclass
class Metrics:
    """Counters a run collects; :meth:`snapshot` gives an immutable copy."""

    _requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    _retries: Counter[tuple[str, str]] = field(default_factory=Counter)
    _bytes: int = 0
    _latencies: list[float] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def request(self, endpoint: str, outcome: str, size: int, seconds: float) -> None:
        with self._lock:
            self._requests[endpoint, outcome] += 1
            self._bytes += size
            self._latencies.append(seconds)

    def retry(self, endpoint: str, reason: str) -> None:
        with self._lock:
            self._retries[endpoint, reason] += 1

    def snapshot(self) -> RunMetrics:
        with self._lock:
            lat = sorted(self._latencies)
            nested: dict[str, dict[str, dict[str, int]]] = {"requests": {}, "retries": {}}
            for name, counter in (("requests", self._requests), ("retries", self._retries)):
                for (endpoint, key), n in sorted(counter.items()):
                    nested[name].setdefault(endpoint, {})[key] = n
            return RunMetrics(nested["requests"], nested["retries"], self._bytes, _percentiles(lat))


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}

    def at(q: float) -> float:
        return round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 1)

    return {"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": round(values[-1] * 1000, 1)}


class BankConnectClient:
    """The BankConnect v1 API. Endpoint methods return the decoded JSON body."""

    def __init__(
        self,
        settings: Settings,
        *,
        http: urllib3.PoolManager | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        if settings.base_url is None:
            raise ValueError(
                "settings.base_url is required (start the sandbox and pass its base_url)"
            )
        self.settings = settings
        self.base_url = settings.base_url
        self.clock, self.sleep = clock, sleep
        self._cancelled = threading.Event()
        self.rng = rng or random.Random()
        self.metrics = metrics or Metrics()
        self.redact = Redactor(settings.secrets())
        self.gate = RateGate(settings.rate_limit_rps, clock, self._wait)
        self._signer = settings.signer() if settings.access_token_secret else None
        self._via = ""  # " via HTTPS_PROXY http://host:port" when a proxy is used
        self.http = http or self._new_pool(settings.concurrency)
        self._timeout = urllib3.Timeout(
            connect=settings.connect_timeout_s, read=settings.read_timeout_s
        )
        self._retry_after = Retry()

    def _new_pool(self, size: int) -> urllib3.PoolManager:
        """One pool for every worker, ``size`` connections kept, none refused beyond it.

        urllib3 directly, not through requests: requests' work around each call
        (preparing and merging the request, cookies, hooks, the Response wrapper) cost
        about 0.3 ms of CPU a request here, on top of 0.25 ms for the rest of a small GET
        (docs/decisions.md). What requests took from the environment is read once, here:
        the proxy for the API's scheme unless ``no_proxy`` covers its host (credentials
        in its URL become a Proxy-Authorization header), and ``REQUESTS_CA_BUNDLE`` or
        ``CURL_CA_BUNDLE`` (else certifi's bundle, as requests used).
        """
        bundle = (
            os.environ.get("REQUESTS_CA_BUNDLE")
            or os.environ.get("CURL_CA_BUNDLE")
            or certifi.where()
        )
        options: dict[str, Any] = {
            "maxsize": max(size, 1),
            "retries": False,  # the client's own loop retries (see the module docstring)
            "ca_certs": bundle,
        }
        parts = urlsplit(self.base_url)
        proxy = None if proxy_bypass(parts.hostname or "") else getproxies().get(parts.scheme)
        if not proxy:
            return urllib3.PoolManager(**options)
        where = f"{parts.scheme.upper()}_PROXY"
        try:
            url = urllib3.util.parse_url(proxy)
            if url.auth:
                options["proxy_headers"] = urllib3.make_headers(proxy_basic_auth=unquote(url.auth))
                for part in url.auth.split(":", 1):
                    self.redact.add(part)
                    self.redact.add(unquote(part))
            pool = urllib3.ProxyManager(proxy, **options)
            # named in connection errors (without its credentials): a refusing proxy is
            # not the API refusing
            self._via = f" via {where} {url.scheme}://{url.host}:{url.port or ''}".rstrip(":")
            return pool
        except (ProxySchemeUnknown, LocationValueError) as exc:
            raise ConfigError(
                f"{where} is not a usable proxy URL ({type(exc).__name__})",
                hint="use http://host:port or https://host:port, or unset it",
            ) from None

    def close(self) -> None:
        self.http.clear()

    def cancel(self) -> None:
        """Send nothing more: a request waiting to retry raises its last error at once, one
        waiting for the rate gate a TransportError; a request on the wire runs its course.
        For a run that is stopping (Ctrl-C, an error in the load), so it is not kept
        waiting minutes for an API that is down. The client stays cancelled."""
        self._cancelled.set()

    def _wait(self, seconds: float) -> None:
        """``sleep``, cut short by `cancel` (when it is the real one: tests pass a clock)."""
        if self.sleep is time.sleep:
            self._cancelled.wait(seconds)
        else:
            self.sleep(seconds)

    def __enter__(self) -> BankConnectClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ endpoints

    def entity_page(self, page: int = 1, link_id: str | None = None) -> dict:
        params = {"page": page, **({"link_id": link_id} if link_id else {})}
        return self.get_json("entity_list", "/entity/", params=params, server_hash=True)

    def entity(self, entity_id: str) -> dict:
        return self.get_json("entity", f"/entity/{quote(entity_id, safe='')}/", server_hash=True)

    def analysis(self, entity_id: str, endpoint: str) -> dict:
        """accounts, identity, transactions, salary, recurring_transactions, lender_transactions."""
        return self.get_json(
            endpoint, f"/entity/{quote(entity_id, safe='')}/{endpoint}/", check=_has_progress
        )

    def get_pdfs(self, entity_id: str) -> dict:
        return self.get_json(
            "get_pdfs", f"/entity/{quote(entity_id, safe='')}/get_pdfs/", server_hash=True
        )

    def link_overview(self, link_id: str) -> dict:
        return self.get_json("link_overview", "/entity/link_overview/", params={"link_id": link_id})

    def net_banking_health(self) -> list:
        return self.get_json("net_banking_health", "/net_banking_health/", expect=list)

    # ------------------------------------------------------------------ transport

    def _headers(self, server_hash: bool) -> dict[str, str]:
        s = self.settings
        headers = {
            "User-Agent": f"bankconnect-etl/{__version__}",
            "Accept": "application/json",
            "Accept-Encoding": "gzip, deflate",  # as requests sent; urllib3 decodes it
        }
        if s.api_key is not None:
            headers["x-api-key"] = s.api_key.get_secret_value()
        if server_hash and s.server_hash is not None:
            headers["server-hash"] = s.server_hash.get_secret_value()
        if self._signer is not None and s.access_token_secret is not None:
            stamp = str(int(time.time()))
            headers["ACCESS_TOKEN"] = self._signer(stamp, s.access_token_secret.get_secret_value())
            headers["TIMESTAMP"] = stamp
        return headers

    def get_json(
        self,
        endpoint: str,
        path: str,
        *,
        params: dict | None = None,
        expect: type = dict,
        server_hash: bool = False,
        check: Callable[[Any], str | None] | None = None,
    ) -> Any:
        """GET ``base_url + path`` and decode, retrying what is transient.

        Only paths under the configured base URL are requested, and redirects are not
        followed: credentials never go to a host the configuration did not name.
        ``check`` returns a problem with a decoded body (malformed, retried) or None.
        Raises an ApiError subclass.
        """
        if not path.startswith("/"):
            raise ValueError(f"expected a path under the base URL, got {redact_url(path)!r}")
        url = self.base_url + path
        started = self.clock()
        attempt = 0
        while True:
            attempt += 1
            self.gate.wait()
            if self._cancelled.is_set():  # cancelled while it waited for the gate
                raise TransportError(
                    f"{endpoint}: not sent, the run is stopping", endpoint=endpoint
                )
            try:
                return self._once(endpoint, url, params, expect, server_hash, attempt, check)
            except RetriableApiError as exc:
                wait = self._backoff(attempt, exc)
                spent = self.clock() - started
                if (
                    attempt >= self.settings.max_attempts
                    or spent + wait > self.settings.max_retry_time_s
                    or self._cancelled.is_set()
                ):
                    exc.attempts = attempt
                    exc.args = (f"{exc.args[0]} (gave up after {attempt} attempts, {spent:.1f} s)",)
                    raise
                if isinstance(exc, RateLimitedError):
                    self.gate.pause(wait)  # the whole pool backs off, not just this worker
                self.metrics.retry(endpoint, _reason(exc))
                self._wait(wait)
                if self._cancelled.is_set():
                    raise

    def _backoff(self, attempt: int, exc: RetriableApiError) -> float:
        s = self.settings
        wait = self.rng.uniform(0, min(s.backoff_cap_s, s.backoff_base_s * 2 ** (attempt - 1)))
        if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
            wait = max(wait, exc.retry_after)
        return wait

    def _once(
        self,
        endpoint: str,
        url: str,
        params: dict | None,
        expect: type,
        server_hash: bool,
        attempt: int,
        check: Callable[[Any], str | None] | None,
    ) -> Any:
        if params:
            url = f"{url}?{urlencode(params)}"
        t0 = self.clock()
        try:
            resp = self.http.request(
                "GET",
                url,
                headers=self._headers(server_hash),
                timeout=self._timeout,
                redirect=False,
                retries=False,
            )  # the body is read in here: a connection dropped mid-body raises here
        except Urllib3Error as exc:
            # urllib3 files a refused connection and a failed DNS lookup (NewConnectionError)
            # under its connect-timeout class: they are connection errors all the same
            timed_out = isinstance(exc, Urllib3Timeout) and not isinstance(exc, NewConnectionError)
            kind = "timeout" if timed_out else "connection"
            self.metrics.request(endpoint, kind, 0, self.clock() - t0)
            cause = self.redact(_root_cause(exc))[:SNIPPET]
            shown = redact_url(url)
            fatal = isinstance(exc, _CANNOT_HELP)
            error = ConnectionSetupError if fatal else TransportError
            what = "TLS or URL problem, retrying cannot help" if fatal else f"{kind} error"
            raise error(
                f"{endpoint}: {what}: {shown}{self._via}: {cause}",
                endpoint=endpoint,
                url=shown,
                attempts=attempt,
            ) from None
        status, body = resp.status, resp.data or b""
        self.metrics.request(endpoint, str(status), len(body), self.clock() - t0)
        if status in (200, 201):
            try:
                data = orjson.loads(body)
            except orjson.JSONDecodeError:
                problem = "body is not JSON"
            else:
                if not isinstance(data, expect):
                    problem = f"expected a JSON {expect.__name__}, got {type(data).__name__}"
                elif check is None or (problem := check(data)) is None:  # type: ignore[assignment]
                    return data
        shown = redact_url(url)
        ctype = resp.headers.get("content-type", "")
        where = dict(endpoint=endpoint, status=status, url=shown, attempts=attempt)

        def describe(what: str) -> str:
            snippet = self.redact(body[:SNIPPET].decode("utf-8", "replace"))
            ctype_shown = ctype or "no content-type"
            return f"{endpoint}: {what}: HTTP {status} {ctype_shown} from {shown}: {snippet!r}"

        if status in (200, 201):
            raise MalformedResponseError(describe(problem), **where)
        if status == 429:
            raise RateLimitedError(
                describe("rate limited"),
                retry_after=self._seconds(resp.headers.get("Retry-After")),
                **where,
            )
        if status in RETRIABLE_STATUS:
            raise ServerError(describe("server error"), **where)
        if status in (401, 403):
            raise AuthError(
                describe(
                    "authentication failed; check the API key and server hash "
                    "(BANKCONNECT_API_KEY and BANKCONNECT_SERVER_HASH, or the Secret blocks "
                    "a Prefect deployment names in secret_blocks)"
                ),
                **where,
            )
        if status == 404:
            raise NotFoundError(describe("not found"), **where)
        if status == 400:
            code, message = _api_error(body)
            raise BadRequestError(describe("bad request"), code=code, api_message=message, **where)
        if 300 <= status < 400:
            where_to = redact_url(resp.headers.get("Location", "?"))
            raise UnexpectedStatusError(describe(f"redirect to {where_to} not followed"), **where)
        raise UnexpectedStatusError(describe("unexpected status"), **where)

    def _seconds(self, retry_after: str | None) -> float | None:
        """Retry-After in seconds (a number or an HTTP date); None when absent or unreadable."""
        if not retry_after:
            return None
        try:
            return self._retry_after.parse_retry_after(retry_after)
        except InvalidHeader:
            return None


def _has_progress(body: Any) -> str | None:
    """An analysis body must say how processing went, or it cannot be trusted as data."""
    progress = body.get("progress")
    if not isinstance(progress, list):
        return "no 'progress' list"
    if any(not isinstance(p, dict) or not p.get("statement_id") for p in progress):
        return "a 'progress' item without a statement_id"
    return None


# Raised before any byte reaches the API; the same request fails the same way.
_CANNOT_HELP = (SSLError, LocationValueError)


def _root_cause(exc: BaseException) -> str:
    """The innermost reason (refused, DNS, certificate), not urllib3's wrapper text."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "reason", None) or exc.__cause__ or exc.__context__
        if not isinstance(inner, BaseException):
            break
        exc = inner
    text = str(exc)
    if "): " in text and type(exc).__name__.endswith("Error"):  # urllib3's "<conn object>: msg"
        text = text.split("): ", 1)[1]
    return f"{type(exc).__name__}: {text}"


def _api_error(body: bytes) -> tuple[str | None, str | None]:
    """The API's error code and message from either documented 400 shape."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    err = data.get("error")
    if isinstance(err, dict):
        return err.get("code"), err.get("message")
    return None, data.get("message") or data.get("detail")


def _reason(exc: ApiError) -> str:
    if isinstance(exc, TransportError):
        return "transport"
    if isinstance(exc, MalformedResponseError):
        return "malformed"
    return str(exc.status)
