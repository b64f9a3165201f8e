"""API responses → typed table rows, validated, with bad records set aside. No I/O.

Input is one *entity record* per entity: the JSON-able form of what extraction fetched
(``entity_record``), which is also what the raw zone stores, so a rebuild from raw goes
through exactly this code. ``BatchTransform`` takes many entity records and returns one
``Batch``: Arrow tables per warehouse table, the quarantine, and the run-summary counts.

Per batch, not per entity: pandera's cost is per call, so each kind of record is
validated once for the whole batch (``schemas.wire``), then the typed rows are checked
against the table contract (``schemas.tables``).

What happens to what:
- a record failing a check → ``quarantine`` (every failed check, the raw record); the rest
  of its entity loads;
- a response of the wrong shape (not an object, a list that is not a list, a documented
  field absent from every record) → the entity fails with a one-line reason and keeps its
  previous rows; the other entities load;
- pending (still processing at the deadline) or failed to fetch → only the ``entities`` row
  changes; the previous rows stay;
- unknown fields and values outside the documented enumerations → kept, and counted.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pandera.pandas as pa
import pyarrow as pyarrow_
import pyarrow.compute as pc

from bankconnect_etl.extract import EntityBundle, fingerprint
from bankconnect_etl.schemas.tables import TABLES
from bankconnect_etl.schemas.wire import (
    RECORDS,
    api_date,
    frame_column,
    month_year,
    parse_api_dates,
)
from bankconnect_etl.vocab import (
    ANALYSIS_ENDPOINTS,
    DESCRIPTIONS,
    DESCRIPTIONS_SEEN,
    FRAUD_TYPES_SEEN,
    MERCHANT_CATEGORIES,
    TRANSACTION_CHANNELS,
)

MONEY = pyarrow_.decimal128(18, 2)
TS = pyarrow_.timestamp("us")

KNOWN_VALUES = {
    "transaction_channel": frozenset(c.lower() for c in TRANSACTION_CHANNELS),
    "description": frozenset(DESCRIPTIONS + DESCRIPTIONS_SEEN),
    "merchant_category": frozenset((*MERCHANT_CATEGORIES, "")),
    "fraud_type": frozenset(FRAUD_TYPES_SEEN),
}

# record kind → the table its rows go to (for quarantine.table_name)
KIND_TABLE = {
    "account": "accounts",
    "identity": "identities",
    "progress": "statements",
    "transaction": "transactions",
    "lender_transaction": "lender_transactions",
    "salary_transaction": "salary_transactions",
    "recurring_set": "recurring_sets",
    "recurring_transaction": "recurring_set_transactions",
    "fraud": "fraud_flags",
    "statement_file": "statement_files",
    "bank_health": "bank_health",
}
WIRE = {**RECORDS, "lender_transaction": RECORDS["transaction"]}


class ShapeError(ValueError):
    """A response is not the shape the endpoint documents: the entity cannot load."""


# ---------------------------------------------------------------------- entity records


def entity_record(
    bundle: EntityBundle, summary: dict | None = None, fetched_at: datetime | None = None
) -> dict:
    """The JSON-able record of one entity's fetch: the transform's input and the raw zone's."""
    return {
        "entity_id": bundle.entity_id,
        "summary": summary or {},
        "fetched_at": (fetched_at or datetime.now(UTC)).isoformat(),
        "status": bundle.status,
        "error": bundle.error,
        "pending_endpoints": list(bundle.pending_endpoints),
        "responses": bundle.responses,
    }


# ---------------------------------------------------------------------- the batch


@dataclass
class Stats:
    """What a batch did, for the run summary."""

    entities: Counter = field(default_factory=Counter)  # by sync status
    rows: Counter = field(default_factory=Counter)  # loaded rows per table
    quarantined: Counter = field(default_factory=Counter)  # (table, check) → rows
    drift: Counter = field(default_factory=Counter)  # (record kind, field) → records
    unknown_values: Counter = field(default_factory=Counter)  # (column, value) → rows
    failures: list[tuple[str, str]] = field(default_factory=list)  # (entity, reason)

    def merge(self, other: Stats) -> None:
        for name in ("entities", "rows", "quarantined", "drift", "unknown_values"):
            getattr(self, name).update(getattr(other, name))
        self.failures.extend(other.failures)

    def as_json(self) -> dict:
        def nest(c: Counter) -> dict:
            out: dict[str, dict[str, int]] = defaultdict(dict)
            for (a, b), n in sorted(c.items()):
                out[a][b] = n
            return dict(out)

        return {
            "entities": dict(self.entities),
            "rows": dict(self.rows),
            "quarantined": nest(self.quarantined),
            "schema_drift": nest(self.drift),
            "unknown_values": nest(self.unknown_values),
            "failed_entities": [{"entity_id": e, "reason": r} for e, r in self.failures[:100]],
        }


