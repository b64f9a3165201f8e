"""Telling a stop (Ctrl-C, SIGTERM) from a failure, however it arrives."""

from __future__ import annotations

import os
import signal
import threading

import duckdb
import pytest

from bankconnect_etl.errors import Terminated, UserError, stop_reason, stopped_by
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
    assert isinstance(stopped_by(exc), KeyboardInterrupt)
    assert stop_reason(stopped_by(exc)) == "interrupted (Ctrl-C)"


@ends_if_hung
def test_sigterm_inside_a_duckdb_query_is_a_stop_named_by_its_signal() -> None:
    def terminated(signum: int, frame: object) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminated)  # what the command installs
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM))
    try:
        timer.start()
        exc = caught(ENDLESS_QUERY)
    finally:
        timer.cancel()
        signal.signal(signal.SIGTERM, previous)
    assert type(exc) is RuntimeError and isinstance(stopped_by(exc), Terminated)
    assert stop_reason(stopped_by(exc)) == "stopped by SIGTERM"


def test_a_prefect_cancel_is_a_stop_named_by_its_signal() -> None:
    from prefect.exceptions import TerminationSignal  # what a cancelled flow run gets

    exc = TerminationSignal(signal.SIGTERM)
    assert stopped_by(exc) is exc and stop_reason(exc) == "stopped by SIGTERM"
    assert stop_reason(SystemExit(3)) == "stopped (SystemExit)"


def test_a_keyboard_interrupt_and_errors_raised_while_handling_one_are_stops() -> None:
    ctrl_c = KeyboardInterrupt()
    assert stopped_by(ctrl_c) is ctrl_c
    try:
        try:
            raise ctrl_c
        except KeyboardInterrupt:
            raise OSError("the clean-up after Ctrl-C failed")  # noqa: B904 - its context
    except OSError as exc:
        assert stopped_by(exc) is ctrl_c


@pytest.mark.parametrize(
    "query", ["SELEC 1", "SELECT * FROM no_such_table", "SELECT 'x'::INTEGER"], ids=str
)
def test_a_failing_query_is_not_an_interrupt(query: str) -> None:
    exc = caught(query)
    assert isinstance(exc, duckdb.Error) and stopped_by(exc) is None


@ends_if_hung
def test_a_query_cancelled_by_code_is_not_a_ctrl_c() -> None:
    con = duckdb.connect()
    threading.Timer(0.3, con.interrupt).start()
    try:
        con.execute(ENDLESS_QUERY).fetchall()
    except BaseException as exc:
        assert not isinstance(exc, KeyboardInterrupt) and stopped_by(exc) is None
    else:
        raise AssertionError("the query was not cancelled")
    finally:
        con.close()


def test_errors_of_our_own_are_not_stops() -> None:
    err = UserError("bad flag")
    err.__context__ = ValueError("underneath")
    assert stopped_by(err) is None and stopped_by(ValueError("x")) is None


def test_a_stop_during_a_deferred_block_acts_when_the_block_is_done() -> None:
    from bankconnect_etl.pipeline import stops_deferred

    done: list[str] = []
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt), stops_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            done.append("after the Ctrl-C, still inside")
        assert done == ["after the Ctrl-C, still inside"]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
        with stops_deferred():  # no signal: nothing happens after
            done.append("quiet")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert done[-1] == "quiet"


def test_a_sigterm_held_by_a_deferred_block_goes_to_the_handler_it_found() -> None:
    from bankconnect_etl.pipeline import stops_deferred

    got: list[int] = []

    def prefects(signum: int, _frame: object) -> None:  # as Prefect's: raises its own
        got.append(signum)
        raise Terminated

    previous = signal.signal(signal.SIGTERM, prefects)
    try:
        with pytest.raises(Terminated), stops_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)
            assert got == []  # held
        assert got == [signal.SIGTERM]  # once
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Finalized:
    """An object whose finalizer is running when a signal's handler runs."""

    def __init__(self, signum: int) -> None:
        self.signum = signum

    def __del__(self) -> None:
        signal.raise_signal(self.signum)  # its handler runs here, inside __del__


# what Python does with them: reported as unraisable, then dropped
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize(
    ("signum", "handler", "stop"),
    [
        (signal.SIGINT, signal.default_int_handler, KeyboardInterrupt),
        (signal.SIGTERM, "raises Terminated", Terminated),
    ],
)
def test_a_stop_lost_in_a_finalizer_acts_at_the_next_check(
    signum: int, handler: object, stop: type[BaseException]
) -> None:
    """Python drops an exception raised inside ``__del__`` ("Exception ignored in"): a
    late signal whose handler ran there would let the run go on."""
    from bankconnect_etl.pipeline import stops_latched

    def raise_terminated(_signum: int, _frame: object) -> None:
        raise Terminated

    previous = signal.signal(
        signum, raise_terminated if handler == "raises Terminated" else handler
    )
    try:
        with stops_latched() as check:
            check()  # no signal: nothing happens
            _Finalized(signum)  # dropped at once: the stop is raised in __del__, and lost
            with pytest.raises(stop):
                check()
        assert signal.getsignal(signum) is not None and signal.getsignal(signum).__name__ in (
            "default_int_handler",
            "raise_terminated",
        )  # put back
        _Finalized(signum)  # outside the block, nothing notes it: lost, as Python loses it
    finally:
        signal.signal(signum, previous)
