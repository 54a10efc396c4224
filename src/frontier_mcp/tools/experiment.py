"""experiment: one experiment in full: conjecture, lineage, builds, benchmarks, verdict."""

from __future__ import annotations

import json
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult
from pydantic import BaseModel, Field

from ..archive import ArchiveError
from ..bench import SUITES, BenchmarkReport
from ._common import fail, hints, reply, runtime


class ExperimentDetail(BaseModel):
    id: int
    name: str
    status: str
    field_a: str
    field_b: str
    pairing_id: int
    parent_id: int | None
    lineage: list[dict[str, Any]] = Field(description="ancestors, oldest first, ending with this experiment")
    children: list[dict[str, Any]]
    statement: str
    mechanism: str
    prediction: str
    source_sha256: str
    source: str | None = Field(description="the Rust source (only with include_source=true)")
    last_build: dict[str, Any] | None
    benchmarks: list[dict[str, Any]] = Field(description="every benchmark run's report (curves included)")
    verdict: dict[str, Any] | None


def visible_report(run: dict[str, Any]) -> dict[str, Any]:
    """A hidden suite's report without its problems: the model sees the verdict only."""
    report = BenchmarkReport.model_validate(json.loads(run["summary"]))
    if SUITES[run["suite"]].hidden:
        return report.summary().model_dump()
    return report.model_dump(mode="json")


def register(server: MCPServer) -> None:
    @server.tool(title="Experiment details", annotations=hints(read_only=True, idempotent=True))
    async def experiment(
        ctx: Context,
        experiment_id: Annotated[int, Field(description="The experiment to show.", ge=1)],
        include_source: Annotated[bool, Field(description="Include the Rust source.")] = False,
    ) -> Annotated[CallToolResult, ExperimentDetail]:
        """Everything the archive holds on one experiment: conjecture, lineage (parent chain, children), the last build's diagnostics, every benchmark report with per-problem numbers and loss curves, and the verdict. Read-only. The source is also at resource frontier://sources/{experiment_id}."""
        rt = runtime(ctx)
        try:
            row = rt.archive.require_experiment(experiment_id)
        except ArchiveError as exc:
            raise fail(str(exc)) from None
        build = rt.archive.last_build(experiment_id)
        if build is not None:
            build = {**build, "diagnostics": json.loads(build["diagnostics"])[:10],
                     "provenance": json.loads(build["provenance"])}
        benchmarks = [{"benchmark_run_id": run["id"], "suite": run["suite"], "report": visible_report(run)}
                      for run in rt.archive.benchmark_runs(experiment_id)]
        verdict = rt.archive.verdict(experiment_id)
        if verdict is not None:
            verdict = {k: v for k, v in verdict.items() if k != "evidence"}
        detail = ExperimentDetail(
            id=row["id"], name=row["name"], status=row["status"], field_a=row["field_a"], field_b=row["field_b"],
            pairing_id=row["pairing_id"], parent_id=row["parent_id"], lineage=rt.archive.lineage(experiment_id),
            children=rt.archive.children(experiment_id), statement=row["statement"], mechanism=row["mechanism"],
            prediction=row["prediction"], source_sha256=row["source_sha256"],
            source=row["source"] if include_source else None, last_build=build, benchmarks=benchmarks,
            verdict=verdict)
        chain = " → ".join(f"#{a['id']} {a['name']}" for a in detail.lineage)
        lines = [f"Experiment #{detail.id} {detail.name} [{detail.field_a} × {detail.field_b}] status={detail.status}",
                 f"Lineage: {chain}", f"Statement: {detail.statement}", f"Mechanism: {detail.mechanism[:600]}",
                 f"Prediction: {detail.prediction}"]
        if build is not None:
            lines.append(f"Last build: {'ok' if build['ok'] else 'failed'} ({build['errors']} errors, "
                         f"{build['warnings']} warnings, {build['seconds']:.2f} s)")
        for bench in benchmarks:
            rep = bench["report"]
            lines.append(f"Benchmark run {bench['benchmark_run_id']} ({bench['suite']}): outcome={rep['outcome']} "
                         f"geomean ratio={rep['geomean_ratio']}")
            if isinstance(rep["problems"], list):
                lines += [f"  {p['problem']}: ratio {p['ratio']:.3g} vs {p['best_baseline']}, "
                          f"p_holm {p['p_holm']:.3g}, {p['outcome']}" for p in rep["problems"]]
        if verdict is not None:
            lines.append(f"Verdict: {verdict['verdict']}. Notes: {verdict['notes'][:500]} Lessons: {verdict['lessons'][:500]}")
        if include_source:
            lines.append("Source:\n" + row["source"])
        return reply(detail, "\n".join(lines))