@dataclass
class Batch:
    """Rows for the warehouse from many entities."""

    replace: list[str]  # entities whose rows in every entity table are replaced
    touch: list[str]  # entities whose ``entities`` row alone changes (pending, failed)
    tables: dict[str, pyarrow_.Table]
    stats: Stats


class _Kind:
    """Records of one kind collected across the batch, with the context each row needs."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.records: list[Any] = []
        self.ctx: list[dict] = []

    def add(self, records: Iterable[Any], **ctx: Any) -> None:
        for r in records:
            self.records.append(r)
            self.ctx.append(ctx)


class BatchTransform:
    """Collects entity records, then turns them into one ``Batch``."""

    def __init__(self, run_id: str, now: datetime | None = None) -> None:
        self.run_id = run_id
        self.now = (now or datetime.now(UTC)).replace(tzinfo=None)
        self.kinds = {k: _Kind(k) for k in KIND_TABLE}
        self._listed: set[tuple[Any, Any]] | None = None  # (entity, account) the API lists
        self.entity_rows: list[dict] = []
        self.replace: list[str] = []
        self.touch: list[str] = []
        self.stats = Stats()
        self.extra_rows: dict[str, list[dict]] = defaultdict(list)
        self.wire: dict[str, pyarrow_.Table] = {}  # checked transaction columns, by kind
        self.quarantine: list[dict] = []

    # ------------------------------------------------------------------ input

    def add(self, record: dict) -> None:
        entity_id = str(record["entity_id"])
        status = record.get("status", "complete")
        fetched = _naive(datetime.fromisoformat(record["fetched_at"]))
        responses = record.get("responses") or {}
        summary = {**(record.get("summary") or {})}
        detail = responses.get("entity")
        if isinstance(detail, dict):
            summary.update({k: detail[k] for k in ("link_id", "meta_data") if k in detail})
        error = record.get("error")
        fp = None
        if status in ("complete", "empty"):
            staged = {k: len(v.records) for k, v in self.kinds.items()}
            try:
                self._collect(entity_id, responses)
                accounts = responses.get("accounts")
                fp = fingerprint(accounts) if isinstance(accounts, dict) else None
            except ShapeError as exc:
                for k, n in staged.items():  # nothing of a malformed entity loads
                    del self.kinds[k].records[n:], self.kinds[k].ctx[n:]
                status, error = "failed", str(exc)
        if status in ("complete", "empty"):
            self.replace.append(entity_id)
        else:
            self.touch.append(entity_id)
            if status == "failed":
                self.stats.failures.append((entity_id, error or "unknown error"))
        self.stats.entities[status] += 1
        self.entity_rows.append(
            {
                "entity_id": entity_id,
                "link_id": _text_or_none(summary.get("link_id")),
                "meta_data": _text_or_none(summary.get("meta_data")),
                "first_seen_at": fetched,
                "last_attempt_at": fetched,
                "last_synced_at": fetched if status in ("complete", "empty") else None,
                "sync_status": status,
                "sync_error": error if status == "failed" else None,
                "pending_endpoints": list(record.get("pending_endpoints") or []),
                "fingerprint": fp,
                "run_id": self.run_id,
            }
        )

    def add_bank_health(self, body: Any, observed_at: datetime) -> None:
        """One observation of net_banking_health (a list of per-bank objects)."""
        if not isinstance(body, list):
            raise ShapeError(f"net_banking_health: expected a list, got {_type(body)}")
        self.kinds["bank_health"].add(body, observed_at=_naive(observed_at))

    def _collect(self, entity_id: str, responses: dict) -> None:
        k = self.kinds
        drift: Counter = Counter()
        analysis = {}
        for endpoint in ANALYSIS_ENDPOINTS:
            if endpoint in responses:
                analysis[endpoint] = _obj(responses[endpoint], endpoint)
        accounts_body = analysis.get("accounts", {})
        accounts = _list(accounts_body, "accounts", "accounts")
        single = {}
        for a in accounts:
            statements = a.get("statements") if isinstance(a, dict) else None
            if isinstance(statements, list) and len(statements) == 1:
                single[a.get("account_id")] = statements[0]
        _require(accounts, "accounts", RECORDS["account"], drift, "account")
        k["account"].add(accounts, entity_id=entity_id)

        for endpoint, body in analysis.items():
            progress = _list(body, "progress", endpoint)
            _require(progress, endpoint + " progress", RECORDS["progress"], drift, "progress")
            k["progress"].add(progress, entity_id=entity_id, endpoint=endpoint)
        fraud = accounts_body.get("fraud") or {}
        if not isinstance(fraud, dict):
            raise ShapeError(f"accounts: 'fraud' is {_type(fraud)}, not an object")
        flagged = fraud.get("fraudulent_statements") or []
        if not isinstance(flagged, list):
            raise ShapeError("accounts: 'fraud.fraudulent_statements' is not a list")
        fraud_types = fraud.get("fraud_type") or []
        if not isinstance(fraud_types, list):
            raise ShapeError("accounts: 'fraud.fraud_type' is not a list")
        k["fraud"].add(fraud_types, entity_id=entity_id)

        if "identity" in analysis:
            rows = _list(analysis["identity"], "identity", "identity")
            _require(rows, "identity", RECORDS["identity"], drift, "identity")
            k["identity"].add(rows, entity_id=entity_id)

        seq_of: dict[str, int] = {}
        if "transactions" in analysis:
            rows = _list(analysis["transactions"], "transactions", "transactions")
            _require(rows, "transactions", RECORDS["transaction"], drift, "transaction")
            per_account: Counter = Counter()
            account = None
            for r in rows:
                # a record without a readable account counts in the account it sits among,
                # so its quarantine leaves a gap there instead of renumbering the rest
                if isinstance(r, dict) and isinstance(r.get("account_id"), str):
                    account = r["account_id"]
                per_account[account] += 1
                seq = per_account[account]
                if isinstance(r, dict) and isinstance(r.get("hash"), str):
                    seq_of.setdefault(r["hash"], seq)
                k["transaction"].records.append(r)
                k["transaction"].ctx.append(
                    {
                        "entity_id": entity_id,
                        "txn_seq": seq,
                        "statement_id": single.get(account),
                        "account_id": account,  # for its quarantine row, should it fail
                    }
                )
        for endpoint, kind in (
            ("salary", "salary_transaction"),
            ("lender_transactions", "lender_transaction"),
        ):
            if endpoint in analysis:
                rows = _list(analysis[endpoint], "transactions", endpoint)
                _require(rows, endpoint, WIRE[kind], drift, kind)
                for r in rows:
                    h = r.get("hash") if isinstance(r, dict) else None
                    account = r.get("account_id") if isinstance(r, dict) else None
                    k[kind].records.append(r)
                    k[kind].ctx.append(
                        {
                            "entity_id": entity_id,
                            "txn_seq": seq_of.get(h),
                            "statement_id": single.get(account),
                        }
                    )
        if "recurring_transactions" in analysis:
            sets = analysis["recurring_transactions"].get("transactions")
            if not isinstance(sets, dict):
                raise ShapeError(
                    f"recurring_transactions: 'transactions' is {_type(sets)}, not an object"
                )
            for direction in ("credit", "debit"):
                members = sets.get(f"{direction}_transactions") or []
                if not isinstance(members, list):
                    raise ShapeError(
                        f"recurring_transactions: '{direction}_transactions' is not a list"
                    )
                _require(
                    members,
                    "recurring_transactions",
                    RECORDS["recurring_set"],
                    drift,
                    "recurring_set",
                )
                k["recurring_set"].add(members, entity_id=entity_id, direction=direction)
        if "get_pdfs" in responses:
            body = _obj(responses["get_pdfs"], "get_pdfs")
            rows = _list(body, "statements", "get_pdfs")
            _require(rows, "get_pdfs", RECORDS["statement_file"], drift, "statement_file")
            k["statement_file"].add(rows, entity_id=entity_id)
        self.stats.drift.update(drift)
        self.extra_rows["fraudulent"].append(
            {"entity_id": entity_id, "ids": set(map(str, flagged))}
        )
        self.extra_rows["seq_of"].append(
            {"entity_id": entity_id, "seq_of": seq_of, "single": single}
        )

    # ------------------------------------------------------------------ output

    def result(self) -> Batch:
        valid = {kind: self._validate(kind) for kind in self.kinds}
        seq_of = {e["entity_id"]: e for e in self.extra_rows["seq_of"]}
        # recurring members are validated after their sets, as records of their own
        members = _Kind("recurring_transaction")
        set_rows = []
        for rec, ctx in valid["recurring_set"]:
            set_id = _set_id(ctx["entity_id"], ctx["direction"], rec)
            members_raw = rec["transactions"] if isinstance(rec["transactions"], list) else []
            set_rows.append((rec, ctx, set_id, len(members_raw)))
            info = seq_of.get(ctx["entity_id"], {})
            for pos, m in enumerate(members_raw, start=1):
                h = m.get("hash") if isinstance(m, dict) else None
                members.records.append(m)
                members.ctx.append(
                    {
                        "entity_id": ctx["entity_id"],
                        "set_id": set_id,
                        "set_position": pos,
                        "txn_seq": info.get("seq_of", {}).get(h),
                        "statement_id": info.get("single", {}).get(
                            m.get("account_id") if isinstance(m, dict) else None
                        ),
                    }
                )
        self.kinds["recurring_transaction"] = members
        valid["recurring_transaction"] = self._validate("recurring_transaction")

        flagged = {e["entity_id"]: e["ids"] for e in self.extra_rows["fraudulent"]}
        tables = {
            "entities": self.entity_rows,
            "accounts": [_account_row(r, c) for r, c in valid["account"]],
            "identities": [_identity_row(r, c) for r, c in valid["identity"]],
            "statements": _statement_rows(valid["progress"], valid["account"], flagged),
            "transactions": _txn_table(
                "transactions", valid["transaction"], self.wire.get("transaction")
            ),
            "salary_transactions": _txn_table(
                "salary_transactions",
                valid["salary_transaction"],
                self.wire.get("salary_transaction"),
                salary_month=lambda r, c: month_year(r["month_year"]),
                clean_transaction_note=lambda r, c: r.get("clean_transaction_note") or "",
            ),
            "lender_transactions": _txn_table(
                "lender_transactions",
                valid["lender_transaction"],
                self.wire.get("lender_transaction"),
            ),
            "recurring_sets": [_set_row(*s) for s in set_rows],
            "recurring_set_transactions": _txn_table(
                "recurring_set_transactions",
                valid["recurring_transaction"],
                self.wire.get("recurring_transaction"),
                set_id=lambda r, c: c["set_id"],
                set_position=lambda r, c: c["set_position"],
            ),
            "fraud_flags": [
                {
                    "entity_id": c["entity_id"],
                    "statement_id": r["statement_id"],
                    "fraud_type": r["fraud_type"],
                    "transaction_hash": r.get("transaction_hash") or None,
                }
                for r, c in valid["fraud"]
            ],
            "statement_files": [
                {
                    "entity_id": c["entity_id"],
                    "statement_id": r["statement_id"],
                    "account_id": r.get("account_id"),
                    "bank_name": r.get("bank_name"),
                    "has_password": r["has_password"],
                    "pdf_url": r.get("pdf_url") or None,
                }
                for r, c in valid["statement_file"]
            ],
            "bank_health": [
                {
                    "observed_at": c["observed_at"],
                    "run_id": self.run_id,
                    "bank": r["bank"],
                    "health_up": r["health_up"],
                    "issue_details": r.get("issue_details"),
                    "updated_at": _parse_ts(r.get("updated_at")),
                }
                for r, c in valid["bank_health"]
            ],
            "quarantine": self.quarantine,
        }
        # the records behind each row, in row order, for quarantining a row by position
        sources = {
            "accounts": valid["account"],
            "identities": valid["identity"],
            "transactions": valid["transaction"],
            "salary_transactions": valid["salary_transaction"],
            "lender_transactions": valid["lender_transaction"],
            "recurring_sets": [(rec, ctx) for rec, ctx, _, _ in set_rows],
            "recurring_set_transactions": valid["recurring_transaction"],
            "fraud_flags": valid["fraud"],
            "statement_files": valid["statement_file"],
            "bank_health": valid["bank_health"],
        }
        out = {}
        for name, rows in tables.items():
            if name == "quarantine":
                continue
            data = rows if isinstance(rows, pyarrow_.Table) else to_arrow(name, rows)
            out[name] = self._enforce(name, data, sources.get(name))
            self.stats.rows[name] += out[name].num_rows
        self._count_unknown(out)
        out["quarantine"] = to_arrow("quarantine", self.quarantine)
        return Batch(self.replace, self.touch, out, self.stats)

    def _enforce(
        self, name: str, data: pyarrow_.Table, sources: list[tuple[Any, dict]] | None
    ) -> pyarrow_.Table:
        """Hold the batch's typed rows to the table's contract: its key is unique (a
        repeated key keeps its first row) and its pandera model passes, lazily. Rows that
        fail go to quarantine with the check; a column-level failure is a bug and raises."""
        if data.num_rows == 0:
            return data
        frame = data.to_pandas(types_mapper=pd.ArrowDtype)
        reasons: dict[int, list[tuple[str, str]]] = defaultdict(list)
        key = list(TABLES[name].key)
        if key and name != "entities":
            repeated = frame.duplicated(subset=key, keep="first").to_numpy()
            for i in np.flatnonzero(repeated):
                shown = ", ".join(f"{k}={frame[k].iat[i]}" for k in key)
                reasons[int(i)].append(("duplicate_key", f"duplicate key: {shown}"))
        try:
            TABLES[name].model.validate(frame, lazy=True)
        except pa.errors.SchemaErrors as exc:
            fc = exc.failure_cases
            for idx, col, check, value in zip(
                fc["index"], fc["column"], fc["check"], fc["failure_case"], strict=True
            ):
                if idx is None or pd.isna(idx):
                    raise TypeError(
                        f"{name} rows break the table contract: {col}: {check}"
                    ) from exc
                reasons[int(idx)].append((str(check), f"{col}: {check} ({_short(value)})"))
        if not reasons:
            return data
        for i, found in sorted(reasons.items()):
            raw = sources[i][0] if sources is not None else frame.iloc[i].to_dict()
            self._quarantine(
                name,
                _cell(frame, "entity_id", i),
                raw,
                found,
                account_id=_cell(frame, "account_id", i),
                txn_seq=_cell(frame, "txn_seq", i),
            )
        keep = np.ones(data.num_rows, dtype=bool)
        keep[list(reasons)] = False
        return data.filter(pyarrow_.array(keep))

    def _quarantine(
        self,
        table: str,
        entity_id: str | None,
        record: Any,
        found: list[tuple[str, str]],
        *,
        account_id: str | None = None,
        txn_seq: int | None = None,
    ) -> None:
        checks = [c for c, _ in found]
        for c in checks:
            self.stats.quarantined[(table, c)] += 1
        self.quarantine.append(
            {
                "run_id": self.run_id,
                "quarantined_at": self.now,
                "table_name": table,
                "entity_id": entity_id,
                "account_id": account_id,
                "txn_seq": None if txn_seq is None else int(txn_seq),
                "reason": "; ".join(text for _, text in found),
                "checks": checks,
                "raw_record": orjson.dumps(
                    record, option=orjson.OPT_SORT_KEYS, default=str
                ).decode(),
            }
        )

    def _unlisted_accounts(
        self, group: _Kind, objs: Iterable[int], reasons: dict[int, list[tuple[str, str]]]
    ) -> None:
        """A record of an account the entity's accounts endpoint does not list (valid or
        quarantined) would be a row no account row explains: it goes to quarantine."""
        if self._listed is None:
            accounts = self.kinds["account"]
            self._listed = {
                (ctx.get("entity_id"), rec.get("account_id"))
                for rec, ctx in zip(accounts.records, accounts.ctx, strict=True)
                if isinstance(rec, dict)
            }
        listed, records, ctxs = self._listed, group.records, group.ctx
        for i in objs:
            account = records[i].get("account_id")
            if (ctxs[i].get("entity_id"), account) in listed or not isinstance(account, str):
                continue
            if account.strip():  # a blank one failed its key check already
                reasons[i].append(
                    (
                        "account",
                        "account_id: not an account the accounts endpoint lists for this "
                        f"entity ({_short(account)})",
                    )
                )

    def _validate(self, kind: str) -> list[tuple[dict, dict]]:
        """Records of ``kind`` that pass its wire checks; the others go to quarantine."""
        group = self.kinds[kind]
        schema = WIRE[kind]
        table = KIND_TABLE[kind]
        if not group.records:
            return []
        reasons: dict[int, list[tuple[str, str]]] = defaultdict(list)
        if all(type(r) is dict for r in group.records):  # the common case, without a copy
            objs: list[int] | range = range(len(group.records))
            records = group.records
        else:
            objs = []
            for i, r in enumerate(group.records):
                if isinstance(r, dict):
                    objs.append(i)
                else:
                    reasons[i].append(("object", f"record: not a JSON object ({_short(r)})"))
            records = [group.records[i] for i in objs]
        if objs:
            index = pd.RangeIndex(len(objs)) if isinstance(objs, range) else pd.Index(objs)
            frame = pd.DataFrame(
                {col: frame_column([r.get(col) for r in records], index) for col in schema.columns}
            )
            try:
                schema.validate(frame, lazy=True)
            except pa.errors.SchemaErrors as exc:
                fc = exc.failure_cases
                for idx, col, check, value in zip(
                    fc["index"], fc["column"], fc["check"], fc["failure_case"], strict=True
                ):
                    if idx is None or pd.isna(idx):
                        raise ShapeError(f"{table}: {col}: {check}") from exc
                    reasons[int(idx)].append(_reason(schema, col, check, value))
        if objs and kind in OF_AN_ACCOUNT:
            self._unlisted_accounts(group, objs, reasons)
        pairs = zip(group.records, group.ctx, strict=True)
        if not reasons:
            good = list(pairs)
        else:
            good = []
            for i, (rec, ctx) in enumerate(pairs):
                if i not in reasons:
                    good.append((rec, ctx))
                    continue
                self._quarantine(
                    table,
                    ctx.get("entity_id"),
                    rec,
                    reasons[i],
                    account_id=_account_of(rec, ctx),
                    txn_seq=ctx.get("txn_seq"),
                )
        if objs and kind in TXN_KINDS:
            bad = np.fromiter(reasons, dtype=np.int64, count=len(reasons))
            self.wire[kind] = _wire_table(frame, ~np.isin(np.asarray(objs), bad))
        return good

    def _count_unknown(self, tables: dict[str, pyarrow_.Table]) -> None:
        txns = tables["transactions"]
        for col in ("transaction_channel", "description", "merchant_category"):
            known = pyarrow_.array(sorted(KNOWN_VALUES[col]), pyarrow_.string())
            odd = pc.filter(txns[col], pc.invert(pc.is_in(txns[col], value_set=known)))
            for item in pc.value_counts(odd).to_pylist():
                self.stats.unknown_values[(col, item["values"])] += item["counts"]
        for fraud_type in tables["fraud_flags"]["fraud_type"].to_pylist():
            if fraud_type not in KNOWN_VALUES["fraud_type"]:
                self.stats.unknown_values[("fraud_type", fraud_type)] += 1


# ---------------------------------------------------------------------- rows


_TXN_WIRE = pyarrow_.schema(
    [
        ("account_id", pyarrow_.string()),
        ("hash", pyarrow_.string()),
        ("date", pyarrow_.string()),
        ("transaction_type", pyarrow_.string()),
        ("amount", pyarrow_.float64()),
        ("balance", pyarrow_.float64()),
        ("transaction_channel", pyarrow_.string()),
        ("description", pyarrow_.string()),
        ("merchant_category", pyarrow_.string()),
        ("transaction_note", pyarrow_.string()),
    ]
)


def _txn_table(
    table: str, pairs: list[tuple[dict, dict]], wire: pyarrow_.Table | None, **extra: Any
) -> pyarrow_.Table:
    """Checked transaction records → the table, column by column.

    ``wire`` holds the records' checked columns as validation framed them (``_wire_table``);
    ``extra`` maps further columns to a function of (record, context).
    """
    ctxs = [c for _, c in pairs]
    if wire is None:
        wire = pyarrow_.Table.from_pylist([r for r, _ in pairs], schema=_TXN_WIRE)
    channel = wire["transaction_channel"]
    empty = pyarrow_.scalar("", pyarrow_.string())
    cols: dict[str, Any] = {
        "entity_id": [c["entity_id"] for c in ctxs],
        "account_id": wire["account_id"],
        "statement_id": [c.get("statement_id") for c in ctxs],
        "txn_seq": [c.get("txn_seq") for c in ctxs],
        "hash": wire["hash"],
        "txn_date": parse_api_dates(wire["date"].combine_chunks()),
        "transaction_type": wire["transaction_type"],
        "amount": money_array(wire["amount"].to_numpy()),
        "balance": money_array(wire["balance"].to_numpy()),
        "transaction_channel": pc.utf8_lower(channel),
        "transaction_channel_raw": channel,
        "description": pc.fill_null(wire["description"], empty),
        "merchant_category": pc.fill_null(wire["merchant_category"], empty),
        "transaction_note": pc.fill_null(wire["transaction_note"], empty),
    }
    for name, fn in extra.items():
        cols[name] = [fn(r, c) for r, c in pairs]
    schema = arrow_schema(table)
    arrays = [
        cols[f.name]
        if isinstance(cols[f.name], pyarrow_.Array | pyarrow_.ChunkedArray)
        else pyarrow_.array(cols[f.name], f.type)
        for f in schema
    ]
    return pyarrow_.Table.from_arrays(arrays, schema=schema)


def _account_row(r: dict, c: dict) -> dict:
    months = sorted(r["months"])
    return {
        "entity_id": c["entity_id"],
        "account_id": r["account_id"],
        "bank": r["bank"],
        "account_number": r.get("account_number"),
        "ifsc": r.get("ifsc"),
        "micr": r.get("micr"),
        "months": list(r["months"]),
        "months_covered": len(set(months)),
        "first_month": date.fromisoformat(months[0] + "-01") if months else None,
        "last_month": date.fromisoformat(months[-1] + "-01") if months else None,
        "statement_ids": list(r["statements"]),
    }


def _identity_row(r: dict, c: dict) -> dict:
    return {
        "entity_id": c["entity_id"],
        "account_id": r["account_id"],
        "name": r.get("name"),
        "address": r.get("address"),
        "account_number": r.get("account_number"),
        "account_category": r.get("account_category"),
        "credit_limit": r.get("credit_limit"),
        "od_limit": r.get("od_limit"),
    }


def _statement_rows(
    progress: list[tuple[dict, dict]],
    accounts: list[tuple[dict, dict]],
    flagged: dict[str, set[str]],
) -> list[dict]:
    account_of = {
        (c["entity_id"], sid): r["account_id"] for r, c in accounts for sid in r["statements"]
    }
    rows: dict[tuple[str, str], dict] = {}
    for r, c in progress:
        key = (c["entity_id"], r["statement_id"])
        row = rows.setdefault(key, _statement_row(*key, account_of.get(key), flagged))
        row[f"{c['endpoint']}_status"] = r["status"]
        row[f"{c['endpoint']}_message"] = r.get("message")
    for key, account in account_of.items():  # listed on an account, absent from progress
        rows.setdefault(key, _statement_row(*key, account, flagged))
    for row in rows.values():
        statuses = [row[f"{e}_status"] for e in ANALYSIS_ENDPOINTS if row[f"{e}_status"]]
        if "failed" in statuses:
            row["status"] = "failed"
            row["message"] = next(
                row[f"{e}_message"] for e in ANALYSIS_ENDPOINTS if row[f"{e}_status"] == "failed"
            )
        elif not statuses or any(s != "completed" for s in statuses):
            row["status"] = "processing"
    return list(rows.values())


def _statement_row(
    entity_id: str, statement_id: str, account_id: str | None, flagged: dict[str, set[str]]
) -> dict:
    row: dict[str, Any] = {
        "entity_id": entity_id,
        "statement_id": statement_id,
        "account_id": account_id,
        "status": "completed",
        "message": None,
    }
    for e in ANALYSIS_ENDPOINTS:
        row[f"{e}_status"] = None
        row[f"{e}_message"] = None
    row["is_fraud"] = statement_id in flagged.get(entity_id, ())
    return row


def _set_id(entity_id: str, direction: str, rec: dict) -> str:
    members = rec["transactions"] if isinstance(rec["transactions"], list) else []
    hashes = sorted(str(m.get("hash")) for m in members if isinstance(m, dict))
    parts = [entity_id, rec["account_id"], direction, rec["transaction_channel"]]
    parts += [str(rec["start_date"]), str(rec["end_date"]), *hashes]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def _set_row(rec: dict, ctx: dict, set_id: str, count: int) -> dict:
    return {
        "set_id": set_id,
        "entity_id": ctx["entity_id"],
        "account_id": rec["account_id"],
        "direction": ctx["direction"],
        "channel": rec["transaction_channel"].lower(),
        "channel_raw": rec["transaction_channel"],
        "start_date": rec["start_date"],
        "end_date": rec["end_date"],
        "median_amount": rec["median"],
        "transaction_count": count,
    }


# ---------------------------------------------------------------------- arrow


def arrow_schema(table: str) -> pyarrow_.Schema:
    """The table's Arrow schema, from its pandera model."""
    cols = TABLES[table].model.to_schema().columns
    return pyarrow_.schema(
        [pyarrow_.field(name, col.dtype.type.pyarrow_dtype) for name, col in cols.items()]
    )


