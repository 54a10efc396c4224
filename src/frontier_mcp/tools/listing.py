"""What `tools/list` shows: each tool's input schema without pydantic's generated titles, and its output
schema as an object whose fields are described in a resource (the full schema: fields, types, nested
models, descriptions).

The full output schemas made `tools/list` ~34k characters — more than the tools' descriptions and
inputs together, read by a model on every turn while it needs them only to parse a result it already
holds (the result's `summary` says it in words). The fields' names alone cost another 2.2k characters;
the input descriptions, which decide what a model sends, were worth more."""

from __future__ import annotations

from typing import Any

TOOL_SCHEMA_URI = "frontier://schema/tools/{tool}"


def tool_schema_uri(tool: str) -> str:
    return TOOL_SCHEMA_URI.format(tool=tool)


def compact_output_schema(tool: str) -> dict[str, Any]:
    """An output schema as listed: an object, and where its full schema is."""
    return {"type": "object", "description": f"Fields: {tool_schema_uri(tool)}"}


def served_output_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The full output schema as the resource serves it, with the `summary` every result carries
    (tools/_common.py's reply adds it to each tool's structured content)."""
    properties = schema.get("properties", {})
    if "summary" in properties:
        return schema
    summary = {"type": "string", "description": "the whole result as compact text (what a text-only host shows)"}
    return {**schema, "properties": {**properties, "summary": summary}}


def listed_input_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The input schema as listed: without generated titles, and an optional argument (`X | None = None`)
    shown as X — leaving it out is how a model says None. The server still validates every call against
    the full schema."""
    compact = without_titles(schema)
    for name, prop in compact.get("properties", {}).items():
        options = prop.get("anyOf", [])
        if len(options) == 2 and {"type": "null"} in options and prop.get("default", "") is None:
            (kept,) = [option for option in options if option != {"type": "null"}]
            rest = {key: value for key, value in prop.items() if key not in ("anyOf", "default")}
            compact["properties"][name] = {**kept, **rest}
    return compact


def without_titles(schema: Any) -> Any:
    """The schema without pydantic's generated `title` keys (a property's title repeats its name);
    a property that is itself named "title" is kept."""
    if isinstance(schema, list):
        return [without_titles(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: without_titles(prop) for name, prop in value.items()}
        else:
            out[key] = without_titles(value)
    return out
