"""Ship rust_scaffold/ and prompts/ inside the wheel, leaving out cargo's build output.

hatch's `force-include` copies a directory wholesale (a local `target/` included), so the files
are listed one by one here instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SHIPPED = ("rust_scaffold", "prompts")
SKIPPED_PARTS = {"target", "__pycache__", ".pytest_cache"}


class ShipScaffold(BuildHookInterface):  # type: ignore[type-arg]
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        root = Path(self.root)
        for top in SHIPPED:
            for path in sorted((root / top).rglob("*")):
                relative = path.relative_to(root)
                if path.is_file() and not SKIPPED_PARTS & set(relative.parts):
                    build_data["force_include"][str(path)] = f"frontier_mcp/{relative.as_posix()}"
