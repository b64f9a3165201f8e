"""The client's error paths, retries, pacing and redaction, with an injected connection pool."""

from __future__ import annotations

import logging
import pickle
import random
import socket
import time
from email.utils import formatdate

import certifi
import pytest
import urllib3
from urllib3.exceptions import ProtocolError, ReadTimeoutError, SSLError

from bankconnect_etl.client import BankConnectClient, RateGate, redact_url
from bankconnect_etl.config import Settings
from bankconnect_etl.errors import (
    AuthError,
    BadRequestError,
    ConfigError,
    ConnectionSetupError,
    MalformedResponseError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    TransportError,
    UnexpectedStatusError,
)
from tests.conftest import FakeClock

API_KEY = "live-key-1234567890"
SERVER_HASH = "server-hash-abcdef"
BASE = "https://api.example.test/bank-connect/v1"
OK = b'{"entity_id": "e1", "progress": [], "accounts": [], "fraud": {}}'


def response(
    status: int, body: bytes = OK, ctype: str = "application/json", **headers: str
) -> urllib3.HTTPResponse:
    return urllib3.HTTPResponse(
        body=body, status=status, headers={"content-type": ctype, **headers}
    )


class FakePool(urllib3.PoolManager):
    """Answers from a script of responses or exceptions; records what was asked."""

    def __init__(self, script: list) -> None:
        super().__init__()
        self.script = list(script)
        self.calls: list[dict] = []

    def request(self, method, url, **kw):  # type: ignore[no-untyped-def, override]
        self.calls.append({"method": method, "url": url, **kw})
        nxt = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(nxt, BaseException):
            raise nxt
        return nxt


def client(
    script: list, t: FakeClock | None = None, **settings: object
) -> tuple[BankConnectClient, FakePool, FakeClock]:
    t = t or FakeClock(1000.0)
    settings = {"base_url": BASE, "api_key": API_KEY, "server_hash": SERVER_HASH, **settings}
    pool = FakePool(script)
    c = BankConnectClient(
        Settings.load(**settings),
        http=pool,
        clock=t,
        sleep=t.sleep,
        rng=random.Random(4),
    )
    return c, pool, t


@pytest.mark.parametrize(
    "failure",
    [
        response(500, b"<h1>Server Error (500)</h1>", "text/html"),
        response(502, b"<html>502 Bad Gateway</html>", "text/html"),
        response(503, b'{"detail": "unavailable"}'),
        response(504, b"<html>504</html>", "text/html"),
        response(429, b'{"detail": "throttled"}', **{"Retry-After": "1"}),
        response(200, b"<!DOCTYPE html><html>maintenance</html>", "text/html"),
        response(200, b'{"entity_id": "e1", "progr'),
        ProtocolError("Connection aborted.", ConnectionResetError(104, "Connection reset by peer")),
        ProtocolError("Connection broken: IncompleteRead(100 bytes read, 200 more expected)"),
        ReadTimeoutError(None, BASE, "Read timed out. (read timeout=60)"),
    ],
    ids=["500", "502", "503", "504", "429", "html-200", "truncated", "reset", "dropped", "timeout"],
)
def test_transient_failures_are_retried_then_succeed(failure: object) -> None:
    c, pool, t = client([failure, failure, response(200)])
    assert c.analysis("e1", "accounts")["entity_id"] == "e1"
    assert len(pool.calls) == 3 and len(t.sleeps) == 2
    assert c.metrics.snapshot().total_retries == 2


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, AuthError),
        (403, AuthError),
        (404, NotFoundError),
        (400, BadRequestError),
        (418, Exception),
    ],
)
def test_client_errors_are_raised_at_once(status: int, error: type) -> None:
    c, pool, _ = client([response(status, b'{"detail": "nope"}')])
    with pytest.raises(error) as info:
        c.analysis("e1", "accounts")
    assert len(pool.calls) == 1
    assert f"HTTP {status}" in str(info.value) and "accounts" in str(info.value)


def test_bad_request_carries_the_api_code_in_both_shapes() -> None:
    session_shape = (
        b'{"session_id": "", "statement_id": "", "error": '
        b'{"code": "PDF_IS_IMAGE", "message": "Scanned images are not supported"}}'
    )
    c, _, _ = client([response(400, session_shape)])
    with pytest.raises(BadRequestError) as info:
        c.analysis("e1", "accounts")
    assert (info.value.code, info.value.api_message) == (
        "PDF_IS_IMAGE",
        "Scanned images are not supported",
    )
    c, _, _ = client([response(400, b'{"entity_id": "e1", "message": "PDF is not parsable"}')])
    with pytest.raises(BadRequestError) as info:
        c.analysis("e1", "accounts")
    assert (info.value.code, info.value.api_message) == (None, "PDF is not parsable")


