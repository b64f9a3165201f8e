"""Every response the sandbox serves under /bank-connect/v1, against its own /openapi.json."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
import requests
from jsonschema import Draft202012Validator

from bankconnect_etl.sandbox import API_PREFIX, SANDBOX_API_KEY, statement_pdf
from bankconnect_etl.sandbox.generator import (
    SLOT_EXTRA_FIELDS,
    SLOT_FAILED_STATEMENT,
    SLOT_NO_STATEMENTS,
    SLOT_NULL_IDENTITY,
    SLOT_TWO_ACCOUNTS,
)
from bankconnect_etl.vocab import ANALYSIS_ENDPOINTS

ANALYSIS = ANALYSIS_ENDPOINTS
# Operations named in the vendor's pages (shared/seeds), with their success status.
DOCUMENTED = {
    ("post", "/entity/"): 201,
    ("get", "/entity/"): 200,
    ("get", "/entity/link_overview/"): 200,
    ("get", "/entity/{entity_id}/"): 200,
    **{("get", f"/entity/{{entity_id}}/{name}/"): 200 for name in (*ANALYSIS, "get_pdfs")},
    ("get", "/net_banking_health/"): 200,
    ("post", "/statement/upload/"): 200,
    ("post", "/statement/bankless_upload/"): 200,
    ("post", "/session/"): 200,
    ("post", "/statement/upload_session/"): 200,
}
NEEDS_SERVER_HASH = ("/entity/", "/entity/{entity_id}/", "/entity/{entity_id}/get_pdfs/")
NO_SUCH_ENTITY = "00000000-0000-4000-8000-000000000000"


class Contract:
    """A sandbox's /openapi.json, and validation of served responses against it."""

    def __init__(self, api) -> None:
        self.doc = api.admin("GET", "/openapi.json").json()
        self.validators: dict[tuple[str, str, int], Draft202012Validator] = {}

    def template(self, method: str, path: str) -> str:
        """The documented path template a concrete request path falls under."""
        matches = [
            template
            for template, ops in self.doc["paths"].items()
            if method in ops
            and re.fullmatch("[^/]+".join(map(re.escape, re.split(r"\{[^/}]+\}", template))), path)
        ]
        assert matches, f"{method.upper()} {path} is not in /openapi.json"
        return min(matches, key=lambda t: t.count("{"))

    def schema(self, method: str, template: str, status: int) -> dict:
        responses = self.doc["paths"][template][method]["responses"]
        assert str(status) in responses, f"{method.upper()} {template} documents no {status}"
        content = responses[str(status)].get("content", {})
        assert "application/json" in content, f"{method.upper()} {template} {status}: no JSON"
        return content["application/json"]["schema"]

    def check(self, resp: requests.Response) -> object:
        """Validate a served response against the schema for its path, method and status."""
        method = resp.request.method.lower()
        path = urlsplit(resp.request.url).path
        key = (method, self.template(method, path), resp.status_code)
        assert resp.headers.get("content-type", "").startswith("application/json"), key
        if key not in self.validators:
            schema = {**self.schema(*key), "components": self.doc["components"]}
            self.validators[key] = Draft202012Validator(schema)
        body = resp.json()
        errors = [
            f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in self.validators[key].iter_errors(body)
        ]
        assert not errors, f"{method.upper()} {path} {resp.status_code}: " + "; ".join(errors[:5])
        return body


@pytest.fixture(scope="module")
def contract(shared_sandbox) -> Contract:
    return Contract(shared_sandbox)


@pytest.fixture(scope="module")
def world_ids(shared_sandbox) -> list[str]:
    ids = shared_sandbox.entity_ids()
    assert len(ids) == 60
    return ids


def _op_id(op: tuple[str, str]) -> str:
    return f"{op[0].upper()} {op[1]}"


# ---------------------------------------------------------------- the document


