"""The sandbox over HTTP: auth, pagination, processing, time moving, uploads and sessions."""

from __future__ import annotations

import base64
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from bankconnect_etl.sandbox import SANDBOX_API_KEY, sign_access_token, statement_pdf
from bankconnect_etl.sandbox.generator import (
    SLOT_FAILED_STATEMENT,
    SLOT_NO_STATEMENTS,
    SLOT_OVERDRAFT,
)
from tests.conftest import AUTH, Api

pytestmark = pytest.mark.integration
NOT_AUTH = {"detail": "Authentication credentials were not provided."}
PER_ENTITY = ("accounts", "identity", "transactions", "salary", "recurring_transactions",
              "lender_transactions", "get_pdfs")  # fmt: skip


# ------------------------------------------------------------------------- auth


def test_every_call_needs_the_api_key(shared_sandbox: Api) -> None:
    eid = shared_sandbox.entity_ids()[0]
    for path in [
        "/entity/",
        f"/entity/{eid}/",
        "/net_banking_health/",
        "/entity/link_overview/?link_id=x",
        *(f"/entity/{eid}/{e}/" for e in PER_ENTITY),
    ]:
        r = requests.get(
            shared_sandbox.base + path, headers={"server-hash": AUTH["server-hash"]}, timeout=10
        )
        assert (r.status_code, r.json()) == (401, NOT_AUTH), path
        r = requests.get(
            shared_sandbox.base + path, headers={**AUTH, "x-api-key": "wrong"}, timeout=10
        )
        assert r.status_code == 401, path


def test_header_names_are_case_insensitive(shared_sandbox: Api) -> None:
    headers = {"X-API-KEY": SANDBOX_API_KEY, "Server-Hash": AUTH["server-hash"]}
    assert (
        requests.get(shared_sandbox.base + "/entity/", headers=headers, timeout=10).status_code
        == 200
    )


@pytest.mark.parametrize("path", ["/entity/", "/entity/{eid}/", "/entity/{eid}/get_pdfs/"])
def test_management_endpoints_also_need_the_server_hash(shared_sandbox: Api, path: str) -> None:
    eid = shared_sandbox.entity_ids()[0]
    url = shared_sandbox.base + path.format(eid=eid)
    r = requests.get(url, headers={"x-api-key": SANDBOX_API_KEY}, timeout=10)
    assert (r.status_code, r.json()) == (401, NOT_AUTH)
    assert requests.get(url, headers=AUTH, timeout=10).status_code == 200


def test_analysis_endpoints_do_not_need_the_server_hash(shared_sandbox: Api) -> None:
    eid = shared_sandbox.entity_ids()[0]
    r = requests.get(
        f"{shared_sandbox.base}/entity/{eid}/accounts/",
        headers={"x-api-key": SANDBOX_API_KEY},
        timeout=10,
    )
    assert r.status_code == 200


def test_access_token_layer_when_enabled(make_sandbox) -> None:
    api = make_sandbox(token_secret="s3cret-for-test")
    url = api.base + "/net_banking_health/"
    now = str(int(time.time()))
    good = {
        "x-api-key": SANDBOX_API_KEY,
        "ACCESS_TOKEN": sign_access_token("s3cret-for-test", now),
        "TIMESTAMP": now,
    }
    assert requests.get(url, headers=good, timeout=10).status_code == 200
    stale = str(int(time.time()) - 3600)
    cases = [
        {"x-api-key": SANDBOX_API_KEY},
        {**good, "ACCESS_TOKEN": "0" * 64},
        {**good, "TIMESTAMP": str(int(now) + 1)},
        {**good, "TIMESTAMP": stale, "ACCESS_TOKEN": sign_access_token("s3cret-for-test", stale)},
        {**good, "TIMESTAMP": "yesterday"},
    ]
    for headers in cases:
        r = requests.get(url, headers=headers, timeout=10)
        assert (r.status_code, r.json()) == (401, NOT_AUTH)


# ------------------------------------------------------------------------- entities and pages


def test_unknown_entity_is_404_on_every_entity_endpoint(shared_sandbox: Api) -> None:
    for path in ["/entity/no-such-entity/", *(f"/entity/no-such-entity/{e}/" for e in PER_ENTITY)]:
        r = shared_sandbox.get(path)
        assert (r.status_code, r.json()) == (404, {"detail": "Not found."}), path