def test_malformed_error_names_endpoint_status_type_and_first_200_chars() -> None:
    page = b"<!DOCTYPE html><html>" + b"x" * 500
    c, _, _ = client([response(200, page, "text/html; charset=utf-8")], max_attempts=1)
    with pytest.raises(MalformedResponseError) as info:
        c.analysis("e1", "transactions")
    text = str(info.value)
    assert text.startswith(
        "transactions: body is not JSON: HTTP 200 text/html; charset=utf-8 from https://"
    )
    assert "<!DOCTYPE html><html>xxx" in text and "x" * 200 not in text
    assert "\n" not in text


def test_wrong_top_level_type_is_malformed() -> None:
    c, _, _ = client([response(200, b"[1, 2]")], max_attempts=1)
    with pytest.raises(MalformedResponseError, match="expected a JSON dict, got list"):
        c.analysis("e1", "accounts")
    c, _, _ = client([response(200, b'{"a": 1}')], max_attempts=1)
    with pytest.raises(MalformedResponseError, match="expected a JSON list, got dict"):
        c.net_banking_health()


def test_retry_after_in_seconds_is_a_floor_on_the_wait() -> None:
    c, _, t = client([response(429, **{"Retry-After": "7"}), response(200)])
    c.analysis("e1", "accounts")
    assert t.sleeps and t.sleeps[-1] >= 7


def test_retry_after_as_an_http_date() -> None:
    when = formatdate(time.time() + 30, usegmt=True)
    c, _, t = client([response(429, **{"Retry-After": when}), response(200)])
    c.analysis("e1", "accounts")
    assert 27 <= sum(t.sleeps) <= 31


def test_a_429_pauses_every_worker_sharing_the_client() -> None:
    c, _, t = client([response(429, **{"Retry-After": "12"}), response(200)])
    c.analysis("e1", "accounts")
    other_worker = FakeClock()
    other_worker.now = t.now - 12  # another thread asking just after the 429 arrived
    c.gate.clock, c.gate.sleep = other_worker, other_worker.sleep
    c.gate.wait()
    assert other_worker.sleeps and other_worker.sleeps[0] >= 11


def test_backoff_is_full_jitter_within_exponential_bounds() -> None:
    waits: list[list[float]] = []
    for seed in range(40):
        c, _, t = client([response(503)], max_attempts=6, backoff_base_s=0.5, backoff_cap_s=3)
        c.rng = random.Random(seed)
        with pytest.raises(ServerError):
            c.analysis("e1", "accounts")
        waits.append(t.sleeps)
    for run in waits:
        assert len(run) == 5
        for n, w in enumerate(run, start=1):
            assert 0 <= w <= min(3, 0.5 * 2 ** (n - 1))
    firsts = [run[0] for run in waits]
    assert min(firsts) < 0.1 and max(firsts) > 0.4  # spread over the whole range, not a fixed delay


def test_attempts_are_capped() -> None:
    c, pool, _ = client([response(503)], max_attempts=4)
    with pytest.raises(ServerError) as info:
        c.analysis("e1", "accounts")
    assert len(pool.calls) == 4 and info.value.attempts == 4
    assert "gave up after 4 attempts" in str(info.value)


def test_total_retry_time_is_capped() -> None:
    c, pool, t = client(
        [response(429, **{"Retry-After": "20"})], max_attempts=50, max_retry_time_s=60
    )
    with pytest.raises(RateLimitedError):
        c.analysis("e1", "accounts")
    assert (
        sum(t.sleeps) == 60 and len(pool.calls) == 4
    )  # at 0, 20, 40, 60 s; an 80 s try would pass the cap


def test_rate_limit_paces_all_requests() -> None:
    t = FakeClock(1000.0)
    gate = RateGate(rps=4, clock=t, sleep=t.sleep)
    for _ in range(9):
        gate.wait()
    assert t.now - 1000.0 == pytest.approx(2.0)  # 9 requests at 4/s: the 9th at 2 s


