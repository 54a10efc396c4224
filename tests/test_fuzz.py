"""Every tool's input, fuzzed: only clean errors reach the model, and a refused call changes nothing.

The server runs in memory with a lab whose cargo always fails (so no input can start a build), and
an archive seeded with one pairing and one experiment (so small ids exist).
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client

from frontier_mcp.archive import Archive
from frontier_mcp.server import build_server
from frontier_mcp.settings import load_settings
from frontier_mcp.validate import normalized_hash

from .test_validate import GOOD

TABLES = ("pairings", "sources", "experiments", "builds", "jobs", "benchmark_runs", "trials", "verdicts")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.integers(-2, 5)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40)
    | st.sampled_from(["../x", "a/b", "x\x00y", "-rf", "x" * 10_000, "quick", "standard", "win", GOOD,
                       "bench-quick-0000000000", "'; DROP TABLE experiments; --"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6)


def archive_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        for table in TABLES:
            for row in conn.execute(f"SELECT * FROM {table} ORDER BY rowid"):
                digest.update(repr(row).encode())
    return digest.hexdigest()


def seed(home: Path) -> None:
    archive = Archive(home / "state.db")
    try:
        pairing = archive.add_pairing("knot-theory", "fluid-dynamics", None)
        archive.add_experiment(name="seeded", pairing_id=pairing, parent_id=None, source=GOOD,
                               normalized_sha256=normalized_hash(GOOD), statement="A seeded experiment.",
                               mechanism="Plain SGD.", prediction="Nothing.")
    finally:
        archive.close()


def test_every_tool_refuses_garbage_cleanly(tmp_path: Path) -> None:
    home = tmp_path / "lab"
    seed(home)
    # A cargo that is there (so the tools get past the server's missing-toolchain gate and their own
    # validation is what the fuzzer meets) but builds nothing: it and its rustc exit 1.
    broken = tmp_path / "broken-toolchain"
    broken.mkdir()
    for tool in ("cargo", "rustc"):
        (broken / tool).write_text("#!/bin/sh\nexit 1\n")
        (broken / tool).chmod(0o755)
    server = build_server(load_settings(home=home, environ={}, cargo=str(broken / "cargo")))
    db_path = home / "state.db"
    with anyio.from_thread.start_blocking_portal() as portal:
        connected = portal.wrap_async_context_manager(Client(server))
        client = connected.__enter__()
        try:
            tools = portal.call(client.list_tools).tools
            assert len(tools) == 10
            for tool in tools:
                properties = list(tool.input_schema.get("properties", {}))
                arguments = st.fixed_dictionaries(
                    {}, optional={key: json_values for key in properties}
                ) | st.dictionaries(st.sampled_from([*properties, "extra", ""]), json_values, max_size=4)
                _fuzz_tool(portal, client, tool.name, arguments, db_path)
        finally:
            connected.__exit__(None, None, None)


def _fuzz_tool(portal: Any, client: Client, name: str, arguments: st.SearchStrategy[dict[str, Any]],
               db_path: Path) -> None:
    @settings(max_examples=30, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(arguments)
    def check(args: dict[str, Any]) -> None:
        before = archive_digest(db_path)
        result = portal.call(client.call_tool, name, args)
        text = " ".join(getattr(c, "text", "") for c in result.content)
        assert "Traceback" not in text and 'File "' not in text, (name, args, text)
        if result.is_error:
            assert len(text) > 20, (name, args, text)
            assert archive_digest(db_path) == before, (name, args, text)

    check()
