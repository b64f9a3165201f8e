"""Plain-text rendering for the command line: query results as aligned tables, and run
summaries. The library returns data; the CLI prints what these functions make of it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

    from bankconnect_etl.pipeline import RunResult


def summary_lines(run: RunResult) -> list[str]:
    """The run summary as printed by the CLI."""
    s = run.stats.as_json()
    entities = ", ".join(f"{n} {k}" for k, n in sorted(s["entities"].items())) or "none"
    rows = ", ".join(f"{k} {n:,}" for k, n in s["rows"].items() if n)
    lines = [
        f"run {run.run_id}: {run.status} in {run.seconds:.1f} s, snapshot {run.snapshot}",
        f"entities: {entities}",
        f"rows: {rows}",
        f"requests: {run.requests:,} ({run.retries} retries)",
    ]
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
    if run.error:
        lines.append(f"error: {run.error}")
    return lines


def _nested(d: dict) -> str:
    return "; ".join(
        f"{a}: " + ", ".join(f"{b} {n}" for b, n in inner.items()) for a, inner in d.items()
    )


def format_table(rel: duckdb.DuckDBPyRelation) -> str:
    """A DuckDB relation as a plain aligned text table."""
    names = rel.columns
    rows = [[_cell(v) for v in r] for r in rel.fetchall()]
    widths = (
        [max(len(n), *(len(r[i]) for r in rows)) for i, n in enumerate(names)]
        if rows
        else [len(n) for n in names]
    )
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))  # noqa: E731
    return "\n".join([line(names), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def _cell(v: object) -> str:
    if v is None:
        return ""
    if hasattr(v, "quantize"):
        return f"{v:,.2f}"
    return str(v)
