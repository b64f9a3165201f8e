"""Prefect flows over the library: ``nightly.py``, ``backfill.py``, and ``tasks.py`` which
they share. Importing this package quiets Prefect's ephemeral mode (no server configured):
no telemetry, and none of its shutdown noise reaches the user."""

import os

if not os.environ.get("PREFECT_API_URL"):
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