def test_pages_cover_every_entity_once_in_creation_order(shared_sandbox: Api) -> None:
    first = shared_sandbox.get("/entity/").json()
    assert first["count"] == 60 and len(first["results"]) == 10 and first["previous"] is None
    ids = shared_sandbox.entity_ids()
    assert len(ids) == len(set(ids)) == 60
    assert ids[:10] == [e["entity_id"] for e in first["results"]]
    last = shared_sandbox.get("/entity/?page=6").json()
    assert last["next"] is None and len(last["results"]) == 10


def test_next_and_previous_are_absolute_urls(shared_sandbox: Api) -> None:
    page2 = shared_sandbox.get("/entity/?page=2").json()
    nxt, prev = urlparse(page2["next"]), urlparse(page2["previous"])
    assert nxt.scheme == "http" and nxt.netloc == urlparse(shared_sandbox.base).netloc
    assert parse_qs(nxt.query) == {"page": ["3"]}
    assert prev.path.endswith("/entity/") and "page" not in parse_qs(prev.query)  # as DRF does
    page3 = shared_sandbox.get("/entity/?page=3").json()
    assert parse_qs(urlparse(page3["previous"]).query) == {"page": ["2"]}


@pytest.mark.parametrize("page", ["0", "7", "-1", "abc", "1.5", ""])
def test_pages_out_of_range_or_not_integers_are_404(shared_sandbox: Api, page: str) -> None:
    r = shared_sandbox.get("/entity/", params={"page": page})
    assert (r.status_code, r.json()) == (404, {"detail": "Invalid page."})


def test_link_id_filter(shared_sandbox: Api) -> None:
    everyone = [shared_sandbox.get(f"/entity/?page={p}").json()["results"] for p in range(1, 7)]
    shared = [e for page in everyone for e in page][5]["link_id"]  # slot 5 shares its link
    body = shared_sandbox.get("/entity/", params={"link_id": shared}).json()
    assert body["count"] == 3 and {e["link_id"] for e in body["results"]} == {shared}
    assert body["next"] is None
    none = shared_sandbox.get("/entity/", params={"link_id": "NO-SUCH-LINK"}).json()
    assert none == {"count": 0, "next": None, "previous": None, "results": []}
    overview = shared_sandbox.get("/entity/link_overview/", params={"link_id": shared}).json()
    assert overview["link_id"] == shared and len(overview["progress_data"]) == 3
    assert shared_sandbox.get("/entity/link_overview/").status_code == 400


def test_link_overview_has_no_bank_or_months_until_a_statement_is_processed(make_sandbox) -> None:
    api = make_sandbox(entities=5)
    failed_only = api.entity_ids()[SLOT_FAILED_STATEMENT]
    link = api.get(f"/entity/{failed_only}/").json()["link_id"]
    [item] = api.get("/entity/link_overview/", params={"link_id": link}).json()["progress_data"]
    assert item == {"entity_id": failed_only, "months": [], "bank": None}


def test_create_entity_appends_to_the_listing(make_sandbox) -> None:
    api = make_sandbox(entities=12)
    r = api.post("/entity/", json={"link_id": "CUST-1", "meta_data": '{"id":123}'})
    assert r.status_code == 201
    created = r.json()
    assert created["link_id"] == "CUST-1" and created["meta_data"] == '{"id":123}'
    assert api.entity_ids()[-1] == created["entity_id"]
    assert api.get(f"/entity/{created['entity_id']}/").json() == created
    form = api.post("/entity/", data={"link_id": "CUST-2"})
    assert form.status_code == 201 and form.json()["meta_data"] is None
    assert api.post("/entity/", json={"meta_data": {"id": 1}}).status_code == 400
    overview = api.get("/entity/link_overview/", params={"link_id": "CUST-1"}).json()
    assert overview["progress_data"] == [
        {"entity_id": created["entity_id"], "months": [], "bank": None}
    ]


# ------------------------------------------------------------------------- processing


