"""`frontier-mcp serve --http [HOST:]PORT`: the same server over streamable HTTP (what the official conformance
suite speaks), on loopback unless a host is given, with nothing on stdout."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from mcp import Client

from frontier_mcp import cli

from .http_server import http_server


@pytest.mark.parametrize(("given", "address"), [
    ("8000", ("127.0.0.1", 8000)),
    ("0.0.0.0:8000", ("0.0.0.0", 8000)),
    ("localhost:65535", ("localhost", 65535)),
    ("[::1]:8000", ("::1", 8000)),
])
def test_http_takes_a_port_and_binds_loopback_unless_given_a_host(given: str, address: tuple[str, int]) -> None:
    assert cli._parser().parse_args(["serve", "--http", given]).http == address
    assert cli._parser().parse_args(["--home", "/a", "serve", "--http", given, "--home", "/b"]).http == address


@pytest.mark.parametrize("given", ["", "0", "65536", "http", "host:", ":8000", "::1:8000", "8000:host"])
def test_http_refuses_what_is_not_a_host_and_port(given: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        cli._parser().parse_args(["serve", "--http", given])
    assert exit.value.code == 2 and "argument --http" in capsys.readouterr().err


def test_serve_without_http_is_stdio() -> None:
    assert cli._parser().parse_args(["serve"]).http is None
    with pytest.raises(argparse.ArgumentTypeError, match="brackets"):
        cli.http_address("::1:8000")


@pytest.mark.slow
@pytest.mark.anyio
async def test_an_mcp_client_lists_tools_and_calls_one_over_streamable_http(lab_home: Path, tmp_path: Path) -> None:
    with http_server(lab_home, tmp_path, FRONTIER_LOG_LEVEL="INFO") as server:
        async with Client(server.url, read_timeout_seconds=120) as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            page = await client.call_tool("history", {"limit": 1})
        async with Client(server.url, mode="legacy") as legacy:  # the handshake today's hosts speak
            legacy_tools = {tool.name for tool in (await legacy.list_tools()).tools}
    assert len(tools) == 10 and {"compile", "benchmark", "record_result"} <= tools and legacy_tools == tools
    assert not page.is_error and page.structured_content is not None
    assert page.structured_content["summary"].startswith("Experiments")
    assert server.returncode in (0, cli.EXIT_INTERRUPTED)
    log = server.stderr.read_text()
    assert f"serving MCP over streamable HTTP at {server.url}" in log and "Traceback" not in log, log
    assert '"POST /mcp HTTP/1.1" 200' in log and server.stdout.read_text() == ""  # uvicorn's access log too
