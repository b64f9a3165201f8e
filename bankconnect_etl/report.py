"""The per-entity credit report: one self-contained HTML file an underwriter can open
anywhere, offline.

Everything comes from the analytics marts (``docs/metrics.md``) of one warehouse snapshot:
the summary row, balances, monthly cash flow, salary, bounces and integrity findings. The
charts are matplotlib figures (Agg, never pyplot) embedded as inline SVG with text drawn as
paths, so the file fetches nothing: no scripts, fonts, stylesheets or images from anywhere.
All text from the data is HTML-escaped; money is shown in rupees with Indian digit grouping.

    from bankconnect_etl.report import render, resolve_entity
    html = render(con, resolve_entity(con, "3f2a"))
"""

from __future__ import annotations

import html
import io
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import cached_property
from pathlib import Path
from typing import Any

import duckdb

from bankconnect_etl.errors import UserError

DASH = "—"
BREAKS_SHOWN = 100
ENTITY_HINT = 'list entities with: bankconnect-etl sql "SELECT entity_id FROM entities LIMIT 10"'


# ---------------------------------------------------------------------- formatting


def inr(value: Decimal | float | int | None, decimals: int = 2) -> str:
    """Rupees with Indian digit grouping: ``inr(Decimal("1234567.8"))`` is ₹12,34,567.80."""
    if value is None:
        return DASH
    quantum = Decimal(1).scaleb(-decimals)
    amount = Decimal(str(value)).quantize(quantum, rounding=ROUND_HALF_UP)
    sign = "-" if amount < 0 else ""
    whole, _, fraction = f"{abs(amount):.{decimals}f}".partition(".")
    if len(whole) > 3:
        head, groups = whole[:-3], [whole[-3:]]
        while head:
            groups.insert(0, head[-2:])
            head = head[:-2]
        whole = ",".join(groups)
    return f"{sign}₹{whole}" + (f".{fraction}" if fraction else "")


def inr_short(value: float) -> str:
    """Axis labels: ₹2.5 Cr, ₹12.3 L, ₹45k, ₹900."""
    sign, size = ("-" if value < 0 else ""), abs(value)
    for unit, scale in (("Cr", 1e7), ("L", 1e5)):
        if size >= scale:
            return f"{sign}₹{size / scale:.1f} {unit}".replace(".0 ", " ")
    if size >= 1e3:
        return f"{sign}₹{size / 1e3:.0f}k"
    return f"{sign}₹{size:.0f}"


def pct(value: float | None) -> str:
    return DASH if value is None else f"{value * 100:.1f}%"


def count(value: int | None) -> str:
    return DASH if value is None else f"{value:,}"


def day(value: date | datetime | None) -> str:
    if value is None:
        return DASH
    if isinstance(value, datetime):
        return value.strftime("%d %b %Y %H:%M UTC")
    return value.strftime("%d %b %Y")


def month_label(value: date) -> str:
    return value.strftime("%b %Y")


def text(value: object) -> str:
    if value is None or value == "":
        return DASH
    if isinstance(value, list):
        return ", ".join(map(str, value)) if value else DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def esc(value: object) -> str:
    return html.escape(text(value), quote=True)


def masked(number: str | None) -> str:
    """An account number as the report shows it: the last four digits only."""
    if not number:
        return DASH
    return "••••" + number[-4:]


# ---------------------------------------------------------------------- data


