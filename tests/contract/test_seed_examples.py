"""Served responses against the example payloads in the vendor's pages (shared/seeds)."""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from bankconnect_etl.sandbox import API_PREFIX, SANDBOX_API_KEY, statement_pdf
from bankconnect_etl.vocab import ANALYSIS_ENDPOINTS


def _seed_pages() -> Path:
    """The vendor's pages: $BANKCONNECT_SEEDS, or shared/seeds beside this clone (as CI has
    it). They are not copied into the repo: some examples look like real personal data."""
    if "BANKCONNECT_SEEDS" in os.environ:
        candidates = [Path(os.environ["BANKCONNECT_SEEDS"])]
    else:
        candidates = [p / "shared" / "seeds" for p in Path(__file__).resolve().parents]
    for path in candidates:
        if any(path.glob("*.txt")):
            return path
    raise RuntimeError(
        "the vendor's API pages were not found: set BANKCONNECT_SEEDS to their folder, "
        "or clone this repo beside the steering repo's shared/"
    )


SEEDS = _seed_pages()
ANALYSIS = ANALYSIS_ENDPOINTS
# Where the pages say a value may be null although their example shows a string.
NULLABLE = (
    "ifsc",
    "micr",
    "account_number",
    "name",
    "address",
    "link_id",
    "meta_data",
    "pdf_password",
    "issue_details",
    "fraud_type",
    "message",
    "next",
    "previous",
    "date_range.from_date",
    "date_range.to_date",
    "progress_data[].bank",
)

# ---------------------------------------------------------------- reading the pages

ENDPOINT = re.compile(r"\b(GET|POST)\s+\S*?(?:/v1|version\}\})(/\S*?)\**$")
STRING = re.compile(r'"(?:\\.|[^"\\])*"')


def endpoint_of(line: str) -> str | None:
    """'GET /entity/{entity_id}/salary/' for a page's endpoint line, else None."""
    m = ENDPOINT.search(line.strip())
    if not m:
        return None
    path = m[2].replace("`", "").split("?")[0].replace("<entity_id>", "{entity_id}")
    return f"{m[1]} {path}"


def _brackets(line: str) -> tuple[int, int]:
    bare = STRING.sub('""', line)
    return sum(map(bare.count, "{[")), sum(map(bare.count, "}]"))


def _parse(lines: list[str]) -> object:
    """json.loads after dropping `//...` and bare `...` lines and the commas they leave."""
    kept = [ln for ln in lines if not ln.strip().startswith("//") and ln.strip() != "..."]
    text = re.sub(r",(\s*[\]}])", r"\1", "\n".join(kept))
    return json.loads("{" + text + "}" if text.lstrip().startswith('"') else text)


@dataclass(frozen=True)
class Example:
    page: str
    endpoint: str | None  # the endpoint line the block follows
    label: str  # the text line right before the block
    value: object

    @property
    def key(self) -> str | None:
        """Which served response the example describes, from the line it follows."""
        label = self.label.lower()
        for word, kind in (("401", "401"), ("progress", "progress"), ("fraud field", "fraud")):
            if word in label:
                return kind
        kind = "error" if "error" in label else "response" if "response" in label else None
        return f"{self.endpoint} {kind}" if kind and self.endpoint else None


def examples(path: Path) -> Iterator[Example]:
    """JSON blocks of a page: fenced (markdown) or bare balanced braces (plain text)."""
    endpoint, label = None, ""
    lines = iter(path.read_text().splitlines())
    for line in lines:
        text = line.strip()
        if not text or text.startswith("```"):
            continue
        endpoint = endpoint_of(text) or endpoint
        if not text.startswith(("{", "[", '"error":')):
            label = text
            continue
        block, (opened, closed) = [line], _brackets(line)
        while not opened or opened != closed:
            block.append(next(lines))
            o, c = _brackets(block[-1])
            opened, closed = opened + o, closed + c
        yield Example(path.name[:3], endpoint, label, _parse(block))


PAGES = sorted(SEEDS.glob("*.txt"))
EXAMPLES = [ex for page in PAGES for ex in examples(page)]


# ---------------------------------------------------------------- comparing


def _type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "array", dict: "object"}[type(value)]


