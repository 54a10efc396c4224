"""Conformance: the MCP Inspector's CLI (the MCP project's reference client, on Node.js) against the stdio
server, as a host starts it: tools (with its --strict schema lint), prompts, resources, resource templates,
a resource read and a tool call, each answer read from its JSON output.

Needs `npx` (Node.js with npm); `npx -y` fetches the pinned Inspector from the npm registry once, then runs it
from npm's cache. Node 20 works, with an engine warning (the Inspector asks for 22)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

pytestmark = pytest.mark.slow

INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"
NPX = shutil.which("npx")
if NPX is None:
    pytest.skip("npx is not installed: the MCP Inspector CLI runs on Node.js (apt-get install nodejs npm)",
                allow_module_level=True)


def inspect(lab: Path, tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    """One Inspector run against a fresh server process in `lab`: its exit code and its JSON answer."""
    assert NPX is not None
    env = {**os.environ, "MCP_CATALOG_PATH": str(tmp_path / "catalog.json"),  # nothing written to ~/.mcp-inspector
           "MCP_CLIENT_CONFIG_PATH": str(tmp_path / "client.json")}
    command = [NPX, "-y", INSPECTOR, "--cli", "--format", "json", "-q", "--cwd", "/",
               "-e", f"FRONTIER_HOME={lab}", "-e", "FRONTIER_LOG_LEVEL=WARNING", *args,
               sys.executable, "-m", "frontier_mcp", "serve"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, stdin=subprocess.DEVNULL)
    answer = done.stdout.strip() or done.stderr.strip()
    try:
        return done.returncode, json.loads(answer)
    except ValueError:
        raise AssertionError(f"the Inspector's output is not JSON (exit {done.returncode}): {answer[-2000:]}") from None


def checkout_lists(home: Path) -> dict[str, set[str]]:
    """What this checkout's server lists to the SDK's own client, in memory, to compare the Inspector's with."""
    from frontier_mcp.server import build_server
    from frontier_mcp.settings import load_settings

    async def lists() -> dict[str, set[str]]:
        settings = load_settings(home=home, environ={}, cargo=str(home / "no-cargo"))  # nothing to build
        async with Client(build_server(settings)) as client:
            return {"tools": {t.name for t in (await client.list_tools()).tools},
                    "prompts": {p.name for p in (await client.list_prompts()).prompts},
                    "resources": {str(r.uri) for r in (await client.list_resources()).resources},
                    "templates": {t.uri_template for t in (await client.list_resource_templates()).resource_templates}}

    return anyio.run(lists)


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    return checkout_lists(tmp_path_factory.mktemp("checkout-lab"))


def test_tools_list_passes_the_strict_schema_lint(lab_home: Path, tmp_path: Path,
                                                  expected: dict[str, set[str]]) -> None:
    code, answer = inspect(lab_home, tmp_path, "--strict", "--method", "tools/list")
    assert code == 0, answer
    tools = answer["result"]["tools"]
    assert {tool["name"] for tool in tools} == expected["tools"] and len(tools) == 10
    for tool in tools:
        assert tool["inputSchema"]["type"] == "object", tool["name"]
        assert tool["description"] and tool["title"], tool["name"]
        hints = tool["annotations"]
        assert {"readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"} <= set(hints), tool["name"]
        assert hints["openWorldHint"] is False, tool["name"]


def test_prompts_resources_and_templates_are_listed(lab_home: Path, tmp_path: Path,
                                                    expected: dict[str, set[str]]) -> None:
    code, prompts = inspect(lab_home, tmp_path, "--method", "prompts/list")
    assert code == 0, prompts
    listed = {p["name"]: p for p in prompts["result"]["prompts"]}
    assert set(listed) == expected["prompts"] == {"research_brief", "translate", "iterate"}
    assert [(a["name"], a["required"]) for a in listed["research_brief"]["arguments"]] == [
        ("field_a", True), ("field_b", True)]

    code, resources = inspect(lab_home, tmp_path, "--method", "resources/list")
    assert code == 0, resources
    uris = {r["uri"]: r for r in resources["result"]["resources"]}
    assert set(uris) == expected["resources"]
    assert {"frontier://contract", "frontier://fields", "frontier://leaderboard",
            "frontier://schema/benchmark-report"} <= set(uris)
    assert all(r.get("mimeType") for r in uris.values())

    code, templates = inspect(lab_home, tmp_path, "--method", "resources/templates/list")
    assert code == 0, templates
    assert {t["uriTemplate"] for t in templates["result"]["resourceTemplates"]} == expected["templates"] == {
        "frontier://experiments/{experiment_id}", "frontier://sources/{experiment_id}",
        "ui://frontier-mcp/verdict/{experiment_id}", "frontier://schema/tools/{tool}"}

    code, contract = inspect(lab_home, tmp_path, "--method", "resources/read", "--uri", "frontier://contract")
    assert code == 0, contract
    (content,) = contract["result"]["contents"]
    assert content["mimeType"] == "text/markdown" and "impl Optimizer for" in content["text"]


def test_a_tool_call_answers_with_structured_content(lab_home: Path, tmp_path: Path) -> None:
    code, answer = inspect(lab_home, tmp_path, "--method", "tools/call", "--tool-name", "history",
                           "--tool-args-json", json.dumps({"limit": 2}))
    assert code == 0, answer  # the Inspector exits 5 when a tool answers isError
    result = answer["result"]
    assert not result.get("isError")
    page = result["structuredContent"]
    assert isinstance(page["total"], int) and len(page["rows"]) <= 2 and page["offset"] == 0
    assert page["summary"].startswith("Experiments") and result["content"][0]["text"] == page["summary"]