def to_arrow(table: str, rows: list[dict]) -> pyarrow_.Table:
    """Rows (API values: money as JSON numbers, dates as API strings) → the table's types."""
    schema = arrow_schema(table)
    arrays = []
    for f in schema:
        values = [r[f.name] for r in rows]
        if f.type == MONEY:
            arrays.append(money_array(values))
        elif f.type == pyarrow_.date32():
            arrays.append(pyarrow_.array([_as_date(v) for v in values], pyarrow_.date32()))
        else:
            arrays.append(pyarrow_.array(values, f.type))
    return pyarrow_.Table.from_arrays(arrays, schema=schema)


def _cell(frame: pd.DataFrame, column: str, i: int) -> Any:
    """Row ``i``'s value in ``column``; None when the table has no such column or it is null."""
    if column not in frame:
        return None
    value = frame[column].iat[i]
    return None if pd.isna(value) else value


def _account_of(record: Any, ctx: dict) -> str | None:
    """The account a quarantined record belongs to: the one it names, else (a transaction
    without a readable account_id) the account whose rows it sits among."""
    named = record.get("account_id") if isinstance(record, dict) else None
    if isinstance(named, str) and named.strip():
        return named
    among = ctx.get("account_id")
    return among if isinstance(among, str) and among.strip() else None


