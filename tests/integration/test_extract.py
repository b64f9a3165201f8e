"""Listing and fetching against the sandbox, including under faults."""

from __future__ import annotations

import gc
import json
import logging
import time
from collections import Counter
from urllib.parse import urlsplit

import pytest
import urllib3

from bankconnect_etl.client import BankConnectClient
from bankconnect_etl.config import Settings
from bankconnect_etl.errors import AuthError
from bankconnect_etl.extract import ANALYSIS_ENDPOINTS, Extractor, list_entities
from bankconnect_etl.sandbox import SANDBOX_API_KEY, SANDBOX_SERVER_HASH
from bankconnect_etl.sandbox.generator import (
    SLOT_FAILED_STATEMENT,
    SLOT_NO_STATEMENTS,
    SLOT_PARTLY_FAILED,
)
from tests.conftest import Api

pytestmark = pytest.mark.integration
FAST = {"poll_initial_s": 0.02, "poll_max_s": 0.1, "backoff_base_s": 0.01, "backoff_cap_s": 0.1}


def client_for(api: Api, **settings: object) -> BankConnectClient:
    merged = {
        "base_url": api.base,
        "api_key": SANDBOX_API_KEY,
        "server_hash": SANDBOX_SERVER_HASH,
        **FAST,
        **settings,
    }
    return BankConnectClient(Settings.load(**merged))


def test_listing_reads_every_page_concurrently(make_sandbox) -> None:
    api = make_sandbox(entities=95)
    with client_for(api) as c:
        listing = list_entities(c, workers=8)
        assert [e["entity_id"] for e in listing.entities] == api.entity_ids()
        assert listing.count == 95 and listing.pages == 10 and listing.complete
        assert c.metrics.snapshot().requests["entity_list"] == {"200": 10}


@pytest.mark.parametrize(("grow_after_page", "workers"), [(1, 4), (3, 1)])
def test_listing_copes_with_entities_created_meanwhile(
    make_sandbox, grow_after_page: int, workers: int
) -> None:
    api = make_sandbox(entities=45)
    with client_for(api) as c:
        real = c.entity_page
        moved = []

        def page_then_grow(page: int = 1, link_id: str | None = None) -> dict:
            body = real(page, link_id)
            if page == grow_after_page and not moved:
                moved.append(
                    api.admin("POST", "/sandbox/advance", params={"new_entities": 17}).json()
                )
            return body

        c.entity_page = page_then_grow  # type: ignore[method-assign]
        listing = list_entities(c, workers=workers)
    assert [e["entity_id"] for e in listing.entities] == api.entity_ids()
    assert len(listing.entities) == listing.count == 62 and listing.complete


def test_listing_follows_next_when_count_is_absent(make_sandbox) -> None:
    api = make_sandbox(entities=23)
    with client_for(api) as c:
        real = c.entity_page

        def older_shape(page: int = 1, link_id: str | None = None) -> dict:
            body = real(page, link_id)
            body.pop("count")
            for e in body["results"]:
                e.pop("meta_data")  # the older page documents no meta_data either
            return body

        c.entity_page = older_shape  # type: ignore[method-assign]
        listing = list_entities(c)
    assert len(listing.entities) == 23 and listing.pages == 3 and listing.count is None
    assert all(e["meta_data"] is None for e in listing.entities)


def test_listing_by_link_id(make_sandbox) -> None:
    api = make_sandbox(entities=30)
    shared = api.get("/entity/").json()["results"][5]["link_id"]
    with client_for(api) as c:
        listing = list_entities(c, link_id=shared)
    assert len(listing.entities) == 3 and {e["link_id"] for e in listing.entities} == {shared}


