"""The shell's reading of lines: statements, shell commands and the end of the input."""

from __future__ import annotations

import io
from collections.abc import Callable

import duckdb
import pytest

from bankconnect_etl.cli_warehouse import shell_session
from tests.conftest import ENDLESS_QUERY, ctrl_c_in, ends_if_hung


def lines(*text: str) -> Callable[[str], str]:
    """``input()`` fed these lines, then Ctrl-D; the prompts it was shown kept in order."""
    queue = list(text)

    def read(prompt: str) -> str:
        read.prompts.append(prompt)  # type: ignore[attr-defined]
        if not queue:
            raise EOFError
        return queue.pop(0)

    read.prompts = []  # type: ignore[attr-defined]
    return read


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    c.execute("CREATE TABLE t AS SELECT * FROM (VALUES (1, 'a'), (2, 'b')) v(n, s)")
    return c


def session(
    con: duckdb.DuckDBPyConnection, *text: str, at_a_prompt: bool = False
) -> tuple[int, str, str, list[str]]:
    out, err = io.StringIO(), io.StringIO()
    read = lines(*text)
    failed = shell_session(con, read, out, err, at_a_prompt=at_a_prompt)
    return failed, out.getvalue(), err.getvalue(), read.prompts  # type: ignore[attr-defined]


def test_a_statement_runs_when_a_line_ends_with_a_semicolon(con) -> None:
    failed, out, err, prompts = session(con, "SELECT sum(n) AS total", "FROM t;", ".quit")
    assert (failed, err) == (0, "")
    assert "total" in out and "3" in out
    assert prompts == ["sql> ", " ..> ", "sql> "]


def test_the_last_statement_runs_at_the_end_of_the_input_without_a_semicolon(con) -> None:
    failed, out, err, _ = session(
        con, "SELECT 1 AS first;", "SELECT count(*) AS rows_in_t", "FROM t"
    )
    assert (failed, err) == (0, "")
    assert "first" in out and "rows_in_t" in out and "2" in out


def test_an_unknown_shell_command_is_an_error_and_does_not_join_the_next_statement(con) -> None:
    failed, out, err, _ = session(con, ".schema t", "SELECT max(n) AS top FROM t;")
    assert failed == 1
    assert err.splitlines()[0] == "error: .schema is not a command"
    assert err.splitlines()[1].startswith("hint: ") and ".tables" in err
    assert "top" in out and "2" in out  # the statement after it ran on its own


def test_shell_commands_list_and_describe_tables(con) -> None:
    failed, out, err, _ = session(con, ".tables", ".describe t;", ".describe", ".help")
    assert failed == 1 and err.startswith("error: .describe needs a table name")
    assert "column_name" in out and "VARCHAR" in out  # DESCRIBE t
    assert ".quit" in out  # the help
    assert out.startswith("name\n----\nt\n")  # SHOW TABLES


def test_a_failing_statement_is_counted_and_the_next_ones_still_run(con) -> None:
    failed, out, err, _ = session(
        con, "SELECT 1 AS one; SELECT nope FROM t;", "SELECT 'after' AS later;"
    )
    assert failed == 1
    assert err.startswith("error: sql: statement 2 of 2: ")
    assert "one" in out and "after" in out


def test_blank_lines_between_statements_are_skipped(con) -> None:
    failed, out, err, prompts = session(con, "", "   ", "SELECT 7 AS seven;")
    assert (failed, err) == (0, "") and "seven" in out
    assert prompts.count(" ..> ") == 0


@ends_if_hung
def test_ctrl_c_at_a_prompt_cancels_the_running_statement_and_the_session_goes_on(con) -> None:
    with ctrl_c_in(0.3):
        failed, out, err, prompts = session(
            con, ENDLESS_QUERY + ";", "SELECT 'still here' AS after;", at_a_prompt=True
        )
    assert failed == 1
    assert err == "interrupted: the statement was cancelled\n"
    assert "still here" in out
    assert prompts == ["sql> ", "sql> ", "sql> "]


def test_ctrl_c_while_typing_drops_that_statement_and_at_an_empty_prompt_leaves(con) -> None:
    typed = iter(["SELECT 'dropped'", KeyboardInterrupt, "SELECT 'kept' AS k;", KeyboardInterrupt])
    out, err = io.StringIO(), io.StringIO()

    def read(_prompt: str) -> str:
        line = next(typed)
        if line is KeyboardInterrupt:
            raise KeyboardInterrupt
        return line

    with pytest.raises(KeyboardInterrupt):  # the last one, at an empty prompt
        shell_session(con, read, out, err, at_a_prompt=True)
    assert "dropped" not in out.getvalue() and "kept" in out.getvalue()
    assert err.getvalue() == "\n"


@ends_if_hung
def test_ctrl_c_in_a_piped_script_stops_the_script(con) -> None:
    with ctrl_c_in(0.3), pytest.raises(RuntimeError, match="interrupted"):
        session(con, ENDLESS_QUERY + ";", "SELECT 'not run' AS later;")
