"""The API's documented vocabularies, spelled exactly as the API spells them.

Sources: the vendor's pages in shared/seeds and shared/reference/bankconnect-api.md.
Values outside these sets do occur in real payloads; consumers keep and count them
rather than reject them (see the warehouse schemas).
"""

from __future__ import annotations

# 23 documented channels. `cash_withdrawl` and `Others` are the API's own spellings.
TRANSACTION_CHANNELS: tuple[str, ...] = (
    "upi",
    "salary",
    "refund",
    "payment_gateway_purchase",
    "outward_cheque_bounce",
    "net_banking_transfer",
    "investment",
    "inward_cheque_bounce",
    "investment_cashin",
    "international_transaction_arbitrage",
    "debit_card",
    "chq",
    "cash_withdrawl",
    "cash_deposit",
    "bill_payment",
    "bank_interest",
    "bank_charge",
    "auto_debit_payment_bounce",
    "auto_debit_payment",
    "self_transfer",
    "demand_draft",
    "auto_credit",
    "Others",
)

# Documented `description` values; the empty string is the most common value of all.
DESCRIPTIONS: tuple[str, ...] = (
    "",
    "penalty_charge",
    "ach_bounce_charge",
    "chq_bounce_charge",
    "credit_card_bill",
    "telco_bill",
    "electric_bill",
    "deposit_by_machine",
    "neft_return",
    "lender_transaction",
    "chq_bounce_insuff_funds",
    "deposit_machine_words",
)
# Seen in real payloads although not documented.
DESCRIPTIONS_SEEN: tuple[str, ...] = (
    "nach_setup_charge",
    "min_bal_charge",
    "stop_emi_charge",
    "gst",
    "self_transfer",
)

MERCHANT_CATEGORIES: tuple[str, ...] = (
    "",
    "alcohol",
    "gambling",
    "shopping",
    "groceries",
    "entertainment",
    "medical",
    "travel",
    "food",
    "fuel",
    "investments",
    "trading",
    "bills",
    "ewallet",
    "loans",
    "insurance",
    "tax",
    "bnpl",
)

# Per-entity endpoints that carry a `progress` field; each has its own processing state.
ANALYSIS_ENDPOINTS: tuple[str, ...] = (
    "accounts",
    "identity",
    "transactions",
    "salary",
    "recurring_transactions",
    "lender_transactions",
)

TRANSACTION_TYPES: tuple[str, ...] = ("debit", "credit")
PROGRESS_STATUSES: tuple[str, ...] = ("processing", "completed", "failed")

# Open vocabulary: the full list is not public. These are the ones seen.
FRAUD_TYPES_SEEN: tuple[str, ...] = (
    "author_fraud",
    "inconsistent_transaction",
    "date_fraud",
    "transaction_fraud",
    "negative_balance",
    "equal_credit_debit",
    "tax_100_multiple",
    "min_rtgs_amount",
    "salary_remains_unchanged",
    "salary_1000_multiple",
    "mostly_cash_transactions",
    "more_cash_deposits_than_salary",
    "more_than_15_days_credit",
)

# Bank identifiers as the data endpoints return them (lower case). The vendor documents
# 346; this is the subset the sandbox knows, with the IFSC prefix each bank uses.
BANK_IFSC_PREFIX: dict[str, str] = {
    "sbi": "SBIN",
    "hdfc": "HDFC",
    "icici": "ICIC",
    "axis": "UTIB",
    "kotak": "KKBK",
    "baroda": "BARB",
    "boi": "BKID",
    "pnbbnk": "PUNB",
    "ubi": "UBIN",
    "canara": "CNRB",
    "idfc": "IDFB",
    "indusind": "INDB",
    "yesbnk": "YESB",
    "iob": "IOBA",
    "federal": "FDRL",
    "rbl": "RATN",
    "citi": "CITI",
    "hsbc": "HSBC",
    "stanchar": "SCBL",
    "paytm": "PYTM",
    "airtel": "AIRP",
    "uco": "UCBA",
    "central": "CBIN",
    "ausfbnk": "AUBL",
    "allahabad": "ALLA",
    "indbnk": "IDIB",
    "karnataka": "KARB",
    "sib": "SIBL",
    "idbi": "IBKL",
    "bandhan": "BDBL",
}
BANKS: tuple[str, ...] = tuple(BANK_IFSC_PREFIX)

# Banks whose net-banking mode the vendor supports (upper case, as net_banking_health returns).
NET_BANKING_BANKS: tuple[str, ...] = (
    "ALLAHABAD",
    "AXIS",
    "BOI",
    "CANARA",
    "FEDERAL",
    "HDFC",
    "ICICI",
    "IDFC",
    "INDBNK",
    "INDUSIND",
    "KARNATAKA",
    "KOTAK",
    "PNBBNK",
    "RBL",
    "SIB",
    "SBI",
    "UBI",
    "YESBNK",
)


def is_known_bank(identifier: str) -> bool:
    """True for a bank identifier in either case (the appendix is upper, data is lower)."""
    return identifier.lower() in BANK_IFSC_PREFIX


# How far an entity's last sync got (entities.sync_status).
SYNC_STATUSES: tuple[str, ...] = ("complete", "pending", "failed", "empty")
