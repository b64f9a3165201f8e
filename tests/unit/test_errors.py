"""Telling Ctrl-C from a failure, however it arrives."""

from __future__ import annotations

import threading

import duckdb
import pytest

from bankconnect_etl.errors import UserError, interrupted
from bankconnect_etl.warehouse import close
from tests.conftest import ENDLESS_QUERY, ctrl_c_in, ends_if_hung


def caught(query: str, *, ctrl_c_after: float | None = None) -> BaseException:
    con = duckdb.connect()
    try:
        if ctrl_c_after is None:
            con.execute(query).fetchall()
        else:
            with ctrl_c_in(ctrl_c_after):
                con.execute(query).fetchall()
    except BaseException as exc:  # KeyboardInterrupt too: that is what is looked at
        return exc
    finally:
        close(con)  # con.close() can wait for ever on a query DuckDB left running
    raise AssertionError(f"{query!r} raised nothing")


@ends_if_hung
def test_ctrl_c_inside_a_duckdb_query_counts_as_an_interrupt() -> None:
    exc = caught(ENDLESS_QUERY, ctrl_c_after=0.3)
    # what DuckDB makes of it: not a KeyboardInterrupt, and not a duckdb.Error either
    assert type(exc) is RuntimeError and "interrupted" in str(exc)
    assert interrupted(exc)


def test_a_keyboard_interrupt_and_errors_raised_while_handling_one_are_interrupts() -> None:
    assert interrupted(KeyboardInterrupt())
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise OSError("the clean-up after Ctrl-C failed")  # noqa: B904 - its context
    except OSError as exc:
        assert interrupted(exc)


@pytest.mark.parametrize(
    "query", ["SELEC 1", "SELECT * FROM no_such_table", "SELECT 'x'::INTEGER"], ids=str
)
def test_a_failing_query_is_not_an_interrupt(query: str) -> None:
    exc = caught(query)
    assert isinstance(exc, duckdb.Error) and not interrupted(exc)


@ends_if_hung
def test_a_query_cancelled_by_code_is_not_a_ctrl_c() -> None:
    con = duckdb.connect()
    threading.Timer(0.3, con.interrupt).start()
    try:
        con.execute(ENDLESS_QUERY).fetchall()
    except BaseException as exc:
        assert not isinstance(exc, KeyboardInterrupt) and not interrupted(exc)
    else:
        raise AssertionError("the query was not cancelled")
    finally:
        con.close()


def test_errors_of_our_own_are_not_interrupts() -> None:
    err = UserError("bad flag")
    err.__context__ = ValueError("underneath")
    assert not interrupted(err) and not interrupted(ValueError("x"))
