"""A local imitation of the BankConnect v1 API: the embedded default upstream.

    from bankconnect_etl.sandbox import SandboxConfig, start_in_thread
    with start_in_thread(SandboxConfig(entities=50, seed=1)) as sb:
        base_url = sb.base_url  # http://127.0.0.1:<port>/bank-connect/v1

From a terminal: ``bankconnect-etl sandbox --port 8000 --entities 500 --seed 1``.
"""

from bankconnect_etl.sandbox.app import API_PREFIX, create_app
from bankconnect_etl.sandbox.faults import FAULT_KINDS
from bankconnect_etl.sandbox.pdf import statement_pdf
from bankconnect_etl.sandbox.server import RunningSandbox, start_in_thread
from bankconnect_etl.sandbox.world import (
    SANDBOX_API_KEY,
    SANDBOX_SERVER_HASH,
    SandboxConfig,
    sign_access_token,
)

__all__ = [
    "API_PREFIX",
    "FAULT_KINDS",
    "SANDBOX_API_KEY",
    "SANDBOX_SERVER_HASH",
    "RunningSandbox",
    "SandboxConfig",
    "create_app",
    "sign_access_token",
    "start_in_thread",
    "statement_pdf",
]