def test_fetch_polls_each_endpoint_until_done(make_sandbox) -> None:
    api = make_sandbox(entities=25, processing_polls=2)
    ids = api.entity_ids()
    with client_for(api) as c:
        bundles = {b.entity_id: b for b in Extractor(c).fetch(ids)}
        requests_made = c.metrics.snapshot().requests
    assert set(bundles) == set(ids)
    statuses = Counter(b.status for b in bundles.values())
    assert statuses == {"complete": 24, "empty": 1}
    assert bundles[ids[SLOT_NO_STATEMENTS]].status == "empty"
    # two 'processing' answers then the final one, for each of the six analysis endpoints
    assert requests_made["transactions"] == {"200": 24 * 3 + 1}
    failed = bundles[ids[SLOT_FAILED_STATEMENT]]
    [(sid, _)] = failed.statements.items()
    outcome, message = failed.statement_outcome(sid)
    assert outcome == "failed" and message
    partly = bundles[ids[SLOT_PARTLY_FAILED]]
    outcomes = Counter(partly.statement_outcome(s)[0] for s in partly.statements)
    assert outcomes["failed"] == 1 and outcomes["completed"] >= 1
    normal = bundles[ids[0]]
    assert (
        normal.responses["transactions"]["transactions"]
        and normal.responses["entity"]["entity_id"] == ids[0]
    )


def test_still_processing_at_the_deadline_is_pending(make_sandbox) -> None:
    api = make_sandbox(entities=3, processing_polls=1000)
    with client_for(api, poll_deadline_s=0.4) as c:
        bundles = list(Extractor(c).fetch(api.entity_ids()[:1]))
    [b] = bundles
    assert b.status == "pending"
    assert set(b.pending_endpoints) == set(ANALYSIS_ENDPOINTS)
    assert all(b.statement_outcome(s)[0] == "processing" for s in b.statements)


def test_unknown_entity_fails_alone_and_bad_credentials_stop_the_run(make_sandbox) -> None:
    api = make_sandbox(entities=3, processing_polls=0)
    with client_for(api) as c:
        bundles = {
            b.entity_id: b for b in Extractor(c).fetch([*api.entity_ids(), "no-such-entity"])
        }
    assert (
        bundles["no-such-entity"].status == "failed"
        and "HTTP 404" in bundles["no-such-entity"].error
    )
    assert [bundles[eid].status for eid in api.entity_ids()] == ["complete", "empty", "complete"]
    with client_for(api, api_key="wrong-key") as c, pytest.raises(AuthError):
        list(Extractor(c).fetch(api.entity_ids()))


def test_statement_files_are_kept_without_password_or_signed_query(make_sandbox) -> None:
    api = make_sandbox(entities=40, processing_polls=0)
    with client_for(api) as c:
        bundles = list(Extractor(c).fetch(api.entity_ids(), endpoints=("get_pdfs",)))
    files = [s for b in bundles for s in b.responses["get_pdfs"]["statements"]]
    assert files and any(s["has_password"] for s in files)
    assert all("pdf_password" not in s and "?" not in s["pdf_url"] for s in files)
    assert any(s["pdf_url"] for s in files)


def _pull(api: Api, **settings: object) -> dict[str, dict]:
    with client_for(api, **settings) as c:
        ids = [e["entity_id"] for e in list_entities(c).entities]
        bundles = {b.entity_id: b for b in Extractor(c).fetch(ids)}
        return {"bundles": bundles, "metrics": c.metrics.snapshot()}  # type: ignore[dict-item]


