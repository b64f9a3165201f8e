"""docs/metrics.md read as data: each mart's grain line, unique columns and column table."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


@dataclass
class DocMart:
    name: str
    grain: str = ""
    unique: list[str] = field(default_factory=list)
    columns: list[tuple[str, str]] = field(default_factory=list)


def documented() -> dict[str, DocMart]:
    """Every ``## `mart` `` section: its grain line, unique columns and column table."""
    marts: dict[str, DocMart] = {}
    current: DocMart | None = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if heading := re.fullmatch(r"## `(\w+)`", line):
            current = marts.setdefault(heading.group(1), DocMart(heading.group(1)))
        elif line.startswith("## "):
            current = None
        elif current is None:
            continue
        elif line.startswith("Grain: "):
            current.grain = line.removeprefix("Grain: ")
        elif line.startswith("*unique: "):
            current.unique = re.findall(r"`(\w+)`", line)
        elif row := re.match(r"\| `(\w+)` \| ([A-Z0-9(),\[\] ]+?) \|", line):
            current.columns.append((row.group(1), row.group(2)))
    return marts


def described(con: duckdb.DuckDBPyConnection, mart: str) -> list[tuple[str, str]]:
    return [(name, kind) for name, kind, *_ in con.execute(f"DESCRIBE {mart}").fetchall()]


def duplicate_keys(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    """Per mart: values of its documented unique columns held by more than one row."""
    found = {}
    for mart, doc in documented().items():
        key = ", ".join(doc.unique)
        dupes = con.execute(
            f"SELECT {key}, count(*) FROM {mart} GROUP BY ALL HAVING count(*) > 1 LIMIT 3"  # noqa: S608
        ).fetchall()
        nulls = con.execute(
            f"SELECT count(*) FROM {mart} WHERE {' OR '.join(f'{c} IS NULL' for c in doc.unique)}"  # noqa: S608
        ).fetchone()
        if dupes or (nulls and nulls[0]):
            found[mart] = dupes or [("null key", nulls)]
    return found
