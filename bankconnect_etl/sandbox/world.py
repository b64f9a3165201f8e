"""The sandbox's state: which entities exist, what was uploaded, how far processing got.

Generated entities are never stored: entity ``i`` of a world is rebuilt from the seed on
demand (and kept in a small LRU cache). The state holds only what deviates from the
seed: entities created or uploaded through the API, statements added by ``advance``,
and per-entity poll counters. That keeps 100,000 entities well under 500 MB.

All methods run on the server's event loop thread; there is no locking.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from bankconnect_etl.config import hmac_sha256_signer
from bankconnect_etl.sandbox import generator as gen
from bankconnect_etl.vocab import ANALYSIS_ENDPOINTS, NET_BANKING_BANKS

PAGE_SIZE = 10
# Endpoints that carry a `progress` field, each with its own processing state.
# Identity and accounts come from the upload-time checks; these need the transactions.
EXTRACTION_ENDPOINTS = frozenset(ANALYSIS_ENDPOINTS[2:])

SANDBOX_API_KEY = "sandbox-api-key"
SANDBOX_SERVER_HASH = "sandbox-server-hash"


@dataclass(frozen=True)
class SandboxConfig:
    seed: int = 1
    entities: int = 500
    api_key: str = SANDBOX_API_KEY
    server_hash: str = SANDBOX_SERVER_HASH
    token_secret: str | None = None  # enables the ACCESS_TOKEN + TIMESTAMP check
    token_max_skew_s: float = 300.0
    processing_polls: int = 1  # polls that answer `processing` before the final status
    processing_seconds: float = 0.0  # and at least this long after the upload
    latency_ms: float = 0.0
    fault_rate: float = 0.0
    fault_kinds: tuple[str, ...] = ()  # empty = all kinds
    slow_ms: float = 65_000.0  # a `slow` fault: longer than the client's default 60 s read timeout
    retry_after_s: int = 1


@dataclass
class _Created:
    """An entity that exists because of an API call, not because of the seed."""

    header: gen.EntityHeader
    plans: list[gen.AccountPlan] = field(default_factory=list)


@dataclass
class Session:
    session_id: str
    link_id: str
    entity_id: str
    from_date: date | None
    to_date: date | None


def sign_access_token(secret: str, timestamp: str) -> str:
    """The ACCESS_TOKEN the sandbox expects: the client's default signer, so both agree."""
    return hmac_sha256_signer(timestamp, secret)


