"""What the flows share: settings from Secret blocks or the environment, the batch-load
task, the run artifact, and how a flow run ends on an error raised on purpose.

A task carries a batch of entities (``BANKCONNECT_BATCH_SIZE``, default 100, or fewer
when they trickle in: ``BANKCONNECT_BATCH_MAX_WAIT_S``), never one request: a Prefect
task run costs about 4 ms here. The batch task is retried whole (a
warehouse transaction that failed left nothing behind); HTTP retries stay in the client.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

# isort: off
import flows  # noqa: F401  (first: quiets Prefect's ephemeral mode before Prefect loads)
# isort: on

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.blocks.system import Secret
from prefect.cache_policies import NONE
from prefect.states import Failed, State

from bankconnect_etl.config import Settings
from bankconnect_etl.errors import BankConnectETLError, ConfigError
from bankconnect_etl.pipeline import Plan, dry_run, run_sync
from bankconnect_etl.progress import LogProgress
from bankconnect_etl.render import plan_lines, plan_markdown, summary_lines, summary_markdown
from bankconnect_etl.transform import Batch
from bankconnect_etl.upstream import upstream
from bankconnect_etl.warehouse import Writer

# Settings fields a deployment may take from Prefect Secret blocks: field → block name.
SECRET_FIELDS = ("api_key", "server_hash", "access_token_secret")


def runner_parser(flow_file: str, description: str) -> argparse.ArgumentParser:
    """The command line of ``python flows/<flow>.py``, one flow run in this process:
    ``--batch-size`` and ``--warehouse``, the rest of the settings from the environment,
    as for a deployment."""
    from bankconnect_etl.cli_sync import add_run_settings

    parser = argparse.ArgumentParser(prog=f"python {flow_file}", description=description)
    add_run_settings(parser)
    return parser


def run_here(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    flow_run: Callable[[argparse.Namespace], State],
) -> int:
    """Parse ``argv``, then ``flow_run(args)`` (a flow called with ``return_state=True``):
    0 if the flow run completed, 1 if it failed."""
    args = parser.parse_args(argv)
    if args.warehouse:
        os.environ["BANKCONNECT_WAREHOUSE"] = str(args.warehouse)  # this process's settings
    return 0 if flow_run(args).is_completed() else 1


class RunFailed(BankConnectETLError):
    """The sync ran and failed; its row in ``runs`` and the artifact say why."""


@task(name="load-batch", retries=2, retry_delay_seconds=[5, 30], cache_policy=NONE)
def load_batch(writer: Writer, batch: Batch, message: str) -> int:
    """Validate-and-load output of one batch of entities: one warehouse transaction."""
    return writer.load(batch, message=message)


def settings_from(secret_blocks: dict[str, str] | None, batch_size: int | None) -> Settings:
    """Settings from the environment, with secrets from the named Secret blocks on top."""
    overrides: dict = {}
    for field, block in (secret_blocks or {}).items():
        if field not in SECRET_FIELDS:
            raise ConfigError(
                f"secret_blocks: {field!r} is not one of {', '.join(SECRET_FIELDS)}",
                hint="fix the deployment's secret_blocks parameter (prefect.yaml)",
            )
        try:
            secret = Secret.load(block)
        except ValueError as exc:  # Prefect: "Unable to find block document named ..."
            raise ConfigError(
                f"secret_blocks: {field}: no Prefect Secret block named {block!r}",
                hint=f"create it once: Secret(value=...).save({block!r}), "
                "see docs/operations.md (Secrets)",
            ) from exc
        overrides[field] = secret.get()
    if batch_size is not None:
        overrides["batch_size"] = batch_size
    return Settings.load(**overrides)


def ends_failed_on_error(body: Callable[[], dict]) -> dict | State:
    """Run a flow's body, the library's warnings going to the flow run's log. An error
    raised on purpose (a setting, a selection, a run that failed, the API refusing) ends
    the flow run Failed with that one line and its hint, logged once, with no traceback; a
    direct caller of the flow still gets the exception. Anything else is a bug, and keeps
    Prefect's traceback."""
    run_logger = get_run_logger()
    try:
        with _library_logs_to(run_logger):
            return body()
    except BankConnectETLError as exc:
        hint = getattr(exc, "hint", None)  # user errors carry one
        message = f"{exc} (hint: {hint})" if hint else str(exc)
        run_logger.error("%s", message)
        return Failed(message=message, data=exc)