def test_each_endpoint_reports_processing_for_its_own_polls(make_sandbox) -> None:
    api = make_sandbox(entities=5, processing_polls=2)
    eid = api.entity_ids()[0]
    seen = [
        {p["status"] for p in api.get(f"/entity/{eid}/transactions/").json()["progress"]}
        for _ in range(3)
    ]
    assert seen == [{"processing"}, {"processing"}, {"completed"}]
    salary = api.get(f"/entity/{eid}/salary/").json()
    assert {p["status"] for p in salary["progress"]} == {
        "processing"
    }  # independent of transactions
    assert salary["transactions"] == [] and salary["accounts"] == []


def test_processing_hides_data_until_completed(make_sandbox) -> None:
    api = make_sandbox(entities=5, processing_polls=1)
    eid = api.entity_ids()[0]
    first = api.get(f"/entity/{eid}/transactions/").json()
    assert first["transactions"] == [] and first["progress"]
    done = api.get(f"/entity/{eid}/transactions/").json()
    assert done["transactions"] and done["accounts"]


def test_processing_seconds(make_sandbox) -> None:
    # The entities are born when the sandbox starts; 3 s leaves a busy machine time to ask.
    api = make_sandbox(entities=3, processing_polls=0, processing_seconds=3)
    eid = api.entity_ids()[0]

    def statuses() -> set[str]:
        return {p["status"] for p in api.get(f"/entity/{eid}/accounts/").json()["progress"]}

    assert statuses() == {"processing"}
    deadline = time.monotonic() + 30
    while (now := statuses()) == {"processing"} and time.monotonic() < deadline:
        time.sleep(0.2)
    assert now == {"completed"}


def test_failed_statement_fails_extraction_endpoints_with_a_message(make_sandbox) -> None:
    api = make_sandbox(entities=5, processing_polls=1)
    eid = api.entity_ids()[SLOT_FAILED_STATEMENT]
    txns = api.until_done(eid, "transactions")
    [item] = txns["progress"]
    assert item["status"] == "failed" and item["message"]
    assert txns["transactions"] == []
    accounts = api.until_done(eid, "accounts")
    assert [p["status"] for p in accounts["progress"]] == [
        "completed"
    ]  # identity checks ran at upload


def test_entity_with_no_statements(shared_sandbox: Api) -> None:
    eid = shared_sandbox.entity_ids()[SLOT_NO_STATEMENTS]
    body = shared_sandbox.get(f"/entity/{eid}/transactions/").json()
    assert body["progress"] == [] and body["accounts"] == [] and body["transactions"] == []
    assert shared_sandbox.get(f"/entity/{eid}/get_pdfs/").json() == {"statements": []}


def test_an_overdraft_account_sends_its_limit_in_identity(shared_sandbox: Api) -> None:
    eid = shared_sandbox.entity_ids()[SLOT_OVERDRAFT]
    (identity,) = shared_sandbox.get(f"/entity/{eid}/identity/").json()["identity"]
    assert identity["od_limit"] > 0 and identity["credit_limit"] is None
    assert identity["account_category"] in ("individual", "corporate")
    documented = frozenset({"address", "account_number", "account_id", "name"})
    shapes = {
        frozenset(i)
        for e in shared_sandbox.entity_ids()[:20]
        for i in shared_sandbox.get(f"/entity/{e}/identity/").json()["identity"]
    }
    assert shapes == {documented, documented | {"account_category", "credit_limit", "od_limit"}}


# ------------------------------------------------------------------------- time moves


def test_advance_adds_entities_at_the_end_and_statements_that_process_again(make_sandbox) -> None:
    api = make_sandbox(entities=20, processing_polls=1)
    before = api.entity_ids()
    snapshots = {eid: api.until_done(eid, "transactions") for eid in before}
    r = api.admin("POST", "/sandbox/advance", params={"new_entities": 3, "new_statements": 4})
    assert r.status_code == 200
    moved = r.json()
    after = api.entity_ids()
    assert after[:20] == before and after[20:] == moved["entities_added"] and len(after) == 23
    assert len(moved["statements_added"]) == 4
    for item in moved["statements_added"]:
        eid, sid = item["entity_id"], item["statement_id"]
        body = api.get(f"/entity/{eid}/transactions/").json()
        status = {p["statement_id"]: p["status"] for p in body["progress"]}
        assert status[sid] == "processing"
        assert all(
            s == "completed"
            for k, s in status.items()
            if k != sid
            and k
            in {p["statement_id"] for p in snapshots[eid]["progress"] if p["status"] == "completed"}
        )
        done = api.until_done(eid, "transactions")["transactions"]
        old_rows = snapshots[eid]["transactions"]
        for account in {t["account_id"] for t in old_rows}:
            was = [t for t in old_rows if t["account_id"] == account]
            assert [t for t in done if t["account_id"] == account][: len(was)] == was
        assert len(done) > len(old_rows)
    new_eid = moved["entities_added"][0]
    assert {p["status"] for p in api.get(f"/entity/{new_eid}/accounts/").json()["progress"]} <= {
        "processing"
    }


