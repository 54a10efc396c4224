"""The two consoles of the human-facing commands: results to stdout, everything else to stderr."""

from rich.console import Console

out = Console()
err = Console(stderr=True)