class _RunLogHandler(logging.Handler):
    """Passes the library's records on to a flow run's logger: into the run's log in the
    Prefect UI, not only the worker's terminal."""

    def __init__(self, run_logger: logging.LoggerAdapter, level: int) -> None:
        super().__init__(level)
        self.run_logger = run_logger

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.run_logger.log(record.levelno, "%s", record.getMessage())
        except Exception:  # logging must never break the run
            self.handleError(record)


@contextmanager
def _library_logs_to(run_logger: logging.LoggerAdapter) -> Iterator[None]:
    """The library's warnings (an unknown id skipped, a wait for the writer lock, health
    not recorded) into the flow run's log while the flow runs."""
    library = logging.getLogger("bankconnect_etl")
    handler = _RunLogHandler(run_logger, logging.WARNING)
    library.addHandler(handler)
    # the run logger prints them (and sends them to the API); Prefect's root console
    # handler would print each a second time
    propagate, library.propagate = library.propagate, False
    try:
        yield
    finally:
        library.removeHandler(handler)
        library.propagate = propagate


class _NoTracebackForErrorsOnPurpose(logging.Filter):
    """Prefect raises a Failed flow's exception again at the end of a deployment's run and
    logs it with its traceback ("Engine execution exited with unexpected exception", Prefect
    3.8). For an error raised on purpose, ``ends_failed_on_error`` logged its one line
    already: that record is dropped. Any other exception keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, BankConnectETLError)


logging.getLogger("prefect.flow_runs").addFilter(_NoTracebackForErrorsOnPurpose())


def sync(
    kind: str,
    *,
    entity_ids: list[str] | None = None,
    link_ids: list[str] | None = None,
    force: bool = False,
    dry: bool = False,
    batch_size: int | None = None,
    secret_blocks: dict[str, str] | None = None,
) -> dict:
    """The body of both flows: one run, its artifact, and its counts as the flow's result."""
    logger = get_run_logger()
    settings = settings_from(secret_blocks, batch_size)
    with upstream(settings, record=not dry) as live:
        if dry:
            plan = dry_run(live, entity_ids=entity_ids, link_ids=link_ids, force=force)
            logger.info("%s", "\n".join(plan_lines(plan)))  # one record: a table
            result = _dry_artifact(kind, plan)
            plan.check_found()  # the run would fail so: the dry run's flow run fails too
            return result
        run = run_sync(
            live,
            kind=kind,
            entity_ids=entity_ids,
            link_ids=link_ids,
            force=force,
            progress=LogProgress(logger),
            load=load_batch,
        )
    create_markdown_artifact(
        summary_markdown(run),
        key=f"bankconnect-{kind}",
        description=f"bankconnect-etl {kind} run {run.run_id}",
    )
    for line in summary_lines(run):
        logger.info("%s", line)
    if run.status != "succeeded":
        raise RunFailed(f"run {run.run_id} failed: {run.error}")
    return {"run_id": run.run_id, "snapshot": run.snapshot} | run.counts()


def _dry_artifact(kind: str, plan: Plan) -> dict:
    create_markdown_artifact(
        plan_markdown(plan), key=f"bankconnect-{kind}-dry-run", description="what would be fetched"
    )
    missing = {"not_found": list(plan.not_found)} if plan.not_found else {}
    return {
        "dry_run": True,
        "entities": len(plan.entities),
        "actions": dict(plan.counts()),
    } | missing
