"""One pandera DataFrameModel per warehouse table: names, order, types and meaning of every
column. The DuckDB DDL (``bankconnect_etl.warehouse``) and ``docs/data-dictionary.md`` are
both generated from these models, so the contract is written once.

Types are Arrow-backed pandas dtypes, which map one to one onto DuckDB's: money is
DECIMAL(18,2) (never float), dates DATE, timestamps TIMESTAMP (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import pandas as pd
import pandera.pandas as pa
import pyarrow
from pandera.typing import Series

from bankconnect_etl.vocab import SYNC_STATUSES

Str = Annotated[pd.ArrowDtype, pyarrow.string()]
Date = Annotated[pd.ArrowDtype, pyarrow.date32()]
Timestamp = Annotated[pd.ArrowDtype, pyarrow.timestamp("us")]
Money = Annotated[pd.ArrowDtype, pyarrow.decimal128(18, 2)]
Int = Annotated[pd.ArrowDtype, pyarrow.int64()]
Bool = Annotated[pd.ArrowDtype, pyarrow.bool_()]
StrList = Annotated[pd.ArrowDtype, pyarrow.list_(pyarrow.string())]
Json = Annotated[pd.ArrowDtype, pyarrow.string()]  # DuckDB JSON; see JSON_COLUMNS

STATEMENT_STATUSES = ("completed", "failed", "processing")


def _f(description: str, *, nullable: bool = False, **checks: object) -> object:
    return pa.Field(description=description, nullable=nullable, **checks)


class _Table(pa.DataFrameModel):
    class Config:
        strict = True  # exactly these columns
        ordered = True  # in this order
        coerce = False  # the transform builds the types; a mismatch is a bug, not data


# ---------------------------------------------------------------- entities and accounts


class Entities(_Table):
    """One row per entity: what the last sync saw and how far processing had got."""

    entity_id: Series[Str] = _f("The API's entity id (UUID).", unique=True)
    link_id: Series[Str] = _f("The lender's own id for the applicant, if set.", nullable=True)
    meta_data: Series[Str] = _f("Free text the lender attached when creating it.", nullable=True)
    first_seen_at: Series[Timestamp] = _f("When a sync first saw the entity (UTC).")
    last_attempt_at: Series[Timestamp] = _f(
        "When a sync last fetched it, whatever the outcome (UTC). A run that found it "
        "unchanged writes nothing: runs.finished_at of later successful runs says it was "
        "checked then."
    )
    last_synced_at: Series[Timestamp] = _f(
        "When its rows were last replaced with a complete fetch (UTC); null if never.",
        nullable=True,
    )
    sync_status: Series[Str] = _f(
        "complete: every endpoint finished (some statements may have failed); pending: "
        "still processing at the deadline, previous rows kept, retried next run; failed: "
        "fetching or validating failed, previous rows kept; empty: no statements.",
        isin=list(SYNC_STATUSES),
    )
    sync_error: Series[Str] = _f("Why the last sync failed, one line.", nullable=True)
    pending_endpoints: Series[StrList] = _f("Endpoints still processing at the deadline.")
    fingerprint: Series[Str] = _f(
        "Digest of the accounts endpoint (statement ids, statuses, months); unchanged and "
        "complete means the next run skips the entity. Null unless complete or empty.",
        nullable=True,
    )
    run_id: Series[Str] = _f("The run that last wrote this row.")


class Accounts(_Table):
    """One row per bank account of an entity, from the accounts endpoint."""

    entity_id: Series[Str] = _f("Entity the account belongs to.")
    account_id: Series[Str] = _f("The API's account id.")
    bank: Series[Str] = _f("Bank identifier as the data APIs send it (lower case, e.g. hdfc).")
    account_number: Series[Str] = _f("Account number, often masked.", nullable=True)
    ifsc: Series[Str] = _f("IFSC of the branch.", nullable=True)
    micr: Series[Str] = _f("MICR of the branch.", nullable=True)
    months: Series[StrList] = _f('Months with data, "YYYY-MM", as sent.')
    months_covered: Series[Int] = _f("Number of months with data.", ge=0)
    first_month: Series[Date] = _f("First day of the first month with data.", nullable=True)
    last_month: Series[Date] = _f("First day of the last month with data.", nullable=True)
    statement_ids: Series[StrList] = _f("Statements uploaded for the account.")


class Identities(_Table):
    """One row per account whose identity was extracted, from the identity endpoint."""

    entity_id: Series[Str] = _f("Entity the account belongs to.")
    account_id: Series[Str] = _f("The API's account id.")
    name: Series[Str] = _f("Account holder's name as printed on the statement.", nullable=True)
    address: Series[Str] = _f("Account holder's address.", nullable=True)
    account_number: Series[Str] = _f("Account number as extracted.", nullable=True)
    account_category: Series[Str] = _f("individual or corporate, when sent.", nullable=True)
    credit_limit: Series[Money] = _f("Credit limit (rupees), when sent.", nullable=True)
    od_limit: Series[Money] = _f("Overdraft limit (rupees), when sent.", nullable=True)


class Statements(_Table):
    """One row per statement: its processing outcome on each analysis endpoint."""

    entity_id: Series[Str] = _f("Entity the statement belongs to.")
    statement_id: Series[Str] = _f("The API's statement id.")
    account_id: Series[Str] = _f("Account the statement is for.", nullable=True)
    status: Series[Str] = _f(
        "failed if any endpoint failed, processing if any is still processing, else completed.",
        isin=list(STATEMENT_STATUSES),
    )
    message: Series[Str] = _f("The API's failure message, if failed.", nullable=True)
    accounts_status: Series[Str] = _f("Status on accounts.", nullable=True)
    accounts_message: Series[Str] = _f("Message on accounts.", nullable=True)
    identity_status: Series[Str] = _f("Status on identity.", nullable=True)
    identity_message: Series[Str] = _f("Message on identity.", nullable=True)
    transactions_status: Series[Str] = _f("Status on transactions.", nullable=True)
    transactions_message: Series[Str] = _f("Message on transactions.", nullable=True)
    salary_status: Series[Str] = _f("Status on salary.", nullable=True)
    salary_message: Series[Str] = _f("Message on salary.", nullable=True)
    recurring_transactions_status: Series[Str] = _f("Status on recurring.", nullable=True)
    recurring_transactions_message: Series[Str] = _f("Message on recurring.", nullable=True)
    lender_transactions_status: Series[Str] = _f("Status on lender.", nullable=True)
    lender_transactions_message: Series[Str] = _f("Message on lender.", nullable=True)
    is_fraud: Series[Bool] = _f("Listed in fraud.fraudulent_statements.")


# ---------------------------------------------------------------- transactions


class Transactions(_Table):
    """One row per transaction, from the transactions endpoint."""

    entity_id: Series[Str] = _f("Entity the transaction belongs to.")
    account_id: Series[Str] = _f("Account the transaction belongs to.")
    statement_id: Series[Str] = _f(
        "Statement it came from, when the account has exactly one statement (the API does "
        "not say otherwise).",
        nullable=True,
    )
    txn_seq: Series[Int] = _f(
        "Position within the account in the API's order, from 1. Running-balance checks "
        "follow it; a gap means the row in between is in quarantine.",
        ge=1,
    )
    hash: Series[Str] = _f(
        "The API's transaction id: 32 hex characters, unique within the entity (the same "
        "statement uploaded for two entities gives both the same hashes)."
    )
    txn_date: Series[Date] = _f("Value date.")
    transaction_type: Series[Str] = _f("debit or credit.", isin=["debit", "credit"])
    amount: Series[Money] = _f("Amount in rupees, always positive; the type gives direction.")
    balance: Series[Money] = _f("Balance after the transaction (rupees); negative in overdraft.")
    transaction_channel: Series[Str] = _f(
        "Channel, lower case (the documented values are in bankconnect_etl/vocab.py; others "
        "are kept and counted in the run summary)."
    )
    transaction_channel_raw: Series[Str] = _f("Channel exactly as sent.")
    description: Series[Str] = _f("Sub-category (e.g. lender_transaction); often empty.")
    merchant_category: Series[Str] = _f("Merchant category; empty when no merchant.")
    transaction_note: Series[Str] = _f("Narration as printed on the statement.")


class _TxnColumns(Transactions):
    """The transaction columns, for tables whose rows are a subset of transactions."""

    txn_seq: Series[Int] = _f(
        "The transaction's txn_seq in transactions (matched by hash); null if absent there.",
        nullable=True,
    )


class SalaryTransactions(_TxnColumns):
    """One row per salary credit, from the salary endpoint."""

    salary_month: Series[Date] = _f(
        'First day of the month the salary is for (the API\'s "M-YYYY" month_year).'
    )
    clean_transaction_note: Series[Str] = _f("Employer name as the API cleaned it.")


class LenderTransactions(_TxnColumns):
    """One row per transaction with a lender: debits are EMIs, credits loan disbursals."""


class RecurringSets(_Table):
    """One row per recurring set (e.g. an EMI, a SIP, a salary), from recurring_transactions."""

    set_id: Series[Str] = _f(
        "Stable id: digest of entity, account, direction, channel, dates and member hashes."
    )
    entity_id: Series[Str] = _f("Entity the set belongs to.")
    account_id: Series[Str] = _f("Account the set belongs to.")
    direction: Series[Str] = _f("credit or debit.", isin=["credit", "debit"])
    channel: Series[Str] = _f("Channel, lower case (the API sends upper case).")
    channel_raw: Series[Str] = _f("Channel exactly as sent, e.g. AUTO_DEBIT_PAYMENT.")
    start_date: Series[Date] = _f("Date of the first transaction in the set.")
    end_date: Series[Date] = _f("Date of the last transaction in the set.")
    median_amount: Series[Money] = _f("The API's median amount (rupees).")
    transaction_count: Series[Int] = _f("Transactions in the set.", ge=0)


class RecurringSetTransactions(_TxnColumns):
    """One row per transaction of a recurring set."""

    set_id: Series[Str] = _f("The set (recurring_sets.set_id).")
    set_position: Series[Int] = _f("Position within the set, from 1.", ge=1)


# ---------------------------------------------------------------- fraud, files, health


class FraudFlags(_Table):
    """One row per fraud finding the API reports."""

    entity_id: Series[Str] = _f("Entity.")
    statement_id: Series[Str] = _f("Statement the finding is about.")
    fraud_type: Series[Str] = _f("e.g. inconsistent_transaction (open vocabulary).")
    transaction_hash: Series[Str] = _f("The transaction concerned, when sent.", nullable=True)


class StatementFiles(_Table):
    """One row per uploaded statement file, from get_pdfs. Never the password."""

    entity_id: Series[Str] = _f("Entity.")
    statement_id: Series[Str] = _f("Statement.")
    account_id: Series[Str] = _f("Account.", nullable=True)
    bank_name: Series[Str] = _f("Bank identifier.", nullable=True)
    has_password: Series[Bool] = _f("Whether the PDF is password protected (never stored).")
    pdf_url: Series[Str] = _f(
        "The file's URL without its signed query string (ask the API for a fresh one); null "
        "once the vendor has deleted the file (after 30 days).",
        nullable=True,
    )


class BankHealth(_Table):
    """One row per bank per observation of net_banking_health: a history, never replaced."""

    observed_at: Series[Timestamp] = _f("When the observation was made (UTC).")
    run_id: Series[Str] = _f("The run that made it.")
    bank: Series[Str] = _f("Bank identifier (upper case, as the endpoint sends it).")
    health_up: Series[Bool] = _f("Whether net banking works for the bank.")
    issue_details: Series[Str] = _f("The vendor's explanation when down.", nullable=True)
    updated_at: Series[Timestamp] = _f("When the vendor last updated it.", nullable=True)


# ---------------------------------------------------------------- operations


class Quarantine(_Table):
    """One row per record that failed validation: nothing is silently dropped."""

    run_id: Series[Str] = _f("The run that met the record.")
    quarantined_at: Series[Timestamp] = _f("When (UTC).")
    table_name: Series[Str] = _f("The table the record was bound for.")
    entity_id: Series[Str] = _f("Entity, when known.", nullable=True)
    account_id: Series[Str] = _f(
        "The account the record names; for a transaction without a readable one, the "
        "account whose rows it sits among. Null when neither is known.",
        nullable=True,
    )
    txn_seq: Series[Int] = _f(
        "transactions: the txn_seq the row would have had, the gap it leaves in its "
        "account; salary, lender and recurring-set transactions: the txn_seq of the "
        "transaction with the same hash. Null otherwise.",
        nullable=True,
        ge=1,
    )
    reason: Series[Str] = _f("Every failed check, as 'column: problem (value)'; '; '-joined.")
    checks: Series[StrList] = _f("Names of the failed checks.")
    raw_record: Series[Json] = _f("The record exactly as the API sent it (JSON).")


class Runs(_Table):
    """One row per run of the pipeline (nightly, backfill, rebuild)."""

    run_id: Series[Str] = _f("Run id.", unique=True)
    kind: Series[Str] = _f("nightly, backfill, rebuild or demo.")
    params: Series[Json] = _f("The run's parameters (JSON; never secrets).")
    started_at: Series[Timestamp] = _f("Start (UTC).")
    finished_at: Series[Timestamp] = _f(
        "End (UTC); null while running, or when the run's process was killed (the next "
        "run then marks it failed).",
        nullable=True,
    )
    status: Series[Str] = _f(
        "running, succeeded, failed, or interrupted (stopped by Ctrl-C or SIGTERM, a "
        "Prefect cancel included, as `error` says; the batches committed before stay, and "
        "the next run finishes the rest).",
        isin=["running", "succeeded", "failed", "interrupted"],
    )
    counts: Series[Json] = _f(
        "JSON: entities by outcome, rows per table, quarantined rows by reason, schema drift, "
        "values outside the documented enumerations."
    )
    requests: Series[Int] = _f("HTTP requests made.", ge=0)
    retries: Series[Int] = _f("HTTP retries.", ge=0)
    error: Series[Str] = _f("Why the run failed or stopped, one line.", nullable=True)
    snapshot_id: Series[Int] = _f(
        "The snapshot the run ended with (its last commit, which wrote this row's end): "
        "`--as-of` it, or `AT (VERSION => snapshot_id)`, reads the warehouse as the run "
        "left it. Null while running, and for a run whose process was killed.",
        nullable=True,
        ge=0,
    )


@dataclass(frozen=True)
class TableSpec:
    """How a table is stored and replaced."""

    name: str
    model: type[_Table]
    key: tuple[str, ...]  # unique per row
    per_entity: bool = True  # rows replaced entity by entity
    partition_date: str | None = None  # partitioned by year and month of this column

    @property
    def columns(self) -> list[str]:
        return list(self.model.to_schema().columns)


TABLES: dict[str, TableSpec] = {
    t.name: t
    for t in (
        TableSpec("entities", Entities, ("entity_id",)),
        TableSpec("accounts", Accounts, ("entity_id", "account_id")),
        TableSpec("identities", Identities, ("entity_id", "account_id")),
        TableSpec("statements", Statements, ("entity_id", "statement_id")),
        TableSpec("transactions", Transactions, ("entity_id", "hash"), partition_date="txn_date"),
        # The three small transaction-like tables are not partitioned: about 4, 6 and 19
        # rows per entity (against 400 in transactions), split by month they were files
        # of a few rows each, and a DuckLake commit pays per file (see docs/decisions.md).
        TableSpec("salary_transactions", SalaryTransactions, ("entity_id", "hash")),
        TableSpec("lender_transactions", LenderTransactions, ("entity_id", "hash")),
        TableSpec("recurring_sets", RecurringSets, ("set_id",)),
        TableSpec("recurring_set_transactions", RecurringSetTransactions, ("set_id", "hash")),
        TableSpec(
            "fraud_flags",
            FraudFlags,
            ("entity_id", "statement_id", "fraud_type", "transaction_hash"),
        ),
        TableSpec("statement_files", StatementFiles, ("entity_id", "statement_id")),
        TableSpec("bank_health", BankHealth, ("observed_at", "bank"), per_entity=False),
        TableSpec("quarantine", Quarantine, ()),  # replaced with its entity: what is bad now
        TableSpec("runs", Runs, ("run_id",), per_entity=False),
    )
}

# Tables whose rows belong to one entity and are replaced together, in this order.
ENTITY_TABLES = tuple(name for name, t in TABLES.items() if t.per_entity)
JSON_COLUMNS = {("quarantine", "raw_record"), ("runs", "params"), ("runs", "counts")}