@pytest.mark.parametrize(
    ("op", "status"), DOCUMENTED.items(), ids=[_op_id(op) for op in DOCUMENTED]
)
def test_documented_operation_has_a_json_success_schema(contract, op, status):
    """Each operation of the vendor pages is in /openapi.json with a JSON success schema."""
    method, path = op
    assert API_PREFIX + path in contract.doc["paths"]
    assert method in contract.doc["paths"][API_PREFIX + path]
    schema = contract.schema(method, API_PREFIX + path, status)
    Draft202012Validator.check_schema(schema)
    assert schema.get("$ref", "").startswith("#/components/schemas/") or "items" in schema


def test_openapi_has_no_other_api_operations(contract):
    """The documented list above is every operation served under the API prefix."""
    served = {
        (method, template.removeprefix(API_PREFIX))
        for template, ops in contract.doc["paths"].items()
        if template.startswith(API_PREFIX + "/")
        for method in ops
    }
    assert served == set(DOCUMENTED)


@pytest.mark.parametrize(
    ("method", "path", "template"),
    [
        ("get", "/entity/", "/entity/"),
        ("get", "/entity/link_overview/", "/entity/link_overview/"),
        ("get", "/entity/abc/", "/entity/{entity_id}/"),
        ("get", "/entity/abc/salary/", "/entity/{entity_id}/salary/"),
        ("post", "/statement/upload/", "/statement/upload/"),
    ],
)
def test_request_path_maps_to_its_template(contract, method, path, template):
    assert contract.template(method, API_PREFIX + path) == API_PREFIX + template


# ---------------------------------------------------------------- entities


ENTITY_BODIES = {
    "json-with-meta": {"json": {"link_id": "APP-1", "meta_data": '{"id":123,"value":"Hi"}'}},
    "single-account": {"json": {"link_id": "APP-2", "is_single_account": True}},
    "empty": {"json": {}},
    "form": {"data": {"link_id": "APP-3"}},
}


def test_entity_create_201(contract, make_sandbox, subtests):
    api = make_sandbox(entities=5)
    for case, send in ENTITY_BODIES.items():
        with subtests.test(case=case):
            resp = api.post("/entity/", **send)
            assert resp.status_code == 201
            created = contract.check(resp)
            detail = contract.check(api.get(f"/entity/{created['entity_id']}/"))
            assert detail["link_id"] == created["link_id"]


def test_entity_list_every_page(contract, shared_sandbox):
    """Walking the pages of a 60-entity world, unfiltered and by link_id."""
    pages, url = [], shared_sandbox.base + "/entity/"
    while url:
        resp = shared_sandbox.http.get(url, timeout=10)
        assert resp.status_code == 200
        pages.append(contract.check(resp))
        url = pages[-1]["next"]
    assert len(pages) == 6
    assert sum(len(p["results"]) for p in pages) == pages[0]["count"] == 60
    shared_link = pages[0]["results"][5]["link_id"]
    filtered = contract.check(shared_sandbox.get("/entity/", params={"link_id": shared_link}))
    assert filtered["count"] == len(filtered["results"]) >= 3


@pytest.mark.parametrize("page", ["0", "7", "-1", "abc"])
def test_entity_list_invalid_page_404(contract, shared_sandbox, page):
    resp = shared_sandbox.get("/entity/", params={"page": page})
    assert resp.status_code == 404
    assert contract.check(resp) == {"detail": "Invalid page."}


def test_entity_detail_every_entity(contract, shared_sandbox, world_ids):
    for entity_id in world_ids:
        resp = shared_sandbox.get(f"/entity/{entity_id}/")
        assert resp.status_code == 200
        assert contract.check(resp)["entity_id"] == entity_id


@pytest.mark.parametrize("name", ["", *(f"{n}/" for n in (*ANALYSIS, "get_pdfs"))])
def test_unknown_entity_404(contract, shared_sandbox, name):
    resp = shared_sandbox.get(f"/entity/{NO_SUCH_ENTITY}/{name}")
    assert resp.status_code == 404
    contract.check(resp)