def test_headers_sent_where_the_api_asks_for_them() -> None:
    page = response(200, b'{"count": 0, "next": null, "previous": null, "results": []}')
    c, pool, _ = client([page, response(200)], access_token_secret="tok-secret")
    c.entity_page(1)
    c.analysis("e1", "accounts")
    page_headers, analysis_headers = pool.calls[0]["headers"], pool.calls[1]["headers"]
    assert page_headers["x-api-key"] == API_KEY and page_headers["server-hash"] == SERVER_HASH
    assert "server-hash" not in analysis_headers
    assert len(page_headers["ACCESS_TOKEN"]) == 64 and page_headers["TIMESTAMP"].isdigit()
    timeout = pool.calls[0]["timeout"]
    assert (timeout.connect_timeout, timeout.read_timeout) == (5.0, 60.0)


def test_secrets_never_appear_in_errors_reprs_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    echo = (
        f'{{"detail": "bad key {API_KEY} / {SERVER_HASH}", '
        '"statements": [{"pdf_password": "PDFPW0412'
    ).encode()
    c, _, _ = client([response(401, echo)])
    with pytest.raises(AuthError) as auth:
        c.entity_page(1)
    # where to look, whether the key came from the environment or a deployment's blocks
    assert "BANKCONNECT_API_KEY" in str(auth.value) and "secret_blocks" in str(auth.value)
    c, _, _ = client([response(200, echo)], max_attempts=1)
    with pytest.raises(MalformedResponseError) as cut:
        c.get_pdfs("e1")
    with pytest.raises(TransportError) as transport:
        client([ProtocolError(f"failed for {BASE}/x?api_key={API_KEY}")], max_attempts=1)[0].entity(
            "e1"
        )
    texts = [str(auth.value), str(cut.value), str(transport.value), repr(c.settings), caplog.text]
    for text in texts:
        for secret in (API_KEY, SERVER_HASH, "PDFPW0412"):
            assert secret not in text


def test_redact_url_hides_credential_like_query_values() -> None:
    url = "https://files.test/s.pdf?X-Amz-Signature=abc&X-Amz-Credential=AKIA/x&page=2&api_key=k"
    assert (
        redact_url(url)
        == "https://files.test/s.pdf?X-Amz-Signature=***&X-Amz-Credential=***&page=2&api_key=***"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"base_url": "http://api.example.test/v1"},
            "BANKCONNECT_BASE_URL: plain http is refused except on loopback",
        ),
        ({"base_url": "ftp://x"}, "BANKCONNECT_BASE_URL: expected an http(s) URL"),
        (
            {"base_url": "https://u:p@api.test/v1"},
            "BANKCONNECT_BASE_URL: put credentials in BANKCONNECT_API_KEY",
        ),
        ({"base_url": BASE, "api_key": None}, "BANKCONNECT_API_KEY must be set"),
        ({"concurrency": 0}, "BANKCONNECT_CONCURRENCY: Input should be greater than or equal to 1"),
        ({"read_timeout_s": "soon"}, "BANKCONNECT_READ_TIMEOUT_S: Input should be a valid number"),
        # an infinite or huge wait overflows the clock it reaches (time_t)
        ({"read_timeout_s": "inf"}, "BANKCONNECT_READ_TIMEOUT_S: Input should be a finite number"),
        (
            {"connect_timeout_s": 1e20},
            "BANKCONNECT_CONNECT_TIMEOUT_S: Input should be less than or equal to 86400",
        ),
        ({"warehouse": " "}, "BANKCONNECT_WAREHOUSE: is empty; name a folder"),
        (
            {"access_token_signer": "nomodule"},
            "BANKCONNECT_ACCESS_TOKEN_SIGNER: expected module:function",
        ),
    ],
)
def test_bad_settings_are_one_line_config_errors(env: dict, message: str) -> None:
    settings = {"base_url": BASE, "api_key": API_KEY, "server_hash": SERVER_HASH, **env}
    with pytest.raises(ConfigError) as info:
        Settings.load(**{k: v for k, v in settings.items() if v is not None})
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_settings_from_environment_and_loopback_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BANKCONNECT_BASE_URL", "http://127.0.0.1:8000/bank-connect/v1/")
    monkeypatch.setenv("BANKCONNECT_API_KEY", API_KEY)
    monkeypatch.setenv("BANKCONNECT_SERVER_HASH", SERVER_HASH)
    monkeypatch.setenv("BANKCONNECT_CONCURRENCY", "16")
    s = Settings.load()
    assert s.base_url == "http://127.0.0.1:8000/bank-connect/v1" and s.concurrency == 16
    assert API_KEY not in repr(s) and API_KEY not in str(s)


