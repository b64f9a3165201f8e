"""Fixtures of the analytics tests: an in-memory ``lake`` and a ``Book`` writing into it."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest
from sqlbook import Book, new_lake


@pytest.fixture
def lake() -> Iterator[duckdb.DuckDBPyConnection]:
    con = new_lake()
    yield con
    con.close()


@pytest.fixture
def book(lake: duckdb.DuckDBPyConnection) -> Book:
    return Book(lake)
