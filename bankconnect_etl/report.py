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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
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
    api_flags: list[dict]


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
                   a.months_covered, m.complete_months
            FROM accounts a
            LEFT JOIN (SELECT account_id, min(name) AS name, max(od_limit) AS od_limit
                       FROM identities WHERE entity_id = $1 GROUP BY ALL) i USING (account_id)
            LEFT JOIN (SELECT account_id,
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
                   sum(m.abb_daily_inr) AS abb_inr, sum(m.negative_eod_days) AS negative_days,
                   sum(o.income_inr) AS income_inr, sum(o.salary_income_inr) AS salary_inr,
                   sum(o.emi_inr) AS emi_inr,
                   CAST(sum(o.emi_inr) AS DOUBLE) / nullif(CAST(sum(o.income_inr) AS DOUBLE), 0)
                       AS foir
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
        api_flags=_rows(
            con,
            "SELECT statement_id, fraud_type, transaction_hash FROM fraud_flags "
            "WHERE entity_id = ? ORDER BY ALL",
            e,
        ),
    )


# ---------------------------------------------------------------------- charts

GREEN, RED, ORANGE, BLUE, GREY = "#2e7d32", "#c62828", "#ef6c00", "#1565c0", "#9e9e9e"
PALETTE = (BLUE, "#6a1b9a", "#00838f", "#ad1457", "#4e342e")


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


def eod_chart(data: Data) -> str | None:
    """End-of-day balance per account, with salary credits and bounces marked."""
    if not data.daily:
        return None
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    series: dict[str, tuple[list[date], list[float]]] = {}
    eod_on: dict[tuple[str, date], float] = {}
    for row in data.daily:
        xs, ys = series.setdefault(row["account_id"], ([], []))
        xs.append(row["balance_date"])
        ys.append(float(row["eod_balance_inr"]))
        eod_on[(row["account_id"], row["balance_date"])] = ys[-1]
    with _rc():
        fig, ax = _figure(9.0, 3.4)
        for i, (account, (xs, ys)) in enumerate(series.items()):
            color = PALETTE[i % len(PALETTE)]
            ax.step(
                xs, ys, where="post", color=color, linewidth=1.1, label=f"account {account[:8]}"
            )
            ax.fill_between(
                xs, ys, 0, where=[y < 0 for y in ys], step="post", color=RED, alpha=0.15
            )
        ax.axhline(0, color=GREY, linewidth=0.8)
        marks = [
            (r["first_credit_date"], eod_on.get((r["account_id"], r["first_credit_date"])))
            for r in data.salary
        ]
        marks = [(x, y) for x, y in marks if y is not None]
        if marks:
            ax.scatter(
                *zip(*marks, strict=True),
                marker="^",
                s=28,
                color=GREEN,
                zorder=3,
                label="salary credit",
            )
        hits = [
            (r["event_date"], eod_on.get((r["account_id"], r["event_date"]))) for r in data.bounces
        ]
        hits = [(x, y) for x, y in hits if y is not None]
        if hits:
            ax.scatter(
                *zip(*hits, strict=True), marker="x", s=30, color=RED, zorder=3, label="bounce"
            )
        locator = AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        ax.set_title("End-of-day balance", loc="left")
        ax.legend(loc="lower right", bbox_to_anchor=(1, 1), frameon=False, ncols=4, fontsize=7.5)
        return _svg(fig, "eod")