def test_link_overview_every_link(contract, shared_sandbox, world_ids):
    links = {contract.check(shared_sandbox.get(f"/entity/{e}/"))["link_id"] for e in world_ids}
    links.discard(None)
    assert len(links) > 40
    for link_id in sorted(links):
        resp = shared_sandbox.get("/entity/link_overview/", params={"link_id": link_id})
        assert resp.status_code == 200
        assert contract.check(resp)["link_id"] == link_id


def test_link_overview_without_link_id_400(contract, shared_sandbox):
    resp = shared_sandbox.get("/entity/link_overview/")
    assert resp.status_code == 400
    contract.check(resp)


# ---------------------------------------------------------------- analysis endpoints


def test_analysis_while_processing_then_done(contract, make_sandbox, subtests):
    """Every entity of a 60-entity world: the first poll is processing, the second final."""
    api = make_sandbox(entities=60, processing_polls=1)
    assert api.admin("GET", "/openapi.json").json() == contract.doc
    entity_ids = api.entity_ids()
    for endpoint in ANALYSIS:
        with subtests.test(endpoint=endpoint):
            for entity_id in entity_ids:
                first = api.get(f"/entity/{entity_id}/{endpoint}/")
                assert first.status_code == 200
                assert {p["status"] for p in contract.check(first)["progress"]} <= {"processing"}
                second = api.get(f"/entity/{entity_id}/{endpoint}/")
                assert second.status_code == 200
                final = {p["status"] for p in contract.check(second)["progress"]}
                assert "processing" not in final


def _has_unknown_account_fields(contract: Contract, body: dict) -> bool:
    known = set(contract.doc["components"]["schemas"]["AccountObj"]["properties"])
    return any(set(account) - known for account in body["accounts"])


EDGE_CASES = {
    "no-statements": (SLOT_NO_STATEMENTS, "accounts", lambda c, b: b["progress"] == []),
    "failed-statement": (
        SLOT_FAILED_STATEMENT,
        "transactions",
        lambda c, b: [p["status"] for p in b["progress"]] == ["failed"],
    ),
    "two-accounts": (SLOT_TWO_ACCOUNTS, "accounts", lambda c, b: len(b["accounts"]) == 2),
    "null-identity": (
        SLOT_NULL_IDENTITY,
        "identity",
        lambda c, b: any(None in (i["name"], i["address"]) for i in b["identity"]),
    ),
    "unknown-fields": (SLOT_EXTRA_FIELDS, "accounts", _has_unknown_account_fields),
}


@pytest.mark.parametrize(("slot", "endpoint", "holds"), EDGE_CASES.values(), ids=EDGE_CASES)
def test_edge_case_entities_are_served_within_the_schema(
    contract, shared_sandbox, world_ids, slot, endpoint, holds
):
    """The edge-case slots of generator.py are in the world and valid against the schema."""
    for entity_id in world_ids[slot::25]:
        body = contract.check(shared_sandbox.get(f"/entity/{entity_id}/{endpoint}/"))
        assert "processing" not in {p["status"] for p in body["progress"]}
        assert holds(contract, body), f"{entity_id} ({endpoint})"


# ---------------------------------------------------------------- management


def test_get_pdfs_every_entity(contract, shared_sandbox, world_ids):
    for entity_id in world_ids:
        resp = shared_sandbox.get(f"/entity/{entity_id}/get_pdfs/")
        assert resp.status_code == 200
        contract.check(resp)


def test_net_banking_health(contract, shared_sandbox):
    resp = shared_sandbox.get("/net_banking_health/")
    assert resp.status_code == 200
    assert contract.check(resp)


# ---------------------------------------------------------------- statement uploads


def _file(spec: dict | str | None) -> dict:
    """A multipart file from statement_pdf keyword arguments, or a named broken file."""
    if spec is None:
        return {}
    if spec == "not-a-pdf":
        content = b"PK\x03\x04 a zip file"
    elif spec == "truncated":
        content = statement_pdf()[:-20]
    else:
        content = statement_pdf(**spec)
    return {"file": ("statement.pdf", content, "application/pdf")}