def _nullable(path: str) -> bool:
    return any(path == f"$.{n}" or path.endswith(f".{n}") for n in NULLABLE)


def mismatches(example: object, served: object, path: str, seen: set[str]) -> list[str]:
    """Example keys missing from ``served`` or served with an incompatible JSON type."""
    if example is None:
        return []
    if served is None:
        if isinstance(example, str) and _nullable(path):
            return []
        return [f"{path}: null where the example has {_type(example)}"]
    if _type(served) != _type(example):
        return [f"{path}: {_type(served)} where the example has {_type(example)}"]
    seen.add(path)
    if isinstance(example, dict):
        out = []
        for key, value in example.items():
            if key in served:
                out += mismatches(value, served[key], f"{path}.{key}", seen)
            else:
                out.append(f"{path}.{key}: missing")
        return out
    if isinstance(example, list) and example:
        return [m for item in served for m in mismatches(example[0], item, f"{path}[]", seen)]
    return []


def non_null_paths(example: object, path: str = "$") -> set[str]:
    if example is None:
        return set()
    out = {path}
    if isinstance(example, dict):
        for key, value in example.items():
            out |= non_null_paths(value, f"{path}.{key}")
    elif isinstance(example, list) and example:
        out |= non_null_paths(example[0], f"{path}[]")
    return out


# ---------------------------------------------------------------- served responses

SERVED: dict[str, Callable[..., list]] = {}
WRITES: set[str] = set()


def served(key: str, writes: bool = False) -> Callable:
    """Register what the sandbox serves for an example key; `writes` needs its own sandbox."""

    def register(fn: Callable) -> Callable:
        SERVED[key] = fn
        if writes:
            WRITES.add(key)
        return fn

    return register


@dataclass
class World:
    """Completed responses for every entity of the shared 60-entity world."""

    api: object
    ids: list[str]
    analysis: dict[str, list[dict]]


@pytest.fixture(scope="module")
def world(shared_sandbox) -> World:
    ids = shared_sandbox.entity_ids()
    assert len(ids) == 60
    analysis = {name: [shared_sandbox.until_done(e, name) for e in ids] for name in ANALYSIS}
    return World(shared_sandbox, ids, analysis)


def _json(resp: requests.Response, status: int = 200) -> object:
    assert resp.status_code == status, resp.text
    return resp.json()


def _pdf(name: str, **spec: object) -> dict:
    return {"file": ("statement.pdf", statement_pdf(nonce=name, **spec), "application/pdf")}


def _session(api) -> str:
    body = {"link_id": "APP-S", "api_key": SANDBOX_API_KEY}
    return _json(api.post("/session/", json=body))["session_id"]


for _name in ANALYSIS:
    served(f"GET /entity/{{entity_id}}/{_name}/ response")(
        lambda api, world, name=_name: world.analysis[name]
    )


@served("progress")
def _progress(api, world):
    return [body["progress"] for bodies in world.analysis.values() for body in bodies]


@served("fraud")
def _fraud(api, world):
    return [body["fraud"] for body in world.analysis["accounts"]]


@served("GET /entity/ response")
def _entity_pages(api, world):
    pages, url = [], api.base + "/entity/"
    while url:
        pages.append(_json(api.http.get(url, timeout=10)))
        url = pages[-1]["next"]
    return pages


@served("GET /entity/{entity_id}/ response")
def _entity_details(api, world):
    return [_json(api.get(f"/entity/{e}/")) for e in world.ids]


@served("GET /entity/link_overview/ response")
def _link_overviews(api, world):
    links = {detail["link_id"] for detail in _entity_details(api, world)} - {None}
    return [_json(api.get("/entity/link_overview/", params={"link_id": x})) for x in links]


@served("GET /entity/{entity_id}/get_pdfs/ response")
def _pdfs(api, world):
    return [_json(api.get(f"/entity/{e}/get_pdfs/")) for e in world.ids]


@served("GET /net_banking_health/ response")
def _health(api, world):
    return [_json(api.get("/net_banking_health/"))]


@served("401")
def _unauthenticated(api, world):
    entity = world.ids[0]
    calls = [
        ("get", "/entity/", {}),
        ("get", "/entity/", {"headers": {"x-api-key": SANDBOX_API_KEY}}),
        ("get", f"/entity/{entity}/transactions/", {}),
        ("post", "/statement/upload/", {}),
        ("post", "/session/", {"json": {"link_id": "APP-X", "api_key": "wrong"}}),
    ]
    return [
        _json(requests.request(m, api.base + path, timeout=10, **kw), 401) for m, path, kw in calls
    ]


