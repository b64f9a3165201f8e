"""Exceptions of bankconnect-etl.

    BankConnectETLError          base of everything raised on purpose
    └── UserError                bad input from the person running it (flag, config, value);
                                 the CLI prints the message and a hint, no traceback

Every message names what was wrong and where, on one line, and never contains a secret.
"""

from __future__ import annotations


class BankConnectETLError(Exception):
    """Base class: catch this to handle any error bankconnect-etl raises on purpose."""


class UserError(BankConnectETLError):
    """Something the user can fix: a bad flag, setting or value. ``hint`` says how."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint
