"""Checks every API record must pass before it becomes a row.

Records arrive as JSON objects and are framed as-is (object columns), so a check sees the
value exactly as sent: ``"1,234.50"`` is a string, not a number, and fails ``json_number``
instead of being coerced. A record that fails any check goes to ``quarantine`` with every
check it failed; the rest of its entity still loads.

Values outside the documented enumerations (channel, description, merchant category, fraud
type) are not failures: they are kept and counted in the run summary. Fields the models do
not know are tolerated and reported as schema drift.
"""

from __future__ import annotations

import re
from datetime import date

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute as pc

_API_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[ T]\d{2}:\d{2}:\d{2}(?:\.\d+)?)?\Z")
_API_DATE_ARROW = r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}:\d{2}(\.\d+)?)?$"
_MONTH = re.compile(r"(\d{4})-(\d{2})\Z")
_MONTH_YEAR = re.compile(r"(\d{1,2})-(\d{4})\Z")
_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?\Z"
)
# Below 10^12 rupees (10^14 paise) a float still tells whole paise apart (its error is under
# 0.02 paise there), so every amount that passes converts to DECIMAL(18,2) exactly.
MONEY_LIMIT = 10**12


_NUMBERS = (int, float)


def frame_column(values: list, index: pd.Index) -> pd.Series:
    """Record values as a column: Arrow-typed when they all share one JSON scalar type (the
    common case, checked vectorised), otherwise exactly as sent (object, checked one by one).

    The types are read first: Arrow's own inference turns ``[1.5, True]`` into doubles.
    """
    types = set(map(type, values))
    types.discard(type(None))
    arrow_type = _ARROW_OF.get(frozenset(types))
    if arrow_type is None and types:
        return pd.Series(values, index=index, dtype=object)
    try:
        arr = pyarrow.array(values, type=arrow_type or pyarrow.null(), from_pandas=False)
    except (OverflowError, pyarrow.ArrowInvalid):  # e.g. an integer beyond 64 bits
        return pd.Series(values, index=index, dtype=object)
    return pd.Series(pd.arrays.ArrowExtensionArray(arr), index=index)


_ARROW_OF = {
    frozenset({str}): pyarrow.string(),
    frozenset({float}): pyarrow.float64(),
    frozenset({int}): pyarrow.int64(),
    frozenset({int, float}): pyarrow.float64(),
    frozenset({bool}): pyarrow.bool_(),
}


def _arrow(s: pd.Series) -> pyarrow.Array | None:
    """The column's Arrow array, if it is Arrow-typed."""
    if isinstance(s.dtype, pd.ArrowDtype):
        return pyarrow.array(s.array)
    return None


def _values(s: pd.Series) -> np.ndarray:
    return s.to_numpy(dtype=object)


