"""`frontier-mcp`: serve on stdio (default), or demo, history, show, leaderboard, report, lineage,
pairings, doctor, config, verify-baselines.

While serving, stdout is the MCP protocol: everything human goes to stderr.

    __init__   the parser, dispatch, `serve`
    views      the archive, read: history, show, leaderboard, report, lineage, pairings
    doctor     doctor and verify-baselines (they build the lab's harness)
    demo       the whole loop through a real MCP client
    config     the client config blocks
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from .. import __version__
from ..archive import ArchiveError
from ..settings import Settings, load_settings
from .config import client_configs


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="frontier-mcp", description=(
        "An MCP server for automated optimizer research. With no command, serves MCP on stdio."))
    parser.add_argument("--home", help="lab folder (default: $FRONTIER_HOME, else the platform data dir)")
    parser.add_argument("--version", action="version", version=f"frontier-mcp {__version__}")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="serve MCP on stdio (the default)")
    demo = sub.add_parser("demo", help="run the whole loop on the built-in example through a real MCP client")
    demo.add_argument("--suite", default="quick", choices=["quick", "standard"])
    history = sub.add_parser("history", help="list experiments, newest first")
    history.add_argument("--limit", type=int, default=30)
    show = sub.add_parser("show", help="show one experiment in full")
    show.add_argument("id", type=int)
    show.add_argument("--source", action="store_true", help="print the Rust source too")
    board = sub.add_parser("leaderboard", help="experiments ranked by loss ratio against the best baseline")
    board.add_argument("--limit", type=int, default=30)
    board.add_argument("--suite", choices=["quick", "standard"])
    report = sub.add_parser("report", help="write self-contained HTML pages to <lab>/reports/ and print their paths")
    target = report.add_mutually_exclusive_group(required=True)
    target.add_argument("id", type=int, nargs="?", help="one experiment (its ancestors' and descendants' pages too)")
    target.add_argument("--all", action="store_true", help="every experiment, plus index.html")
    lineage = sub.add_parser("lineage", help="tree of an experiment's ancestors and descendants with their results")
    lineage.add_argument("id", type=int)
    pairs = sub.add_parser("pairings", help="field pairs proposed so far: experiments, best ratio, failures")
    pairs.add_argument("--limit", type=int, default=100)
    sub.add_parser("doctor", help="check cargo, the sandbox and the lab; build the harness once")
    sub.add_parser("config", help="print the config blocks for MCP clients")
    verify = sub.add_parser("verify-baselines", help="replay recorded PyTorch trajectories through the baselines")
    verify.add_argument("path", type=Path, help="a reference file (format of tests/fixtures/torch_trajectories.json)")
    return parser


def subcommands() -> list[str]:
    """The names `frontier-mcp` accepts as its first argument (the README lists them; a test checks)."""
    action = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return list(action.choices)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = load_settings(home=args.home)
    command = args.command or "serve"
    if command == "serve":
        return serve(settings)
    if command == "config":
        print(json.dumps(client_configs(settings), indent=2))
        return 0
    try:
        return _run(command, args, settings)
    except ArchiveError as exc:  # a state.db that cannot be used, a full disk: one line, no traceback
        print(f"frontier-mcp: {exc}", file=sys.stderr)
        return 1


def _run(command: str, args: argparse.Namespace, settings: Settings) -> int:
    # rich and the renderers are only imported for the human-facing commands
    if command == "demo":
        from .demo import demo

        return demo(settings, suite=args.suite)
    if command in ("doctor", "verify-baselines"):
        from . import doctor

        return doctor.doctor(settings) if command == "doctor" else doctor.verify_baselines(settings, args.path)
    from . import views

    if command == "history":
        return views.history(settings, limit=args.limit)
    if command == "show":
        return views.show(settings, args.id, with_source=args.source)
    if command == "leaderboard":
        return views.leaderboard(settings, limit=args.limit, suite=args.suite)
    if command == "report":
        return views.report(settings, args.id, every=args.all)
    if command == "lineage":
        return views.lineage(settings, args.id)
    if command == "pairings":
        return views.pairings(settings, limit=args.limit)
    return 2


def serve(settings: Settings) -> int:
    level = os.environ.get("FRONTIER_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(stream=sys.stderr, level=level if level in logging.getLevelNamesMapping() else "INFO",
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from ..server import build_server

    build_server(settings).run("stdio")
    return 0