@dataclass(frozen=True)
class Upload:
    """One statement upload request and the answer it should get."""

    endpoint: str
    form: dict
    pdf: dict | str | None = field(default_factory=dict)
    identity: bool = False
    http: int = 200
    status: int | None = None  # the `status` field of an error body


PASSWORD = "ABCD0101"
UPLOADS = {
    "upload-identity": Upload("upload", {"bank_name": "hdfc"}, {"bank": "hdfc"}, identity=True),
    "upload-plain": Upload("upload", {"bank_name": "sbi"}, {"bank": None}),
    "upload-into-entity": Upload(
        "upload", {"bank_name": "axis", "entity_id": "*"}, {"bank": "axis"}, identity=True
    ),
    "upload-password": Upload(
        "upload",
        {"bank_name": "kotak", "pdf_password": PASSWORD},
        {"bank": "kotak", "password": PASSWORD},
        identity=True,
    ),
    "bankless-identity": Upload("bankless_upload", {}, {"bank": "icici"}, identity=True),
    "bankless-into-entity": Upload("bankless_upload", {"entity_id": "*"}, {"bank": "axis"}),
    "bank-undetected": Upload(
        "bankless_upload", {}, {"bank": None}, identity=True, http=400, status=5
    ),
    "wrong-password": Upload(
        "upload",
        {"bank_name": "hdfc", "pdf_password": "nope"},
        {"password": PASSWORD},
        http=400,
        status=3,
    ),
    "missing-password": Upload("bankless_upload", {}, {"password": PASSWORD}, http=400, status=3),
    "image-only": Upload(
        "bankless_upload", {}, {"image_only": True}, identity=True, http=400, status=6
    ),
    "truncated": Upload("upload", {"bank_name": "hdfc"}, "truncated", http=400, status=6),
    "not-a-pdf": Upload("bankless_upload", {}, "not-a-pdf", http=400, status=7),
    "bank-mismatch": Upload("upload", {"bank_name": "sbi"}, {"bank": "hdfc"}, http=400, status=4),
    "missing-bank-name": Upload("upload", {}, http=400, status=0),
    "unknown-bank-name": Upload("upload", {"bank_name": "nobank"}, http=400, status=0),
    "unknown-entity": Upload(
        "upload", {"bank_name": "hdfc", "entity_id": NO_SUCH_ENTITY}, http=400, status=0
    ),
    "missing-file": Upload("upload", {"bank_name": "hdfc"}, None, http=400, status=0),
}


def test_statement_upload(contract, make_sandbox, subtests):
    api = make_sandbox(entities=5)
    entity_id = api.entity_ids()[0]
    for case, up in UPLOADS.items():
        with subtests.test(case=case):
            form = {k: entity_id if v == "*" else v for k, v in up.form.items()}
            pdf = {**up.pdf, "nonce": case} if isinstance(up.pdf, dict) else up.pdf
            params = {"identity": "true"} if up.identity else {}
            resp = api.post(
                f"/statement/{up.endpoint}/", data=form, files=_file(pdf), params=params
            )
            assert resp.status_code == up.http, resp.text
            body = contract.check(resp)
            assert body.get("status") == up.status
            assert ("identity" in body) == (up.identity and up.http == 200)


def test_statement_upload_duplicate_400(contract, make_sandbox):
    api = make_sandbox(entities=5)
    entity_id = api.entity_ids()[0]
    send = {"data": {"entity_id": entity_id}, "files": _file({"bank": "hdfc", "nonce": "dup"})}
    assert contract.check(api.post("/statement/bankless_upload/", **send))["entity_id"] == entity_id
    again = api.post("/statement/bankless_upload/", **send)
    assert again.status_code == 400
    assert contract.check(again)["status"] == 0


