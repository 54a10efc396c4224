"""`frontier-mcp`: serve on stdio, or demo, history, show, leaderboard, report, lineage, pairings,
doctor, config, verify-baselines. With no command it serves when stdin is not a terminal (an MCP host
launching it) and prints its help when a person runs it.

While serving, stdout is the MCP protocol: everything human goes to stderr.

    __init__   the parser, dispatch, `serve`; Ctrl-C and a closed pipe end a command quietly
    views      the archive, read: history, show, leaderboard, report, lineage, pairings
    doctor     doctor and verify-baselines (they build the lab's harness), and the prerequisites check
    demo       the whole loop through a real MCP client, in its own lab
    config     the client config blocks

Imports are lazy: the read-only views must start fast, so this module imports neither the MCP library
nor the protocol, and each command imports only what it uses.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from .. import __version__

# protocol.suites.VisibleSuite, spelled out so the CLI starts without the protocol (a test keeps them equal).
VISIBLE_SUITES = ["quick", "standard", "neural"]

if TYPE_CHECKING:
    from ..settings import Settings

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command ended by Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports `yes | head -1`


def _parser() -> argparse.ArgumentParser:
    # The options every command takes, accepted before or after the command. On the subcommands they
    # default to SUPPRESS, so `--home X demo` is not overwritten by the subcommand's default.
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument("--home", default=argparse.SUPPRESS,
                        help="lab folder (default: $FRONTIER_HOME, else the platform data dir)")
    parser = argparse.ArgumentParser(prog="frontier-mcp", description=(
        "An MCP server for automated optimizer research. Started by an MCP host with no command, it "
        "serves MCP on stdio; run with no command on a terminal, it prints this help. Options go before "
        "or after the command."))
    parser.add_argument("--home", default=None, help="lab folder (default: $FRONTIER_HOME, else the platform data dir)")
    parser.add_argument("--version", action="version", version=f"frontier-mcp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help, parents=[shared])

    serve_command = command("serve", "serve MCP on stdio (what MCP hosts run), or over streamable HTTP with --http")
    serve_command.add_argument("--http", metavar="[HOST:]PORT", type=http_address,
                               help="serve streamable HTTP at http://HOST:PORT/mcp instead of stdio (HOST: "
                                    "127.0.0.1 unless given; there is no authentication)")
    demo = command("demo", "run the whole loop on the built-in example through a real MCP client, in its own "
                           "lab (<lab>/demo-lab unless --home is given)")
    demo.add_argument("--suite", default="quick", choices=VISIBLE_SUITES)
    history = command("history", "list experiments, newest first")
    history.add_argument("--limit", type=int, default=30)
    history.add_argument("--offset", type=int, default=0, help="rows to skip (after --cursor, if given)")
    history.add_argument("--cursor", help="continue after the page that printed this cursor (as fast at any depth)")
    show = command("show", "show one experiment in full")
    show.add_argument("id", type=int)
    show.add_argument("--source", action="store_true", help="print the Rust source too")
    board = command("leaderboard", "experiments ranked by loss ratio against the best baseline")
    board.add_argument("--limit", type=int, default=30)
    board.add_argument("--suite", choices=VISIBLE_SUITES)
    board.add_argument("--offset", type=int, default=0, help="rows to skip (after --cursor, if given)")
    board.add_argument("--cursor", help="continue after the page that printed this cursor (as fast at any depth)")
    report = command("report", "write self-contained HTML pages to <lab>/reports/ and print their paths")
    target = report.add_mutually_exclusive_group(required=True)
    target.add_argument("id", type=int, nargs="?", help="one experiment (its ancestors' and descendants' pages too)")
    target.add_argument("--all", action="store_true", help="every experiment, plus index.html")
    lineage = command("lineage", "tree of an experiment's ancestors and descendants with their results")
    lineage.add_argument("id", type=int)
    pairs = command("pairings", "field pairs proposed so far: experiments, best ratio, failures")
    pairs.add_argument("--limit", type=int, default=100)
    command("doctor", "check cargo, the sandbox and the lab; build the harness once")
    command("config", "print the config blocks for MCP clients")
    verify = command("verify-baselines", "replay recorded PyTorch trajectories through the baselines")
    verify.add_argument("path", type=Path, help="a reference file (format of tests/fixtures/torch_trajectories.json)")
    return parser


def subcommands() -> list[str]:
    """The names `frontier-mcp` accepts as its first argument (the README lists them; a test checks)."""
    action = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return list(action.choices)


def main(argv: list[str] | None = None) -> int:
    try:
        code = _main(argv)
        sys.stdout.flush()  # a closed pipe shows here, not as a warning at interpreter exit
        return code
    except KeyboardInterrupt:
        print(file=sys.stderr)  # end the line ^C was echoed on
        return EXIT_INTERRUPTED
    except BaseExceptionGroup as group:  # Ctrl-C inside a task group (the demo's client, the server)
        if group.split(KeyboardInterrupt)[1] is not None:
            raise
        print(file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `frontier-mcp config | head -1`: the reader is gone. Point stdout at /dev/null so that
        # Python's own flush at exit does not raise again.
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def _main(argv: list[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None and sys.stdin.isatty():
        parser.print_help()
        print("\nfrontier-mcp serve   to serve on this terminal anyway (MCP hosts start it without a command)")
        return 0
    from ..settings import load_settings

    settings = load_settings(home=args.home)
    command = args.command or "serve"
    if command == "serve":
        http = getattr(args, "http", None)  # absent when no command was given
        return serve(settings) if http is None else serve(settings, http=http)
    if command == "config":
        import json

        from .config import client_configs

        print(json.dumps(client_configs(settings), indent=2))
        return 0
    if command == "demo":
        from .demo import demo

        return demo(settings, suite=args.suite, home_given=args.home is not None)
    from ..archive import ArchiveError

    try:
        return _run(command, args, settings)
    except ArchiveError as exc:  # a state.db that cannot be used, a full disk: one line, no traceback
        print(f"frontier-mcp: {exc}", file=sys.stderr)
        return 1


def _run(command: str, args: argparse.Namespace, settings: Settings) -> int:
    # rich and the renderers are only imported for the human-facing commands
    if command in ("doctor", "verify-baselines"):
        from . import doctor

        return doctor.doctor(settings) if command == "doctor" else doctor.verify_baselines(settings, args.path)
    from . import views

    if command == "history":
        return views.history(settings, limit=args.limit, offset=args.offset, cursor=args.cursor)
    if command == "show":
        return views.show(settings, args.id, with_source=args.source)
    if command == "leaderboard":
        return views.leaderboard(settings, limit=args.limit, suite=args.suite, offset=args.offset, cursor=args.cursor)
    if command == "report":
        return views.report(settings, args.id, every=args.all)
    if command == "lineage":
        return views.lineage(settings, args.id)
    if command == "pairings":
        return views.pairings(settings, limit=args.limit)
    return 2


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def http_address(text: str) -> tuple[str, int]:
    """`serve --http`'s `[HOST:]PORT` (an IPv6 HOST in brackets). HOST defaults to loopback: the server has no
    authentication, and whoever reaches it can compile and run code in the lab."""
    host, colon, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise argparse.ArgumentTypeError(f"write an IPv6 host in brackets, as in [::1]:8000 (got {text!r})")
    if (colon and not host) or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected [HOST:]PORT with a PORT from 1 to 65535 (got {text!r})")
    return host or "127.0.0.1", int(port)


def serve(settings: Settings, http: tuple[str, int] | None = None) -> int:
    import logging

    level = os.environ.get("FRONTIER_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(stream=sys.stderr, level=level if level in logging.getLevelNamesMapping() else "INFO",
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from ..server import build_server

    server = build_server(settings)
    if http is None:
        import anyio

        interrupted: list[int] = []

        async def serve_stdio() -> None:
            # asyncio's SIGINT handler cancels the main task, which the SDK's stdio server may then finish
            # normally (exit 0) or not (KeyboardInterrupt, 130), depending on timing; noting the signal
            # on the way makes Ctrl-C exit 130 either way, with the same graceful shutdown.
            chained = signal.getsignal(signal.SIGINT)

            def on_sigint(signum: int, frame: FrameType | None) -> None:
                interrupted.append(signum)
                if callable(chained):
                    chained(signum, frame)

            signal.signal(signal.SIGINT, on_sigint)
            await server.run_stdio_async()

        anyio.run(serve_stdio)
        return EXIT_INTERRUPTED if interrupted else 0
    host, port = http
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}/mcp"
    print(f"frontier-mcp: serving MCP over streamable HTTP at {url}", file=sys.stderr, flush=True)
    if host not in LOOPBACK:  # the SDK also checks Host and Origin headers (DNS rebinding) only on loopback
        print(f"frontier-mcp: warning: {host} is not loopback, and the server has no authentication: anyone who "
              f"reaches port {port} can compile and run code in this lab", file=sys.stderr, flush=True)
    import uvicorn

    # The SDK's run("streamable-http") keeps uvicorn's logging, which prints the access log on stdout; with
    # log_config=None uvicorn logs through the handler above (stderr, FRONTIER_LOG_LEVEL) like the rest.
    uvicorn.run(server.streamable_http_app(host=host), host=host, port=port, log_config=None)
    return 0
