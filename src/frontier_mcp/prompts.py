"""MCP prompts are markdown files in prompts/: a `# Title` line, a description line, then the body."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from .scaffold import shipped_dir


@dataclass(frozen=True)
class PromptFile:
    name: str
    title: str
    description: str
    body: str

    def render(self, **values: str) -> str:
        return self.body.format(**values)


@functools.cache
def load_prompt(name: str) -> PromptFile:
    text = (shipped_dir("prompts") / f"{name}.md").read_text()
    lines = text.splitlines()
    title = lines[0].lstrip("# ").strip()
    rest = "\n".join(lines[1:]).strip()
    description, _, body = rest.partition("\n\n")
    return PromptFile(name=name, title=title, description=description.strip(), body=body.strip())