def test_settings_from_a_dotenv_file(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BASE_URL", "API_KEY", "SERVER_HASH", "CONCURRENCY"):
        monkeypatch.delenv(f"BANKCONNECT_{name}", raising=False)
    (tmp_path / ".env").write_text(
        f"BANKCONNECT_BASE_URL={BASE}\nBANKCONNECT_API_KEY={API_KEY}\n"
        f"BANKCONNECT_SERVER_HASH={SERVER_HASH}\nBANKCONNECT_RATE_LIMIT_RPS=25\n"
    )
    monkeypatch.chdir(tmp_path)
    s = Settings.load()
    assert s.base_url == BASE and s.rate_limit_rps == 25
    assert s.api_key is not None and s.api_key.get_secret_value() == API_KEY
    monkeypatch.setenv("BANKCONNECT_RATE_LIMIT_RPS", "5")  # the environment wins over .env
    assert Settings.load().rate_limit_rps == 5


# ---------------------------------------------------------------- review regressions


def test_redirects_are_not_followed() -> None:
    c, pool, _ = client([response(302, b"", **{"Location": "https://elsewhere.test/x"})])
    with pytest.raises(
        UnexpectedStatusError, match=r"redirect to https://elsewhere\.test/x not followed"
    ):
        c.analysis("e1", "accounts")
    assert pool.calls[0]["redirect"] is False and len(pool.calls) == 1


def test_only_paths_under_the_base_url_are_requested() -> None:
    c, pool, _ = client([response(200)])
    with pytest.raises(ValueError, match="expected a path under the base URL"):
        c.get_json("entity_list", "https://elsewhere.test/bank-connect/v1/entity/?page=2")
    assert pool.calls == []


@pytest.mark.parametrize("header", ["abc", "-1", "1.5"])
def test_an_unreadable_retry_after_counts_as_absent(header: str) -> None:
    c, pool, t = client([response(429, **{"Retry-After": header}), response(200)])
    assert c.analysis("e1", "accounts")["entity_id"] == "e1"
    assert len(pool.calls) == 2 and len(t.sleeps) == 1


def test_a_retry_after_beyond_the_budget_gives_up_without_pausing_the_pool() -> None:
    c, _, t = client([response(429, **{"Retry-After": "3600"})], max_retry_time_s=300)
    with pytest.raises(RateLimitedError):
        c.analysis("e1", "accounts")
    assert t.sleeps == []
    c.gate.wait()  # the next, unrelated request is not held for an hour
    assert t.sleeps == []


def test_a_429_without_retry_after_still_slows_the_pool() -> None:
    c, _, t = client([response(429), response(200)])
    c.analysis("e1", "accounts")
    [waited] = t.sleeps
    other = FakeClock()
    other.now = t.now - waited
    c.gate.clock, c.gate.sleep = other, other.sleep
    c.gate.wait()
    assert other.sleeps and other.sleeps[0] == pytest.approx(waited)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"detail": "Service temporarily unavailable"}', "no 'progress' list"),
        (b'{"progress": [{"status": "completed"}]}', "a 'progress' item without a statement_id"),
    ],
)
def test_an_analysis_body_without_progress_is_malformed(body: bytes, problem: str) -> None:
    c, _, _ = client([response(200, body)], max_attempts=1)
    with pytest.raises(MalformedResponseError, match=problem):
        c.analysis("e1", "accounts")


def test_tls_and_url_problems_are_fatal_and_show_their_cause() -> None:
    c, pool, _ = client([SSLError("CERTIFICATE_VERIFY_FAILED: self-signed")])
    with pytest.raises(ConnectionSetupError, match="CERTIFICATE_VERIFY_FAILED"):
        c.analysis("e1", "accounts")
    assert len(pool.calls) == 1


def test_a_refused_connection_names_the_real_cause() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the request: nothing listens
    settings = Settings.load(
        base_url=f"http://127.0.0.1:{port}/bank-connect/v1",
        api_key=API_KEY,
        server_hash=SERVER_HASH,
        max_attempts=1,
    )
    with BankConnectClient(settings) as c, pytest.raises(TransportError) as info:
        c.entity("e1")
    assert "Connection refused" in str(info.value) and API_KEY not in str(info.value)
    assert "connection error" in str(info.value)  # not "timeout": nothing timed out