@served("POST /entity/ response", writes=True)
def _created(api, world):
    bodies = ({"link_id": "APP-1", "meta_data": '{"id":123}'}, {"link_id": "APP-2"}, {})
    return [_json(api.post("/entity/", json=body), 201) for body in bodies]


@served("POST /statement/bankless_upload/ response", writes=True)
def _uploaded(api, world):
    """The page gives one example for both upload APIs."""
    params = {"identity": "true"}
    return [
        _json(
            api.post(
                "/statement/upload/", data={"bank_name": "hdfc"}, files=_pdf("a"), params=params
            )
        ),
        _json(api.post("/statement/bankless_upload/", files=_pdf("b", bank="axis"), params=params)),
    ]


@served("POST /statement/bankless_upload/ error", writes=True)
def _upload_errors(api, world):
    """The 400 cases the page lists: bank not identified, wrong password, not parsable."""
    entity_id = api.entity_ids()[0]
    sends = [
        ("bankless_upload", {}, _pdf("c", bank=None)),
        ("upload", {"bank_name": "hdfc", "pdf_password": "no"}, _pdf("d", password="PASS0101")),
        ("bankless_upload", {}, _pdf("e", image_only=True)),
        ("upload", {"bank_name": "hdfc", "entity_id": entity_id}, _pdf("f", image_only=True)),
    ]
    return [
        _json(api.post(f"/statement/{name}/", data=form, files=files), 400)
        for name, form, files in sends
    ]


@served("POST /session/ response", writes=True)
def _sessions(api, world):
    full = {"from_date": "01/01/2026", "to_date": "30/09/2026", "bank_name": "sbi", "mode": "pdf"}
    bodies = ({"link_id": "APP-1"}, {"link_id": "APP-2", "redirect_url": "https://x.test", **full})
    return [_json(api.post("/session/", json={"api_key": SANDBOX_API_KEY, **b})) for b in bodies]


@served("POST /session/ error", writes=True)
def _session_errors(api, world):
    bodies = [
        ({"from_date": "2026-01-01", "to_date": "2026-02-01"}, 400),
        ({"from_date": "01/02/2026", "to_date": "01/01/2026"}, 400),
        ({"bank_name": "nobank"}, 400),
        ({"mode": "pdf"}, 400),
        ({"bank_name": "hdfc", "mode": "aa"}, 403),
    ]
    return [
        _json(api.post("/session/", json={"link_id": "L", "api_key": SANDBOX_API_KEY, **b}), status)
        for b, status in bodies
    ]


@served("POST /statement/upload_session/ response", writes=True)
def _session_uploads(api, world):
    form = {"session_id": _session(api), "bank_name": "icici"}
    encoded = base64.b64encode(statement_pdf(bank="icici", nonce="h")).decode()
    return [
        _json(
            api.post(
                "/statement/upload_session/",
                data={**form, "upload_type": "PDF"},
                files=_pdf("g", bank="icici"),
            )
        ),
        _json(
            api.post(
                "/statement/upload_session/",
                data={**form, "upload_type": "BASE64", "file": encoded},
            )
        ),
    ]


@served("POST /statement/upload_session/ error", writes=True)
def _session_upload_errors(api, world):
    form = {"session_id": _session(api), "bank_name": "hdfc", "upload_type": "PDF"}
    sends = [
        ({**form, "session_id": "nope"}, _pdf("i")),
        (form, _pdf("j", password="PASS0101")),
        (form, _pdf("k", bank="sbi")),
        (form, _pdf("l", image_only=True)),
    ]
    return [
        _json(api.post("/statement/upload_session/", data=data, files=files), 400)
        for data, files in sends
    ]


# ---------------------------------------------------------------- the examples