def test_statements_an_advance_adds_end_before_the_worlds_today(make_sandbox) -> None:
    """An advance moves the world's time on 30 days: a statement it adds covers no day of
    the world's today or after it (an underwriter would flag transactions in the future)."""
    api = make_sandbox(entities=30, processing_polls=0)
    for _ in range(3):
        moved = api.admin("POST", "/sandbox/advance", params={"new_statements": 10}).json()
        today = date.fromisoformat(api.admin("GET", "/sandbox/state").json()["today"])
        for eid in {item["entity_id"] for item in moved["statements_added"]}:
            rows = api.until_done(eid, "transactions")["transactions"]
            last = max(date.fromisoformat(t["date"][:10]) for t in rows)
            assert last < today, (eid, last, today)


# ------------------------------------------------------------------------- faults


def test_each_fault_kind_on_demand(make_sandbox) -> None:
    api = make_sandbox(entities=5, processing_polls=0, slow_ms=1500)
    eid = api.entity_ids()[0]
    url = f"{api.base}/entity/{eid}/accounts/"
    kinds = [
        "429",
        "429",
        "429",
        "429",
        "500",
        "502",
        "503",
        "504",
        "html",
        "truncated",
        "drop",
        "slow",
    ]
    assert api.admin("POST", "/sandbox/faults", json={"next": kinds}).status_code == 200
    retry_after = []
    for _ in range(4):
        r = requests.get(url, headers=AUTH, timeout=10)
        assert r.status_code == 429 and r.json()["detail"].startswith("Request was throttled")
        retry_after.append(r.headers["Retry-After"])
    assert all(v.isdigit() or v.endswith(" GMT") for v in retry_after)
    r = requests.get(url, headers=AUTH, timeout=10)
    assert r.status_code == 500 and r.headers["content-type"].startswith("text/html")
    for code in (502, 503, 504):
        assert requests.get(url, headers=AUTH, timeout=10).status_code == code
    html = requests.get(url, headers=AUTH, timeout=10)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    truncated = requests.get(url, headers=AUTH, timeout=10)
    assert truncated.status_code == 200
    with pytest.raises(ValueError):
        truncated.json()
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(url, headers=AUTH, timeout=10)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(url, headers=AUTH, timeout=(2, 0.5))
    assert requests.get(url, headers=AUTH, timeout=10).json()["entity_id"] == eid
    injected = api.admin("GET", "/sandbox/faults").json()["injected"]
    assert injected == {
        "429": 4,
        "500": 1,
        "502": 1,
        "503": 1,
        "504": 1,
        "slow": 1,
        "drop": 1,
        "truncated": 1,
        "html": 1,
    }


def test_retry_after_comes_in_both_forms(make_sandbox) -> None:
    api = make_sandbox(entities=2, fault_rate=1.0, fault_kinds=("429",))
    forms = {
        "seconds" if r.isdigit() else "date"
        for r in (
            requests.get(api.base + "/entity/", headers=AUTH, timeout=10).headers["Retry-After"]
            for _ in range(20)
        )
    }
    assert forms == {"seconds", "date"}


def test_fault_rate_applies_to_the_api_only(make_sandbox) -> None:
    api = make_sandbox(entities=2, fault_rate=1.0, fault_kinds=("503",))
    assert all(api.get("/entity/").status_code == 503 for _ in range(5))
    assert api.admin("GET", "/sandbox/ping").status_code == 200
    assert api.admin("GET", "/openapi.json").status_code == 200


def test_fault_settings_reject_unknown_kinds(make_sandbox) -> None:
    api = make_sandbox(entities=2)
    r = api.admin("POST", "/sandbox/faults", json={"next": ["teapot"]})
    assert r.status_code == 400 and "teapot" in r.json()["detail"]