class World:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.seed = config.seed
        self.started = time.monotonic()
        self.today = gen.WORLD_END + timedelta(days=1)
        # Creation order: an int is generated entity i, a str is a created entity's id.
        self.order: list[int | str] = []
        self.ids: list[str] = []
        self.links: list[str | None] = []
        self.position: dict[str, int] = {}
        self.by_link: dict[str | None, list[int]] = {}
        self.next_index = 0
        self.created: dict[str, _Created] = {}
        self.uploads: dict[str, list[gen.AccountPlan]] = {}  # generated entity id -> plans
        self.extensions: dict[int, list[int]] = {}
        self.file_digests: dict[str, set[str]] = {}
        self.born: dict[str, tuple[tuple[int, ...], float]] = {}  # statement -> baselines, t
        self.entity_born: dict[str, float] = {}
        self.polls: dict[str, list[int]] = {}
        self.sessions: dict[str, Session] = {}
        self.files: dict[str, int] = {}  # statement id -> entity position, once get_pdfs named it
        self.advances = 0
        self.stats: Counter[str] = Counter()
        self.pdf_key = hashlib.sha256(f"pdf-url-key:{self.seed}".encode()).digest()
        self._add_generated(config.entities, born=None)

    # ------------------------------------------------------------------ entities

    def _append(self, key: int | str, header: gen.EntityHeader) -> None:
        pos = len(self.order)
        self.order.append(key)
        self.ids.append(header.entity_id)
        self.links.append(header.link_id)
        self.position[header.entity_id] = pos
        self.by_link.setdefault(header.link_id, []).append(pos)

    def _add_generated(self, n: int, born: float | None) -> list[str]:
        added = []
        for _ in range(n):
            header = gen.entity_header(self.seed, self.next_index)
            self._append(self.next_index, header)
            self.next_index += 1
            if born is not None:
                self.entity_born[header.entity_id] = born
            added.append(header.entity_id)
        return added

    def create_entity(self, link_id: str | None, meta_data: str | None) -> gen.EntityHeader:
        n = len(self.created)
        header = gen.EntityHeader(gen.uuid_for(self.seed, "created", n), link_id, meta_data)
        self.created[header.entity_id] = _Created(header)
        self._append(header.entity_id, header)
        self.entity_born[header.entity_id] = time.monotonic()
        return header

    def count(self, link_id: str | None = None, filtered: bool = False) -> int:
        return len(self.by_link.get(link_id, ())) if filtered else len(self.order)

    def page(self, page: int, link_id: str | None, filtered: bool) -> list[dict]:
        positions = self.by_link.get(link_id, []) if filtered else None
        lo, hi = (page - 1) * PAGE_SIZE, page * PAGE_SIZE
        chosen = positions[lo:hi] if positions is not None else range(lo, min(hi, len(self.order)))
        return [self.summary(p) for p in chosen]

    def summary(self, pos: int) -> dict:
        key = self.order[pos]
        if isinstance(key, int):
            meta = gen.entity_header(self.seed, key).meta_data
        else:
            meta = self.created[key].header.meta_data
        return {"entity_id": self.ids[pos], "link_id": self.links[pos], "meta_data": meta}

    def find(self, entity_id: str) -> int | None:
        return self.position.get(entity_id)

    def data(self, pos: int) -> gen.EntityData:
        key = self.order[pos]
        if isinstance(key, str):
            c = self.created[key]
            return _from_plans(self.seed, c.header, tuple(c.plans))
        ext = tuple(self.extensions.get(key, ()))
        uploaded = self.uploads.get(self.ids[pos])
        if not uploaded:
            return gen.generated_entity(self.seed, key, ext)
        plans = gen.extended_plans(self.seed, key, ext)
        return _from_plans(self.seed, gen.entity_header(self.seed, key), plans + tuple(uploaded))

    # ------------------------------------------------------------------ processing

    def observe(self, pos: int, endpoint: str) -> tuple[gen.EntityData, dict[str, str]]:
        """Data and per-statement status for one poll of ``endpoint``; counts the poll."""
        data = self.data(pos)
        entity_id = self.ids[pos]
        counters = self.polls.setdefault(entity_id, [0] * len(ANALYSIS_ENDPOINTS))
        e = ANALYSIS_ENDPOINTS.index(endpoint)
        seen = counters[e]
        counters[e] += 1
        now = time.monotonic()
        default_born = self.entity_born.get(entity_id, self.started)
        statuses = {}
        for s in data.statements:
            baselines, born_at = self.born.get(
                s.statement_id, ((0,) * len(ANALYSIS_ENDPOINTS), default_born)
            )
            done = (
                seen - baselines[e] >= self.config.processing_polls
                and now - born_at >= self.config.processing_seconds
            )
            if not done:
                statuses[s.statement_id] = "processing"
            elif s.failed_message and endpoint in EXTRACTION_ENDPOINTS:
                statuses[s.statement_id] = "failed"
            else:
                statuses[s.statement_id] = "completed"
        return data, statuses

    def _mark_born(
        self, entity_id: str, before: gen.EntityData, after: gen.EntityData
    ) -> list[str]:
        old = {s.statement_id for s in before.statements}
        counters = tuple(self.polls.get(entity_id, [0] * len(ANALYSIS_ENDPOINTS)))
        now = time.monotonic()
        new = [s.statement_id for s in after.statements if s.statement_id not in old]
        for sid in new:
            self.born[sid] = (counters, now)
        return new

    # ------------------------------------------------------------------ time moves

    def advance(self, new_entities: int, new_statements: int) -> dict:
        self.advances += 1
        self.today += timedelta(days=30)
        r = gen.rng_for(self.seed, "advance", self.advances)
        added = self._add_generated(new_entities, born=time.monotonic())
        candidates = [p for p, k in enumerate(self.order) if isinstance(k, int)]
        chosen = r.sample(candidates, min(new_statements, len(candidates))) if candidates else []
        statements = []
        for pos in chosen:
            index = self.order[pos]
            assert isinstance(index, int)
            before = self.data(pos)
            n_accounts = len(gen.entity_plans(self.seed, index))
            ext = self.extensions.setdefault(index, [0] * n_accounts)
            ext[r.randrange(n_accounts)] += 1
            after = self.data(pos)
            for sid in self._mark_born(self.ids[pos], before, after):
                statements.append({"entity_id": self.ids[pos], "statement_id": sid})
        return {"entities_added": added, "statements_added": statements, "count": len(self.order)}

    def upload(self, pos: int, plan: gen.AccountPlan) -> tuple[gen.EntityData, gen.Statement]:
        """Add the statement behind an uploaded file; an account seen before is extended."""
        entity_id = self.ids[pos]
        before = self.data(pos)
        key = self.order[pos]
        plans = (
            self.created[key].plans
            if isinstance(key, str)
            else self.uploads.setdefault(entity_id, [])
        )
        for k, p in enumerate(plans):
            if p.key == plan.key:
                plans[k] = gen.extend_plan(self.seed, p, 1)
                break
        else:
            plans.append(plan)
        after = self.data(pos)
        new = self._mark_born(entity_id, before, after)
        stmt = after.statement(new[0]) if new else after.statements[-1]
        assert stmt is not None
        return after, stmt

    # ------------------------------------------------------------------ misc

    def pdf_url(self, base: str, stmt: gen.Statement) -> str:
        if stmt.uploaded_on < self.today - timedelta(days=30):
            return ""  # the vendor deletes statement files 30 days after upload
        issued = int(time.time())
        sig = self.sign_pdf(stmt.statement_id, issued)
        return (
            f"{base}/sandbox/files/{stmt.statement_id}.pdf?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            f"&X-Amz-Date={issued}&X-Amz-Expires=3600&X-Amz-Signature={sig}"
        )

    def sign_pdf(self, statement_id: str, issued: int) -> str:
        return hmac.new(
            self.pdf_key, f"{statement_id}:{issued}".encode(), hashlib.sha256
        ).hexdigest()

    def bank_health(self) -> list[dict]:
        bucket = int(time.time() // 300)
        stamp = datetime.fromtimestamp(bucket * 300, UTC).strftime("%Y-%m-%d %H:%M:%S")
        out = []
        for bank in NET_BANKING_BANKS:
            r = gen.rng_for(self.seed, "health", bucket, self.advances, bank)
            up = r.random() < 0.85
            issue = None if up else r.choice(HEALTH_ISSUES)
            out.append({"bank": bank, "updated_at": stamp, "health_up": up, "issue_details": issue})
        return out


HEALTH_ISSUES = (
    "Some cases are failing, when users are entering wrong captcha",
    "Bank website is down for scheduled maintenance",
    "OTP delivery is delayed for some users",
)


@lru_cache(maxsize=256)
def _from_plans(
    seed: int, header: gen.EntityHeader, plans: tuple[gen.AccountPlan, ...]
) -> gen.EntityData:
    return gen.build_entity(seed, header, plans)


# ---------------------------------------------------------------------- payloads


def _money(paise: int) -> float:
    return paise / 100


def _ts(d: date) -> str:
    return f"{d.isoformat()} 00:00:00"


def _months(s: gen.Statement) -> list[str]:
    out, cur = [], date(s.from_date.year, s.from_date.month, 1)
    while cur <= s.to_date:
        out.append(gen.month_key(cur))
        cur = gen.add_months(cur, 1)
    return out


def analysis_common(data: gen.EntityData, statuses: dict[str, str]) -> dict:
    """entity_id, progress, accounts and fraud: the head every analysis endpoint shares."""
    progress = [
        {
            "status": statuses[s.statement_id],
            "message": s.failed_message if statuses[s.statement_id] == "failed" else None,
            "statement_id": s.statement_id,
        }
        for s in data.statements
    ]
    done = [s for s in data.statements if statuses[s.statement_id] == "completed"]
    accounts = []
    for a in data.accounts:
        mine = [s for s in done if s.account_id == a.account_id]
        if not mine:
            continue
        months = sorted({m for s in mine if not s.failed_message for m in _months(s)})
        obj = {
            "months": months,
            "statements": [s.statement_id for s in mine],
            "account_id": a.account_id,
            "ifsc": a.ifsc,
            "micr": a.micr,
            "account_number": a.account_number,
            "bank": a.bank,
        }
        if a.extra_fields:  # fields the docs do not mention, as newer payloads carry
            obj["account_category"] = a.category
            obj["is_od_account"] = a.od_limit is not None
        accounts.append(obj)
    fraudulent = [s for s in done if s.fraud]
    fraud = {
        "fraudulent_statements": [s.statement_id for s in fraudulent],
        "fraud_type": [
            {"statement_id": s.statement_id, "fraud_type": ft}
            | ({"transaction_hash": h} if h else {})
            for s in fraudulent
            for ft, h in s.fraud
        ],
    }
    return {
        "entity_id": data.header.entity_id,
        "progress": progress,
        "accounts": accounts,
        "fraud": fraud,
    }


def _visible(data: gen.EntityData, statuses: dict[str, str]) -> list[gen.Txn]:
    return [t for t in data.transactions if statuses.get(t.statement_id) == "completed"]


def transaction_obj(t: gen.Txn, extra: bool = False) -> dict:
    obj = {
        "transaction_note": t.note,
        "hash": t.hash,
        "description": t.description,
        "account_id": t.account_id,
        "transaction_type": t.ttype,
        "amount": _money(t.amount),
        "date": _ts(t.day),
        "merchant_category": t.merchant,
        "balance": _money(t.balance),
        "transaction_channel": t.channel,
    }
    if extra:
        obj["unclean_merchant"] = t.note.split("/")[-1][:24]
    return obj


def _extra_accounts(data: gen.EntityData) -> set[str]:
    return {a.account_id for a in data.accounts if a.extra_fields}


def identity_obj(a: gen.Account) -> dict:
    """An account's identity: the four documented fields; an overdraft account, and one
    of the accounts with newer payloads, also carry the category and limits the reference
    says identity may add (their overdraft limit is what the OD measures divide by)."""
    obj: dict = {
        "address": a.address,
        "account_number": a.account_number,
        "account_id": a.account_id,
        "name": a.name,
    }
    if a.extra_fields or a.od_limit is not None:
        obj["account_category"] = a.category
        obj["credit_limit"] = None
        obj["od_limit"] = _money(a.od_limit) if a.od_limit is not None else None
    return obj


def payload(endpoint: str, data: gen.EntityData, statuses: dict[str, str]) -> dict:
    body = analysis_common(data, statuses)
    if endpoint == "accounts":
        return body
    if endpoint == "identity":
        done = {s.account_id for s in data.statements if statuses[s.statement_id] == "completed"}
        body["identity"] = [identity_obj(a) for a in data.accounts if a.account_id in done]
        return body
    rows = _visible(data, statuses)
    extra = _extra_accounts(data)
    if endpoint == "transactions":
        body["transactions"] = [transaction_obj(t, t.account_id in extra) for t in rows]
    elif endpoint == "lender_transactions":
        body["transactions"] = [
            transaction_obj(t) for t in rows if t.description == "lender_transaction"
        ]
    elif endpoint == "salary":
        body["transactions"] = [
            {
                "balance": _money(t.balance),
                "hash": t.hash,
                "description": t.description,
                "clean_transaction_note": t.employer,
                "account_id": t.account_id,
                "transaction_type": t.ttype,
                "date": _ts(t.day),
                "amount": _money(t.amount),
                "month_year": t.salary_month,
                "merchant_category": t.merchant,
                "transaction_channel": t.channel,
                "transaction_note": t.note,
            }
            for t in rows
            if t.tag == "salary"
        ]
    elif endpoint == "recurring_transactions":
        body["transactions"] = recurring_sets(rows)
    else:
        raise KeyError(endpoint)
    return body


def _set_channel(tag: str, rows: list[gen.Txn]) -> str:
    """The upper-case channel of a recurring set, with the API's own variations."""
    if tag.startswith("emi"):
        return "AUTO_DEBIT_PAYMENT"
    if tag == "sip":
        return ("OTHER", "Other", "INVESTMENT")[int(rows[0].account_id[:2], 16) % 3]
    return rows[0].channel.upper()


def recurring_sets(rows: list[gen.Txn]) -> dict:
    groups: dict[tuple[str, str], list[gen.Txn]] = {}
    for t in rows:
        if t.tag and t.ttype == ("credit" if t.tag == "salary" else "debit"):
            groups.setdefault((t.account_id, t.tag), []).append(t)
    out: dict[str, list] = {"credit_transactions": [], "debit_transactions": []}
    for (account_id, tag), txns in groups.items():
        if len(txns) < 2:
            continue
        median = round(statistics.median(t.amount for t in txns))
        out["credit_transactions" if tag == "salary" else "debit_transactions"].append(
            {
                "account_id": account_id,
                "end_date": _ts(txns[-1].day),
                "transactions": [
                    {
                        "transaction_channel": t.channel,
                        "transaction_note": t.note,
                        "hash": t.hash,
                        "account_id": t.account_id,
                        "transaction_type": t.ttype,
                        "amount": _money(t.amount),
                        "date": _ts(t.day),
                        "balance": _money(t.balance),
                        "description": t.description,
                    }
                    for t in txns
                ],
                "median": _money(median),
                "start_date": _ts(txns[0].day),
                "transaction_channel": _set_channel(tag, txns),
            }
        )
    return out


def link_overview(world: World, link_id: str) -> dict:
    items = []
    for pos in world.by_link.get(link_id, []):
        ok = [s for s in world.data(pos).statements if not s.failed_message]
        items.append(
            {
                "entity_id": world.ids[pos],
                "months": sorted({m for s in ok for m in _months(s)}),
                "bank": ok[0].bank if ok else None,  # null until a statement was processed
            }
        )
    return {"progress_data": items, "link_id": link_id}


def upload_identity(data: gen.EntityData, stmt: gen.Statement) -> dict:
    a = next(a for a in data.accounts if a.account_id == stmt.account_id)
    return {
        "account_id": a.account_id,
        "account_number": a.account_number,
        "address": a.address,
        "name": a.name,
    }


def session_upload_body(data: gen.EntityData, stmt: gen.Statement, session_id: str) -> dict:
    a = next(a for a in data.accounts if a.account_id == stmt.account_id)
    rows = [t for t in data.transactions if t.statement_id == stmt.statement_id]
    opening = (
        rows[0].balance - (rows[0].amount if rows[0].ttype == "credit" else -rows[0].amount)
        if rows
        else None
    )
    dr = {"from_date": stmt.from_date.isoformat(), "to_date": stmt.to_date.isoformat()}
    masked = "X" * 7 + a.account_number[-4:] if a.account_number else None
    return {
        "bank_name": stmt.bank,
        "statement_id": stmt.statement_id,
        "identity": {
            "account_number": a.account_number,
            "name": a.name,
            "address": a.address,
            "ifsc": a.ifsc,
            "micr": a.micr,
            "account_category": a.category,
            "credit_limit": None,
            "od_limit": _money(a.od_limit) if a.od_limit else None,
            "account_id": a.account_id,
            "bank_name": stmt.bank,
        },
        "date_range": dr,
        "opening_date": stmt.from_date.isoformat() if rows else None,
        "opening_bal": _money(opening) if opening is not None else None,
        "closing_bal": _money(rows[-1].balance) if rows else None,
        "is_fraud": False,
        "fraud_type": None,
        "page_count": max(1, len(rows) // 25),
        "metadata_analysis": {"name_matches": []},
        "country_code": "IN",
        "currency_code": "INR",
        "extracted_date_range": dr,
        "account_id": a.account_id,
        "masked_account_number": masked,
        "status": 1,
        "session_id": session_id,
    }


def fault_rng(seed: int) -> random.Random:
    return gen.rng_for(seed, "faults")
