"""What the commands that build or run code need before they start: cargo and a working sandbox.
Each missing one is a single actionable line (the commands print it and exit 2), not a traceback."""

from __future__ import annotations

from ..settings import Settings

CARGO_MISSING = ("cargo was not found (looked at FRONTIER_CARGO, PATH and ~/.cargo/bin). Install Rust from "
                 "https://rustup.rs or set FRONTIER_CARGO to cargo's path.")


def missing_prerequisites(settings: Settings) -> list[str]:
    """One message per missing prerequisite, each saying how to fix it; empty when all is there."""
    from ..sandbox import Sandbox, check_sandbox

    problems = [] if settings.cargo_path() is not None else [CARGO_MISSING]
    sandbox = check_sandbox(Sandbox(limits=settings.limits, enabled=settings.sandbox, bwrap=settings.bwrap))
    if sandbox is not None:
        problems.append(sandbox)
    return problems
