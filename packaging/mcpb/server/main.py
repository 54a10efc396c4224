"""The bundle's entry point: frontier-mcp served over stdio, as `frontier-mcp serve` does.

The host passes the user's settings (manifest.json's user_config) as FRONTIER_* variables. An option the
user left empty may arrive as an empty string or as its unsubstituted `${user_config.…}` placeholder: both
mean "not set", so the server's own default applies (the lab in ~/.local/share/frontier-mcp, cargo on the
PATH or in ~/.cargo/bin, every core). A number may arrive as "4.0"."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import MutableMapping


def clean_environment(environ: MutableMapping[str, str]) -> None:
    for key in [key for key in environ if key.startswith("FRONTIER_")]:
        value = environ[key].strip()
        if not value or "${" in value:
            del environ[key]
        elif re.fullmatch(r"\d+\.0*", value):
            environ[key] = value.split(".")[0]


def main() -> int:
    clean_environment(os.environ)
    from frontier_mcp.cli import main as frontier_mcp

    return frontier_mcp(["serve"])


if __name__ == "__main__":
    sys.exit(main())