def flows_chart(data: Data) -> str | None:
    """Monthly inflow and outflow bars, with each month's salary and EMIs marked."""
    if not data.months:
        return None
    from matplotlib.patches import Patch

    xs = list(range(len(data.months)))
    inflow = [float(m["inflow_inr"]) for m in data.months]
    outflow = [float(m["outflow_inr"]) for m in data.months]
    with _rc():
        fig, ax = _figure(9.0, 3.2)
        alpha = [1.0 if m["is_complete"] else 0.45 for m in data.months]
        for x, a, i, o in zip(xs, alpha, inflow, outflow, strict=True):
            ax.bar(x - 0.2, i, width=0.4, color=GREEN, alpha=a)
            ax.bar(x + 0.2, o, width=0.4, color=ORANGE, alpha=a)
        handles = [Patch(color=GREEN, label="inflow"), Patch(color=ORANGE, label="outflow")]
        salary = [
            (x, float(m["salary_inr"]))
            for x, m in zip(xs, data.months, strict=True)
            if m["salary_inr"]
        ]
        emi = [
            (x, float(m["emi_inr"])) for x, m in zip(xs, data.months, strict=True) if m["emi_inr"]
        ]
        if salary:
            ax.scatter(
                *zip(*salary, strict=True), marker="^", s=34, color=BLUE, zorder=3, label="salary"
            )
        if emi:
            ax.scatter(*zip(*emi, strict=True), marker="v", s=34, color=RED, zorder=3, label="EMIs")
        step = max(1, len(xs) // 12)
        ax.set_xticks(xs[::step], [m["month"].strftime("%b\n%Y") for m in data.months][::step])
        ax.set_title("Monthly inflow and outflow (pale: incomplete month)", loc="left")
        handles += ax.get_legend_handles_labels()[0]
        ax.legend(
            handles=handles,
            loc="lower right",
            bbox_to_anchor=(1, 1),
            frameon=False,
            ncols=4,
            fontsize=7.5,
        )
        return _svg(fig, "flows")


# ---------------------------------------------------------------------- HTML

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
    ("avg_monthly_income_inr", "Average monthly income (last 6 complete months)", inr),
    ("avg_monthly_obligations_inr", "Average monthly EMIs (last 6 complete months)", inr),
    ("foir", "FOIR", pct),
    ("abb_last_3_complete_months_inr", "ABB, last 3 complete months", inr),
    ("abb_last_6_complete_months_inr", "ABB, last 6 complete months", inr),
    ("bounces_last_3_months", "Bounces, last 3 months", count),
    ("bounces_last_6_months", "Bounces, last 6 months", count),
    ("high_severity_bounces_last_6_months", "High-severity bounces, last 6 months", count),
    ("salary_months", "Months with salary", count),
    ("salary_stability", "Salary stability", text),
    ("cash_deposit_share", "Cash deposits, share of credits", pct),
    ("negative_eod_days", "Days with negative balance", count),
    ("od_utilisation", "Overdraft utilisation", pct),
    ("api_fraud_flags", "Fraud findings (API)", count),
    ("api_fraud_types", "Fraud types (API)", text),
    ("fraudulent_statement_count", "Statements marked fraudulent (API)", count),
    ("balance_breaks", "Running-balance breaks (recomputed)", count),
)


def _warn(summary: dict) -> set[str]:
    """Summary fields to highlight."""
    flags = set()
    if (summary.get("foir") or 0) > 0.5:
        flags.add("foir")
    for key in (
        "failed_statement_count",
        "high_severity_bounces_last_6_months",
        "negative_eod_days",
        "api_fraud_flags",
        "fraudulent_statement_count",
        "balance_breaks",
    ):
        if summary.get(key):
            flags.add(key)
    if summary.get("sync_status") not in ("complete", None):
        flags.add("sync_status")
    if summary.get("salary_stability") == "irregular":
        flags.add("salary_stability")
    return flags