def test_every_page_example_is_read_and_mapped():
    """The extraction finds each page's blocks; only the meta_data illustration is no response."""
    per_page = {page.name[:3]: sum(ex.page == page.name[:3] for ex in EXAMPLES) for page in PAGES}
    assert per_page == {"000": 3, "001": 5, "002": 14, "003": 4, "004": 2}
    unmapped = [(ex.page, ex.value) for ex in EXAMPLES if ex.key is None]
    assert unmapped == [("002", {"id": 123, "value": "Hello World"})]
    assert {ex.key for ex in EXAMPLES if ex.key} == set(SERVED)


def test_every_endpoint_the_pages_name_is_in_openapi(shared_sandbox):
    named = {
        e for page in PAGES for line in page.read_text().splitlines() if (e := endpoint_of(line))
    }
    assert len(named) == 16
    paths = shared_sandbox.admin("GET", "/openapi.json").json()["paths"]
    missing = []
    for endpoint in sorted(named):
        method, path = endpoint.split()
        if method.lower() not in paths.get(API_PREFIX + path, {}):
            missing.append(endpoint)
    assert not missing


MAPPED = [ex for ex in EXAMPLES if ex.key]


@pytest.mark.parametrize("example", MAPPED, ids=[f"{ex.page}:{ex.key}" for ex in MAPPED])
def test_served_response_has_the_example_fields(example, world, make_sandbox):
    """Each example key exists in every served response, with a compatible JSON type."""
    api = make_sandbox(entities=5) if example.key in WRITES else world.api
    bodies = SERVED[example.key](api, world)
    seen: set[str] = set()
    problems = sorted({m for body in bodies for m in mismatches(example.value, body, "$", seen)})
    assert not problems, "\n".join(problems)
    unchecked = non_null_paths(example.value) - seen
    assert not unchecked, f"no served value to compare for {sorted(unchecked)}"


# ---------------------------------------------------------------- documented formats


def _rows(world: World) -> Iterator[dict]:
    """Every transaction object of the world, from every endpoint that lists them."""
    for name in ("transactions", "salary", "lender_transactions"):
        for body in world.analysis[name]:
            yield from body["transactions"]
    for recurring_set in _recurring_sets(world):
        yield from recurring_set["transactions"]


def _recurring_sets(world: World) -> Iterator[dict]:
    for body in world.analysis["recurring_transactions"]:
        yield from body["transactions"]["credit_transactions"]
        yield from body["transactions"]["debit_transactions"]


def _dates(world):
    for row in _rows(world):
        yield row["date"]
    for recurring_set in _recurring_sets(world):
        yield recurring_set["start_date"]
        yield recurring_set["end_date"]


def _months(world):
    for bodies in world.analysis.values():
        for body in bodies:
            for account in body["accounts"]:
                yield from account["months"]
    for overview in _link_overviews(world.api, world):
        for item in overview["progress_data"]:
            yield from item["months"]


FORMATS = {
    "transaction-date": (_dates, r"\d{4}-\d{2}-\d{2} 00:00:00"),
    "hash": (lambda w: (row["hash"] for row in _rows(w)), r"[0-9a-f]{32}"),
    "salary-month-year": (
        lambda w: (t["month_year"] for b in w.analysis["salary"] for t in b["transactions"]),
        r"(1[0-2]|[1-9])-\d{4}",
    ),
    "account-months": (_months, r"\d{4}-\d{2}"),
    "recurring-channel": (
        lambda w: (s["transaction_channel"] for s in _recurring_sets(w)),
        r"[A-Z0-9_]+|Other",
    ),
    "health-bank": (lambda w: (h["bank"] for h in _health(w.api, w)[0]), r"[A-Z0-9_]+"),
    "health-updated-at": (
        lambda w: (h["updated_at"] for h in _health(w.api, w)[0]),
        r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}",
    ),
}


@pytest.mark.parametrize(("values", "pattern"), FORMATS.values(), ids=FORMATS)
def test_documented_format(world, values, pattern):
    found = list(values(world))
    assert len(found) > 0
    wrong = sorted({v for v in found if not re.fullmatch(pattern, v)})
    assert not wrong, f"{len(wrong)} values break {pattern}: {wrong[:10]}"


def test_transaction_hash_is_unique_per_entity(world):
    """'a unique identifying hash for each transaction' (page 002)."""
    for body in world.analysis["transactions"]:
        hashes = [t["hash"] for t in body["transactions"]]
        assert len(hashes) == len(set(hashes)), body["entity_id"]
