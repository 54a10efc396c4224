"""`frontier-mcp config`: the blocks to paste into an MCP client's config, with absolute paths."""

from __future__ import annotations

import shutil
import sys

from ..settings import Settings


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

