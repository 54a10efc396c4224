"""build_server(settings) -> MCPServer[Runtime]: the lifespan holds one Runtime (archive, lab, jobs).

A state.db that cannot be used does not stop the server: the line that says what is wrong goes to
stderr, and every tool and resource that needs the archive answers with it, so the client sees the
reason instead of a closed connection."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from mcp_types import Completion, CompletionArgument, CompletionContext, PromptReference, ResourceTemplateReference
from mcp_types import Tool as MCPTool
from pydantic import Field

from . import __version__
from .archive import Archive, ArchiveError, visible_report
from .pairing import catalog, complete_field
from .prompts import contract_text, load_prompt
from .runtime import Runtime
from .settings import Settings
from .tools import ALL_TOOLS
from .tools.benchmark import REPORT_SCHEMA_URI, report_schema
from .tools.listing import TOOL_SCHEMA_URI, compact_output_schema, listed_input_schema, served_output_schema
from .tools.ui import APP_MIME_TYPE, EXPERIMENT_VERDICT_URI, apps_extension

log = logging.getLogger(__name__)

INSTRUCTIONS = """\
frontier-mcp is an automated optimizer-research lab. The loop: propose_pairing (two rarely \
connected fields) -> conjecture a new optimizer -> write_crate (Rust, one file, behind the \
Optimizer trait) -> compile (fix diagnostics, re-write under the same name) -> benchmark (tuned \
baselines, paired seeds, statistics; poll job_status if it returns a job id) -> record_result \
(an honest verdict; the server refuses wins the numbers do not support). history, experiment and \
leaderboard read the archive. Prompts: research_brief, translate, iterate."""


class FrontierServer(MCPServer[Runtime]):
    """MCPServer whose tools/list is compact (tools/listing.py): full output schemas are resources."""

    async def list_tools(self) -> list[MCPTool]:
        return [tool.model_copy(update={
            "input_schema": listed_input_schema(tool.input_schema),
            "output_schema": tool.output_schema and compact_output_schema(tool.name)})
            for tool in await super().list_tools()]

    async def full_output_schema(self, name: str) -> dict | None:
        schema = next((t.output_schema for t in await super().list_tools() if t.name == name), None)
        return schema and served_output_schema(schema)


def build_server(settings: Settings) -> MCPServer[Runtime]:
    # Static resources get no request context in the SDK, so they read the runtime from here.
    live: dict[str, Runtime] = {}

    @asynccontextmanager
    async def lifespan(_server: MCPServer[Runtime]) -> AsyncIterator[Runtime]:
        async with Runtime.open(settings, tolerate_unusable_archive=True) as rt:
            interrupted = rt.archive.mark_orphaned_jobs()
            if interrupted:
                log.warning("%d job(s) of an earlier server were interrupted", interrupted)
            if not settings.sandbox:
                log.warning("the sandbox is OFF: model-written code runs with your privileges")
            rt.prepare_in_background()
            rt.warm_statistics_in_background()
            live["runtime"] = rt
            try:
                yield rt
            finally:
                live.clear()

    server = FrontierServer(
        "frontier-mcp", title="frontier-mcp: automated optimizer research", instructions=INSTRUCTIONS,
        version=__version__, lifespan=lifespan, extensions=[apps_extension()])
    for register in ALL_TOOLS:
        register(server)
    _register_resources(server, live)
    _register_prompts(server)
    _register_completions(server, live)
    return server


EXPERIMENT_TEMPLATES = ("frontier://experiments/{experiment_id}", "frontier://sources/{experiment_id}",
                        EXPERIMENT_VERDICT_URI)
MAX_COMPLETIONS = 100  # the most values a completion may carry (MCP spec)


def experiment_id_of(text: str) -> int:
    """The experiment id in a resource URI ("12" or "#12"); a ResourceError that says what an id is otherwise."""
    digits = text.strip().removeprefix("#")
    if not digits.isdigit():
        raise ResourceError(f"{text!r} is not an experiment id: ids are whole numbers such as 12; "
                            "see `history` for ids.")
    return int(digits)


def _register_completions(server: MCPServer[Runtime], live: dict[str, Runtime]) -> None:
    """Completions: field ids for research_brief's field_a/field_b, experiment ids for the experiment
    and source templates and the iterate prompt."""

    def experiment_ids(prefix: str) -> list[str]:
        runtime = live.get("runtime")
        digits = prefix.strip().removeprefix("#")
        if runtime is None or (digits and not digits.isdigit()):
            return []
        try:
            ids = runtime.archive.experiment_ids_starting_with(digits, MAX_COMPLETIONS + 1)
        except ArchiveError:
            return []
        return [str(i) for i in ids]

    @server.completion()
    async def complete(ref: PromptReference | ResourceTemplateReference, argument: CompletionArgument,
                       context: CompletionContext | None) -> Completion | None:
        target = ref.name if isinstance(ref, PromptReference) else ref.uri
        if target == "research_brief" and argument.name in ("field_a", "field_b"):
            other = "field_b" if argument.name == "field_a" else "field_a"
            chosen = (context.arguments or {}).get(other) if context else None
            values = [v for v in complete_field(argument.value, limit=len(catalog())) if v != chosen]
        elif target in (*EXPERIMENT_TEMPLATES, "iterate") and argument.name == "experiment_id":
            values = experiment_ids(argument.value)
        else:
            return None
        more = len(values) > MAX_COMPLETIONS
        return Completion(values=values[:MAX_COMPLETIONS], total=None if more else len(values), has_more=more)


def _register_resources(server: FrontierServer, live: dict[str, Runtime]) -> None:
    def archive() -> Archive:
        return live["runtime"].archive

    def read(answer: Callable[[], str]) -> str:
        try:
            return answer()
        except ArchiveError as exc:
            raise ResourceError(str(exc)) from None

    @server.resource("frontier://contract", title="The optimizer contract", mime_type="text/markdown")
    def contract() -> str:
        """What write_crate's Rust must be: the Optimizer trait, Tensor, StepContext (oracle calls and
        their budget), knobs and switches, the rules the source checks enforce, and a complete example."""
        return contract_text()

    @server.resource(REPORT_SCHEMA_URI, title="Benchmark report schema", mime_type="application/schema+json")
    def report_schema_resource() -> str:
        """Every field of a benchmark report (benchmark, job_status and ablate return one), described."""
        return json.dumps(report_schema(), indent=1)

    @server.resource(TOOL_SCHEMA_URI, title="A tool's output schema", mime_type="application/schema+json")
    async def tool_output_schema(tool: str) -> str:
        """The full JSON schema of a tool's structured result: every field and nested model, described."""
        schema = await server.full_output_schema(tool)
        if schema is None:
            raise ResourceError(f"no tool named {tool!r} has a structured result; tools/list names them")
        return json.dumps(schema, indent=1)

    @server.resource("frontier://fields", title="Field catalog", mime_type="application/json")
    def fields() -> str:
        """Every field the pairing can draw from, with objects, theorems and optimization angle."""
        return json.dumps([card.model_dump() for card in catalog().values()], indent=1)

    @server.resource("frontier://experiments/{experiment_id}", title="Experiment",
                     mime_type="application/json")
    def experiment(experiment_id: str) -> str:
        """An experiment's archive record: conjecture, status, builds, benchmark reports, verdict."""
        def answer() -> str:
            row = archive().require_experiment(experiment_id_of(experiment_id))
            row["builds"] = [{key: build[key] for key in ("id", "ok", "seconds", "errors", "warnings", "diagnostics")}
                             for build in archive().builds(row["id"])]
            row["benchmarks"] = [visible_report(r).model_dump(mode="json") for r in archive().benchmark_runs(row["id"])]
            row["verdict"] = archive().verdict(row["id"])
            return json.dumps(row, indent=1, default=str)
        return read(answer)

    @server.resource("frontier://sources/{experiment_id}", title="Optimizer source", mime_type="text/x-rust")
    def source(experiment_id: str) -> str:
        """The Rust source (optimizer.rs) of an experiment."""
        return read(lambda: str(archive().require_experiment(experiment_id_of(experiment_id))["source"]))

    @server.resource(EXPERIMENT_VERDICT_URI, title="Inline verdict of an experiment", mime_type=APP_MIME_TYPE)
    def experiment_verdict(experiment_id: str) -> str:
        """The MCP Apps view of an experiment's latest visible benchmark with its recorded verdict already in it
        (the view benchmark, job_status and experiment link, rendered for one experiment: no host needed)."""
        from .render.app import experiment_document

        return read(lambda: experiment_document(archive(), experiment_id_of(experiment_id)))

    @server.resource("frontier://leaderboard", title="Leaderboard", mime_type="application/json")
    def leaderboard() -> str:
        """The top 100 experiments by geometric-mean loss ratio against the best baseline."""
        return read(lambda: json.dumps(archive().leaderboard(limit=100, offset=0)[0], indent=1))


def _register_prompts(server: MCPServer[Runtime]) -> None:
    brief, translate_, iterate_ = (load_prompt(n) for n in ("research_brief", "translate", "iterate"))

    @server.prompt(name="research_brief", title=brief.title, description=brief.description)
    def research_brief(
        field_a: Annotated[str, Field(description="First field (a name or catalog id)")],
        field_b: Annotated[str, Field(description="Second field (a name or catalog id)")],
    ) -> str:
        return brief.render(field_a=field_a, field_b=field_b)

    @server.prompt(name="translate", title=translate_.title, description=translate_.description)
    def translate(conjecture: Annotated[str, Field(description="The conjecture to implement")]) -> str:
        return translate_.render(conjecture=conjecture)

    @server.prompt(name="iterate", title=iterate_.title, description=iterate_.description)
    def iterate(experiment_id: Annotated[str, Field(description="The experiment to learn from")]) -> str:
        return iterate_.render(experiment_id=experiment_id)