@dataclass(frozen=True)
class Data:
    entity_id: str
    summary: dict
    accounts: list[dict]
    statements: list[dict]
    months: list[dict]
    daily: list[dict]
    salary: list[dict]
    bounces: list[dict]
    breaks: list[dict]
    break_days: list[dict]
    overdraft: list[dict]
    api_flags: list[dict]

    @property
    def has_transactions(self) -> bool:
        """False when nothing was read: every zero in the summary is then an absence of
        evidence, not a clean record."""
        return self.summary.get("first_txn_date") is not None

    @cached_property
    def account_labels(self) -> dict[str, str]:
        """How the report names each account: bank and the last four digits of the number
        (what an underwriter can match to a statement), the id's start when that is all
        there is or two accounts would read the same."""
        labels = {
            a["account_id"]: (
                f"{a['bank'].upper()}\u00a0{masked(a['account_number'])}"
                if a["bank"] and a["account_number"]
                else a["account_id"][:8]
            )
            for a in self.accounts
        }
        seen = Counter(labels.values())
        return {
            account: f"{label} ({account[:8]})" if seen[label] > 1 else label
            for account, label in labels.items()
        }

    def label(self, account_id: str | None) -> str:
        if not account_id:
            return DASH
        return self.account_labels.get(account_id, account_id[:8])


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object]) -> list[dict]:
    cur = con.execute(sql, list(params))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def missing_marts(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Marts the report reads that the selected database (at its snapshot) does not have."""
    from bankconnect_etl.analytics import marts

    have = {
        name
        for (name,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
        ).fetchall()
    }
    return [m for m in marts() if m not in have]


def _require_marts(con: duckdb.DuckDBPyConnection) -> None:
    missing = missing_marts(con)
    if missing:
        raise UserError(
            f"the warehouse has no analytics marts at this snapshot ({', '.join(missing)})",
            hint="run `bankconnect-etl refresh` (or choose a later --as-of)",
        )


def resolve_entity(con: duckdb.DuckDBPyConnection, given: str) -> str:
    """The entity id ``given`` names: itself, or the one entity id starting with it."""
    given = given.strip()
    if not given:
        raise UserError("no entity id given", hint=ENTITY_HINT)
    _require_marts(con)
    found = [
        e
        for (e,) in con.execute(
            "SELECT entity_id FROM entities WHERE starts_with(entity_id, ?) "
            "ORDER BY entity_id = ? DESC, entity_id LIMIT 3",
            [given, given],
        ).fetchall()
    ]
    if found and found[0] == given:
        return given
    if len(found) == 1:
        return found[0]
    if not found:
        raise UserError(f"no entity {given!r} in the warehouse", hint=ENTITY_HINT)
    raise UserError(
        f"{given!r} is the start of more than one entity id ({', '.join(found[:2])}, ...)",
        hint="give more of the id",
    )


def load(con: duckdb.DuckDBPyConnection, entity_id: str) -> Data:
    """Every row the report shows for ``entity_id``, from the marts."""
    _require_marts(con)
    e = [entity_id]
    summary = _rows(con, "FROM entity_credit_summary WHERE entity_id = ?", e)
    if not summary:
        raise UserError(f"no entity {entity_id!r} in the warehouse", hint=ENTITY_HINT)
    return Data(
        entity_id=entity_id,
        summary=summary[0],
        accounts=_rows(
            con,
            """
            SELECT a.account_id, a.bank, a.account_number, i.name, i.od_limit AS od_limit_inr,
                   a.months_covered, m.period_months, m.complete_months
            FROM accounts a
            LEFT JOIN (SELECT account_id, min(name) AS name, max(od_limit) AS od_limit
                       FROM identities WHERE entity_id = $1 GROUP BY ALL) i USING (account_id)
            LEFT JOIN (SELECT account_id, count(*) AS period_months,
                              count(*) FILTER (WHERE is_complete_month) AS complete_months
                       FROM account_monthly WHERE entity_id = $1 GROUP BY ALL) m
                USING (account_id)
            WHERE a.entity_id = $1 ORDER BY a.account_id
            """,
            e,
        ),
        statements=_rows(
            con, "FROM statement_integrity WHERE entity_id = ? ORDER BY account_id, statement_id", e
        ),
        months=_rows(
            con,
            """
            SELECT m.month, bool_and(m.is_complete_month) AS is_complete,
                   sum(m.inflow_inr) AS inflow_inr, sum(m.outflow_inr) AS outflow_inr,
                   -- as in the summary: an overdraft account's balance is the bank's money
                   sum(m.abb_daily_inr) FILTER (WHERE m.od_limit_inr IS NULL) AS abb_inr,
                   sum(m.negative_eod_days) FILTER (WHERE m.od_limit_inr IS NULL)
                       AS negative_days,
                   sum(o.income_inr) AS income_inr, sum(o.salary_income_inr) AS salary_inr,
                   sum(o.emi_due_inr) AS emi_due_inr,
                   CAST(sum(o.emi_due_inr) AS DOUBLE)
                       / nullif(CAST(sum(o.income_inr) AS DOUBLE), 0) AS foir
            FROM account_monthly m
            JOIN obligations_monthly o USING (entity_id, account_id, month)
            WHERE m.entity_id = ? GROUP BY m.month ORDER BY m.month
            """,
            e,
        ),
        daily=_rows(
            con,
            "SELECT account_id, balance_date, eod_balance_inr FROM account_daily_balance "
            "WHERE entity_id = ? ORDER BY account_id, balance_date",
            e,
        ),
        salary=_rows(
            con, "FROM salary_monthly WHERE entity_id = ? ORDER BY account_id, salary_month", e
        ),
        bounces=_rows(con, "FROM bounce_events WHERE entity_id = ? ORDER BY event_date", e),
        breaks=_rows(
            con,
            "FROM balance_integrity WHERE entity_id = ? ORDER BY account_id, txn_seq LIMIT ?",
            [entity_id, BREAKS_SHOWN],
        ),
        break_days=_rows(
            con,
            # as the summary counts them: a missing statement explains the others
            "SELECT DISTINCT account_id, txn_date FROM balance_integrity WHERE entity_id = ? "
            "AND NOT after_statement_gap ORDER BY ALL",
            e,
        ),
        overdraft=_rows(
            con,
            # Peak: the deepest end-of-day overdraft against the limit, from each month's
            # lowest balance; average: the days-weighted mean of the monthly means.
            """
            SELECT account_id, max(od_limit_inr) AS od_limit_inr,
                   sum(od_utilisation * days_in_period) / nullif(sum(days_in_period), 0)
                       AS avg_utilisation,
                   max(greatest(-CAST(min_eod_inr AS DOUBLE), 0))
                       / CAST(max(od_limit_inr) AS DOUBLE) AS peak_utilisation,
                   sum(days_over_od_limit) AS days_over_limit
            FROM account_monthly
            WHERE entity_id = ? AND od_limit_inr > 0
            GROUP BY account_id ORDER BY account_id
            """,
            e,
        ),
        api_flags=_rows(
            con,
            "SELECT statement_id, fraud_type, transaction_hash FROM fraud_flags "
            "WHERE entity_id = ? ORDER BY ALL",
            e,
        ),
    )


# ---------------------------------------------------------------------- charts

GREEN, RED, ORANGE, BLUE, GREY = "#2e7d32", "#c62828", "#ef6c00", "#1565c0", "#9e9e9e"
# Salary has one colour in both charts, apart from inflow green and outflow/bounce red;
# INK marks EMIs and balance breaks.
SALARY, INK = "#f9a825", "#263238"
PALETTE = (BLUE, "#6a1b9a", "#00838f", "#ad1457", "#4e342e")
SHORT_SPAN_DAYS = 92  # under about three months of balances, the date axis ticks days


def _svg(fig: Any, name: str) -> str:
    """The figure as inline SVG: no XML prologue, no namespace URLs, ids unique to it."""
    buf = io.StringIO()
    fig.savefig(
        buf,
        format="svg",
        metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
    )
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg)
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{name}-\1"', svg)
    svg = re.sub(r'href="#([^"]+)"', rf'href="#{name}-\1"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{name}-\1)", svg)
    label = {"eod": "End-of-day balance chart", "flows": "Monthly inflow and outflow chart"}
    return svg.replace("<svg ", f'<svg role="img" aria-label="{label.get(name, name)}" ', 1)


def _figure(width: float, height: float) -> tuple[Any, Any]:
    """A figure on its own Agg canvas: no pyplot, no global backend switch."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: inr_short(v)))
    ax.grid(axis="y", color="#e0e0e0", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


def _rc() -> Any:
    import matplotlib

    return matplotlib.rc_context(
        {
            "svg.fonttype": "path",  # glyphs as paths: no font is needed to view the file
            "svg.hashsalt": "bankconnect-etl",  # stable ids, so a report is reproducible
            "font.family": "DejaVu Sans",
            "font.size": 8.5,
            "axes.titlesize": 10,
        }
    )


def _runs(days: list[date]) -> list[tuple[date, date]]:
    """Consecutive days as (first day, day after the last): one shaded band per run
    rather than one per day keeps the SVG small."""
    runs: list[tuple[date, date]] = []
    for d in sorted(days):
        if runs and runs[-1][1] == d:
            runs[-1] = (runs[-1][0], d + timedelta(days=1))
        else:
            runs.append((d, d + timedelta(days=1)))
    return runs


def _date_axis(ax: Any, first: date, last: date) -> None:
    """Month ticks labelled like the cash-flow chart's ("Mar\\n2026"); day ticks for a
    short history, where month ticks would leave the axis nearly bare."""
    from matplotlib.dates import DateFormatter, DayLocator, MonthLocator

    span = (last - first).days
    if span < SHORT_SPAN_DAYS:
        ax.xaxis.set_major_locator(DayLocator(interval=max(1, span // 8 + 1)))
        ax.xaxis.set_major_formatter(DateFormatter("%d %b"))
    else:
        months = span // 30 + 1
        ax.xaxis.set_major_locator(MonthLocator(interval=-(-months // 13)))
        ax.xaxis.set_major_formatter(DateFormatter("%b\n%Y"))


def eod_chart(data: Data) -> str | None:
    """End-of-day balance per account. Marked: each overdraft account's limit (a negative
    balance there is borrowing, not distress), days below zero on other accounts and days
    over the overdraft limit (shaded full height, since a ₹500 dip is invisible against a
    ₹5 L scale), salary credits, bounces and running-balance breaks."""
    if not data.daily:
        return None
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    limits = {o["account_id"]: float(o["od_limit_inr"]) for o in data.overdraft}
    series: dict[str, tuple[list[date], list[float]]] = {}
    eod_on: dict[tuple[str, date], float] = {}
    for row in data.daily:
        xs, ys = series.setdefault(row["account_id"], ([], []))
        xs.append(row["balance_date"])
        ys.append(float(row["eod_balance_inr"]))
        eod_on[(row["account_id"], row["balance_date"])] = ys[-1]
    negative: list[date] = []
    over_limit: list[date] = []
    for account, (xs, ys) in series.items():
        limit = limits.get(account)
        if limit is None:
            negative += [x for x, y in zip(xs, ys, strict=True) if y < 0]
        else:
            over_limit += [x for x, y in zip(xs, ys, strict=True) if y < -limit]
    with _rc():
        fig, ax = _figure(9.0, 3.6)
        bands: list[Any] = []
        # gids name the marks in the SVG (``id="eod-negative-days-0"``), for tests and tools.
        for k, (first, end) in enumerate(_runs(negative)):
            ax.axvspan(first, end, color=RED, alpha=0.13, linewidth=0, gid=f"negative-days-{k}")
        if negative:
            bands.append(Patch(color=RED, alpha=0.13, label="balance below zero"))
        for k, (first, end) in enumerate(_runs(over_limit)):
            ax.axvspan(first, end, color=RED, alpha=0.35, linewidth=0, gid=f"over-limit-{k}")
        if over_limit:
            bands.append(Patch(color=RED, alpha=0.35, label="over overdraft limit"))
        handles: list[Any] = []  # legend order: accounts and limits, bands, markers
        for i, (account, (xs, ys)) in enumerate(series.items()):
            color = PALETTE[i % len(PALETTE)]
            name = data.label(account)
            (line,) = ax.step(xs, ys, where="post", color=color, linewidth=1.1, label=name)
            handles.append(line)
            limit = limits.get(account)
            if limit is not None:
                ax.fill_between(
                    xs, ys, 0, where=[y < 0 for y in ys], step="post", color=color, alpha=0.12
                )
                ax.axhline(
                    -limit, color=color, linewidth=1.1, linestyle=(0, (5, 3)), gid=f"od-limit-{i}"
                )
                handles.append(
                    Line2D(
                        [],
                        [],
                        color=color,
                        linewidth=1.1,
                        linestyle=(0, (5, 3)),
                        label=f"overdraft limit {inr(-limit, 0)}"
                        + (f" ({name})" if len(series) > 1 else ""),
                    )
                )
        ax.axhline(0, color=GREY, linewidth=0.8)
        handles += bands

        def points(rows: Iterable[tuple[str, date]]) -> list[tuple[date, float]]:
            found = [(x, eod_on.get((a, x))) for a, x in rows]
            return [(x, y) for x, y in found if y is not None]

        marks = [
            (
                "salary credit",
                points((r["account_id"], r["first_credit_date"]) for r in data.salary),
                {"marker": "^", "s": 34, "color": SALARY, "edgecolors": INK, "linewidths": 0.5},
            ),
            (
                "bounce",
                points((r["account_id"], r["event_date"]) for r in data.bounces),
                {"marker": "x", "s": 32, "color": RED, "linewidths": 1.4},
            ),
            (
                "running-balance break",
                points((r["account_id"], r["txn_date"]) for r in data.break_days),
                {
                    "marker": "D",
                    "s": 30,
                    "facecolors": "none",
                    "edgecolors": INK,
                    "linewidths": 1.1,
                },
            ),
        ]
        for label, found, style in marks:
            if found:
                gid = label.replace(" ", "-") + "s"
                handles.append(
                    ax.scatter(*zip(*found, strict=True), zorder=3, label=label, gid=gid, **style)
                )
        days = [x for xs, _ in series.values() for x in xs]
        _date_axis(ax, min(days), max(days))
        ax.set_title("End-of-day balance", loc="left")
        fig.legend(
            handles=handles, loc="outside lower center", frameon=False, ncols=4, fontsize=7.5
        )
        return _svg(fig, "eod")


def flows_chart(data: Data) -> str | None:
    """Monthly inflow and outflow bars. Each month's salary is a tick across its inflow bar
    and its EMIs a tick across its outflow bar: side by side, so neither hides the other
    when the amounts are close, and read against the bar they are part of."""
    if not data.months:
        return None
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    xs = list(range(len(data.months)))
    inflow = [float(m["inflow_inr"]) for m in data.months]
    outflow = [float(m["outflow_inr"]) for m in data.months]
    with _rc():
        fig, ax = _figure(9.0, 3.4)
        alpha = [1.0 if m["is_complete"] else 0.45 for m in data.months]
        for x, a, i, o in zip(xs, alpha, inflow, outflow, strict=True):
            ax.bar(x - 0.2, i, width=0.4, color=GREEN, alpha=a)
            ax.bar(x + 0.2, o, width=0.4, color=ORANGE, alpha=a)
        handles: list[Any] = [
            Patch(color=GREEN, label="inflow"),
            Patch(color=ORANGE, label="outflow"),
        ]
        for key, offset, color, label in (
            ("salary_inr", -0.2, SALARY, "salary amount"),
            ("emi_due_inr", 0.2, INK, "EMIs due"),
        ):
            ticks = [
                (x + offset, float(m[key])) for x, m in zip(xs, data.months, strict=True) if m[key]
            ]
            if ticks:
                at, ys = zip(*ticks, strict=True)
                ax.hlines(
                    ys,
                    [a - 0.19 for a in at],
                    [a + 0.19 for a in at],
                    color=color,
                    linewidth=2.6,
                    zorder=3,
                    gid=label.replace(" ", "-"),
                )
                handles.append(Line2D([], [], color=color, linewidth=2.6, label=label))
        step = max(1, len(xs) // 12)
        ax.set_xticks(xs[::step], [m["month"].strftime("%b\n%Y") for m in data.months][::step])
        ax.set_title("Monthly inflow and outflow (pale: incomplete month)", loc="left")
        fig.legend(
            handles=handles, loc="outside lower center", frameon=False, ncols=4, fontsize=7.5
        )
        return _svg(fig, "flows")


# ---------------------------------------------------------------------- HTML

FOIR_LIMIT = 0.5  # FOIR above this is highlighted: EMIs take more than half the income

# Labels naming an averaging window say how many complete months it really had:
# "{last6}" becomes "last 6 complete months", or "3 complete months" when only 3 exist.
SUMMARY_FIELDS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("sync_status", "Sync status", text),
    ("last_synced_at", "Last synced", day),
    ("account_count", "Accounts", count),
    ("statement_count", "Statements", count),
    ("failed_statement_count", "Failed statements", count),
    ("first_txn_date", "First transaction", day),
    ("last_txn_date", "Last transaction", day),
    ("months_covered", "Months covered", count),
    ("complete_months", "Complete months", count),
    ("income_basis", "Income basis", text),
    ("avg_monthly_income_inr", "Average monthly income ({last6})", inr),
    ("avg_monthly_obligations_inr", "Average monthly EMIs due ({last6})", inr),
    ("foir", "FOIR ({last6})", pct),
    ("current_monthly_obligations_inr", "EMIs due now (largest of the last 3 months)", inr),
    ("current_foir", "FOIR with the EMIs due now", pct),
    ("loan_disbursals_last_6_months", "Loans received, last 6 months", count),
    ("loan_disbursals_last_6_months_inr", "Loans received, amount (in the ABB until spent)", inr),
    ("abb_last_3_complete_months_inr", "ABB, non-overdraft accounts ({last3})", inr),
    ("abb_last_6_complete_months_inr", "ABB, non-overdraft accounts ({last6})", inr),
    ("bounces_last_3_months", "Bounces, last 3 months", count),
    ("bounces_last_6_months", "Bounces, last 6 months", count),
    ("high_severity_bounces_last_6_months", "High-severity bounces, last 6 months", count),
    (
        "deposited_cheque_returns_last_6_months",
        "Cheques paid in and returned (payer's bounce), last 6 months",
        count,
    ),
    ("salary_months", "Months with salary", count),
    ("salary_stability", "Salary stability", text),
    ("salary_amount_unchanged", "Salary the same every month", text),
    ("salary_multiple_of_1000", "Salary a multiple of 1,000", text),
    ("cash_deposit_share", "Cash deposits, share of credits", pct),
    ("negative_eod_days", "Negative-balance days (non-overdraft accounts)", count),
    ("od_utilisation", "Overdraft utilisation (average)", pct),
    ("od_peak_utilisation", "Overdraft utilisation (peak)", pct),
    ("days_over_od_limit", "Days over the overdraft limit", count),
    ("api_fraud_flags", "Fraud findings (API)", count),
    ("api_fraud_types", "Fraud types (API)", text),
    ("fraudulent_statement_count", "Statements marked fraudulent (API)", count),
    ("balance_breaks", "Running-balance breaks (recomputed)", count),
)

# Figures that are counted from transactions: with none read, a 0 there is not a finding
# (no bounces found in no transactions), so the report shows a dash instead.
NEEDS_TRANSACTIONS = frozenset(
    {
        "income_basis",
        "loan_disbursals_last_6_months",
        "loan_disbursals_last_6_months_inr",
        "bounces_last_3_months",
        "bounces_last_6_months",
        "high_severity_bounces_last_6_months",
        "deposited_cheque_returns_last_6_months",
        "salary_months",
        "salary_stability",
        "negative_eod_days",
        "od_utilisation",
        "od_peak_utilisation",
        "days_over_od_limit",
        "api_fraud_flags",
        "api_fraud_types",
        "fraudulent_statement_count",
        "balance_breaks",
    }
)

HIGHLIGHT_LEGEND = (
    f"Values in red need a closer look: FOIR above {FOIR_LIMIT:.0%}; any failed statement, "
    "high-severity bounce, negative-balance day, overdraft past its limit, fraud finding "
    "or running-balance break; irregular or stopped salary, or the same round-thousands "
    "salary every month; a sync that did not complete."
)


def _window(months: int, available: int | None) -> str:
    """'last 6 complete months', or what the average really covers when fewer exist."""
    have = available or 0
    if have >= months:
        return f"last {months} complete months"
    if have == 0:
        return "no complete months"
    return f"{have} complete month{'s' if have > 1 else ''}"


def _summary(data: Data) -> dict:
    """The entity's summary row, with the overdraft peak and days over the limit (which
    the summary mart does not carry) added from the per-account overdraft figures."""
    s = dict(data.summary)
    peaks = [o["peak_utilisation"] for o in data.overdraft if o["peak_utilisation"] is not None]
    s["od_peak_utilisation"] = max(peaks) if peaks else None
    days = [o["days_over_limit"] for o in data.overdraft if o["days_over_limit"] is not None]
    s["days_over_od_limit"] = sum(days) if days else None
    if not data.has_transactions:
        for key in NEEDS_TRANSACTIONS:
            s[key] = None
    return s


def _warn(summary: dict) -> set[str]:
    """Summary fields to highlight (HIGHLIGHT_LEGEND says which, in words)."""
    flags = set()
    for key in ("foir", "current_foir"):
        if (summary.get(key) or 0) > FOIR_LIMIT:
            flags.add(key)
    for key in (
        "failed_statement_count",
        "high_severity_bounces_last_6_months",
        "negative_eod_days",
        "days_over_od_limit",
        "api_fraud_flags",
        "fraudulent_statement_count",
        "balance_breaks",
    ):
        if summary.get(key):
            flags.add(key)
    if (summary.get("od_peak_utilisation") or 0) > 1:  # overdrawn past the limit
        flags.add("od_peak_utilisation")
    if summary.get("sync_status") not in ("complete", None):
        flags.add("sync_status")
    if summary.get("salary_stability") in ("irregular", "stopped"):
        flags.add("salary_stability")
    if summary.get("salary_amount_unchanged") and summary.get("salary_multiple_of_1000"):
        flags |= {"salary_amount_unchanged", "salary_multiple_of_1000"}
    return flags


def _table(
    headers: Iterable[str],
    rows: Iterable[Iterable[str]],
    *,
    numeric: Iterable[int] = (),
    nowrap: Iterable[int] = (),
) -> str:
    """A table in a horizontally scrolling box, so a wide one does not widen the page on a
    phone. ``numeric`` columns are right-aligned; ``nowrap`` ones (dates) never break."""
    right, keep = set(numeric), set(nowrap)

    def cls(i: int) -> str:
        names = " ".join(n for n, on in (("num", i in right), ("nw", i in keep)) if on)
        return f' class="{names}"' if names else ""

    head = "".join(f"<th{cls(i)}>{html.escape(h)}</th>" for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f"<td{cls(i)}>{c}</td>" for i, c in enumerate(r)) + "</tr>" for r in rows
    )
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def _note(message: str) -> str:
    return f'<p class="note">{html.escape(message)}</p>'


def _banner(message: str, *, level: str = "alert") -> str:
    """A warning above the summary: ``alert`` (red) when the figures cannot be relied on at
    all, ``caution`` (amber) when they need checking."""
    return f'<p class="banner {level}" role="alert">{html.escape(message)}</p>'


CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif;
       color: #212121; margin: 0 auto; max-width: 1000px; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #e0e0e0; padding-bottom: 4px; }
.sub, .note, footer { color: #616161; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 12.5px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eeeeee;
         vertical-align: top; }
th { background: #fafafa; font-weight: 600; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.nw { white-space: nowrap; }
.kv { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 0 32px; }
.kv div { display: flex; justify-content: space-between; align-items: baseline; gap: 16px;
          border-bottom: 1px solid #eeeeee; padding: 4px 0; }
.kv .v { font-variant-numeric: tabular-nums; text-align: right; white-space: nowrap; }
.warn .v, .legend .swatch { color: #c62828; font-weight: 600; }
.banner { margin: 16px 0 0; padding: 10px 14px; border-radius: 4px; font-weight: 600;
          border-left: 6px solid; }
.banner.alert { background: #ffebee; border-color: #c62828; color: #b71c1c; }
.banner.caution, .flag { background: #fff8e1; border-color: #f9a825; color: #5d4037; }
.flag { border-left: 6px solid #f9a825; padding: 6px 12px; font-weight: 600; }
svg { max-width: 100%; height: auto; display: block; margin: 8px 0; }
footer { margin-top: 32px; font-size: 12px; }
@media print {
  body { max-width: none; padding: 0; }
  h2 { break-after: avoid; }
  svg, tr, table, .banner { break-inside: avoid; }
  .scroll { overflow: visible; }
}
"""


def _identity(data: Data) -> tuple[list[str], list[str]]:
    """The distinct holder names (first spelling of each) and the account labels."""
    names: dict[str, str] = {}
    for a in data.accounts:
        if a["name"]:
            names.setdefault(" ".join(a["name"].upper().split()), a["name"].strip())
    return list(names.values()), list(data.account_labels.values())


def _no_statements(sync_status: str | None) -> str:
    """Why the warehouse holds no statement for an entity, as far as its sync knows."""
    if sync_status == "pending":
        return "Its statements are still being processed by BankConnect; a later sync fetches them."
    if sync_status == "failed":
        return "The last sync could not fetch this entity; see its row in `runs`."
    return "No statements were uploaded."


def _banners(data: Data, names: list[str]) -> list[str]:
    """Warnings that change how every figure below should be read."""
    s, out = data.summary, []
    failed = [r for r in data.statements if r["status"] == "failed"]
    why = "; ".join(dict.fromkeys(r["message"] for r in failed if r["message"]))
    total = s.get("statement_count") or 0
    if not data.has_transactions:
        if not total:
            reason = _no_statements(s.get("sync_status"))
        elif failed and len(failed) == total:
            reason = (
                f"{'The only statement' if total == 1 else f'All {total} statements'} could "
                "not be read" + (f" ({why})" if why else "") + "."
            )
        else:
            reason = "The statements held no transactions."
        out.append(
            _banner(
                "No transactions could be read; the figures below are not evidence of a clean "
                f"record. {reason}"
            )
        )
    elif failed:
        out.append(
            _banner(
                f"{len(failed)} of {total} statements could not be read"
                + (f" ({why})" if why else "")
                + "; income and balances may be understated.",
                level="caution",
            )
        )
    if len(names) > 1:
        holders = ", ".join(
            f"{a['name'].strip()} ({data.label(a['account_id'])})"
            for a in data.accounts
            if a["name"]
        )
        out.append(
            _banner(
                f"The accounts belong to different holders: {holders}. Check that each is the "
                "applicant's before relying on the combined figures.",
                level="caution",
            )
        )
    return out


def render(
    con: duckdb.DuckDBPyConnection,
    entity_id: str,
    *,
    snapshot: str | None = None,
    generated_at: datetime | None = None,
) -> str:
    """The report for ``entity_id`` as one HTML document."""
    data = load(con, entity_id)
    s = _summary(data)
    warn = _warn(s)
    generated = (generated_at or datetime.now(UTC)).strftime("%d %b %Y %H:%M UTC")
    names, accounts = _identity(data)
    who = " / ".join(names) or f"entity {entity_id[:8]}"
    title = " — ".join(["Credit report", who, *([", ".join(accounts)] if accounts else [])])
    windows = {
        "{last6}": _window(6, s.get("complete_months")),
        "{last3}": _window(3, s.get("complete_months")),
    }
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<header><h1>Credit report — {html.escape(who)}</h1>",
        '<p class="sub">'
        + (f"{html.escape(', '.join(accounts))} · " if accounts else "")
        + f"Entity <code>{esc(entity_id)}</code>"
        + (f" · applicant {esc(s['link_id'])}" if s.get("link_id") else "")
        + f" · {esc(s['sync_status'])}"
        + (f" · warehouse snapshot {esc(snapshot)}" if snapshot else "")
        + f" · generated {esc(generated)}</p>",
        *_banners(data, names),
        "</header>",
        "<section><h2>Summary</h2><div class=kv>",
    ]
    shown: set[str] = set()
    for key, label, fmt in SUMMARY_FIELDS:
        for token, window in windows.items():
            label = label.replace(token, window)
        if label in shown:  # fewer than 4 complete months: ABB's 3- and 6-month windows are one
            continue
        shown.add(label)
        cls = ' class="warn"' if key in warn else ""
        value = html.escape(fmt(s.get(key)))
        parts.append(
            f'<div{cls}><span>{html.escape(label)}</span><span class="v">{value}</span></div>'
        )
    parts.append("</div>")
    parts.append(
        f'<p class="note legend"><span class="swatch">Values in red</span>'
        f"{html.escape(HIGHLIGHT_LEGEND.removeprefix('Values in red'))}</p>"
    )
    parts.append("</section>")

    parts.append("<section><h2>Balances</h2>")
    chart = eod_chart(data)
    parts.append(chart or _note("No transactions: nothing to chart."))
    parts.append("</section><section><h2>Cash flow</h2>")
    chart = flows_chart(data)
    if chart:
        parts.append(chart)
        parts.append(
            _table(
                (
                    "Month",
                    "Complete",
                    "Inflow",
                    "Outflow",
                    "ABB, non-overdraft" if data.overdraft else "ABB",
                    "Income",
                    "EMIs due",
                    "FOIR",
                ),
                (
                    (
                        esc(month_label(m["month"])),
                        esc(m["is_complete"]),
                        esc(inr(m["inflow_inr"])),
                        esc(inr(m["outflow_inr"])),
                        esc(inr(m["abb_inr"])),
                        esc(inr(m["income_inr"])),
                        esc(inr(m["emi_due_inr"])),
                        esc(pct(m["foir"])),
                    )
                    for m in reversed(data.months)
                ),
                numeric=range(2, 8),
                nowrap=(0,),
            )
        )
    else:
        parts.append(_note("No months with transactions."))
    parts.append("</section>")
    parts.append(_salary(data))
    parts.append(_bounces(data))
    parts.append(_integrity(data))
    parts.append(_accounts(data))
    parts.append(
        "<footer>Every figure comes from the analytics marts of the warehouse"
        + (f" at snapshot {esc(snapshot)}" if snapshot else "")
        + "; their definitions are in docs/metrics.md. Complete months only for income, "
        "EMIs, FOIR and ABB. Account numbers show their last four digits.</footer>"
    )
    parts.append("</body></html>\n")
    return "\n".join(parts)


NOT_READ = "No transactions were read, so this cannot be assessed."


def _salary(data: Data) -> str:
    if not data.salary:
        return (
            "<section><h2>Salary</h2>"
            + _note("No salary credits." if data.has_transactions else NOT_READ)
            + "</section>"
        )
    first = data.salary[0]
    flags = [
        label
        for key, label in (
            ("amount_unchanged", "the salary amount never changes"),
            ("amount_multiple_of_1000", "every salary amount is a multiple of ₹1,000"),
        )
        if any(r[key] for r in data.salary)
    ]
    rows = (
        (
            esc(data.label(r["account_id"])),
            esc(month_label(r["salary_month"])),
            esc(day(r["first_credit_date"])),
            esc(r["employer"]),
            esc(inr(r["salary_inr"])),
            esc(count(r["credit_count"])),
        )
        for r in reversed(data.salary)
    )
    note = (
        f"{first['months_with_salary']} salary months, {first['salary_gap_months']} gap months, "
        f"credit day spread {first['credit_day_spread_days']} days."
    )
    # Real salaries drift (increments, tax, leave): a fixed or round amount every month is
    # a known sign of a fabricated statement, so it is shown as a warning, not a footnote.
    warnings = "".join(
        f'<p class="flag" role="note">Fraud signal: {html.escape(f)}.</p>' for f in flags
    )
    return (
        "<section><h2>Salary</h2>"
        + _note(note)
        + warnings
        + _table(
            ("Account", "For month", "Credited", "Employer", "Amount", "Credits"),
            rows,
            numeric=(4, 5),
            nowrap=(1, 2),
        )
        + "</section>"
    )


def _bounces(data: Data) -> str:
    if not data.bounces:
        return (
            "<section><h2>Bounces</h2>"
            + _note("No bounce events." if data.has_transactions else NOT_READ)
            + "</section>"
        )
    # With several accounts, which one bounced matters (a salary account or a side one).
    several = len(data.accounts) > 1
    rows = (
        (
            esc(day(b["event_date"])),
            *([esc(data.label(b["account_id"]))] if several else []),
            esc(b["event_type"]),
            esc(b["severity"]),
            esc(b["reason"]),
            esc(inr(b["bounced_amount_inr"])),
            esc(inr(b["charge_inr"])),
            esc(b["transaction_note"]),
        )
        for b in reversed(data.bounces)
    )
    headers = ("Date", *(["Account"] if several else []), "Type", "Severity", "Reason")
    money = len(headers)
    return (
        "<section><h2>Bounces</h2>"
        + _table(
            (*headers, "Amount", "Charge", "Note"), rows, numeric=(money, money + 1), nowrap=(0,)
        )
        + "</section>"
    )


def _integrity(data: Data) -> str:
    parts = ["<section><h2>Statements and integrity</h2>"]
    if not data.statements:
        parts.append(_note(_no_statements(data.summary.get("sync_status"))))
    else:
        parts.append(
            _table(
                (
                    "Statement",
                    "Account",
                    "Status",
                    "Message",
                    "Fraud (API)",
                    "API fraud types",
                    "Transactions",
                    "Breaks (ours)",
                    "Drift",
                ),
                (
                    (
                        f"<code>{esc(r['statement_id'])}</code>",
                        esc(data.label(r["account_id"])),
                        esc(r["status"]),
                        esc(r["message"]),
                        esc(r["is_fraud"]),
                        esc(r["api_fraud_types"]),
                        esc(count(r["transaction_count"])),
                        esc(_breaks(r)),
                        esc(inr(r["balance_drift_inr"])),
                    )
                    for r in data.statements
                ),
                numeric=(6, 7, 8),
            )
        )
    if data.breaks:
        first = f" (the first {len(data.breaks)})" if len(data.breaks) == BREAKS_SHOWN else ""
        parts.append(_note(f"Running-balance breaks{first}: previous balance ± amount ≠ balance."))
        parts.append(
            _table(
                (
                    "Date",
                    "Account",
                    "Row",
                    "Amount",
                    "Balance",
                    "Expected",
                    "Difference",
                    "API flags it",
                ),
                (
                    (
                        esc(day(b["txn_date"])),
                        esc(data.label(b["account_id"])),
                        esc(count(b["txn_seq"])),
                        esc(
                            ("+" if b["transaction_type"] == "credit" else "−")
                            + inr(b["amount_inr"])
                        ),
                        esc(inr(b["balance_inr"])),
                        esc(inr(b["expected_balance_inr"])),
                        esc(inr(b["difference_inr"])),
                        esc(b["flagged_by_api"]),
                    )
                    for b in data.breaks
                ),
                numeric=range(2, 7),
                nowrap=(0,),
            )
        )
    elif data.statements and data.has_transactions:
        parts.append(_note("No running-balance breaks."))
    if data.api_flags:
        parts.append(
            _table(
                ("Statement", "Fraud type (API)", "Transaction"),
                (
                    (
                        f"<code>{esc(f['statement_id'])}</code>",
                        esc(f["fraud_type"]),
                        f"<code>{esc(f['transaction_hash'])}</code>",
                    )
                    for f in data.api_flags
                ),
            )
        )
    parts.append("</section>")
    return "".join(parts)


def _breaks(row: dict) -> str:
    """A statement's recomputed breaks; its account's when rows name no statement; a dash
    when the statement could not be read (no rows, so nothing to check)."""
    if row["status"] == "failed":
        return DASH
    if row["balance_breaks"] is not None:
        return count(row["balance_breaks"])
    return f"{count(row['account_balance_breaks'])} (account)"


def _accounts(data: Data) -> str:
    if not data.accounts:
        return ""
    od = {o["account_id"]: o for o in data.overdraft}

    def overdraft(account_id: str) -> tuple[str, ...]:
        """The overdraft columns, present only when the entity has an overdraft account."""
        if not od:
            return ()
        o = od.get(account_id, {})
        return (
            esc(pct(o.get("avg_utilisation"))),
            esc(pct(o.get("peak_utilisation"))),
            esc(count(o.get("days_over_limit"))),
        )

    rows = (
        (
            f"<code>{esc(a['account_id'])}</code>",
            esc(a["bank"]),
            esc(masked(a["account_number"])),
            esc(a["name"]),
            esc(count(a["months_covered"])),
            esc(count(a["period_months"])),
            esc(count(a["complete_months"])),
            esc(inr(a["od_limit_inr"])),
            *overdraft(a["account_id"]),
        )
        for a in data.accounts
    )
    headers = (
        "Account",
        "Bank",
        "Number",
        "Holder",
        "Months listed (API)",  # the accounts endpoint's statement months
        "Months with a balance",  # calendar months of the statement period (account_monthly)
        "Complete months",
        "Overdraft limit",
    )
    if od:
        headers += ("Utilisation (average)", "Utilisation (peak)", "Days over limit")
    return (
        "<section><h2>Accounts</h2>"
        + _table(headers, rows, numeric=range(4, len(headers)))
        + "</section>"
    )


def write(
    con: duckdb.DuckDBPyConnection,
    entity_id: str,
    out: Path,
    *,
    snapshot: str | None = None,
) -> Path:
    """Render the report and write it to ``out`` (folders created); the path written."""
    document = render(con, entity_id, snapshot=snapshot)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(document, encoding="utf-8")
    tmp.replace(out)
    return out
