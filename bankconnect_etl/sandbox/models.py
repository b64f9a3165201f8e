"""Response and request shapes of the BankConnect API, for the sandbox's /openapi.json.

Field names, order and types follow the vendor's pages in shared/seeds. The sandbox does
not validate its responses through these models at run time (that would cost more than
the rest of a request); the contract tests validate every served response against the
schema these models produce.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel


class _Open(BaseModel):
    """Real payloads carry fields the docs do not mention; the schema allows them."""

    model_config = ConfigDict(extra="allow")


class Detail(_Open):
    detail: str = Field(examples=["Authentication credentials were not provided."])


class FieldErrors(RootModel[dict[str, list[str]]]):
    """Django REST framework's per-field validation errors, e.g. {"meta_data": ["..."]}."""


class EntityCreated(_Open):
    entity_id: str
    link_id: str | None
    meta_data: str | None


class EntitySummary(_Open):
    entity_id: str
    link_id: str | None
    meta_data: str | None = Field(
        default=None, description="Present on the newer API; older pages omit it."
    )


class EntityPage(_Open):
    count: int = Field(description="Total number of entities matching the filter.")
    next: str | None = Field(description="Absolute URL of the next page, or null.")
    previous: str | None = Field(description="Absolute URL of the previous page, or null.")
    results: list[EntitySummary] = Field(description="At most 10 entities, in creation order.")


class LinkOverviewItem(_Open):
    entity_id: str
    months: list[str]
    bank: str | None


class LinkOverview(_Open):
    progress_data: list[LinkOverviewItem]
    link_id: str


class ProgressItem(_Open):
    status: Literal["processing", "completed", "failed"]
    message: str | None
    statement_id: str


class AccountObj(_Open):
    months: list[str] = Field(description='Months with data, "YYYY-MM".')
    statements: list[str]
    account_id: str
    ifsc: str | None
    micr: str | None
    account_number: str | None
    bank: str


class FraudTypeItem(_Open):
    statement_id: str
    fraud_type: str
    transaction_hash: str | None = None


class Fraud(_Open):
    fraudulent_statements: list[str]
    fraud_type: list[FraudTypeItem]


class _Analysis(_Open):
    entity_id: str
    progress: list[ProgressItem]
    accounts: list[AccountObj]
    fraud: Fraud


class AccountsResponse(_Analysis):
    pass


class IdentityObj(_Open):
    address: str | None
    account_number: str | None
    account_id: str
    name: str | None
    # Not on the seed page; newer payloads add them (always on an overdraft account here).
    account_category: str | None = Field(None, description="individual or corporate.")
    credit_limit: float | None = Field(None, description="Credit limit, rupees.")
    od_limit: float | None = Field(None, description="Overdraft limit, rupees.")


class IdentityResponse(_Analysis):
    identity: list[IdentityObj]


class TransactionObj(_Open):
    transaction_note: str
    hash: str = Field(description="32 lower-case hex characters, unique per transaction.")
    description: str
    account_id: str
    transaction_type: Literal["debit", "credit"]
    amount: float
    date: str = Field(description='"YYYY-MM-DD 00:00:00"')
    merchant_category: str
    balance: float
    transaction_channel: str


class TransactionsResponse(_Analysis):
    transactions: list[TransactionObj]


class SalaryTransactionObj(TransactionObj):
    clean_transaction_note: str
    month_year: str = Field(description='Month the salary is for, "M-YYYY" without padding.')


class SalaryResponse(_Analysis):
    transactions: list[SalaryTransactionObj]


class RecurringTransactionObj(_Open):
    transaction_channel: str
    transaction_note: str
    hash: str
    account_id: str
    transaction_type: Literal["debit", "credit"]
    amount: float
    date: str
    balance: float
    description: str
    merchant_category: str | None = None


class RecurringSet(_Open):
    account_id: str
    end_date: str
    transactions: list[RecurringTransactionObj]
    median: float
    start_date: str
    transaction_channel: str = Field(description="Upper case, e.g. NET_BANKING_TRANSFER.")


class RecurringSets(_Open):
    credit_transactions: list[RecurringSet]
    debit_transactions: list[RecurringSet]


class RecurringResponse(_Analysis):
    transactions: RecurringSets


class LenderResponse(_Analysis):
    transactions: list[TransactionObj]


class PdfStatement(_Open):
    statement_id: str
    bank_name: str
    pdf_password: str | None
    pdf_url: str = Field(description='Signed URL valid for 1 hour; "" after 30 days.')
    account_id: str


class GetPdfsResponse(_Open):
    statements: list[PdfStatement]


class BankHealth(_Open):
    bank: str
    updated_at: str
    health_up: bool
    issue_details: str | None


class DateRange(_Open):
    from_date: str | None
    to_date: str | None


class UploadIdentity(_Open):
    account_id: str
    account_number: str | None
    address: str | None
    name: str | None


class UploadResponse(_Open):
    bank_name: str
    statement_id: str
    entity_id: str
    date_range: DateRange | None = None
    is_fraud: bool | None = None
    identity: UploadIdentity | None = None
    fraud_type: str | None = None


class UploadError(_Open):
    entity_id: str | None
    message: str
    status: int = Field(
        description="1 success, 0 field errors, 2 trial expired, 3 wrong password, "
        "4 bank mismatch, 5 bank undetected, 6 not parsable, 7 unsupported format."
    )


class ApiError(_Open):
    code: str
    message: str


class ErrorEnvelope(_Open):
    error: ApiError


class SessionCreated(_Open):
    session_id: str
    redirect_url: str


class SessionUploadIdentity(_Open):
    account_number: str | None
    name: str | None
    address: str | None
    ifsc: str | None
    micr: str | None
    account_category: str | None
    credit_limit: float | None
    od_limit: float | None
    account_id: str
    bank_name: str


class SessionUploadResponse(_Open):
    bank_name: str
    statement_id: str
    identity: SessionUploadIdentity
    date_range: DateRange
    opening_date: str | None
    opening_bal: float | None
    closing_bal: float | None
    is_fraud: bool
    fraud_type: str | None
    page_count: int
    metadata_analysis: dict
    country_code: str
    currency_code: str
    extracted_date_range: DateRange
    account_id: str
    masked_account_number: str | None
    status: int
    session_id: str


class SessionUploadError(_Open):
    session_id: str
    statement_id: str
    error: ApiError
