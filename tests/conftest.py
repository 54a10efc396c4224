"""Shared fixtures: one warmed-up lab per test session, and a real MCP client over stdio.

Any test that uses the built lab (`lab_home`, or `client` on top of it) is marked `slow`: it needs
cargo and a harness build, so `pytest -m "not slow"` leaves it out."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_PATH = ROOT / "rust_scaffold" / "template" / "optimizer.rs"


def example_source() -> str:
    return EXAMPLE_PATH.read_text()


SLOW_FIXTURES = {"lab_home", "client"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def bare_env(home: Path, **extra: str) -> dict[str, str]:
    """What hosts give a server: PATH and HOME, little else (cargo must still be found)."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"),
           "FRONTIER_HOME": str(home), "FRONTIER_LOG_LEVEL": "WARNING"}
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def lab_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lab whose harness is built once for the whole session (the doctor builds it)."""
    home = tmp_path_factory.mktemp("lab")
    done = subprocess.run([sys.executable, "-m", "frontier_mcp", "--home", str(home), "doctor"],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    return home


def server_params(home: Path, **extra: str) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "frontier_mcp", "serve"],
                                 env=bare_env(home, **extra), cwd="/")


@pytest.fixture
async def client(lab_home: Path) -> AsyncIterator[Client]:
    async with Client(server_params(lab_home), read_timeout_seconds=600) as connected:
        yield connected


async def call(client: Client, name: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(name, args)
    text = " ".join(getattr(c, "text", "") for c in result.content)
    assert not result.is_error, f"{name} failed: {text}"
    assert result.structured_content is not None
    return result.structured_content


async def call_error(client: Client, name: str, args: dict[str, Any]) -> str:
    result = await client.call_tool(name, args)
    text = " ".join(getattr(c, "text", "") for c in result.content)
    assert result.is_error, f"{name} should have failed but returned: {text[:500]}"
    return text


async def compiled(client: Client, name: str, source: str) -> int:
    """propose_pairing -> write_crate -> compile (asserted ok); the experiment id."""
    pairing = await call(client, "propose_pairing", {"allow_repeat": True})
    written = await call(client, "write_crate", {
        "pairing_id": pairing["pairing_id"], "name": name, "source": source,
        "statement": f"Test experiment {name}.", "mechanism": "See the source.",
        "prediction": "The server judges it correctly."})
    built = await call(client, "compile", {"experiment_id": written["experiment_id"]})
    for _ in range(30):  # a server still checking its lab says so; do what it says: call again
        if built["status"] != "preparing":
            break
        await anyio.sleep(2)
        built = await call(client, "compile", {"experiment_id": written["experiment_id"]})
    assert built["ok"], built
    return int(written["experiment_id"])
