"""The Jinja2 environment of every HTML and SVG template: autoescaping on, undefined names fail."""

from __future__ import annotations

import math
import time
from typing import Any

import jinja2


def fmt(value: Any, spec: str = ".3g") -> str:
    """A number for a page: 3 significant digits, '–' for none, ∞ for infinities."""
    if value is None:
        return "–"
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "−∞"
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def when(timestamp: float | None) -> str:
    if timestamp is None:
        return "–"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))


ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("frontier_mcp.render", "templates"),
    autoescape=True,  # everything the model wrote (conjecture, names, notes, source, diagnostics) is untrusted
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    finalize=lambda value: "" if value is None else value,  # an absent value prints as nothing
)
ENV.filters["fmt"] = fmt
ENV.filters["when"] = when
