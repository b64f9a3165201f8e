"""Exceptions of bankconnect-etl.

    BankConnectETLError              base of everything raised on purpose
    ├── UserError                    something the person running it can fix; the CLI prints
    │   ├── ConfigError              the message and a hint, no traceback
    │   └── WarehouseError           the warehouse cannot be opened (extensions, catalog)
    │       ├── NoWarehouseError     a reader asked for a warehouse not created yet
    │       └── WarehouseBusyError   another writer kept the writer lock past the wait
    └── ApiError                     the BankConnect API did not give what was asked
        ├── RetriableApiError        transient; the client retries these itself and raises
        │   │                        one only when attempts or time run out
        │   ├── TransportError       connection refused/reset/dropped, DNS, timeouts
        │   ├── RateLimitedError     429 (carries the Retry-After it was given)
        │   ├── ServerError          500, 502, 503, 504
        │   └── MalformedResponseError  a body that is not the JSON the endpoint promises
        └── FatalApiError            retrying cannot help; raised at once
            ├── AuthError            401, 403: wrong or missing credentials
            ├── NotFoundError        404: unknown entity, or a page past the end
            ├── BadRequestError      400: carries the API's error code and message
            ├── ConnectionSetupError TLS verification failed, or the URL is unusable
            └── UnexpectedStatusError any other status (a redirect included: never followed)

Errors pickle (for Prefect results and process workers): keyword arguments default.

Catch ``RetriableApiError`` to decide whether a whole batch is worth another try later;
catch ``FatalApiError`` to fail fast. Every message is one line that names the endpoint,
the status and a redacted URL, and never contains a credential or a PDF password.
"""

from __future__ import annotations


class BankConnectETLError(Exception):
    """Base class: catch this to handle any error bankconnect-etl raises on purpose."""


class UserError(BankConnectETLError):
    """Something the user can fix: a bad flag, setting or value. ``hint`` says how."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class NotAnEntityIdError(UserError):
    """A backfill's entity id that is not a UUID; ``given`` is the id as typed."""

    def __init__(self, given: str) -> None:
        super().__init__(
            f"entity id {given!r} is not one: BankConnect's entity ids are UUIDs",
            hint="copy it from the warehouse: "
            'bankconnect-etl sql "SELECT entity_id, link_id FROM entities"',
        )
        self.given = given


class ConfigError(UserError):
    """A setting is missing or invalid; the message names the environment variable."""


class WarehouseError(UserError):
    """The warehouse cannot be opened or written: extensions, catalog, paths."""


class NoWarehouseError(WarehouseError):
    """A reader asked for a warehouse that does not exist (or has no tables) yet."""


class WarehouseBusyError(WarehouseError):
    """Another writer held the writer lock for longer than ``writer_wait_s``."""


class ApiError(BankConnectETLError):
    """The API answered something other than what the endpoint promises."""

    def __init__(
        self,
        message: str,
        *,
        endpoint: str = "",
        status: int | None = None,
        url: str = "",
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.status = status
        self.url = url  # already redacted
        self.attempts = attempts


class RetriableApiError(ApiError):
    """Transient: worth retrying after a pause."""


class TransportError(RetriableApiError):
    """No usable HTTP response: connection failed, dropped mid-body, or timed out."""


class RateLimitedError(RetriableApiError):
    """429 Too Many Requests. ``retry_after`` is the pause the server asked for, in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class ServerError(RetriableApiError):
    """500, 502, 503 or 504."""


class MalformedResponseError(RetriableApiError):
    """A body that is not the JSON the endpoint promises (HTML page, cut JSON, wrong type)."""


class FatalApiError(ApiError):
    """Retrying the same request cannot help."""


class AuthError(FatalApiError):
    """401 or 403: check the API key, server hash and access token (the environment's
    BANKCONNECT_*, or a deployment's Secret blocks)."""


class NotFoundError(FatalApiError):
    """404: the entity does not exist (or a list page is past the end)."""


class BadRequestError(FatalApiError):
    """400, with the API's own error ``code`` (session pages) and ``api_message``."""

    def __init__(
        self, message: str, *, code: str | None = None, api_message: str | None = None, **kw: object
    ) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.code = code
        self.api_message = api_message


class ConnectionSetupError(FatalApiError):
    """The request could not be made at all (certificate, bad URL); retrying cannot help."""


class UnexpectedStatusError(FatalApiError):
    """A status the API does not document for this endpoint."""


class Terminated(BaseException):
    """SIGTERM reached the command: ``kill``, a service manager stopping it, a scheduler's
    timeout. A run stops as on Ctrl-C. A BaseException, as KeyboardInterrupt is, so that
    no ``except Exception`` takes it for a failure."""

    signal = 15  # SIGTERM


def stopped_by(exc: BaseException) -> BaseException | None:
    """What asked the run to stop, if ``exc`` is a stop rather than a failure: Ctrl-C
    (KeyboardInterrupt), SIGTERM (`Terminated`, or Prefect's TerminationSignal when a flow
    run is cancelled), ``sys.exit()``: a BaseException that is not an Exception.

    DuckDB's Python client cancels a query that a signal reaches and raises a plain
    ``RuntimeError('Query interrupted')`` from the signal handler's exception, so a stop
    that lands in a query, a COMMIT or a mart refresh arrives as that; this follows the
    cause and context chain to tell it from an error of the query itself."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if not isinstance(current, Exception):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def stop_reason(stop: BaseException) -> str:
    """How a run's row and the command name a stop `stopped_by` found."""
    if isinstance(stop, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    number = getattr(stop, "signal", None)  # Terminated, Prefect's TerminationSignal
    if isinstance(number, int):
        import signal

        try:
            return f"stopped by {signal.Signals(number).name}"
        except ValueError:
            return f"stopped by signal {number}"
    return f"stopped ({type(stop).__name__})"
