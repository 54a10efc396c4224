"""The inline verdict's MCP side (MCP Apps, `io.modelcontextprotocol/ui`, as `mcp.server.apps` implements it).

`benchmark`, `job_status` and `experiment` carry `_meta.ui.resourceUri` = VERDICT_URI: a host that
supports MCP Apps renders that `ui://` document beside their result and hands it the result
(`ui/notifications/tool-result`). For a client that declared the extension (capability
`extensions["io.modelcontextprotocol/ui"]` listing `text/html;profile=mcp-app`), the result's
`_meta[VERDICT_META_KEY]` holds the verdict rendered by the server: `_meta` is for the view, never
the model's context. A client that did not declare it gets the result exactly as before.

Why the server renders and the view only places it: the HTML reports already render a run (Jinja2,
autoescaped, SVG curves), so the view reuses that renderer instead of re-implementing the report in
JavaScript; the structured result stays the model's and is not touched.

Nothing here imports the renderer (Jinja2, the templates): `render.app` is imported on the first
read of the view or the first result for an Apps client, so a server start pays for neither.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mcp.server.mcpserver import Context
from mcp_types import CallToolResult

if TYPE_CHECKING:
    from mcp.server.extension import Extension

EXTENSION_ID = "io.modelcontextprotocol/ui"
APP_MIME_TYPE = "text/html;profile=mcp-app"
VERDICT_URI = "ui://frontier-mcp/verdict"
EXPERIMENT_VERDICT_URI = "ui://frontier-mcp/verdict/{experiment_id}"
VERDICT_META_KEY = "io.github.frontier-mcp/verdict-html"
# What a tool that shows a verdict carries in tools/list (hosts without the extension ignore it).
UI_META: dict[str, Any] = {"ui": {"resourceUri": VERDICT_URI}}


def apps_extension() -> Extension:
    """The extension for `MCPServer(extensions=[...])`: advertises `io.modelcontextprotocol/ui` and serves
    the view, rendered on first read."""
    from mcp.server.apps import Apps
    from mcp.server.mcpserver.resources import FunctionResource

    def view() -> str:
        from ..render.app import document

        return document(None)

    apps = Apps()
    apps.add_resource(FunctionResource(
        uri=VERDICT_URI, name="verdict", title="Benchmark verdict", mime_type=APP_MIME_TYPE,
        description="The verdict of a benchmark (per-problem loss ratios with 95% intervals, loss curves against the "
                    "best tuned baseline, the claim it supports and its hidden holdout gate), shown by hosts that "
                    "support MCP Apps beside the result of benchmark, job_status and experiment.",
        meta={"ui": {"prefersBorder": True}}, fn=view))
    return apps


def client_supports_apps(ctx: Context) -> bool:
    from mcp.server.apps import client_supports_apps as supports

    return supports(ctx)


def with_verdict(ctx: Context, result: CallToolResult,
                 render: Callable[[], str | None] | None = None) -> CallToolResult:
    """`result` with the rendered verdict in its `_meta` if the client declared MCP Apps and there is a
    verdict to show (by default: a finished benchmark in the structured result); otherwise `result` as is."""
    if result.is_error or not client_supports_apps(ctx):
        return result
    if render is None:
        from ..render.app import fragment_for_status

        structured = result.structured_content or {}
        html = fragment_for_status(structured)
    else:
        html = render()
    if html is None:
        return result
    return result.model_copy(update={"meta": {**(result.meta or {}), VERDICT_META_KEY: html}})
