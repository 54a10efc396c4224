"""`frontier-mcp`: serve on stdio (default), or demo, history, show, leaderboard, report, lineage,
pairings, doctor, config.

While serving, stdout is the MCP protocol: everything human goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from pathlib import Path

from . import __version__
from .settings import Settings, load_settings


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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = load_settings(home=args.home)
    command = args.command or "serve"
    if command == "serve":
        return serve(settings)
    from . import console  # rich is only imported for the human-facing commands

    if command == "demo":
        return console.demo(settings, suite=args.suite)
    if command == "history":
        return console.history(settings, limit=args.limit)
    if command == "show":
        return console.show(settings, args.id, with_source=args.source)
    if command == "leaderboard":
        return console.leaderboard(settings, limit=args.limit, suite=args.suite)
    if command == "report":
        return console.report(settings, args.id, every=args.all)
    if command == "lineage":
        return console.lineage(settings, args.id)
    if command == "pairings":
        return console.pairings(settings, limit=args.limit)
    if command == "doctor":
        return console.doctor(settings)
    if command == "verify-baselines":
        return console.verify_baselines(settings, args.path)
    if command == "config":
        print(json.dumps(client_configs(settings), indent=2))
        return 0
    return 2


def serve(settings: Settings) -> int:
    level = os.environ.get("FRONTIER_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(stream=sys.stderr, level=level if level in logging.getLevelNamesMapping() else "INFO",
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from .server import build_server

    build_server(settings).run("stdio")
    return 0


def installed_from_index() -> bool:
    """True if this frontier-mcp came from a package index (so `uvx frontier-mcp` finds the same one);
    an install from a checkout or a wheel file records its origin in direct_url.json."""
    from importlib import metadata

    try:
        return metadata.distribution("frontier-mcp").read_text("direct_url.json") is None
    except metadata.PackageNotFoundError:
        return False


def client_configs(settings: Settings) -> dict[str, object]:
    """Config blocks with absolute paths: hosts start servers in `/` with a bare environment."""
    uvx = shutil.which("uvx")
    from_index = uvx is not None and installed_from_index()
    command, args = (uvx, ["frontier-mcp"]) if from_index else (sys.executable, ["-m", "frontier_mcp"])
    env = {"FRONTIER_HOME": str(settings.home)}
    cargo = settings.cargo_path()
    if cargo is not None:
        env["FRONTIER_CARGO"] = str(cargo)
    server = {"command": command, "args": args, "env": env}
    return {
        "claude_desktop / cursor (mcpServers)": {"mcpServers": {"frontier": server}},
        "vscode (.vscode/mcp.json)": {"servers": {"frontier": {"type": "stdio", **server}}},
        "claude_code": "claude mcp add frontier " + " ".join(f"-e {k}={v}" for k, v in env.items())
                       + f" -- {command} {' '.join(args)}",
    }