MALFORMED = [
    pytest.param("/entity/", b"{bad", id="entity-bad-json"),
    pytest.param("/entity/", b'{"meta_data": {"id": 1}}', id="entity-meta-not-string"),
    pytest.param("/statement/upload/", b"{bad", id="upload-bad-json"),
    pytest.param("/statement/bankless_upload/", b"{bad", id="bankless-bad-json"),
    pytest.param("/session/", b"[1]", id="session-json-array"),
    pytest.param("/statement/upload_session/", b"[1]", id="upload-session-json-array"),
]


@pytest.mark.parametrize(("path", "raw"), MALFORMED)
def test_malformed_json_body_400(contract, shared_sandbox, path, raw):
    """A body the API cannot use gets a 400 in the operation's declared error shape."""
    headers = {"content-type": "application/json"}
    resp = shared_sandbox.post(path, data=raw, headers=headers)
    assert resp.status_code == 400
    contract.check(resp)


# ---------------------------------------------------------------- sessions

SESSIONS = {
    "minimal": ({"link_id": "APP-S1"}, 200, None),
    "full": (
        {
            "link_id": "APP-S2",
            "redirect_url": "https://lender.example/done",
            "from_date": "01/01/2026",
            "to_date": "30/09/2026",
            "bank_name": "hdfc",
            "mode": "pdf",
            "accept_anything": True,
            "is_mobile_field_editable": False,
        },
        200,
        None,
    ),
    "missing-link-id": ({}, 400, "MISSING_LINK_ID"),
    "missing-date": ({"from_date": "01/01/2026"}, 400, "MISSING_DATE_FIELD"),
    "date-format": (
        {"from_date": "2026-01-01", "to_date": "2026-02-01"},
        400,
        "INVALID_DATE_FORMAT",
    ),
    "date-range": ({"from_date": "01/02/2026", "to_date": "01/01/2026"}, 400, "INVALID_DATE_RANGE"),
    "bank-name": ({"bank_name": "nobank"}, 400, "INVALID_BANK_NAME"),
    "mode-without-bank": ({"mode": "pdf"}, 400, "MISSING_BANK_NAME"),
    "mode-unavailable": ({"bank_name": "hdfc", "mode": "fax"}, 400, "MODE_NOT_AVAILABLE"),
    "mode-not-enabled": ({"bank_name": "hdfc", "mode": "aa"}, 403, "MODE_NOT_ENABLED"),
}


def test_session_create(contract, make_sandbox, subtests):
    api = make_sandbox(entities=5)
    for case, (body, http, code) in SESSIONS.items():
        with subtests.test(case=case):
            link = {} if case == "missing-link-id" else {"link_id": "APP-S"}
            resp = api.post("/session/", json={"api_key": SANDBOX_API_KEY, **link, **body})
            assert resp.status_code == http, resp.text
            assert contract.check(resp).get("error", {}).get("code") == code


def _session(api, **dates: str) -> str:
    resp = api.post("/session/", json={"link_id": "APP-U", "api_key": SANDBOX_API_KEY, **dates})
    assert resp.status_code == 200, resp.text
    return resp.json()["session_id"]


ENCODED = base64.b64encode(statement_pdf(bank="icici")).decode()
UPLOAD_SESSION = {
    "pdf": ({"bank_name": "hdfc"}, {"bank": "hdfc"}, None),
    "base64": ({"bank_name": "icici", "upload_type": "BASE64", "file": ENCODED}, None, None),
    "password": (
        {"bank_name": "sbi", "pdf_password": PASSWORD},
        {"bank": "sbi", "password": PASSWORD},
        None,
    ),
    "session-not-found": ({"session_id": "nope", "bank_name": "hdfc"}, {}, "SESSION_NOT_FOUND"),
    "missing-file": ({"bank_name": "hdfc"}, None, "MISSING_FILE_OBJECT"),
    "bad-base64": (
        {"bank_name": "hdfc", "upload_type": "BASE64", "file": "%%%"},
        None,
        "INVALID_BASE_64",
    ),
    "file-as-text": ({"bank_name": "hdfc", "file": "text"}, None, "INVALID_FILE_OBJECT"),
    "bank-name": ({"bank_name": "nobank"}, {}, "INVALID_BANK_NAME"),
    "unsupported": ({"bank_name": "hdfc"}, "not-a-pdf", "STATEMENT_UNSUPPORTED_FORMAT"),
    "image": ({"bank_name": "hdfc"}, {"image_only": True}, "PDF_IS_IMAGE"),
    "password-incorrect": (
        {"bank_name": "hdfc", "pdf_password": "x"},
        {"password": PASSWORD},
        "PASSWORD_INCORRECT",
    ),
    "bank-mismatch": ({"bank_name": "sbi"}, {"bank": "hdfc"}, "BANK_NAME_MISMATCH"),
}