def test_latency_does_not_block_other_requests(make_sandbox) -> None:
    api = make_sandbox(entities=5, latency_ms=300)
    started = time.perf_counter()
    with ThreadPoolExecutor(10) as pool:
        codes = list(
            pool.map(
                lambda _: requests.get(api.base + "/entity/", headers=AUTH, timeout=10).status_code,
                range(10),
            )
        )
    elapsed = time.perf_counter() - started
    assert codes == [200] * 10
    assert 0.3 <= elapsed < 1.5  # ten serialised requests would take 3 s


# ------------------------------------------------------------------------- uploads


def _upload(
    api: Api, path: str = "/statement/upload/?identity=true", pdf: bytes | None = None, **form: str
):
    return api.post(
        path,
        files={"file": ("statement.pdf", pdf or statement_pdf(), "application/pdf")},
        data=form,
    )


def test_upload_creates_an_entity_whose_statement_then_processes(make_sandbox) -> None:
    api = make_sandbox(entities=3, processing_polls=1)
    r = _upload(api, pdf=statement_pdf(bank="hdfc", months=4, nonce="a"), bank_name="hdfc")
    assert r.status_code == 200
    body = r.json()
    assert (
        body["bank_name"] == "hdfc" and body["identity"]["account_id"] and body["is_fraud"] is False
    )
    assert body["date_range"]["from_date"] < body["date_range"]["to_date"]
    eid, sid = body["entity_id"], body["statement_id"]
    assert api.entity_ids()[-1] == eid
    first = api.get(f"/entity/{eid}/transactions/").json()
    assert first["progress"] == [{"status": "processing", "message": None, "statement_id": sid}]
    done = api.until_done(eid, "transactions")
    assert done["transactions"] and {t["account_id"] for t in done["transactions"]} == {
        body["identity"]["account_id"]
    }
    bare = _upload(
        api,
        path="/statement/upload/",
        pdf=statement_pdf(nonce="b"),
        bank_name="hdfc",
        entity_id=eid,
    )
    assert set(bare.json()) == {"bank_name", "statement_id", "entity_id"}


@pytest.mark.parametrize(
    ("pdf", "form", "status", "message"),
    [
        (
            statement_pdf(password="pw-1234"),
            {"bank_name": "hdfc", "pdf_password": "wrong"},
            3,
            "Incorrect password",
        ),
        (statement_pdf(password="pw-1234"), {"bank_name": "hdfc"}, 3, "Incorrect password"),
        (statement_pdf(image_only=True), {"bank_name": "hdfc"}, 6, "PDF is not parsable"),
        (statement_pdf()[:-20], {"bank_name": "hdfc"}, 6, "PDF is not parsable"),
        (b"PK\x03\x04 a zip file", {"bank_name": "hdfc"}, 7, "Statement format is not supported"),
        (statement_pdf(bank="sbi"), {"bank_name": "hdfc"}, 4, "Not hdfc bank statement"),
        (statement_pdf(), {"bank_name": "nosuchbank"}, 0, "Invalid bank name"),
    ],
)
def test_upload_errors(make_sandbox, pdf: bytes, form: dict, status: int, message: str) -> None:
    api = make_sandbox(entities=1)
    r = _upload(api, pdf=pdf, **form)
    assert r.status_code == 400
    body = r.json()
    assert body["status"] == status and body["message"] == message
    if status:
        assert body["entity_id"] in api.entity_ids()  # created even though the upload failed


def test_upload_with_the_right_password_and_duplicates(make_sandbox) -> None:
    api = make_sandbox(entities=1)
    pdf = statement_pdf(password="pw-1234", nonce="dup")
    ok = _upload(api, pdf=pdf, bank_name="hdfc", pdf_password="pw-1234")
    assert ok.status_code == 200
    again = _upload(
        api, pdf=pdf, bank_name="hdfc", pdf_password="pw-1234", entity_id=ok.json()["entity_id"]
    )
    assert again.status_code == 400 and "Duplicate" in again.json()["message"]


