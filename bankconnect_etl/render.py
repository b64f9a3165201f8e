"""Plain-text rendering for the command line: query results as aligned tables, and run
summaries. The library returns data; the CLI prints what these functions make of it."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

    from bankconnect_etl.pipeline import Plan, RunResult


def _entity_lines(run: RunResult) -> tuple[str, str]:
    sync, outcome = run.sync, run.stats.entities
    parts = [f"{outcome[k]:,} {k}" for k in ("complete", "empty", "pending", "failed")]
    if run.kind == "rebuild":  # no listing, no requests: the raw zone's runs, oldest first
        replayed = sync["replayed_runs"]
        seen = f"replayed from {replayed:,} archived run{'s' if replayed != 1 else ''}"
        # each archived run's copy of an entity loads again; the last one is what stays
        once = " (an entity counts once per run it was in)" if replayed > 1 else ""
        return seen, "loaded: " + ", ".join(parts) + once
    fetched = [f"{sync[k]:,} {k}" for k in ("new", "changed", "retried", "forced") if sync[k]]
    seen = f"{sync['seen']:,} seen: " + ", ".join(
        [*fetched, f"{sync['unchanged']:,} unchanged (one request each)"]
    )
    if outcome["pending"]:
        parts[2] += " (fetched again next run)"
    return seen, "loaded: " + ", ".join(parts)


def summary_lines(run: RunResult) -> list[str]:
    """The run summary as printed by the CLI."""
    s = run.stats.as_json()
    rows = ", ".join(f"{k} {n:,}" for k, n in s["rows"].items() if n) or "none"
    seen, loaded = _entity_lines(run)
    lines = [
        f"run {run.run_id}: {run.status} in {run.seconds:.1f} s, snapshot {run.snapshot}",
        f"entities: {seen}",
        loaded,
        f"rows: {rows}",
        f"requests: {run.requests:,} ({run.retries} retries)",
    ]
    if run.not_found:  # a typo in a backfill's ids: nothing fetched for it
        lines.insert(2, f"not found at the API (skipped): {', '.join(run.not_found)}")
    quarantined = sum(n for per in s["quarantined"].values() for n in per.values())
    lines.append(
        f"quarantined: {quarantined} rows"
        + (f" ({_nested(s['quarantined'])})" if quarantined else "")
    )
    if s["schema_drift"]:
        lines.append(f"schema drift (unknown fields, kept): {_nested(s['schema_drift'])}")
    if s["unknown_values"]:
        lines.append(f"values outside the documented lists (kept): {_nested(s['unknown_values'])}")
    for f in s["failed_entities"][:5]:
        lines.append(f"failed: {f['entity_id']}: {f['reason']}")
    if len(s["failed_entities"]) > 5:
        lines.append(f"... {len(s['failed_entities']) - 5} more failed: see `runs.counts`")
    if run.error:
        lines.append(f"error: {run.error}")
    return lines


def summary_markdown(run: RunResult) -> str:
    """The run summary as a Markdown document (the Prefect artifact of a flow run)."""
    s = run.stats.as_json()
    seen, loaded = _entity_lines(run)
    out = [
        f"# {run.kind} run `{run.run_id}`: {run.status}",
        "",
        "| | |",
        "|---|---|",
        f"| duration | {run.seconds:.1f} s |",
        f"| snapshot | {run.snapshot} |",
        f"| entities | {seen} |",
        f"| | {loaded} |",
        f"| requests | {run.requests:,} ({run.retries:,} retries) |",
    ]
    if run.not_found:
        out.append(f"| not found at the API (skipped) | {_md(', '.join(run.not_found))} |")
    if run.error:
        out.append(f"| error | {_md(run.error)} |")
    out += ["", "## Rows loaded", "", "| table | rows |", "|---|---:|"]
    out += [f"| {t} | {n:,} |" for t, n in s["rows"].items()]
    sections = (
        ("Quarantined rows", "table", "check", s["quarantined"]),
        ("Schema drift (unknown fields, kept)", "record", "field", s["schema_drift"]),
        ("Values outside the documented lists (kept)", "column", "value", s["unknown_values"]),
    )
    for title, a, b, nested in sections:
        out += ["", f"## {title}", ""]
        if not nested:
            out.append("none")
            continue
        out += [f"| {a} | {b} | rows |", "|---|---|---:|"]
        out += [
            f"| {x} | {_md(y)} | {n:,} |" for x, inner in nested.items() for y, n in inner.items()
        ]
    if s["failed_entities"]:
        out += ["", "## Failed entities", "", "| entity | reason |", "|---|---|"]
        out += [f"| {f['entity_id']} | {_md(f['reason'])} |" for f in s["failed_entities"]]
    return "\n".join(out) + "\n"


def _md(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _nested(d: dict) -> str:
    return "; ".join(
        f"{a}: " + ", ".join(f"{b} {n}" for b, n in inner.items()) for a, inner in d.items()
    )


def format_table(rel: duckdb.DuckDBPyRelation) -> str:
    """A DuckDB relation as a plain aligned text table; numeric columns right-aligned, so
    their digits line up."""
    names = rel.columns
    values = rel.fetchall()
    rows = [[_cell(v) for v in r] for r in values]
    numeric = [
        any(v is not None for v in col) and all(_is_number(v) for v in col if v is not None)
        for col in zip(*values, strict=True)
    ] or [False] * len(names)
    widths = (
        [max(len(n), *(len(r[i]) for r in rows)) for i, n in enumerate(names)]
        if rows
        else [len(n) for n in names]
    )

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if right else c.ljust(w)
            for c, w, right in zip(cells, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(names), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def _is_number(v: object) -> bool:
    return isinstance(v, int | float | Decimal) and not isinstance(v, bool)


def _cell(v: object) -> str:
    if v is None:
        return ""
    if hasattr(v, "quantize"):
        return f"{v:,.2f}"
    return str(v)


PLAN_ACTIONS = {
    "new": "new: fetched",
    "check": "complete last time: accounts first, fetched only if changed",
    "retry": "pending or failed last time: fetched",
    "forced": "forced: fetched",
}


def _entities(n: int) -> str:
    return f"{n:,} entity" if n == 1 else f"{n:,} entities"


def plan_lines(plan: Plan, limit: int = 50) -> list[str]:
    """A dry run: how many entities, what would happen to each (the first ``limit``)."""
    counts = plan.counts()
    lines = [f"dry run: {_entities(len(plan.entities))}; nothing fetched or written"]
    lines += [f"  {n:>7,}  {PLAN_ACTIONS[a]}" for a, n in sorted(counts.items())]
    if plan.not_found:  # a typo in a backfill's ids: the run would skip them
        lines.append(f"not found at the API (skipped): {', '.join(plan.not_found)}")
    if plan.entities:
        lines += ["", f"{'entity_id':<38} {'link_id':<24} action"]
    for eid in list(plan.entities)[:limit]:
        link = plan.entities[eid].get("link_id") or ""
        lines.append(f"{eid:<38} {link:<24} {plan.action[eid]}")
    if len(plan.entities) > limit:
        lines.append(f"... and {len(plan.entities) - limit:,} more")
    if not plan.listing_complete:
        lines.append("warning: the API's listing was incomplete; the rest are picked up next run")
    return lines


def plan_markdown(plan: Plan, limit: int = 1000) -> str:
    counts = plan.counts()
    out = [f"# Dry run: {_entities(len(plan.entities))}", "", "| action | entities |", "|---|---:|"]
    out += [f"| {PLAN_ACTIONS[a]} | {n:,} |" for a, n in sorted(counts.items())]
    if plan.not_found:
        out.append(f"| not found at the API (skipped) | {_md(', '.join(plan.not_found))} |")
    out += ["", "| entity_id | link_id | action |", "|---|---|---|"]
    out += [
        f"| {e} | {_md(plan.entities[e].get('link_id') or '')} | {plan.action[e]} |"
        for e in list(plan.entities)[:limit]
    ]
    return "\n".join(out) + "\n"