TXN_KINDS = frozenset(
    {"transaction", "salary_transaction", "lender_transaction", "recurring_transaction"}
)
# records that name an account the entity's accounts endpoint must list
OF_AN_ACCOUNT = TXN_KINDS | {"identity", "recurring_set"}


def _wire_table(frame: pd.DataFrame, keep: np.ndarray) -> pyarrow_.Table:
    """The rows ``keep`` of a validated frame as ``_TXN_WIRE`` columns, without converting
    the values again (Arrow-typed columns are sliced; object ones were checked already)."""
    arrays = []
    for f in _TXN_WIRE:
        s = frame[f.name]
        if isinstance(s.dtype, pd.ArrowDtype):
            arr = pyarrow_.array(s.array)
            if not keep.all():
                arr = arr.filter(pyarrow_.array(keep))
            arrays.append(arr if arr.type == f.type else arr.cast(f.type))
        else:
            values = s.to_numpy(dtype=object)[keep]
            arrays.append(pyarrow_.array([None if v is None else v for v in values], f.type))
    return pyarrow_.Table.from_arrays(arrays, schema=_TXN_WIRE)


def money_array(values: list[float | int | None] | np.ndarray) -> pyarrow_.Array:
    """JSON numbers (already checked: at most 2 decimals, below 10^12) → exact DECIMAL(18,2).

    Rounds each value to whole paise (float error there is far below half a paisa) and
    lays the paise down as the decimal's unscaled 128-bit integers.
    """
    n = len(values)
    if isinstance(values, np.ndarray):
        x = values.astype(np.float64)
        mask = np.isnan(x)
        x = np.where(mask, 0.0, x)
    else:
        mask = np.fromiter((v is None for v in values), dtype=bool, count=n)
        x = np.fromiter((0.0 if v is None else v for v in values), dtype=np.float64, count=n)
    paise = np.rint(x * 100).astype(np.int64)
    words = np.empty((n, 2), dtype=np.int64)  # little-endian int128: low word, then sign
    words[:, 0] = paise
    words[:, 1] = paise >> 63
    arr = pyarrow_.Array.from_buffers(MONEY, n, [None, pyarrow_.py_buffer(words.tobytes())])
    if mask.any():
        arr = pc.if_else(pyarrow_.array(mask), pyarrow_.scalar(None, MONEY), arr)
    return arr