def _table(
    headers: Iterable[str], rows: Iterable[Iterable[str]], *, numeric: Iterable[int] = ()
) -> str:
    right = set(numeric)
    head = "".join(
        f"<th{' class=num' if i in right else ''}>{html.escape(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=num' if i in right else ''}>{c}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _note(message: str) -> str:
    return f'<p class="note">{html.escape(message)}</p>'


CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif;
       color: #212121; margin: 0 auto; max-width: 1000px; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #e0e0e0; padding-bottom: 4px; }
.sub, .note, footer { color: #616161; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 12.5px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eeeeee;
         vertical-align: top; }
th { background: #fafafa; font-weight: 600; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.kv { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 0 24px; }
.kv div { display: flex; justify-content: space-between; border-bottom: 1px solid #eeeeee;
          padding: 4px 0; }
.kv .v { font-variant-numeric: tabular-nums; text-align: right; }
.warn .v { color: #c62828; font-weight: 600; }
svg { max-width: 100%; height: auto; display: block; margin: 8px 0; }
footer { margin-top: 32px; font-size: 12px; }
"""


def render(
    con: duckdb.DuckDBPyConnection,
    entity_id: str,
    *,
    snapshot: str | None = None,
    generated_at: datetime | None = None,
) -> str:
    """The report for ``entity_id`` as one HTML document."""
    data = load(con, entity_id)
    s = data.summary
    warn = _warn(s)
    generated = (generated_at or datetime.now(UTC)).strftime("%d %b %Y %H:%M UTC")
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Credit report {esc(entity_id)}</title>",
        f"<style>{CSS}</style></head><body>",
        "<header><h1>Credit report</h1>",
        f'<p class="sub">Entity <code>{esc(entity_id)}</code>'
        + (f" · applicant {esc(s['link_id'])}" if s.get("link_id") else "")
        + f" · {esc(s['sync_status'])}"
        + (f" · warehouse snapshot {esc(snapshot)}" if snapshot else "")
        + f" · generated {esc(generated)}</p></header>",
        "<section><h2>Summary</h2><div class=kv>",
    ]
    for key, label, fmt in SUMMARY_FIELDS:
        cls = ' class="warn"' if key in warn else ""
        value = html.escape(fmt(s.get(key)))
        parts.append(
            f'<div{cls}><span>{html.escape(label)}</span><span class="v">{value}</span></div>'
        )
    parts.append("</div></section>")

    parts.append("<section><h2>Balances</h2>")
    chart = eod_chart(data)
    parts.append(chart or _note("No transactions: nothing to chart."))
    parts.append("</section><section><h2>Cash flow</h2>")
    chart = flows_chart(data)
    if chart:
        parts.append(chart)
        parts.append(
            _table(
                ("Month", "Complete", "Inflow", "Outflow", "ABB", "Income", "EMIs", "FOIR"),
                (
                    (
                        esc(month_label(m["month"])),
                        esc(m["is_complete"]),
                        esc(inr(m["inflow_inr"])),
                        esc(inr(m["outflow_inr"])),
                        esc(inr(m["abb_inr"])),
                        esc(inr(m["income_inr"])),
                        esc(inr(m["emi_inr"])),
                        esc(pct(m["foir"])),
                    )
                    for m in reversed(data.months)
                ),
                numeric=range(2, 8),
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


def _salary(data: Data) -> str:
    if not data.salary:
        return "<section><h2>Salary</h2>" + _note("No salary credits.") + "</section>"
    first = data.salary[0]
    flags = [
        label
        for key, label in (
            ("amount_unchanged", "the amount never changes"),
            ("amount_multiple_of_1000", "every amount is a multiple of ₹1,000"),
        )
        if any(r[key] for r in data.salary)
    ]
    rows = (
        (
            esc(r["account_id"][:8]),
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
        f"credit day spread {first['credit_day_spread_days']} days"
        + (f"; fraud signals: {'; '.join(flags)}" if flags else "")
        + "."
    )
    return (
        "<section><h2>Salary</h2>"
        + _note(note)
        + _table(
            ("Account", "For month", "Credited", "Employer", "Amount", "Credits"),
            rows,
            numeric=(4, 5),
        )
        + "</section>"
    )


def _bounces(data: Data) -> str:
    if not data.bounces:
        return "<section><h2>Bounces</h2>" + _note("No bounce events.") + "</section>"
    rows = (
        (
            esc(day(b["event_date"])),
            esc(b["event_type"]),
            esc(b["severity"]),
            esc(b["reason"]),
            esc(inr(b["bounced_amount_inr"])),
            esc(inr(b["charge_inr"])),
            esc(b["transaction_note"]),
        )
        for b in reversed(data.bounces)
    )
    return (
        "<section><h2>Bounces</h2>"
        + _table(
            ("Date", "Type", "Severity", "Reason", "Amount", "Charge", "Note"), rows, numeric=(4, 5)
        )
        + "</section>"
    )


def _integrity(data: Data) -> str:
    parts = ["<section><h2>Statements and integrity</h2>"]
    if not data.statements:
        parts.append(_note("No statements were uploaded for this entity."))
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
                        esc((r["account_id"] or "")[:8]),
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
                        esc(b["account_id"][:8]),
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
            )
        )
    elif data.statements:
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
    """A statement's recomputed breaks; its account's when rows name no statement."""
    if row["balance_breaks"] is not None:
        return count(row["balance_breaks"])
    return f"{count(row['account_balance_breaks'])} (account)"


def _accounts(data: Data) -> str:
    if not data.accounts:
        return ""
    rows = (
        (
            f"<code>{esc(a['account_id'])}</code>",
            esc(a["bank"]),
            esc(masked(a["account_number"])),
            esc(a["name"]),
            esc(count(a["months_covered"])),
            esc(count(a["complete_months"])),
            esc(inr(a["od_limit_inr"])),
        )
        for a in data.accounts
    )
    return (
        "<section><h2>Accounts</h2>"
        + _table(
            ("Account", "Bank", "Number", "Holder", "Months", "Complete", "Overdraft limit"),
            rows,
            numeric=(4, 5, 6),
        )
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
