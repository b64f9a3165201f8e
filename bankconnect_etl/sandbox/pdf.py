"""Statement files as the sandbox understands them.

The sandbox does not parse real bank statements. A file is a small valid PDF whose
comment lines carry what a real parser would have found:

    %sandbox-bank: hdfc             bank the statement belongs to (else undetectable)
    %sandbox-months: 3              months covered (1 to 12, default 3)
    %sandbox-account: savings-1     same value on two uploads = same bank account
    %sandbox-password-sha256: <hex> the file is encrypted; this is the password's digest
    %sandbox-image-only             a scanned image with no text layer

:func:`statement_pdf` writes such a file; :func:`inspect` reads one back. Only a digest of
a password is ever written, so test files carry no secret.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

_MARK = b"%sandbox-"


@dataclass(frozen=True, slots=True)
class StatementFile:
    digest: str  # sha256 of the bytes: two uploads of the same file are duplicates
    is_pdf: bool
    complete: bool  # ends with %%EOF
    bank: str | None
    months: int
    account_key: str
    password_sha256: str | None
    image_only: bool

    def password_ok(self, password: str | None) -> bool:
        if self.password_sha256 is None:
            return True
        if not password:
            return False
        given = hashlib.sha256(password.encode()).hexdigest()
        return hmac.compare_digest(given, self.password_sha256)


def statement_pdf(
    *,
    bank: str | None = "hdfc",
    months: int = 3,
    account: str = "account-1",
    password: str | None = None,
    image_only: bool = False,
    nonce: str = "",
) -> bytes:
    """A minimal one-page PDF carrying the sandbox markers. ``nonce`` makes files distinct."""
    marks = [f"months: {months}", f"account: {account}"]
    if bank:
        marks.append(f"bank: {bank}")
    if password:
        marks.append(f"password-sha256: {hashlib.sha256(password.encode()).hexdigest()}")
    if image_only:
        marks.append("image-only")
    if nonce:
        marks.append(f"nonce: {nonce}")
    header = "".join(f"%sandbox-{m}\n" for m in marks).encode()
    text = b"" if image_only else b"BT /F1 12 Tf 72 720 Td (Statement of account) Tj ET"
    body = (
        b"1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n"
        b"3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >> endobj\n"
        + f"4 0 obj << /Length {len(text)} >> stream\n".encode()
        + text
        + b"\nendstream endobj\n"
    )
    return b"%PDF-1.4\n" + header + body + b"trailer << /Root 1 0 R >>\n%%EOF\n"


def inspect(data: bytes) -> StatementFile:
    marks: dict[str, str] = {}
    for line in data.splitlines():
        if line.startswith(_MARK):
            name, _, value = line[len(_MARK) :].decode("utf-8", "replace").partition(":")
            marks[name.strip()] = value.strip()
    try:
        months = max(1, min(12, int(marks.get("months", "3"))))
    except ValueError:
        months = 3
    digest = hashlib.sha256(data).hexdigest()
    return StatementFile(
        digest=digest,
        is_pdf=data.startswith(b"%PDF-"),
        complete=data.rstrip().endswith(b"%%EOF"),
        bank=(marks.get("bank") or "").lower() or None,
        months=months,
        account_key=marks.get("account") or digest[:16],
        password_sha256=marks.get("password-sha256"),
        image_only="image-only" in marks,
    )