def test_a_pull_under_faults_gets_exactly_the_data_of_a_clean_pull(make_sandbox) -> None:
    clean_api = make_sandbox(entities=200, seed=5, processing_polls=1)
    # Retry-After 0: each 429 pausing the whole pool is tested in test_client; here it would
    # only add a second of idle time per 429.
    faulty_api = make_sandbox(
        entities=200, seed=5, processing_polls=1, fault_rate=0.1, slow_ms=1500, retry_after_s=0
    )
    clean = _pull(clean_api)
    faulty = _pull(faulty_api, read_timeout_s=0.5, max_attempts=12)
    assert set(faulty["bundles"]) == set(clean["bundles"])
    assert faulty["metrics"].total_retries > 50
    injected = faulty_api.admin("GET", "/sandbox/faults").json()["injected"]
    assert all(n > 0 for n in injected.values()), injected
    for eid, bundle in clean["bundles"].items():
        other = faulty["bundles"][eid]
        assert (other.status, other.statements) == (bundle.status, bundle.statements)
        for endpoint, body in bundle.responses.items():
            if endpoint == "get_pdfs":  # the two sandboxes listen on different ports
                body, other_body = _without_host(body), _without_host(other.responses[endpoint])
                assert other_body == body, (eid, endpoint)
            else:
                assert other.responses[endpoint] == body, (eid, endpoint)


def _without_host(pdfs: dict) -> dict:
    return {
        "statements": [{**s, "pdf_url": urlsplit(s["pdf_url"]).path} for s in pdfs["statements"]]
    }


def test_secrets_stay_out_of_logs_and_errors_under_faults(
    make_sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api = make_sandbox(entities=40, processing_polls=0)
    ids = api.entity_ids()
    passwords = {
        s["pdf_password"]
        for eid in ids
        for s in api.get(f"/entity/{eid}/get_pdfs/").json()["statements"]
        if s["pdf_password"]
    }
    assert passwords
    api.admin(
        "POST", "/sandbox/faults", json={"rate": 0.5, "kinds": ["truncated", "html", "500", "drop"]}
    )
    errors = []
    with client_for(api, max_attempts=1) as c:
        for b in Extractor(c).fetch(ids, endpoints=("get_pdfs", "accounts")):
            if b.error:
                errors.append(b.error)
    with client_for(api, api_key="not-the-key-" + "x" * 8) as c:
        try:
            c.entity_page(1)
        except Exception as exc:  # any error text must be clean
            errors.append(str(exc))
    assert len(errors) > 5
    text = "\n".join(errors) + caplog.text
    for secret in (SANDBOX_API_KEY, SANDBOX_SERVER_HASH, "not-the-key-xxxxxxxx", *passwords):
        assert secret not in text


def test_link_overview_and_net_banking_health(make_sandbox) -> None:
    api = make_sandbox(entities=10)
    shared = api.get("/entity/").json()["results"][5]["link_id"]
    with client_for(api) as c:
        overview = c.link_overview(shared)
        health = c.net_banking_health()
    assert overview["link_id"] == shared and len(overview["progress_data"]) == 3
    assert len(health) == 18 and {"bank", "updated_at", "health_up", "issue_details"} <= set(
        health[0]
    )


# ---------------------------------------------------------------- review regressions


def test_each_entity_has_its_own_deadline_and_is_never_starved(make_sandbox) -> None:
    api = make_sandbox(entities=150, processing_polls=1)
    with client_for(api, poll_initial_s=0.2, poll_deadline_s=4, concurrency=4) as c:
        started = time.monotonic()
        finished_at = {}
        for b in Extractor(c).fetch(api.entity_ids()):
            finished_at[b.entity_id] = time.monotonic() - started
            assert b.status in ("complete", "empty"), (b.entity_id, b.status, b.pending_endpoints)
    assert len(finished_at) == 150
    first = finished_at[api.entity_ids()[0]]
    assert (
        first < max(finished_at.values()) / 2
    )  # yielded when it settled, not after the whole list


def test_listing_takes_the_page_size_from_the_first_page(make_sandbox) -> None:
    api = make_sandbox(entities=95)
    everyone = api.entity_ids()
    with client_for(api) as c:

        def five_per_page(page: int = 1, link_id: str | None = None) -> dict:
            rows = everyone[(page - 1) * 5 : page * 5]
            nxt = f"{api.base}/entity/?page={page + 1}" if page * 5 < len(everyone) else None
            return {
                "count": 95,
                "next": nxt,
                "previous": None,
                "results": [{"entity_id": e} for e in rows],
            }

        c.entity_page = five_per_page  # type: ignore[method-assign]
        listing = list_entities(c)
    assert [e["entity_id"] for e in listing.entities] == everyone and listing.pages == 19


def test_a_next_link_to_another_host_is_followed_by_page_number_only(make_sandbox) -> None:
    api = make_sandbox(entities=25)
    with client_for(api) as c:
        real = c.http.request
        hosts = set()

        def spy(method, url, **kw):  # type: ignore[no-untyped-def]
            hosts.add(urlsplit(url).netloc)
            resp = real(method, url, **kw)
            if "/entity/?" in url and "page=" in url:
                body = json.loads(resp.data)
                body.pop("count")
                if body["next"]:
                    body["next"] = body["next"].replace(urlsplit(api.base).netloc, "evil.example")
                resp = urllib3.HTTPResponse(
                    body=json.dumps(body).encode(), status=resp.status, headers=resp.headers
                )
            return resp

        c.http.request = spy  # type: ignore[method-assign]
        listing = list_entities(c)
    assert len(listing.entities) == 25 and hosts == {urlsplit(api.base).netloc}


def test_an_incomplete_listing_is_reported(make_sandbox, caplog: pytest.LogCaptureFixture) -> None:
    api = make_sandbox(entities=30)
    with client_for(api) as c:
        real = c.entity_page

        def lose_page_3(page: int = 1, link_id: str | None = None) -> dict:
            body = real(page, link_id)
            if page == 3:
                body["results"] = []
            return body

        c.entity_page = lose_page_3  # type: ignore[method-assign]
        listing = list_entities(c)
    assert not listing.complete and len(listing.entities) == 20
    assert "entity listing incomplete: 20 of the 30 entities" in caplog.text


def test_a_sandbox_on_a_thread_leaves_the_host_collector_alone(make_sandbox) -> None:
    before = gc.get_threshold(), gc.get_freeze_count()
    make_sandbox(entities=10)
    assert (gc.get_threshold(), gc.get_freeze_count()) == before


class _LongestBackoff:
    """An rng whose full-jitter draw is always the longest wait."""

    def uniform(self, low: float, high: float) -> float:
        return high


def test_a_stopped_fetch_ends_at_once_sending_and_retrying_nothing_more(make_sandbox) -> None:
    """A run that stops (Ctrl-C, an error in the load) while the API fails: the requests
    waiting a minute to retry give up at once, and none is sent after the stop."""
    import threading

    api = make_sandbox(entities=20)
    ids = api.entity_ids()
    api.admin("POST", "/sandbox/faults", json={"rate": 1.0, "kinds": ["503"]}).raise_for_status()
    settings = Settings.load(
        base_url=api.base,
        api_key=SANDBOX_API_KEY,
        server_hash=SANDBOX_SERVER_HASH,
        concurrency=4,
        backoff_base_s=60,
        backoff_cap_s=60,
        max_retry_time_s=600,
    )
    stop = threading.Event()
    with BankConnectClient(settings, rng=_LongestBackoff()) as c:  # type: ignore[arg-type]
        bundles: list = []
        fetching = threading.Thread(
            target=lambda: bundles.extend(Extractor(c).fetch(ids, stop=stop))
        )
        fetching.start()
        deadline = time.monotonic() + 20
        while c.metrics.snapshot().total_retries < 4:  # every worker waits 60 s to retry
            assert time.monotonic() < deadline, c.metrics.snapshot()
            time.sleep(0.02)
        sent = c.metrics.snapshot().total_requests
        stop.set()
        fetching.join(timeout=30)  # well before the 60 s waits would end
        assert not fetching.is_alive()
        assert bundles == []  # nothing finished: every answer was a 503
        assert c.metrics.snapshot().total_requests == sent == 4
