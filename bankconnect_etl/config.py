"""Settings: one object, read from the environment, a ``.env`` file, or given by a flow.

Every variable is ``BANKCONNECT_<FIELD>`` (e.g. ``BANKCONNECT_API_KEY``). With no
``BANKCONNECT_BASE_URL`` the pipeline runs against the embedded sandbox with the sandbox's
own credentials. A Prefect deployment passes secrets it loaded from Secret blocks as
keyword arguments to :meth:`Settings.load`; nothing here imports Prefect.

Secrets are :class:`pydantic.SecretStr`: they print as ``**********`` in ``repr``, logs
and exceptions, and are read only where a request header is built.
"""

from __future__ import annotations

import difflib
import hashlib
import hmac
import importlib
import inspect
import ipaddress
import os
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bankconnect_etl.errors import ConfigError

ENV_PREFIX = "BANKCONNECT_"
ENV_FILE = ".env"  # read from the current folder, as pydantic-settings does
# read outside Settings: by the `sandbox` command, and by the tests for the vendor's pages
OTHER_VARIABLES = frozenset(
    ENV_PREFIX + name
    for name in ("SANDBOX_API_KEY", "SANDBOX_SERVER_HASH", "SANDBOX_TOKEN_SECRET", "SEEDS")
)
DAY_S = 86_400.0  # the longest timeout or wait a setting may name
EXAMPLE_BASE_URL = "https://portal.finbox.in/bank-connect/v1"
Signer = Callable[[str, str], str]  # (timestamp, secret) -> ACCESS_TOKEN
_SIGNER_HINT = (
    "name a function(timestamp, secret) -> token as module:function, importable by this "
    "Python (installed in .venv or on PYTHONPATH); unset it for HMAC-SHA256"
)


