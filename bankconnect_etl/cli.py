"""The ``bankconnect-etl`` command.

Exit codes: 0 success; 1 the run failed (or waited too long for another writer); 2 a usage
or configuration error (one line on stderr, with a hint; ``--debug`` adds the traceback);
130 interrupted (Ctrl-C); 143 stopped by SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Sequence

from bankconnect_etl import __version__
from bankconnect_etl.cli_analytics import add_commands as add_analytics_commands
from bankconnect_etl.cli_sync import add_commands as add_sync_commands
from bankconnect_etl.cli_sync import configure_logging
from bankconnect_etl.cli_warehouse import add_commands as add_warehouse_commands
from bankconnect_etl.cli_warehouse import folder, whole_number
from bankconnect_etl.errors import (
    Terminated,
    UserError,
    WarehouseBusyError,
    stop_reason,
    stopped_by,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143
DEBUG_HELP = "show tracebacks for errors, and debug logs"
MAX_SANDBOX_ENTITIES = 1_000_000  # Settings.sandbox_entities' bound (config is slow to import)


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag raises UserError so it prints like every other user error,
    and a flag is taken only whole (``--link`` is not ``--link-id``: a typo in a command
    that writes is not guessed)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(f"{self.prog}: {message}", hint=f"see '{self.prog} --help'")


class _CommandParser(_Parser):
    """A command's parser: takes ``--debug`` too, so it works before or after the command
    (``main`` reads it from the whole command line before parsing)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP
        )


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def _non_negative(kind: Callable[[str], float | int]) -> Callable[[str], float | int]:
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _rate(text: str) -> float:
    value = _non_negative(float)(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"is a fraction between 0 and 1, got {text}")
    return float(value)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0 to 65535, got {text}")
    return value


def _fault_kinds(text: str) -> tuple[str, ...]:
    from bankconnect_etl.sandbox.faults import FAULT_KINDS

    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in FAULT_KINDS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(
            f"unknown fault kind {unknown[0] if unknown else text!r}; "
            f"choose from {','.join(FAULT_KINDS)}"
        )
    return kinds


SANDBOX_HELP = """\
Start a local imitation of the BankConnect v1 API, deterministic from --seed.

The sandbox serves every documented read endpoint, uploads and sessions, with
asynchronous processing, on-demand faults and added latency, so the pipeline can
be tried and tested without the real API. Point the pipeline at it with
BANKCONNECT_BASE_URL=<the base URL it prints>.

examples:
  bankconnect-etl sandbox
  bankconnect-etl sandbox --port 0 --entities 100000 --seed 7
  bankconnect-etl sandbox --latency-ms 50 --fault-rate 0.05 --processing-polls 2

sandbox-only routes (no auth):
  POST /sandbox/advance?new_entities=N&new_statements=M   move time forward
  POST /sandbox/faults  {"rate":0.1,"kinds":["429"],"next":["drop"]}
  GET  /sandbox/state   GET /openapi.json
"""


