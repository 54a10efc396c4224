"""build_server(settings) -> MCPServer: the lifespan owns the archive, the lab and the jobs."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import anyio
from mcp.server.mcpserver import MCPServer
from pydantic import Field

from . import __version__
from .archive import Archive
from .jobs import Jobs
from .pairing import catalog
from .prompts import load_prompt
from .runtime import Runtime
from .sandbox import Sandbox
from .scaffold import Lab
from .settings import Settings
from .tools import ALL_TOOLS
from .tools.experiment import visible_report

log = logging.getLogger(__name__)

INSTRUCTIONS = """\
frontier-mcp is an automated optimizer-research lab. The loop: propose_pairing (two rarely \
connected fields) -> conjecture a new optimizer -> write_crate (Rust, one file, behind the \
Optimizer trait) -> compile (fix diagnostics, re-write under the same name) -> benchmark (tuned \
baselines, paired seeds, statistics; poll job_status if it returns a job id) -> record_result \
(an honest verdict; the server refuses wins the numbers do not support). history, experiment and \
leaderboard read the archive. Prompts: research_brief, translate, iterate."""


def build_server(settings: Settings) -> MCPServer:
    # Static resources get no request context in the SDK, so they read the runtime from here.
    live: dict[str, Runtime] = {}

    @asynccontextmanager
    async def lifespan(_server: MCPServer) -> AsyncIterator[Runtime]:
        archive = Archive(settings.db_path)
        interrupted = archive.mark_orphaned_jobs()
        if interrupted:
            log.warning("%d job(s) of an earlier server were interrupted", interrupted)
        lab = Lab(settings.home)
        lab.ensure_dirs()
        sandbox = Sandbox(limits=settings.limits, enabled=settings.sandbox, bwrap=settings.bwrap)
        if not settings.sandbox:
            log.warning("the sandbox is OFF: model-written code runs with your privileges")
        try:
            async with anyio.create_task_group() as group:
                rt = Runtime(settings=settings, archive=archive, lab=lab, sandbox=sandbox,
                             jobs=Jobs(archive, group))
                group.start_soon(rt.prepare)
                live["runtime"] = rt
                try:
                    yield rt
                finally:
                    live.clear()
                    rt.jobs.cancel_all()
                    group.cancel_scope.cancel()
        finally:
            archive.close()

    server = MCPServer("frontier-mcp", title="frontier-mcp: automated optimizer research",
                       instructions=INSTRUCTIONS, version=__version__, lifespan=lifespan)
    for register in ALL_TOOLS:
        register(server)
    _register_resources(server, live)
    _register_prompts(server)
    return server


def _register_resources(server: MCPServer, live: dict[str, Runtime]) -> None:
    def archive() -> Archive:
        return live["runtime"].archive

    @server.resource("frontier://fields", title="Field catalog", mime_type="application/json")
    def fields() -> str:
        """Every field the pairing can draw from, with objects, theorems and optimization angle."""
        return json.dumps([card.model_dump() for card in catalog().values()], indent=1)

    @server.resource("frontier://experiments/{experiment_id}", title="Experiment",
                     mime_type="application/json")
    def experiment(experiment_id: str) -> str:
        """An experiment's archive record: conjecture, status, builds, benchmark reports, verdict."""
        row = archive().require_experiment(int(experiment_id))
        row["builds"] = archive().query("SELECT id, ok, seconds, errors, warnings, diagnostics FROM builds "
                                      "WHERE experiment_id = ? ORDER BY id", (row["id"],))
        row["benchmarks"] = [visible_report(r) for r in archive().benchmark_runs(row["id"])]
        row["verdict"] = archive().verdict(row["id"])
        return json.dumps(row, indent=1, default=str)

    @server.resource("frontier://sources/{experiment_id}", title="Optimizer source", mime_type="text/x-rust")
    def source(experiment_id: str) -> str:
        """The Rust source (optimizer.rs) of an experiment."""
        return str(archive().require_experiment(int(experiment_id))["source"])

    @server.resource("frontier://leaderboard", title="Leaderboard", mime_type="application/json")
    def leaderboard() -> str:
        """The top 100 experiments by geometric-mean loss ratio against the best baseline."""
        rows, _ = archive().leaderboard(limit=100, offset=0)
        return json.dumps(rows, indent=1)


def _register_prompts(server: MCPServer) -> None:
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