def test_bankless_upload_detects_the_bank_or_says_it_cannot(make_sandbox) -> None:
    api = make_sandbox(entities=1)
    ok = _upload(
        api, path="/statement/bankless_upload/?identity=true", pdf=statement_pdf(bank="axis")
    )
    assert ok.status_code == 200 and ok.json()["bank_name"] == "axis"
    r = _upload(api, path="/statement/bankless_upload/", pdf=statement_pdf(bank=None))
    assert r.status_code == 400 and r.json()["status"] == 5
    missing = api.post("/statement/upload/", data={"bank_name": "hdfc"})
    assert missing.status_code == 400 and missing.json()["message"] == "file is required"
    assert missing.json()["entity_id"] in api.entity_ids()  # "entity_id is always given"
    unknown = _upload(api, bank_name="hdfc", entity_id="no-such-entity")
    assert unknown.status_code == 400 and unknown.json()["message"] == "Entity not found"


def test_statement_files_are_served_by_signed_url(make_sandbox) -> None:
    api = make_sandbox(entities=1)
    up = _upload(
        api, pdf=statement_pdf(password="pw-9", nonce="f"), bank_name="hdfc", pdf_password="pw-9"
    ).json()
    [stmt] = api.get(f"/entity/{up['entity_id']}/get_pdfs/").json()["statements"]
    assert stmt["pdf_password"] == "pw-9" and stmt["pdf_url"].startswith(api.sandbox.url)
    query = parse_qs(urlparse(stmt["pdf_url"]).query)
    assert query["X-Amz-Expires"] == ["3600"] and query["X-Amz-Signature"]
    pdf = requests.get(stmt["pdf_url"], timeout=10)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    tampered = stmt["pdf_url"].replace(query["X-Amz-Signature"][0], "0" * 64)
    assert requests.get(tampered, timeout=10).status_code == 403


def test_old_statement_files_are_gone(shared_sandbox: Api) -> None:
    urls = [
        s["pdf_url"]
        for eid in shared_sandbox.entity_ids()
        for s in shared_sandbox.get(f"/entity/{eid}/get_pdfs/").json()["statements"]
    ]
    assert "" in urls and any(urls)
    assert any(
        s["pdf_password"]
        for eid in shared_sandbox.entity_ids()[:30]
        for s in shared_sandbox.get(f"/entity/{eid}/get_pdfs/").json()["statements"]
    )


def test_net_banking_health(shared_sandbox: Api) -> None:
    banks = shared_sandbox.get("/net_banking_health/").json()
    assert len(banks) == 18 and all(b["bank"].isupper() for b in banks)
    assert all((b["issue_details"] is None) == b["health_up"] for b in banks)


# ------------------------------------------------------------------------- sessions


def test_session_upload_flow(make_sandbox) -> None:
    api = make_sandbox(entities=1, processing_polls=0)
    s = api.post(
        "/session/",
        json={
            "link_id": "CUST-9",
            "api_key": SANDBOX_API_KEY,
            "redirect_url": "https://example.test/done",
        },
    )
    assert s.status_code == 200
    session_id = s.json()["session_id"]
    assert session_id in s.json()["redirect_url"]
    files = {"file": ("s.pdf", statement_pdf(bank="icici", nonce="s1"), "application/pdf")}
    r = api.post(
        "/statement/upload_session/",
        files=files,
        data={"session_id": session_id, "bank_name": "icici", "upload_type": "PDF"},
    )
    assert r.status_code == 200
    body = r.json()
    assert (
        body["status"] == 1 and body["session_id"] == session_id and body["currency_code"] == "INR"
    )
    assert body["opening_bal"] is not None and body["closing_bal"] is not None
    b64 = base64.b64encode(statement_pdf(bank="icici", nonce="s2")).decode()
    r64 = api.post(
        "/statement/upload_session/",
        data={"session_id": session_id, "bank_name": "icici", "upload_type": "BASE64", "file": b64},
    )
    assert r64.status_code == 200
    entity = api.get("/entity/", params={"link_id": "CUST-9"}).json()["results"][0]["entity_id"]
    accounts = api.until_done(entity, "accounts")["accounts"]
    assert (
        len(accounts) == 1 and len(accounts[0]["statements"]) == 2
    )  # same account marker, extended