def test_errors_survive_pickling() -> None:
    for exc in (
        ServerError("boom", endpoint="transactions", status=503, url="https://x/y", attempts=3),
        RateLimitedError("slow down", endpoint="accounts", status=429, retry_after=7.0),
        BadRequestError(
            "bad", endpoint="upload", status=400, code="PDF_IS_IMAGE", api_message="scan"
        ),
    ):
        back = pickle.loads(pickle.dumps(exc))  # noqa: S301 - our own object
        assert type(back) is type(exc) and str(back) == str(exc) and back.__dict__ == exc.__dict__


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"base_url": None}, "BANKCONNECT_API_KEY is set but BANKCONNECT_BASE_URL is not"),
        (
            {"base_url": "https://portal.finbox.in/bank-connect"},
            "expected the API root with its version",
        ),
    ],
)
def test_config_mistakes_a_first_user_makes(env: dict, message: str) -> None:
    settings = {"base_url": BASE, "api_key": API_KEY, "server_hash": SERVER_HASH, **env}
    with pytest.raises(ConfigError, match=message):
        Settings.load(**{k: v for k, v in settings.items() if v is not None})


def test_a_url_with_credentials_is_refused_without_echoing_them() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.load(
            base_url="http://apiuser:S3cretKey@portal.finbox.in/bank-connect/v1",
            api_key=API_KEY,
            server_hash=SERVER_HASH,
        )
    assert "S3cretKey" not in str(info.value) and "apiuser" not in str(info.value)


def test_a_listing_page_and_link_go_in_the_query_string() -> None:
    page = response(200, b'{"count": 0, "next": null, "previous": null, "results": []}')
    c, pool, _ = client([page])
    c.entity_page(3, link_id="link 7/a")
    assert pool.calls[0]["method"] == "GET"
    assert pool.calls[0]["url"] == BASE + "/entity/?page=3&link_id=link+7%2Fa"


def _pool_for(base: str) -> urllib3.PoolManager:
    settings = Settings.load(base_url=base, api_key=API_KEY, server_hash=SERVER_HASH)
    with BankConnectClient(settings) as c:
        return c.http


def test_the_environment_proxy_and_ca_bundle_are_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp.test:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "corp-ca.pem"))
    pool = _pool_for(BASE)
    assert isinstance(pool, urllib3.ProxyManager)
    assert pool.proxy is not None and pool.proxy.host == "proxy.corp.test"
    assert pool.connection_pool_kw["ca_certs"] == str(tmp_path / "corp-ca.pem")
    monkeypatch.setenv("NO_PROXY", "localhost,.example.test")  # the API's host is exempt
    assert not isinstance(_pool_for(BASE), urllib3.ProxyManager)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    assert _pool_for(BASE).connection_pool_kw["ca_certs"] == certifi.where()


def test_proxy_credentials_become_a_header_and_a_bad_proxy_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("NO_PROXY", "no_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://svc%40corp:Pr0xyPass@proxy.corp.test:3128")
    pool = _pool_for(BASE)
    assert isinstance(pool, urllib3.ProxyManager)
    assert (
        pool.proxy_headers["proxy-authorization"]
        == urllib3.make_headers(proxy_basic_auth="svc@corp:Pr0xyPass")["proxy-authorization"]
    )
    monkeypatch.setenv("HTTPS_PROXY", "socks5://user:Pr0xyPass@proxy.corp.test:1080")
    with pytest.raises(ConfigError) as info:
        _pool_for(BASE)
    assert "HTTPS_PROXY is not a usable proxy URL" in str(info.value)
    assert "Pr0xyPass" not in str(info.value) and info.value.hint


def test_a_refusing_proxy_is_named_without_its_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("NO_PROXY", "no_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    monkeypatch.setenv("HTTPS_PROXY", f"http://svc:Pr0xyPass@127.0.0.1:{port}")
    settings = Settings.load(
        base_url=BASE, api_key=API_KEY, server_hash=SERVER_HASH, max_attempts=1
    )
    with BankConnectClient(settings) as c, pytest.raises(TransportError) as info:
        c.entity("e1")
    message = str(info.value)
    assert f"via HTTPS_PROXY http://127.0.0.1:{port}: " in message
    assert "Connection refused" in message
    assert "Pr0xyPass" not in message and API_KEY not in message
