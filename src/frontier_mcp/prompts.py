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


@functools.cache
def contract_text() -> str:
    """The optimizer contract and its rules (the `translate` prompt's first two sections), as a
    resource a model can read before it writes any Rust."""
    body = load_prompt("translate").body
    start, end = body.index("## The contract"), body.index("## A complete example")
    example = (shipped_dir("rust_scaffold") / "template" / "optimizer.rs").read_text()
    return ("# The optimizer contract\n\n" + body[start:end].replace("{{", "{").replace("}}", "}").strip()
            + "\n\n## A complete example (`optimizer.rs`)\n\n```rust\n" + example.strip() + "\n```\n")
