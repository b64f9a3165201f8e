"""Deterministic synthetic bank statements for Indian retail accounts.

Everything is derived from ``(seed, key, ...)`` through a keyed hash, never from a shared
random stream, so any entity can be generated alone, in any order, on any process, and
gives the same bytes. An account is a stream generated calendar month by calendar month;
its statements are consecutive windows on that stream. Appending a statement extends the
stream and leaves every earlier row, balance and hash unchanged.

Money is held in paise (int) throughout; the API layer turns it into JSON numbers.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from functools import cached_property, lru_cache
from typing import TypeVar

from bankconnect_etl.vocab import BANK_IFSC_PREFIX

T = TypeVar("T")

# The last day any base statement may cover. Fixed, so a world depends on its seed only.
WORLD_END = date(2026, 10, 31)

# Position of an entity within each block of 25 decides the edge cases, so that every
# world of 25 or more entities has all of them, and the first page shows most of them.
SLOT_NO_STATEMENTS = 1
SLOT_FAILED_STATEMENT = 2
SLOT_TWO_ACCOUNTS = 3
SLOT_NULL_IDENTITY = 4
SLOT_SHARED_LINK = (5, 6, 7)
SLOT_FRAUD = 8
SLOT_NO_LINK = 9
SLOT_EXTRA_FIELDS = 11
SLOT_OVERDRAFT = 12
SLOT_PARTLY_FAILED = 14
BLOCK = 25


def _digest(*parts: object) -> bytes:
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def _ri(r: random.Random, lo: int, hi: int) -> int:
    """``r.randint(lo, hi)`` at a third of the cost (the generator's hottest call)."""
    return lo + int(r.random() * (hi - lo + 1))


def _pick(r: random.Random, seq: Sequence[T]) -> T:
    """``r.choice(seq)``, likewise."""
    return seq[int(r.random() * len(seq))]


def rng_for(*parts: object) -> random.Random:
    return random.Random(int.from_bytes(_digest(*parts), "big"))


def uuid_for(*parts: object) -> str:
    raw = bytearray(_digest(*parts))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4, like the API's ids
    raw[8] = (raw[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(raw)))


def hex32(*parts: object) -> str:
    return _digest(*parts).hex()


def add_months(d: date, months: int) -> date:
    """Same day ``months`` later, clamped to the end of a shorter month."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, _month_len(year, month)))


def _month_len(year: int, month: int) -> int:
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    return (nxt - timedelta(days=1)).day


def month_key(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}"


# --------------------------------------------------------------------------- entities


@dataclass(frozen=True, slots=True)
class EntityHeader:
    entity_id: str
    link_id: str | None
    meta_data: str | None


def entity_header(seed: int, index: int) -> EntityHeader:
    slot = index % BLOCK
    entity_id = uuid_for(seed, "entity", index)
    if slot in SLOT_SHARED_LINK:
        link_id: str | None = f"APP{hex32(seed, 'shared-link', index // BLOCK)[:10].upper()}"
    elif slot == SLOT_NO_LINK:
        link_id = None  # uploaded straight to the upload API, which creates no link
    else:
        link_id = f"APP{hex32(seed, 'link', index)[:10].upper()}"
    meta = None
    if index % 4 == 0:
        loan = hex32(seed, "loan", index)[:8].upper()
        meta = f'{{"loan_application_id":"LA{loan}","product":"personal_loan"}}'
    return EntityHeader(entity_id, link_id, meta)


# --------------------------------------------------------------------------- plans


@dataclass(frozen=True, slots=True)
class AccountPlan:
    """What an account is, before any transaction is generated."""

    key: str
    bank: str
    persona: str  # "salaried" or "self_employed"
    start: date  # first day of the first statement window
    windows: tuple[int, ...]  # months covered by each statement, in upload order
    failed: frozenset[int] = frozenset()  # statement positions whose extraction failed
    fraud_window: int | None = None  # statement position with a tampered row
    null_identity: bool = False
    overdraft: bool = False
    extra_fields: bool = False
    password: str | None = None  # pdf password of every statement of this account


def entity_plans(seed: int, index: int) -> tuple[AccountPlan, ...]:
    slot = index % BLOCK
    r = rng_for(seed, "plan", index)
    key = f"{seed}:{index}"

    def plan(n: int, windows: tuple[int, ...] | None = None, **kw: object) -> AccountPlan:
        windows = windows or _split_months(r, _ri(r, 1, 12))
        end = WORLD_END - timedelta(days=_ri(r, 0, 50))
        persona = "self_employed" if r.random() < 0.35 else "salaried"
        fields: dict[str, object] = {
            "key": f"{key}:{n}",
            "bank": _pick_bank(r),
            "persona": persona,
            "start": add_months(end + timedelta(days=1), -sum(windows)),
            "windows": windows,
            "null_identity": r.random() < 0.05,
            "overdraft": persona == "self_employed" and r.random() < 0.3,
            "extra_fields": r.random() < 0.05,
            "password": _pdf_password(r) if r.random() < 0.3 else None,
        }
        fields.update(kw)
        return AccountPlan(**fields)  # type: ignore[arg-type]

    if slot == SLOT_NO_STATEMENTS:
        latent = plan(0)
        # No statement yet; an advance can reveal one that starts where this world ends.
        return (replace(latent, windows=(), start=add_months(WORLD_END, -2)),)
    if slot == SLOT_FAILED_STATEMENT:
        return (plan(0, windows=(_ri(r, 1, 6),), failed=frozenset({0})),)
    if slot == SLOT_PARTLY_FAILED:
        windows = _split_months(r, _ri(r, 2, 12))
        if len(windows) < 2:
            windows = (windows[0] - 1, 1)
        return (plan(0, windows=windows, failed=frozenset({len(windows) - 1})),)
    if slot == SLOT_TWO_ACCOUNTS:
        a, b = plan(0), plan(1)
        while b.bank == a.bank:
            b = replace(b, bank=_pick_bank(r))
        return (a, b)
    if slot == SLOT_NULL_IDENTITY:
        return (plan(0, null_identity=True),)
    if slot == SLOT_FRAUD:
        p = plan(0)
        return (replace(p, fraud_window=len(p.windows) - 1),)
    if slot == SLOT_EXTRA_FIELDS:
        return (plan(0, extra_fields=True),)
    if slot == SLOT_OVERDRAFT:
        return (plan(0, persona="self_employed", overdraft=True),)
    plans = [plan(0)]
    if r.random() < 0.08:
        plans.append(plan(1))
    if r.random() < 0.03:
        plans[0] = replace(plans[0], fraud_window=len(plans[0].windows) - 1)
    return tuple(plans)


def upload_plan(
    seed: int, file_key: str, bank: str, months: int, today: date, password: str | None = None
) -> AccountPlan:
    """The account behind an uploaded file: a window of ``months`` ending yesterday."""
    r = rng_for(seed, "upload", file_key)
    end = today - timedelta(days=1)
    return AccountPlan(
        key=f"upload:{file_key}",
        bank=bank,
        persona="self_employed" if r.random() < 0.35 else "salaried",
        start=add_months(end + timedelta(days=1), -months),
        windows=(months,),
        password=password,
    )


def extend_plan(seed: int, plan: AccountPlan, extra: int) -> AccountPlan:
    """The plan with ``extra`` more statements appended after its last window."""
    if extra <= 0:
        return plan
    # a month each: an advance moves the world's time on by 30 days, and a statement of
    # months to come would put transactions after the world's today
    return replace(plan, windows=plan.windows + (1,) * extra)


def _split_months(r: random.Random, total: int) -> tuple[int, ...]:
    parts: list[int] = []
    left = total
    while left > 0:
        take = left if left <= 3 or r.random() < 0.5 else _ri(r, 1, left - 1)
        parts.append(take)
        left -= take
    return tuple(parts)


_BANK_WEIGHTS = {"sbi": 18, "hdfc": 16, "icici": 14, "axis": 10, "kotak": 7, "baroda": 5}


def _pick_bank(r: random.Random) -> str:
    banks = list(BANK_IFSC_PREFIX)
    weights = [_BANK_WEIGHTS.get(b, 1) for b in banks]
    return r.choices(banks, weights)[0]


def _pdf_password(r: random.Random) -> str:
    # Typical Indian statement passwords: name prefix + birth date, or customer id digits.
    return (
        "".join(_pick(r, "ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(4))
        + f"{_ri(r, 1, 28):02d}{_ri(r, 1, 12):02d}"
    )


# --------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class Txn:
    account_id: str
    statement_id: str
    seq: int  # row order within the account, across its statements
    day: date
    ttype: str
    amount: int  # paise
    balance: int  # paise, after this row
    channel: str
    description: str
    merchant: str
    note: str
    hash: str
    tag: str  # "salary", "emi:<n>", "rent", "sip", "sub:<n>" or ""
    employer: str = ""  # clean salary note
    salary_month: str = ""  # "M-YYYY"


@dataclass(frozen=True, slots=True)
class Statement:
    statement_id: str
    account_id: str
    bank: str
    position: int
    from_date: date
    to_date: date
    uploaded_on: date
    pdf_password: str | None
    failed_message: str | None
    fraud: tuple[tuple[str, str | None], ...]  # (fraud_type, transaction hash)


@dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    bank: str
    account_number: str | None
    ifsc: str | None
    micr: str | None
    name: str | None
    address: str | None
    category: str
    od_limit: int | None  # paise
    extra_fields: bool


@dataclass(frozen=True)
class EntityData:
    header: EntityHeader
    accounts: tuple[Account, ...]
    statements: tuple[Statement, ...]
    _rows: Callable[[], tuple[Txn, ...]] = field(repr=False, compare=False)

    @cached_property
    def transactions(self) -> tuple[Txn, ...]:
        """Every row of every account, in account then row order; built on first use,
        because it is most of the cost and accounts, identity and get_pdfs never need it."""
        return self._rows()

    def statement(self, statement_id: str) -> Statement | None:
        return next((s for s in self.statements if s.statement_id == statement_id), None)


FAILED_MESSAGES = (
    "Unable to extract transactions from the statement",
    "Statement is a scanned image; transactions could not be read",
    "Transactions could not be extracted: unsupported statement layout",
)


def build_entity(seed: int, header: EntityHeader, plans: Sequence[AccountPlan]) -> EntityData:
    accounts: list[Account] = []
    statements: list[Statement] = []
    parts: list[tuple[AccountPlan, Account, list[Statement]]] = []
    for plan in plans:
        if not plan.windows:
            continue
        account = _account(seed, plan)
        stmts = _statements(seed, plan, account)
        if plan.fraud_window is not None and plan.fraud_window < len(stmts):
            target = stmts[plan.fraud_window]
            tampered = _first_break(
                _account_transactions(seed, plan, account, stmts), target.statement_id
            )
            entry = ("inconsistent_transaction", tampered) if tampered else ("author_fraud", None)
            stmts[plan.fraud_window] = replace(target, fraud=(entry,))
        accounts.append(account)
        statements.extend(stmts)
        parts.append((plan, account, stmts))
    statements.sort(key=lambda s: (s.uploaded_on, s.statement_id))

    def rows() -> tuple[Txn, ...]:
        return tuple(
            t
            for plan, account, stmts in parts
            for t in _account_transactions(seed, plan, account, stmts)
        )

    return EntityData(header, tuple(accounts), tuple(statements), rows)


FIRST_NAMES = (
    "Aarav", "Vihaan", "Aditya", "Arjun", "Sai", "Rohan", "Karthik", "Rahul", "Vikram", "Imran",
    "Ananya", "Diya", "Priya", "Kavya", "Sneha", "Meera", "Fatima", "Lakshmi", "Pooja", "Neha",
)  # fmt: skip
SURNAMES = (
    "Sharma", "Verma", "Iyer", "Reddy", "Nair", "Patel", "Shah", "Gupta", "Khan", "Das",
    "Menon", "Kulkarni", "Singh", "Yadav", "Joshi", "Rao", "Banerjee", "Pillai", "Mehta", "Gill",
)  # fmt: skip
CITIES = (
    ("Bengaluru", "560038"), ("Mumbai", "400072"), ("Pune", "411014"), ("Hyderabad", "500081"),
    ("Chennai", "600042"), ("New Delhi", "110092"), ("Kolkata", "700091"), ("Jaipur", "302017"),
    ("Lucknow", "226010"), ("Kochi", "682024"), ("Indore", "452010"), ("Meerut", "250002"),
)  # fmt: skip


def _account(seed: int, plan: AccountPlan) -> Account:
    r = rng_for(seed, plan.key, "account")
    name = f"{_pick(r, FIRST_NAMES)} {_pick(r, SURNAMES)}".upper()
    city, pin = _pick(r, CITIES)
    address = f"{_ri(r, 1, 400)}, {_pick(r, STREETS)}, {city.upper()} {pin}"
    prefix = BANK_IFSC_PREFIX.get(plan.bank, plan.bank[:4].upper().ljust(4, "X"))
    ifsc = f"{prefix}0{_ri(r, 0, 999999):06d}"
    micr = f"{pin[:3]}{_ri(r, 0, 999):03d}{_ri(r, 0, 999):03d}"
    number = str(_ri(r, 10**11, 10**15 - 1))
    if r.random() < 0.3:
        number = "X" * (len(number) - 4) + number[-4:]  # masked on the statement
    if plan.null_identity:
        name = None if r.random() < 0.7 else name
        address = None
        ifsc = micr = None
        number = None if r.random() < 0.5 else number
    elif r.random() < 0.2:
        micr = None
    od = _ri(r, 5, 50) * 10_000_00 if plan.overdraft else None
    return Account(
        account_id=uuid_for(seed, plan.key, "account"),
        bank=plan.bank,
        account_number=number,
        ifsc=ifsc,
        micr=micr,
        name=name,
        address=address,
        category="corporate"
        if plan.persona == "self_employed" and r.random() < 0.4
        else "individual",
        od_limit=od,
        extra_fields=plan.extra_fields,
    )


def _statements(seed: int, plan: AccountPlan, account: Account) -> list[Statement]:
    out: list[Statement] = []
    start = plan.start
    for pos, months in enumerate(plan.windows):
        end = add_months(start, months) - timedelta(days=1)
        r = rng_for(seed, plan.key, "statement", pos)
        out.append(
            Statement(
                statement_id=uuid_for(seed, plan.key, "statement", pos),
                account_id=account.account_id,
                bank=plan.bank,
                position=pos,
                from_date=start,
                to_date=end,
                uploaded_on=end + timedelta(days=_ri(r, 1, 20)),
                pdf_password=plan.password,
                failed_message=_pick(r, FAILED_MESSAGES) if pos in plan.failed else None,
                fraud=(),
            )
        )
        start = end + timedelta(days=1)
    return out


# --------------------------------------------------------------------------- transactions

EMPLOYERS = (
    "NOVA SOFTLABS PVT LTD", "KAVERI TEXTILES LTD", "ZENITH HOSPITALS PVT LTD",
    "SUNRISE LOGISTICS LLP", "ORBIT FINTECH PVT LTD", "DECCAN AUTO COMPONENTS LTD",
    "BLUEPEAK BPO SERVICES", "GANGA CEMENTS LIMITED", "VERTEX ANALYTICS INDIA PVT LTD",
    "MERIDIAN RETAIL PVT LTD",
)  # fmt: skip
LENDERS = (
    ("BAJAJ FINANCE LTD", "BAJAJFIN"), ("HDB FINANCIAL SERVICES", "HDBFSL"),
    ("TATA CAPITAL LTD", "TATACAP"), ("HOME CREDIT INDIA", "HOMECRDT"),
    ("IDFC FIRST BANK", "IDFCFB"), ("ADITYA BIRLA FINANCE", "ABFL"),
)  # fmt: skip
MERCHANTS = {
    "food": ("SWIGGY", "ZOMATO", "CHAAYOS"),
    "groceries": ("BIGBASKET", "DMART", "BLINKIT", "RELIANCE FRESH"),
    "shopping": ("AMAZON", "FLIPKART", "MYNTRA"),
    "travel": ("IRCTC", "OLA", "UBER", "REDBUS"),
    "fuel": ("INDIAN OIL", "HPCL", "BPCL"),
    "entertainment": ("BOOKMYSHOW", "NETFLIX", "SPOTIFY"),
    "medical": ("APOLLO PHARMACY", "TATA 1MG"),
    "bills": ("AIRTEL", "JIO", "BESCOM", "TATA POWER"),
    "ewallet": ("PAYTM WALLET", "AMAZON PAY"),
    "insurance": ("LIC OF INDIA", "HDFC ERGO"),
    "bnpl": ("SIMPL", "LAZYPAY"),
    "trading": ("ZERODHA", "UPSTOX"),
    "gambling": ("DREAM11",),
    "alcohol": ("TONIQUE WINES",),
    "tax": ("INCOME TAX DEPT",),
    "loans": ("KREDITBEE", "MONEYVIEW"),
    "investments": ("GROWW", "KUVERA"),
}
_UPI_CATEGORY_WEIGHTS = (
    ("food", 22), ("groceries", 18), ("", 25), ("shopping", 8), ("travel", 7), ("fuel", 5),
    ("entertainment", 3), ("medical", 3), ("bills", 2), ("ewallet", 2), ("bnpl", 1),
    ("gambling", 1), ("alcohol", 1), ("loans", 1), ("trading", 1),
)  # fmt: skip
_UPI_CATEGORIES = tuple(c for c, _ in _UPI_CATEGORY_WEIGHTS)
_UPI_CUMULATIVE = tuple(itertools.accumulate(w for _, w in _UPI_CATEGORY_WEIGHTS))
_UPI_HANDLES = ("okaxis", "okhdfcbank", "oksbi", "paytm", "ybl", "ibl", "upi")


@dataclass(frozen=True, slots=True)
class _Persona:
    employer: str
    salary: int  # paise
    pay_day: int
    salary_channel: str
    salary_fixed: bool
    loans: tuple[tuple[int, str, str, int, int, str, int], ...]
    # (n, lender, code, emi, day, umrn, starts_at_month_index)
    rent: int
    rent_day: int
    landlord: str
    sip: int
    sip_day: int
    sip_quirk: str
    subs: tuple[tuple[str, int, int], ...]
    upi_per_month: tuple[int, int]
    opening: int


def _persona(seed: int, plan: AccountPlan) -> _Persona:
    r = rng_for(seed, plan.key, "persona")
    salaried = plan.persona == "salaried"
    salary = _ri(r, 18, 220) * 1000_00 + (0 if r.random() < 0.15 else _ri(r, 1, 999) * 100)
    loans = []
    for n in range(r.choices((0, 1, 2, 3), (35, 40, 18, 7))[0]):
        lender, code = _pick(r, LENDERS)
        emi = _ri(r, 15, 450) * 100_00 + _ri(r, 0, 99) * 100
        umrn = f"{code[:4]}{_ri(r, 10**11, 10**12 - 1)}"
        loans.append((n, lender, code, emi, _pick(r, (2, 3, 5, 7, 10)), umrn, _ri(r, -12, 6)))
    subs = tuple(
        (
            _pick(r, ("NETFLIX", "SPOTIFY", "HOTSTAR", "YOUTUBE PREMIUM")),
            _pick(r, (149, 199, 499, 649)) * 100,
            _ri(r, 1, 28),
        )
        for _ in range(_pick(r, (0, 0, 1, 2)))
    )
    return _Persona(
        employer=_pick(r, EMPLOYERS),
        salary=(salary // 1000_00) * 1000_00 if r.random() < 0.08 else salary,
        pay_day=_pick(r, (1, 1, 2, 3, 5, 7, 25, 28, 30, 31)),
        salary_channel="salary" if r.random() < 0.8 else "net_banking_transfer",
        salary_fixed=r.random() < 0.3,
        loans=tuple(loans),
        rent=_ri(r, 6, 35) * 1000_00 if salaried and r.random() < 0.5 else 0,
        rent_day=_ri(r, 1, 7),
        landlord=f"{_pick(r, FIRST_NAMES).lower()}{_ri(r, 1, 99)}@{_pick(r, _UPI_HANDLES)}",
        sip=_pick(r, (500, 1000, 2000, 5000, 10000)) * 100 if r.random() < 0.4 else 0,
        sip_day=_pick(r, (1, 5, 10, 15, 20)),
        sip_quirk=_pick(r, ("OTHER", "Other", "INVESTMENT")),
        subs=subs,
        upi_per_month=(35, 45) if salaried else (15, 40),
        opening=_ri(r, 2, 150) * 1000_00 + _ri(r, 0, 99999),
    )


@dataclass(slots=True)
class _Event:
    day: int
    order: float
    ttype: str
    amount: int
    channel: str
    description: str
    merchant: str
    note: str
    tag: str = ""
    kind: str = ""  # "emi" and "cheque_out" may bounce; "essential" always posts
    employer: str = ""
    salary_month: str = ""


STREETS = ("MG ROAD", "STATION ROAD", "GANDHI NAGAR", "LAKE VIEW COLONY", "SECTOR 4")
SUPPLIER_PREFIXES = ("SHREE", "JAI", "NEW", "OM")
SUPPLIER_KINDS = ("TRADERS", "ENTERPRISES", "AGENCIES", "SUPPLIERS")


def _clock(r: random.Random) -> str:
    return f"{_ri(r, 7, 23):02d}:{_ri(r, 0, 59):02d}:{_ri(r, 0, 59):02d}"


def _vpa(r: random.Random, name: str) -> str:
    return f"{name}@{_pick(r, _UPI_HANDLES)}"


def _card(r: random.Random) -> str:
    return f"POS 4{_ri(r, 10**5, 10**6 - 1)}XXXXXX{_ri(r, 1000, 9999)}"


def _rrn(r: random.Random) -> str:
    return str(_ri(r, 10**11, 10**12 - 1))


def _utr(r: random.Random, bank: str) -> str:
    return f"{BANK_IFSC_PREFIX.get(bank, 'XXXX')}N{_ri(r, 10**11, 10**12 - 1)}"


def _rupees(r: random.Random, median: float, sigma: float, lo: int, hi: int) -> int:
    value = max(lo, min(hi, r.lognormvariate(0, sigma) * median))
    paise = round(value * 100)
    return paise - paise % 100 if r.random() < 0.7 else paise


def _month_events(
    seed: int, plan: AccountPlan, p: _Persona, year: int, month: int, index: int
) -> list[_Event]:
    """Every event of one calendar month, before balances decide what posts."""
    r = rng_for(seed, plan.key, "month", year, month)
    last = _month_len(year, month)
    ev: list[_Event] = []

    def add(
        day: int,
        ttype: str,
        amount: int,
        channel: str,
        note: str,
        *,
        desc: str = "",
        merchant: str = "",
        **kw: str,
    ) -> None:
        ev.append(
            _Event(
                min(max(day, 1), last),
                r.random(),
                ttype,
                amount,
                channel,
                desc,
                merchant,
                note,
                **kw,
            )
        )

    if plan.persona == "salaried":
        amount = p.salary if p.salary_fixed else p.salary + (index // 12) * p.salary // 10
        if not p.salary_fixed and r.random() < 0.15:
            amount += _ri(r, 1, 20) * 500_00  # bonus or arrears
        day = min(p.pay_day, last)
        for_month = (
            (year, month) if day > 7 else ((year, month - 1) if month > 1 else (year - 1, 12))
        )
        note = _pick(
            r,
            (
                f"NEFT/{_utr(r, plan.bank)}/{p.employer}/SALARY FOR THE MONTH",
                f"NEFT/INWARD/CR-{plan.bank.upper()}/{p.employer}/SAL "
                f"{date(for_month[0], for_month[1], 1):%b%y}".upper(),
            ),
        )
        add(
            day,
            "credit",
            amount,
            p.salary_channel,
            note,
            tag="salary",
            kind="essential",
            employer=p.employer.title(),
            salary_month=f"{for_month[1]}-{for_month[0]}",
        )
    else:
        for _ in range(_ri(r, 8, 25)):
            who = f"{_pick(r, FIRST_NAMES)} {_pick(r, SURNAMES)}".upper()
            amount = _rupees(r, 9000, 1.0, 200, 400000)
            if r.random() < 0.5:
                add(
                    _ri(r, 1, last),
                    "credit",
                    amount,
                    "upi",
                    f"UPI/{_rrn(r)}/{_clock(r)}/UPI/{_vpa(r, who.split()[0].lower())}",
                )
            else:
                add(
                    _ri(r, 1, last),
                    "credit",
                    amount,
                    "net_banking_transfer",
                    f"{_pick(r, ('NEFT', 'IMPS'))}/{_utr(r, plan.bank)}/{who}"
                    f"/INV {_ri(r, 100, 999)}",
                )
        for _ in range(_pick(r, (0, 0, 1, 2, 3, 5))):
            machine = r.random() < 0.4
            add(
                _ri(r, 1, last),
                "credit",
                _ri(r, 2, 90) * 500_00,
                "cash_deposit",
                f"CDM DEP {_ri(r, 1000, 9999)}"
                if machine
                else f"CASH DEP {_pick(r, CITIES)[0].upper()} BRANCH",
                desc="deposit_by_machine" if machine else "",
            )
        for _ in range(_pick(r, (0, 1, 2))):
            chq = _ri(r, 100000, 999999)
            amount = _rupees(r, 25000, 0.8, 1000, 300000)
            add(
                _ri(r, 1, last - 2),
                "credit",
                amount,
                "chq",
                f"CLG CHQ DEP {chq} {plan.bank.upper()}",
                kind="cheque_in",
            )
        for _ in range(_ri(r, 3, 10)):
            who = f"{_pick(r, SUPPLIER_PREFIXES)} {_pick(r, SUPPLIER_KINDS)}"
            amount = _rupees(r, 15000, 1.0, 500, 500000)
            add(
                _ri(r, 1, last),
                "debit",
                amount,
                "net_banking_transfer",
                f"{'RTGS' if amount >= 2_00_000_00 else 'NEFT'}/{_utr(r, plan.bank)}/{who}",
            )
        for _ in range(_pick(r, (0, 1, 1, 2))):
            add(
                _ri(r, 1, last),
                "debit",
                _rupees(r, 20000, 0.8, 1000, 200000),
                "chq",
                f"CHQ PAID {_ri(r, 100000, 999999)} {_pick(r, SURNAMES).upper()}",
                kind="cheque_out",
            )
        if r.random() < 0.5:
            add(
                _ri(r, 15, 22),
                "debit",
                _rupees(r, 6000, 0.7, 500, 90000),
                "bill_payment",
                "GST PAYMENT CBIC",
                merchant="tax",
            )

    months_since_start = index
    for n, lender, code, emi, day, umrn, starts in p.loans:
        if months_since_start == starts:
            add(
                max(1, day - _ri(r, 3, 12)) if day > 3 else 1,
                "credit",
                emi * _ri(r, 18, 36),
                "net_banking_transfer",
                f"NEFT/{_utr(r, plan.bank)}/{lender}/LOAN DISB",
                desc="lender_transaction",
            )
        if months_since_start > starts:
            note = _pick(
                r,
                (
                    f"ACHDR/{lender}/{umrn[4:]}/{_ri(r, 10**11, 10**12 - 1)}",
                    f"ACH D- {lender}-{umrn}",
                    f"CMS/{code}/{year}{month:02d}{_ri(r, 10**6, 10**7 - 1)}",
                    f"NACH/{code}/{umrn}",
                ),
            )
            add(
                day,
                "debit",
                emi,
                "auto_debit_payment",
                note,
                desc="lender_transaction",
                merchant="loans" if r.random() < 0.3 else "",
                tag=f"emi:{n}",
                kind="emi",
            )
    if p.rent:
        add(p.rent_day, "debit", p.rent, "upi", f"UPI/{_rrn(r)}/RENT/{p.landlord}", tag="rent")
    if p.sip:
        add(
            p.sip_day,
            "debit",
            p.sip,
            "investment",
            f"ACH/BSE LIMITED SIP/{_rrn(r)}",
            merchant="investments",
            tag="sip",
        )
    for k, (name, amount, day) in enumerate(p.subs):
        add(
            day,
            "debit",
            amount,
            "debit_card",
            f"{_card(r)} {name}",
            merchant="entertainment",
            tag=f"sub:{k}",
        )

    lo, hi = p.upi_per_month
    for _ in range(_ri(r, lo, hi)):
        cat = _UPI_CATEGORIES[bisect.bisect(_UPI_CUMULATIVE, r.random() * _UPI_CUMULATIVE[-1])]
        amount = _rupees(r, 180, 0.9, 5, 8000)
        if cat:
            merchant = _pick(r, MERCHANTS[cat])
            note = _pick(
                r,
                (
                    f"UPI/P2M/{_rrn(r)}/{merchant}/UPI/{plan.bank.upper()} BANK",
                    f"WDL TFR UPI/DR/{_rrn(r)}/{merchant}",
                ),
            )
        else:
            who = _pick(r, FIRST_NAMES).lower()
            vpa = f"{who}{_ri(r, 1, 999)}@{_pick(r, _UPI_HANDLES)}"
            note = f"UPI/{_rrn(r)}/{_clock(r)}/UPI/{vpa}"
        add(_ri(r, 1, last), "debit", amount, "upi", note, merchant=cat)
    for _ in range(_ri(r, 1, 5)):
        who = _pick(r, FIRST_NAMES).lower()
        add(
            _ri(r, 1, last),
            "credit",
            _rupees(r, 400, 1.0, 10, 20000),
            "upi",
            f"UPI/{_rrn(r)}/UPI/{who}{_ri(r, 1, 99)}@{_pick(r, _UPI_HANDLES)}",
        )
    for _ in range(_ri(r, 1, 6)):
        cat = _pick(r, ("shopping", "groceries", "fuel", "food", "travel", "medical"))
        add(
            _ri(r, 1, last),
            "debit",
            _rupees(r, 1200, 0.8, 50, 40000),
            "debit_card",
            f"{_card(r)} {_pick(r, MERCHANTS[cat])}",
            merchant=cat,
        )
    for _ in range(_pick(r, (0, 1, 2))):
        add(
            _ri(r, 1, last),
            "debit",
            _rupees(r, 900, 0.8, 49, 20000),
            "payment_gateway_purchase",
            f"PG/RAZORPAY/{_pick(r, MERCHANTS['shopping'])}/{_rrn(r)}",
            merchant="shopping",
        )
    bills = (
        ("telco_bill", "AIRTEL", "bills"),
        ("electric_bill", "BESCOM", "bills"),
        ("credit_card_bill", "CRED CLUB", ""),
    )
    for desc, biller, cat in r.sample(bills, _ri(r, 0, 3)):
        amount = _rupees(r, 4000 if desc == "credit_card_bill" else 700, 0.6, 99, 90000)
        add(
            _ri(r, 5, 25),
            "debit",
            amount,
            "bill_payment",
            f"BIL/ONL/{_rrn(r)}/{biller}",
            desc=desc,
            merchant=cat,
        )
    for _ in range(_pick(r, (0, 1, 1, 2, 3))):
        add(
            _ri(r, 1, last),
            "debit",
            _ri(r, 1, 20) * 500_00,
            "cash_withdrawl",
            _pick(
                r,
                (
                    f"NFS/CASH WDL/{_rrn(r)}/{plan.bank.upper()} ATM/{_pick(r, CITIES)[0].upper()}"
                    f"/{_ri(r, 1, 28):02d}-{month:02d}-{year % 100:02d}",
                    f"ATM WDL CASH {_ri(r, 100000, 999999)}",
                ),
            ),
        )
    if month in (3, 6, 9, 12):
        add(
            last,
            "credit",
            _ri(r, 20, 3000) * 100 + _ri(r, 0, 99),
            "bank_interest",
            f"INT.PD:{_ri(r, 10**9, 10**10 - 1)}:{date(year, month, 1):%d-%m-%Y}"
            f" TO {date(year, month, last):%d-%m-%Y}",
            kind="essential",
        )
        sms = _pick(r, (1500, 1770, 2000))
        add(last, "debit", sms, "bank_charge", "SMS ALERT CHARGES QTR", kind="charge")
    rare = r.random()
    if rare < 0.05:
        add(
            _ri(r, 1, last),
            "debit",
            _ri(r, 50, 900) * 100,
            "international_transaction_arbitrage",
            "DCC MARKUP FEE INTL TXN",
            kind="charge",
        )
    elif rare < 0.08:
        add(
            _ri(r, 1, last),
            "debit",
            _ri(r, 5, 200) * 1000_00,
            "demand_draft",
            f"DD ISSUE {_ri(r, 100000, 999999)} FAVOUR {_pick(r, SURNAMES).upper()}",
        )
    elif rare < 0.14:
        add(
            _ri(r, 1, last),
            "credit",
            _ri(r, 10, 500) * 100,
            "auto_credit",
            f"CASHBACK {_pick(r, MERCHANTS['shopping'])}",
        )
    elif rare < 0.18:
        add(
            _ri(r, 1, last),
            "credit",
            _ri(r, 5, 200) * 1000_00,
            "investment_cashin",
            f"REDEMPTION/{_pick(r, MERCHANTS['investments'])} MF/{_rrn(r)}",
            merchant="investments",
        )
    elif rare < 0.24:
        add(
            _ri(r, 1, last),
            "debit",
            _ri(r, 100, 5000) * 100,
            "Others",
            f"MISC DR {_ri(r, 1000, 9999)}",
        )
    if r.random() < 0.12:
        add(
            _ri(r, 1, last),
            "credit",
            _rupees(r, 700, 0.8, 20, 30000),
            "refund",
            _pick(
                r,
                (
                    f"NEFT RETURN {_utr(r, plan.bank)}",
                    f"UPI REFUND/{_rrn(r)}/{_pick(r, MERCHANTS['shopping'])}",
                ),
            ),
            desc=_pick(r, ("neft_return", "")),
        )
    if r.random() < 0.15:
        direction = _pick(r, ("debit", "credit"))
        add(
            _ri(r, 1, last),
            direction,
            _ri(r, 2, 100) * 1000_00,
            "self_transfer",
            f"IMPS/{_rrn(r)}/SELF/OWN A/C",
            desc="self_transfer" if r.random() < 0.5 else "",
        )
    return ev


def _account_transactions(
    seed: int, plan: AccountPlan, account: Account, stmts: Sequence[Statement]
) -> list[Txn]:
    p = _persona(seed, plan)
    end = stmts[-1].to_date
    floor = -(account.od_limit or 0)
    balance = p.opening
    rows: list[Txn] = []
    cursor = date(plan.start.year, plan.start.month, 1)
    index = 0

    def statement_of(day: date) -> Statement:
        for s in stmts:
            if s.from_date <= day <= s.to_date:
                return s
        raise AssertionError(day)

    def post(day: date, e: _Event, hash_: str) -> None:
        nonlocal balance
        balance += e.amount if e.ttype == "credit" else -e.amount
        s = statement_of(day)
        rows.append(
            Txn(
                account.account_id,
                s.statement_id,
                len(rows),
                day,
                e.ttype,
                e.amount,
                balance,
                e.channel,
                e.description,
                e.merchant,
                e.note,
                hash_,
                e.tag,
                e.employer,
                e.salary_month,
            )
        )

    while cursor <= end:
        y, m = cursor.year, cursor.month
        events = _month_events(seed, plan, p, y, m, index)
        events.sort(key=lambda e: (e.day, e.order))
        r = rng_for(seed, plan.key, "post", y, m)
        hashes = rng_for(seed, plan.key, "hash", y, m)  # drawn in row order: prefix-stable
        for e in events:
            day = date(y, m, e.day)
            if day < plan.start or day > end:
                continue
            h = f"{hashes.getrandbits(128):032x}"
            short = e.ttype == "debit" and balance - e.amount < floor
            if e.kind == "emi" and short:
                _bounce_emi(r, e, day, h, post)
            elif e.kind == "cheque_out" and short:
                charge = _Event(
                    e.day,
                    0,
                    "debit",
                    _pick(r, (350, 500, 590)) * 100,
                    "inward_cheque_bounce",
                    "chq_bounce_insuff_funds",
                    "",
                    f"I/W CHQ RTN:38:FUNDSINSUFFICIENT {e.note[9:15]}",
                )
                post(day, charge, h)
                post(day, _gst(charge), hex32(h, "gst"))
            elif short and e.kind not in ("essential", "charge"):
                continue  # the account holder could not have made this payment
            else:
                post(day, e, h)
                if e.kind == "cheque_in" and r.random() < 0.06:
                    back = _Event(
                        e.day,
                        0,
                        "debit",
                        e.amount,
                        "outward_cheque_bounce",
                        "",
                        "",
                        f"O/W RTN CHQ {e.note[12:18]} FUNDS INSUFFICIENT",
                    )
                    post(day, back, hex32(h, "return"))
                    fee = _Event(
                        e.day,
                        0,
                        "debit",
                        _pick(r, (150, 250)) * 100,
                        "bank_charge",
                        "chq_bounce_charge",
                        "",
                        "O/W CHQ RTN CHGS",
                    )
                    post(day, fee, hex32(h, "charge"))
                    post(day, _gst(fee), hex32(h, "gst"))
                elif e.channel == "bank_charge":
                    post(day, _gst(e), hex32(h, "gst"))
        if (
            plan.persona == "salaried"
            and balance < 2000_00
            and balance > floor
            and r.random() < 0.5
        ):
            last_day = date(y, m, _month_len(y, m))
            if plan.start <= last_day <= end:
                fee = _Event(
                    last_day.day,
                    0,
                    "debit",
                    _pick(r, (250, 400, 600)) * 100,
                    "bank_charge",
                    "min_bal_charge",
                    "",
                    "NON MAINTENANCE OF MIN BAL CHGS",
                )
                h = hex32(seed, plan.key, y, m, "minbal")
                post(last_day, fee, h)
                post(last_day, _gst(fee), hex32(h, "gst"))
        cursor = add_months(cursor, 1)
        index += 1

    if plan.fraud_window is not None and plan.fraud_window < len(stmts):
        rows = _tamper(seed, plan, rows, stmts[plan.fraud_window])
    return rows


def _gst(charge: _Event) -> _Event:
    return _Event(
        charge.day,
        0,
        "debit",
        round(charge.amount * 0.18),
        "bank_charge",
        "gst",
        "",
        f"GST @18% ON {charge.note[:30]}",
    )


def _bounce_emi(r: random.Random, e: _Event, day: date, h: str, post) -> None:  # type: ignore[no-untyped-def]
    """An EMI the balance cannot cover: a return charge, sometimes a debit and its reversal too."""
    if r.random() < 0.5:
        post(day, e, h)
        back = _Event(
            e.day,
            0,
            "credit",
            e.amount,
            "auto_debit_payment_bounce",
            "",
            "",
            f"ACH DEBIT RETURN {e.note[:40]}",
        )
        post(day, back, hex32(h, "return"))
    fee = _Event(
        e.day,
        0,
        "debit",
        _pick(r, (500, 590, 750)) * 100,
        "bank_charge",
        "ach_bounce_charge",
        "",
        f"ACH DEBIT RETURN CHARGES {e.note[:30]}",
    )
    post(day, fee, hex32(h, "charge"))
    post(day, _gst(fee), hex32(h, "gst"))


def _tamper(seed: int, plan: AccountPlan, rows: list[Txn], stmt: Statement) -> list[Txn]:
    """Edit one row's amount, leaving its balance: the running balance breaks there."""
    inside = [
        i for i, t in enumerate(rows) if t.statement_id == stmt.statement_id and t.channel == "upi"
    ]
    if not inside:
        return rows
    r = rng_for(seed, plan.key, "tamper")
    i = _pick(r, inside)
    rows[i] = replace(rows[i], amount=rows[i].amount + _ri(r, 1, 50) * 1000_00)
    return rows


def _first_break(rows: Sequence[Txn], statement_id: str) -> str | None:
    """Hash of the first row of ``statement_id`` whose balance does not follow."""
    for prev, t in itertools.pairwise(rows):
        expected = prev.balance + (t.amount if t.ttype == "credit" else -t.amount)
        if expected != t.balance and t.statement_id == statement_id:
            return t.hash
    return None


@lru_cache(maxsize=512)
def generated_entity(seed: int, index: int, extra: tuple[int, ...] = ()) -> EntityData:
    """Entity ``index`` of world ``seed``, with ``extra[k]`` statements appended to account k."""
    return build_entity(seed, entity_header(seed, index), extended_plans(seed, index, extra))


def extended_plans(seed: int, index: int, extra: tuple[int, ...] = ()) -> tuple[AccountPlan, ...]:
    """Entity ``index``'s account plans with ``extra[k]`` statements appended to account k."""
    plans = entity_plans(seed, index)
    return tuple(
        extend_plan(seed, p, extra[k] if k < len(extra) else 0) for k, p in enumerate(plans)
    )