def _typed(s: pd.Series, kind: type | tuple[type, ...]) -> np.ndarray:
    """Which values are exactly of ``kind`` (so bool is not a number here)."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return np.fromiter((type(v) in kinds for v in _values(s)), dtype=bool, count=len(s))


def _strings(s: pd.Series) -> tuple[np.ndarray, pyarrow.Array]:
    """A mask of the string values, and the values as an Arrow array (others null)."""
    arr = _arrow(s)
    if arr is not None:
        is_str = np.full(len(s), arr.type == pyarrow.string())
        return is_str, arr if arr.type == pyarrow.string() else pyarrow.nulls(len(s), "string")
    is_str = _typed(s, str)
    return is_str, pyarrow.array(np.where(is_str, _values(s), None), pyarrow.string())


def text(s: pd.Series) -> pd.Series:
    arr = _arrow(s)
    if arr is not None:
        return pd.Series(arr.type == pyarrow.string(), index=s.index)
    return pd.Series(_typed(s, str), index=s.index)


def key(s: pd.Series) -> pd.Series:
    is_str, arr = _strings(s)
    blank = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(arr), ""), True)
    return pd.Series(is_str & ~blank.to_numpy(zero_copy_only=False), index=s.index)


def money(s: pd.Series) -> pd.Series:
    """JSON numbers with at most two decimals that DECIMAL(18,2) holds exactly."""
    arr = _arrow(s)
    if arr is not None:
        is_num = np.full(len(s), arr.type in (pyarrow.float64(), pyarrow.int64()))
        x = arr.to_numpy(zero_copy_only=False).astype(np.float64) if is_num.any() else None
    else:
        is_num = _typed(s, _NUMBERS)
        x = np.where(is_num, _values(s), 0.0).astype(np.float64)
    if x is None:
        return pd.Series(is_num, index=s.index)
    paise = x * 100
    with np.errstate(invalid="ignore"):
        ok = is_num & np.isfinite(x) & (np.abs(x) < MONEY_LIMIT)
        ok &= np.abs(paise - np.rint(paise)) <= 1e-9 + 1e-15 * np.abs(paise)
    return pd.Series(ok, index=s.index)


def not_negative(s: pd.Series) -> pd.Series:
    """Numbers not below zero; anything else passes here (``money`` names it)."""
    arr = _arrow(s)
    if arr is not None:
        if arr.type not in (pyarrow.float64(), pyarrow.int64()):
            return pd.Series(True, index=s.index)
        below = pc.fill_null(pc.less(arr, 0), False).to_numpy(zero_copy_only=False)
        return pd.Series(~below, index=s.index)
    values = _values(s)
    ok = [not (type(v) in _NUMBERS and v < 0) for v in values]
    return pd.Series(ok, index=s.index, dtype=bool)


def parse_api_dates(arr: pyarrow.Array) -> pyarrow.Array:
    """API date strings → date32; null where not a real date in the documented format.

    A statement repeats each date many times: the distinct values are parsed, then spread.
    """
    if len(arr) > 64:
        encoded = pc.dictionary_encode(arr)
        return pc.take(_parse_api_dates(encoded.dictionary), encoded.indices)
    return _parse_api_dates(arr)


def _parse_api_dates(arr: pyarrow.Array) -> pyarrow.Array:
    shape = pc.match_substring_regex(arr, _API_DATE_ARROW)
    day = pc.utf8_slice_codeunits(arr, 0, 10)
    parsed = pc.strptime(day, format="%Y-%m-%d", unit="s", error_is_null=True)
    # strptime rolls 2024-02-31 over to March: a real date formats back to its own text
    real = pc.equal(pc.strftime(parsed, format="%Y-%m-%d"), day)
    ok = pc.and_(pc.fill_null(shape, False), pc.fill_null(real, False))
    return pc.if_else(ok, pc.cast(parsed, pyarrow.date32()), pyarrow.scalar(None, pyarrow.date32()))


def api_dates(s: pd.Series) -> pd.Series:
    is_str, arr = _strings(s)
    ok = parse_api_dates(arr).is_valid().to_numpy(zero_copy_only=False)
    return pd.Series(is_str & ok, index=s.index)


def _elementwise(fn):  # type: ignore[no-untyped-def]
    def check(s: pd.Series) -> pd.Series:
        return pd.Series([bool(fn(v)) for v in _values(s)], index=s.index, dtype=bool)

    return check


def api_date(v: object) -> date | None:
    """``"YYYY-MM-DD 00:00:00"`` (or the bare date) as a date, else None."""
    m = _API_DATE.match(v) if isinstance(v, str) else None
    if m is None:
        return None
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None


def month_year(v: object) -> date | None:
    """The salary endpoint's ``"M-YYYY"`` as the month's first day, else None."""
    m = _MONTH_YEAR.match(v) if isinstance(v, str) else None
    if m is None or not 1 <= int(m[1]) <= 12:
        return None
    return date(int(m[2]), int(m[1]), 1)


def is_month(v: object) -> bool:
    m = _MONTH.match(v) if isinstance(v, str) else None
    return m is not None and 1 <= int(m[2]) <= 12


def is_months(v: object) -> bool:
    return isinstance(v, list) and all(is_month(x) for x in v)


def is_text_list(v: object) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) and x.strip() for x in v)


def is_bool(v: object) -> bool:
    return isinstance(v, bool)


def is_timestamp(v: object) -> bool:
    return isinstance(v, str) and _TIMESTAMP.match(v) is not None


def _c(fn, name: str, error: str) -> pa.Check:  # type: ignore[no-untyped-def]
    return pa.Check(fn, name=name, error=error)


def _e(fn, name: str, error: str) -> pa.Check:  # type: ignore[no-untyped-def]
    """An element-wise check (for the small record kinds)."""
    return pa.Check(_elementwise(fn), name=name, error=error)


KEY = _c(key, "key", "not a non-empty string")
TEXT = _c(text, "text", "not a string")
MONEY = _c(money, "money", "not a JSON number with at most 2 decimals below 10^12")
AMOUNT = _c(not_negative, "negative", "negative (transaction_type gives the direction)")
DATE = _c(api_dates, "api_date", 'not a real date "YYYY-MM-DD 00:00:00"')
MONTH_YEAR = _e(lambda v: month_year(v) is not None, "month_year", 'not a month "M-YYYY"')
MONTHS = _e(is_months, "months", 'not a list of months "YYYY-MM"')
TEXT_LIST = _e(is_text_list, "text_list", "not a list of non-empty strings")
BOOL = _e(is_bool, "boolean", "not true or false")
LIST = _e(lambda v: isinstance(v, list), "list", "not a list")
TIMESTAMP = _e(is_timestamp, "timestamp", "not an ISO timestamp")
TXN_TYPE = pa.Check.isin(["debit", "credit"], error="not debit or credit")
STATUS = pa.Check.isin(["processing", "completed", "failed"], error="not a known status")


def _col(*checks: pa.Check, nullable: bool = False, required: bool = True) -> pa.Column:
    # No dtype: a column is Arrow-typed or object depending on what was sent (frame_column).
    return pa.Column(None, checks=list(checks), nullable=nullable, required=required)


def _schema(name: str, columns: dict[str, pa.Column]) -> pa.DataFrameSchema:
    # strict=False: unknown fields are tolerated here and reported as drift by the transform.
    return pa.DataFrameSchema(columns, name=name, strict=False, coerce=False)


_TXN = {
    "account_id": _col(KEY),
    "hash": _col(KEY),
    "date": _col(DATE),
    "transaction_type": _col(TXN_TYPE),
    "amount": _col(MONEY, AMOUNT),
    "balance": _col(MONEY),
    "transaction_channel": _col(TEXT),
    "description": _col(TEXT, nullable=True),
    "merchant_category": _col(TEXT, nullable=True),
    "transaction_note": _col(TEXT, nullable=True),
}

# One schema per kind of record; the keys are the fields the API documents.
RECORDS: dict[str, pa.DataFrameSchema] = {
    "account": _schema(
        "account",
        {
            "account_id": _col(KEY),
            "bank": _col(KEY),
            "account_number": _col(TEXT, nullable=True),
            "ifsc": _col(TEXT, nullable=True),
            "micr": _col(TEXT, nullable=True),
            "months": _col(MONTHS),
            "statements": _col(TEXT_LIST),
        },
    ),
    "identity": _schema(
        "identity",
        {
            "account_id": _col(KEY),
            "name": _col(TEXT, nullable=True),
            "address": _col(TEXT, nullable=True),
            "account_number": _col(TEXT, nullable=True),
            "account_category": _col(TEXT, nullable=True, required=False),
            "credit_limit": _col(MONEY, nullable=True, required=False),
            "od_limit": _col(MONEY, nullable=True, required=False),
        },
    ),
    "progress": _schema(
        "progress",
        {
            "statement_id": _col(KEY),
            "status": _col(STATUS),
            "message": _col(TEXT, nullable=True),
        },
    ),
    "transaction": _schema("transaction", _TXN),
    "salary_transaction": _schema(
        "salary_transaction",
        {
            **_TXN,
            "month_year": _col(MONTH_YEAR),
            "clean_transaction_note": _col(TEXT, nullable=True),
        },
    ),
    "recurring_set": _schema(
        "recurring_set",
        {
            "account_id": _col(KEY),
            "transaction_channel": _col(KEY),
            "start_date": _col(DATE),
            "end_date": _col(DATE),
            "median": _col(MONEY),
            "transactions": _col(LIST),
        },
    ),
    "recurring_transaction": _schema(
        "recurring_transaction",
        {**_TXN, "merchant_category": _col(TEXT, nullable=True, required=False)},
    ),
    "fraud": _schema(
        "fraud",
        {
            "statement_id": _col(KEY),
            "fraud_type": _col(KEY),
            "transaction_hash": _col(TEXT, nullable=True, required=False),
        },
    ),
    "statement_file": _schema(
        "statement_file",
        {
            "statement_id": _col(KEY),
            "account_id": _col(TEXT, nullable=True),
            "bank_name": _col(TEXT, nullable=True),
            "pdf_url": _col(TEXT, nullable=True),
            "has_password": _col(BOOL),
        },
    ),
    "bank_health": _schema(
        "bank_health",
        {
            "bank": _col(KEY),
            "health_up": _col(BOOL),
            "issue_details": _col(TEXT, nullable=True),
            "updated_at": _col(TIMESTAMP, nullable=True),
        },
    ),
}