def _add_sandbox(sub: argparse._SubParsersAction) -> None:
    from bankconnect_etl.sandbox.faults import FAULT_KINDS
    from bankconnect_etl.sandbox.world import SANDBOX_API_KEY, SANDBOX_SERVER_HASH

    p = sub.add_parser(
        "sandbox",
        help="run the local BankConnect API imitation",
        description=SANDBOX_HELP,
        formatter_class=_formatter,
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    p.add_argument(
        "--port", type=_port, default=8000, help="port; 0 picks a free one (default: %(default)s)"
    )
    p.add_argument(
        "--entities",
        type=whole_number(0, MAX_SANDBOX_ENTITIES),
        default=500,
        help="entities at start (default: %(default)s)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=1,
        help="world seed; same seed, same data (default: %(default)s)",
    )
    p.add_argument(
        "--latency-ms", type=_non_negative(float), default=0.0, help="added to every API response"
    )
    p.add_argument(
        "--fault-rate", type=_rate, default=0.0, help="fraction of API requests that get a fault"
    )
    p.add_argument(
        "--fault-kinds",
        type=_fault_kinds,
        default=FAULT_KINDS,
        metavar="K,K",
        help=f"which faults (default: all of {','.join(FAULT_KINDS)})",
    )
    p.add_argument(
        "--slow-ms",
        type=_non_negative(float),
        default=65_000.0,
        help="delay of a 'slow' fault (default: %(default)s)",
    )
    p.add_argument(
        "--processing-polls",
        type=_non_negative(int),
        default=1,
        help="polls of each endpoint that answer 'processing' first (default: %(default)s)",
    )
    p.add_argument(
        "--processing-seconds",
        type=_non_negative(float),
        default=0.0,
        help="and seconds after an upload before processing ends (default: %(default)s)",
    )
    p.add_argument(
        "--api-key",
        default=os.environ.get("BANKCONNECT_SANDBOX_API_KEY", SANDBOX_API_KEY),
        help="x-api-key to accept (env BANKCONNECT_SANDBOX_API_KEY; default: the sandbox key)",
    )
    p.add_argument(
        "--server-hash",
        default=os.environ.get("BANKCONNECT_SANDBOX_SERVER_HASH", SANDBOX_SERVER_HASH),
        help="server-hash to accept (env BANKCONNECT_SANDBOX_SERVER_HASH)",
    )
    p.add_argument(
        "--require-access-token",
        action="store_true",
        help="also require ACCESS_TOKEN + TIMESTAMP, "
        "signed with env BANKCONNECT_SANDBOX_TOKEN_SECRET",
    )
    p.add_argument(
        "--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug")
    )
    p.set_defaults(run=_run_sandbox)


def _run_sandbox(args: argparse.Namespace) -> int:
    from bankconnect_etl.sandbox.server import bind, build_server, serve_forever
    from bankconnect_etl.sandbox.world import SANDBOX_API_KEY, SANDBOX_SERVER_HASH, SandboxConfig

    secret = None
    if args.require_access_token:
        secret = os.environ.get("BANKCONNECT_SANDBOX_TOKEN_SECRET")
        if not secret:
            raise UserError(
                "--require-access-token needs a token secret",
                hint="export BANKCONNECT_SANDBOX_TOKEN_SECRET=<secret> first",
            )
    config = SandboxConfig(
        seed=args.seed,
        entities=args.entities,
        api_key=args.api_key,
        server_hash=args.server_hash,
        token_secret=secret,
        processing_polls=args.processing_polls,
        processing_seconds=args.processing_seconds,
        latency_ms=args.latency_ms,
        fault_rate=args.fault_rate,
        fault_kinds=args.fault_kinds,
        slow_ms=args.slow_ms,
    )
    try:
        sock = bind(args.host, args.port)
    except OSError as exc:
        raise UserError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
            hint="choose another --port, or --port 0 for a free one",
        ) from exc
    server = build_server(config, args.log_level)
    host, port = sock.getsockname()[:2]
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    default_creds = args.api_key == SANDBOX_API_KEY and args.server_hash == SANDBOX_SERVER_HASH
    creds = (
        f"x-api-key '{SANDBOX_API_KEY}', server-hash '{SANDBOX_SERVER_HASH}' (sandbox defaults)"
        if default_creds
        else "custom x-api-key and server-hash (not shown)"
    )
    faults = (
        f"{args.fault_rate:.0%} of requests ({','.join(args.fault_kinds)})"
        if args.fault_rate
        else "none"
    )
    lines = [
        f"BankConnect sandbox: {args.entities} entities, seed {args.seed}",
        f"  listening on  {url}",
        f"  base URL      {url}/bank-connect/v1   (set BANKCONNECT_BASE_URL to this)",
        f"  credentials   {creds}" + (", plus ACCESS_TOKEN/TIMESTAMP" if secret else ""),
        f"  processing    {args.processing_polls} poll(s)"
        + (f", {args.processing_seconds:g} s" if args.processing_seconds else ""),
        f"  latency       {args.latency_ms:g} ms   faults: {faults}",
        f"  OpenAPI       {url}/openapi.json",
        "Press Ctrl-C to stop.",
    ]
    if host not in ("127.0.0.1", "::1", "localhost"):
        lines.insert(1, f"  warning: listening on {host}, reachable from other machines")
    print("\n".join(lines), flush=True)
    # uvicorn shuts down gracefully on Ctrl-C, then re-raises the signal: that is a normal stop.
    with contextlib.suppress(KeyboardInterrupt):
        serve_forever(server, sock)
    print("sandbox stopped", flush=True)
    return EXIT_OK