def hmac_sha256_signer(timestamp: str, secret: str) -> str:
    """Default ACCESS_TOKEN: hex HMAC-SHA256 of the TIMESTAMP header, keyed with the secret."""
    return hmac.new(secret.encode(), timestamp.encode(), hashlib.sha256).hexdigest()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=ENV_FILE,
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        allow_inf_nan=False,  # an infinite timeout or wait overflows the clocks it meets
    )

    base_url: str | None = Field(
        None,
        description="API root with version, e.g. https://portal.finbox.in/bank-connect/v1; "
        "unset: the embedded sandbox",
    )
    api_key: SecretStr | None = Field(None, description="x-api-key")
    server_hash: SecretStr | None = Field(
        None, description="server-hash for the management endpoints"
    )
    access_token_secret: SecretStr | None = Field(
        None, description="enables ACCESS_TOKEN + TIMESTAMP"
    )
    access_token_signer: str | None = Field(
        None, description="module:function(timestamp, secret) -> token; default HMAC-SHA256 hex"
    )
    connect_timeout_s: float = Field(
        5.0, gt=0, le=DAY_S, description="TCP connect timeout per request"
    )
    read_timeout_s: float = Field(
        60.0, gt=0, le=DAY_S, description="wait for response bytes per request"
    )
    concurrency: int = Field(8, ge=1, le=256, description="parallel requests (and pool size)")
    rate_limit_rps: float = Field(
        0.0, ge=0, description="requests per second for all workers; 0 = no limit"
    )
    max_attempts: int = Field(6, ge=1, le=50, description="tries per request, retries included")
    max_retry_time_s: float = Field(
        300.0, gt=0, le=DAY_S, description="give up retrying one request after this"
    )
    backoff_base_s: float = Field(
        0.5, gt=0, le=DAY_S, description="first retry waits up to this (full jitter)"
    )
    backoff_cap_s: float = Field(30.0, gt=0, le=DAY_S, description="longest wait between retries")
    poll_initial_s: float = Field(
        2.0, gt=0, le=DAY_S, description="first re-poll of a processing endpoint"
    )
    poll_max_s: float = Field(30.0, gt=0, le=DAY_S, description="longest wait between polls")
    poll_deadline_s: float = Field(
        900.0, gt=0, le=DAY_S, description="per entity; still processing after it = pending"
    )
    warehouse: Path = Field(
        Path("warehouse"),
        description="warehouse folder: catalog.sqlite, data/ (Parquet), raw/ (responses)",
    )
    batch_size: int = Field(
        100, ge=1, le=10_000, description="entities per warehouse transaction (and Prefect task)"
    )
    batch_max_wait_s: float = Field(
        5.0,
        gt=0,
        le=DAY_S,
        description="a batch is loaded early, not full, once its first entity waited this long",
    )
    transform_workers: int = Field(
        1,
        ge=0,
        le=64,
        description="processes validating batches while the main one loads (0: none)",
    )
    writer_wait_s: float = Field(
        7200.0, ge=0, le=DAY_S, description="how long a second writer waits for the writer lock"
    )
    raw_enabled: bool = Field(True, description="keep each run's raw responses under raw/")
    raw_retention_days: int = Field(
        30, ge=0, description="days of raw responses kept (0: keep forever)"
    )
    sandbox_entities: int = Field(
        60,
        ge=0,
        le=1_000_000,
        description="entities of the embedded sandbox (used when BANKCONNECT_BASE_URL is unset)",
    )
    sandbox_seed: int = Field(1, description="seed of the embedded sandbox: same seed, same data")

    @field_validator("base_url")
    @classmethod
    def _https_unless_loopback(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        parts = urlsplit(value)
        if parts.username or parts.password:  # checked first: never echo a credential
            raise ValueError("put credentials in BANKCONNECT_API_KEY, not in the URL")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http(s) URL such as {EXAMPLE_BASE_URL}, got {value!r}")
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise ValueError(
                f"plain http is refused except on loopback; use https://{parts.netloc}{parts.path}"
            )
        if parts.query or parts.fragment:
            raise ValueError(f"expected no query string, got {value!r}")
        if not re.search(r"/v\d+$", parts.path):
            raise ValueError(
                f"expected the API root with its version, such as {EXAMPLE_BASE_URL}, got {value!r}"
            )
        return value

    @field_validator("warehouse", mode="before")
    @classmethod
    def _a_folder(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():  # Path("") is the current folder
            raise ValueError("is empty; name a folder, such as warehouse")
        return value

    @field_validator("warehouse")
    @classmethod
    def _not_a_file(cls, value: Path) -> Path:
        value = value.expanduser()  # a quoted "~/lake" would be a folder named ~ here
        if value.is_file():
            raise ValueError(f"{value} is a file, not a folder")
        return value

    @field_validator("access_token_signer")
    @classmethod
    def _signer_spec(cls, value: str | None) -> str | None:
        if value and (value.count(":") != 1 or not all(value.split(":"))):
            raise ValueError(f"expected module:function, got {value!r}")
        return value or None

    @classmethod
    def load(cls, **overrides: object) -> Settings:
        """Settings from the environment and .env, with ``overrides`` on top; ConfigError if bad."""
        names = set(os.environ) | _env_file_names(Path(ENV_FILE))
        _refuse_unknown_variables(names, {ENV_PREFIX + f.upper() for f in cls.model_fields})
        try:
            settings = cls(**overrides)  # type: ignore[arg-type]
        except ValidationError as exc:
            first = exc.errors()[0]
            field = str(first["loc"][0]) if first["loc"] else "?"
            message = first["msg"].removeprefix("Value error, ")
            raise ConfigError(
                f"{ENV_PREFIX}{field.upper()}: {message}",
                hint="see the configuration table in README.md",
            ) from None
        if settings.base_url is None:
            given = [
                n for n in ("api_key", "server_hash", "access_token_secret") if getattr(settings, n)
            ]
            if given:  # real credentials and no URL: never fall back to the sandbox silently
                raise ConfigError(
                    f"{ENV_PREFIX}{given[0].upper()} is set but BANKCONNECT_BASE_URL is not",
                    hint=f"set BANKCONNECT_BASE_URL (e.g. {EXAMPLE_BASE_URL}), "
                    "or unset the credentials to use the sandbox",
                )
        else:
            missing = [n for n in ("api_key", "server_hash") if getattr(settings, n) is None]
            if missing:
                names = " and ".join(ENV_PREFIX + n.upper() for n in missing)
                raise ConfigError(
                    f"{names} must be set when BANKCONNECT_BASE_URL is",
                    hint="export them, put them in .env, or use a Prefect Secret block",
                )
        return settings

    @property
    def uses_sandbox(self) -> bool:
        return self.base_url is None

    def signer(self) -> Signer:
        if not self.access_token_signer:
            return hmac_sha256_signer
        module, _, name = self.access_token_signer.partition(":")
        try:
            fn = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                f"BANKCONNECT_ACCESS_TOKEN_SIGNER: cannot import {self.access_token_signer}: {exc}",
                hint=_SIGNER_HINT,
            ) from None
        if not callable(fn):
            raise ConfigError(
                f"BANKCONNECT_ACCESS_TOKEN_SIGNER: {self.access_token_signer} is not callable",
                hint=_SIGNER_HINT,
            )
        try:
            inspect.signature(fn).bind("timestamp", "secret")
        except TypeError:
            raise ConfigError(
                f"BANKCONNECT_ACCESS_TOKEN_SIGNER: {self.access_token_signer} does not take "
                "(timestamp, secret)",
                hint=_SIGNER_HINT,
            ) from None
        except ValueError:  # no signature to read (some built-ins): the first call tells
            pass
        return fn

    def secrets(self) -> list[str]:
        """Every configured secret value, for scrubbing text that might quote one."""
        values = (self.api_key, self.server_hash, self.access_token_secret)
        return [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]


def _env_file_names(path: Path) -> set[str]:
    """The names a ``.env`` file sets; ConfigError for a line that is not NAME=value (its
    text is never quoted: it may hold a secret)."""
    from dotenv.parser import parse_stream

    if not path.is_file():
        return set()
    with path.open(encoding="utf-8") as stream:
        bindings = list(parse_stream(stream))
    for b in bindings:
        if b.error:
            raise ConfigError(
                f"{path.resolve()} line {b.original.line}: not NAME=value",
                hint="write each setting as BANKCONNECT_NAME=value, a comment as # ...",
            )
    return {b.key for b in bindings if b.key}


def _refuse_unknown_variables(names: set[str], known: set[str]) -> None:
    """A BANKCONNECT_ variable no setting reads is a typo until shown otherwise: ignored,
    it would leave the setting it meant at its default (the warehouse in ./warehouse)."""
    unknown = sorted(n for n in names if n.upper().startswith(ENV_PREFIX))
    unknown = [n for n in unknown if n.upper() not in known | OTHER_VARIABLES]
    if not unknown:
        return
    name = unknown[0]
    close = difflib.get_close_matches(name.upper(), sorted(known), n=1, cutoff=0.75)
    raise ConfigError(
        f"{name} is not a setting (in the environment or {ENV_FILE})",
        hint=f"did you mean {close[0]}?"
        if close
        else "the configuration table in README.md lists every setting",
    )
