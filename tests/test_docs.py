"""The README cannot drift from the code: its tool table and its CLI commands are checked here."""

from __future__ import annotations

import re
from pathlib import Path

import anyio
from mcp import Client

from frontier_mcp.cli import subcommands
from frontier_mcp.server import build_server
from frontier_mcp.settings import load_settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end != -1 else None]


def documented_tools() -> set[str]:
    rows = [line for line in section("Tools").splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([a-z_]+)`", row.split("|")[1])}


async def registered_tools(home: Path) -> set[str]:
    server = build_server(load_settings(home=home, environ={}, cargo=str(home / "no-cargo")))
    async with Client(server) as client:
        return {tool.name for tool in (await client.list_tools()).tools}


def test_the_readme_tool_table_lists_exactly_the_registered_tools(tmp_path: Path) -> None:
    assert documented_tools() == anyio.run(registered_tools, tmp_path)


def test_the_readme_mentions_every_cli_command() -> None:
    mentioned = set(re.findall(r"frontier-mcp ([a-z][a-z-]+)", README))
    listed = set(re.findall(r"`([a-z][a-z-]+)(?: [A-Z|-][^`]*)?`", section("The lab")))
    missing = [command for command in subcommands() if command != "serve" and command not in mentioned | listed]
    assert not missing, f"commands the README does not mention: {missing}"
    unknown = {word for word in re.findall(r"`frontier-mcp ([a-z][a-z-]+)", README)} - set(subcommands())
    assert not unknown, f"the README names commands that do not exist: {unknown}"