def validate(table: str, data: pyarrow_.Table) -> None:
    """Check typed rows against the table's contract (a failure here is a bug, not data)."""
    TABLES[table].model.validate(data.to_pandas(types_mapper=pd.ArrowDtype), lazy=True)


# ---------------------------------------------------------------------- helpers


def _obj(body: Any, endpoint: str) -> dict:
    if not isinstance(body, dict):
        raise ShapeError(f"{endpoint}: response is {_type(body)}, not an object")
    return body


def _list(body: dict, key: str, endpoint: str) -> list:
    value = body.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list):
        raise ShapeError(f"{endpoint}: '{key}' is {_type(value)}, not a list")
    return value


def _require(
    records: list, where: str, schema: pa.DataFrameSchema, drift: Counter, kind: str
) -> None:
    """A documented field absent from every record is a change of shape, not a bad row.
    Fields the schema does not know are counted in ``drift`` as (kind, field) → records."""
    objs = [r for r in records if isinstance(r, dict)]
    if not objs:
        return
    present = set().union(*(r.keys() for r in objs))
    for name, col in schema.columns.items():
        if col.required and not col.nullable and name not in present:
            raise ShapeError(f"{where}: records have no '{name}' field")
    for name in present.difference(schema.columns):
        drift[(kind, name)] += sum(1 for r in objs if name in r)


def _reason(schema: pa.DataFrameSchema, column: str, check: str, value: object) -> tuple[str, str]:
    if check == "not_nullable":
        return "missing", f"{column}: missing or null"
    col = schema.columns.get(column)
    for c in col.checks if col is not None else ():
        if check in (c.name, c.error, str(c)) or check.startswith(f"{c.name}("):
            return c.name or check, f"{column}: {c.error or check} ({_short(value)})"
    return check, f"{column}: {check} ({_short(value)})"


def _short(value: object) -> str:
    text = orjson.dumps(value, default=str).decode()
    return text if len(text) <= 60 else text[:57] + "..."


def _type(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def _text_or_none(v: object) -> str | None:
    return v if isinstance(v, str) else None


def _naive(ts: datetime) -> datetime:
    """UTC, without tzinfo (DuckDB TIMESTAMP)."""
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts


def _parse_ts(v: object) -> datetime | None:
    if not isinstance(v, str):
        return None
    return _naive(datetime.fromisoformat(v.replace("Z", "+00:00")))


def _as_date(v: object) -> date | None:
    if v is None or isinstance(v, date):
        return v
    return api_date(v)