DEMO_HELP = """\
Start the sandbox on a free loopback port, pull from it, and print what came back.
Run it again and the sandbox's time moves on one step: the run fetches only what changed.
A warehouse keeps the sandbox world it was filled from; another world needs its own folder.

examples:
  bankconnect-etl demo
  bankconnect-etl demo --entities 500 --seed 3 --warehouse /tmp/warehouse-500
"""


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the pipeline against an embedded sandbox",
        description=DEMO_HELP,
        formatter_class=_formatter,
    )
    p.add_argument(
        "--entities",
        type=whole_number(1, MAX_SANDBOX_ENTITIES),
        help="sandbox entities (default: BANKCONNECT_SANDBOX_ENTITIES, else 60)",
    )
    p.add_argument(
        "--seed", type=int, help="sandbox seed (default: BANKCONNECT_SANDBOX_SEED, else 1)"
    )
    p.add_argument(
        "--warehouse", type=folder, help="warehouse folder (default: BANKCONNECT_WAREHOUSE)"
    )
    p.set_defaults(run=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from bankconnect_etl.demo import run_demo

    return run_demo(
        lambda line: print(line, flush=True),
        entities=args.entities,
        seed=args.seed,
        warehouse=args.warehouse,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="bankconnect-etl",
        description="Land FinBox BankConnect data in a DuckLake warehouse.",
        epilog="exit codes: 0 ok, 1 run failed, 2 usage or configuration error, "
        "130 interrupted (Ctrl-C), 143 stopped by SIGTERM",
        formatter_class=_formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_CommandParser)
    _add_demo(sub)
    add_sync_commands(sub, _formatter)
    _add_sandbox(sub)
    add_warehouse_commands(sub, _formatter)
    add_analytics_commands(sub, _formatter)
    parser.set_defaults(commands=sub.choices)
    return parser


def _parse(argv: list[str]) -> argparse.Namespace:
    """Parse the command line; a flag the command does not take is reported by that
    command's parser, so the hint names its own --help."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        owner = args.commands.get(args.command) or parser
        flags = [f for action in owner._actions for f in action.option_strings]
        close = difflib.get_close_matches(unknown[0].split("=")[0], flags, n=1)
        owner.error(
            f"unrecognized arguments: {' '.join(unknown)}"
            + (f" (did you mean {close[0]}?)" if close and unknown[0].startswith("-") else "")
        )
    return args


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


def _stop_on_sigterm() -> Callable[[], None]:
    """SIGTERM raises `Terminated` in the main thread, so a run stops as on Ctrl-C: its
    row says so, its fetching stops, its worker processes end. Returns what puts the
    handler before it back (nothing to do off the main thread, where none can be set)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    # None: a handler not set from Python, which cannot be put back; the default instead
    return lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    configure_logging(debug)
    restore_sigterm = _stop_on_sigterm()
    try:
        args = _parse(argv)
        if not getattr(args, "run", None):
            build_parser().print_help()
            return EXIT_USAGE
        return args.run(args)
    except BrokenPipeError:  # the reader went away (`... | head`): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error at exit
        return EXIT_FAILED
    except BaseException as exc:
        # Ctrl-C or SIGTERM, however it came: DuckDB turns one that lands in a query into
        # its own error, which may then be reported as ours
        stop = stopped_by(exc)
        if isinstance(stop, KeyboardInterrupt | Terminated):
            if debug:
                traceback.print_exc()
            print(
                "interrupted" if isinstance(stop, KeyboardInterrupt) else stop_reason(stop),
                file=sys.stderr,
            )
            return EXIT_INTERRUPTED if isinstance(stop, KeyboardInterrupt) else EXIT_TERMINATED
        if not isinstance(exc, UserError):
            raise  # a bug, or SystemExit: the traceback is the report
        if debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        # waiting hours for another writer is a run that could not run, not a usage error
        return EXIT_FAILED if isinstance(exc, WarehouseBusyError) else EXIT_USAGE
    finally:
        restore_sigterm()


if __name__ == "__main__":
    sys.exit(main())