def test_upload_session(contract, make_sandbox, subtests):
    api = make_sandbox(entities=5)
    session_id = _session(api)
    for case, (form, pdf, code) in UPLOAD_SESSION.items():
        with subtests.test(case=case):
            data = {"session_id": session_id, "upload_type": "PDF", **form}
            resp = api.post("/statement/upload_session/", data=data, files=_file(pdf))
            assert resp.status_code == (400 if code else 200), resp.text
            assert contract.check(resp).get("error", {}).get("code") == code


def test_upload_session_out_of_date_range_400(contract, make_sandbox):
    api = make_sandbox(entities=5)
    session_id = _session(api, from_date="01/01/2020", to_date="01/06/2020")
    form = {"session_id": session_id, "bank_name": "hdfc", "upload_type": "PDF"}
    resp = api.post("/statement/upload_session/", data=form, files=_file({"bank": "hdfc"}))
    assert resp.status_code == 400
    assert contract.check(resp)["error"]["code"] == "OUT_OF_DATE_RANGE"


def test_upload_session_duplicate_400(contract, make_sandbox):
    api = make_sandbox(entities=5)
    form = {"session_id": _session(api), "bank_name": "hdfc", "upload_type": "PDF"}
    send = {"data": form, "files": _file({"bank": "hdfc", "nonce": "dup"})}
    assert contract.check(api.post("/statement/upload_session/", **send))["status"] == 1
    again = api.post("/statement/upload_session/", **send)
    assert again.status_code == 400
    assert contract.check(again)["error"]["code"] == "STATEMENT_DUPLICATE"


# ---------------------------------------------------------------- 401


def _unauthenticated(api, op: tuple[str, str], headers: dict, entity_id: str) -> requests.Response:
    method, path = op
    url = api.base + path.replace("{entity_id}", entity_id)
    body = {"json": {"link_id": "APP-X"}} if path == "/session/" else {}
    return requests.request(method, url, headers=headers, timeout=10, **body)


def test_401_bodies(contract, make_sandbox, subtests):
    """No credentials on any operation; no server-hash where the management page wants it."""
    api = make_sandbox(entities=5)
    entity_id = api.entity_ids()[0]
    without_hash = [("get", path) for path in NEEDS_SERVER_HASH]
    cases = [(op, {}) for op in DOCUMENTED] + [
        (op, {"x-api-key": SANDBOX_API_KEY}) for op in without_hash
    ]
    for op, headers in cases:
        with subtests.test(op=_op_id(op), headers=sorted(headers)):
            resp = _unauthenticated(api, op, headers, entity_id)
            assert resp.status_code == 401
            assert contract.check(resp) == {
                "detail": "Authentication credentials were not provided."
            }


def test_401_without_access_token(contract, make_sandbox, subtests):
    """With the extra token layer on, the API key alone is not enough."""
    api = make_sandbox(entities=5, token_secret="s3cret")
    for op in DOCUMENTED:
        with subtests.test(op=_op_id(op)):
            resp = _unauthenticated(api, op, {"x-api-key": SANDBOX_API_KEY}, NO_SUCH_ENTITY)
            assert resp.status_code == 401
            contract.check(resp)