@pytest.mark.parametrize(
    ("body", "code", "http"),
    [
        (
            {"link_id": "L", "from_date": "2024-01-01", "to_date": "01/06/2024"},
            "INVALID_DATE_FORMAT",
            400,
        ),
        (
            {"link_id": "L", "from_date": "01/06/2024", "to_date": "01/01/2024"},
            "INVALID_DATE_RANGE",
            400,
        ),
        ({"link_id": "L", "from_date": "01/06/2024"}, "MISSING_DATE_FIELD", 400),
        ({"link_id": "L", "bank_name": "nosuchbank"}, "INVALID_BANK_NAME", 400),
        ({"link_id": "L", "mode": "online"}, "MISSING_BANK_NAME", 400),
        ({"link_id": "L", "mode": "online", "bank_name": "paytm"}, "MODE_NOT_AVAILABLE", 400),
        ({"link_id": "L", "mode": "aa", "bank_name": "hdfc"}, "MODE_NOT_ENABLED", 403),
    ],
)
def test_session_errors(make_sandbox, body: dict, code: str, http: int) -> None:
    api = make_sandbox(entities=1)
    r = api.post("/session/", json={**body, "api_key": SANDBOX_API_KEY})
    assert r.status_code == http and r.json()["error"]["code"] == code


def test_session_needs_the_api_key(make_sandbox) -> None:
    api = make_sandbox(entities=1)
    r = requests.post(api.base + "/session/", json={"link_id": "L", "api_key": "wrong"}, timeout=10)
    assert (r.status_code, r.json()) == (401, NOT_AUTH)


@pytest.mark.parametrize(
    ("pdf", "form", "code"),
    [
        (statement_pdf(password="pw"), {"pdf_password": "nope"}, "PASSWORD_INCORRECT"),
        (statement_pdf(image_only=True), {}, "PDF_IS_IMAGE"),
        (b"not a pdf", {}, "STATEMENT_UNSUPPORTED_FORMAT"),
        (statement_pdf(bank="sbi"), {}, "BANK_NAME_MISMATCH"),
    ],
)
def test_session_upload_errors(make_sandbox, pdf: bytes, form: dict, code: str) -> None:
    api = make_sandbox(entities=1)
    session_id = api.post("/session/", json={"link_id": "L", "api_key": SANDBOX_API_KEY}).json()[
        "session_id"
    ]
    r = api.post(
        "/statement/upload_session/",
        files={"file": ("s.pdf", pdf, "application/pdf")},
        data={"session_id": session_id, "bank_name": "hdfc", "upload_type": "PDF", **form},
    )
    assert r.status_code == 400
    assert r.json() == {"session_id": session_id, "statement_id": "", "error": r.json()["error"]}
    assert r.json()["error"]["code"] == code


def test_session_upload_duplicate_range_and_missing(make_sandbox) -> None:
    api = make_sandbox(entities=1)
    sid = api.post(
        "/session/",
        json={
            "link_id": "L",
            "api_key": SANDBOX_API_KEY,
            "from_date": "01/01/2020",
            "to_date": "01/06/2020",
        },
    ).json()["session_id"]

    def send(**data: str):
        return api.post(
            "/statement/upload_session/",
            files={"file": ("s.pdf", statement_pdf(), "application/pdf")},
            data={"bank_name": "hdfc", "upload_type": "PDF", **data},
        )

    assert send(session_id=sid).json()["error"]["code"] == "OUT_OF_DATE_RANGE"
    assert send(session_id="nope").json()["error"]["code"] == "SESSION_NOT_FOUND"
    open_sid = api.post("/session/", json={"link_id": "M", "api_key": SANDBOX_API_KEY}).json()[
        "session_id"
    ]
    assert send(session_id=open_sid).status_code == 200
    assert send(session_id=open_sid).json()["error"]["code"] == "STATEMENT_DUPLICATE"
    missing = api.post(
        "/statement/upload_session/",
        data={"session_id": open_sid, "bank_name": "hdfc", "upload_type": "PDF"},
    )
    assert missing.json()["error"]["code"] == "MISSING_FILE_OBJECT"
    bad64 = api.post(
        "/statement/upload_session/",
        data={"session_id": open_sid, "bank_name": "hdfc", "upload_type": "BASE64", "file": "@@@"},
    )
    assert bad64.json()["error"]["code"] == "INVALID_BASE_64"
