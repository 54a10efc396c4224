"""experiment: one experiment in full: conjecture, lineage, builds, benchmarks, verdict."""

from __future__ import annotations

import difflib
import json
import math
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult
from pydantic import BaseModel, Field

from .. import stats
from ..archive import Archive, is_hidden, load_report, visible_report
from ..render.text import compact, experiment_text
from ._common import hints, reply, runtime
from ._errors import archive_errors
from .record_result import LESSONS_SHOWN, NOTES_SHOWN, clip
from .ui import UI_META, with_verdict


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
    benchmarks: list[dict[str, Any]] = Field(
        description="every benchmark run: compact per-problem numbers, or the full reports with include_reports")
    parent_diff: str | None = Field(description="unified diff of the parent's source to this one (cut at 150 lines)")
    vs_parent: list[dict[str, Any]] = Field(
        description="per suite and problem: this experiment's loss ratio vs the parent's (latest runs of each)")
    relatives: dict[str, Any] = Field(
        description="the family (ancestors, descendants, siblings): its best and worst by loss ratio, and every "
                    "relative's lesson, for deciding what to evolve next")
    ablations: list[dict[str, Any]] = Field(
        description="ablations: per switched-off mechanism, whether it mattered and where")
    verdict: dict[str, Any] | None


def source_diff(parent_source: str, source: str, max_lines: int = 150) -> str:
    lines = list(difflib.unified_diff(parent_source.splitlines(), source.splitlines(), "parent/optimizer.rs",
                                      "optimizer.rs", lineterm=""))
    if len(lines) > max_lines:
        lines = [*lines[:max_lines], f"... ({len(lines) - max_lines} more diff lines)"]
    return "\n".join(lines)


def _change(ratio: float, before: float) -> str:
    """better / worse / same, with differences at rounding level (a re-typed formula) the same."""
    if abs(math.log(stats.floored(ratio)) - math.log(stats.floored(before))) <= stats.TIE_LOG_TOLERANCE:
        return "same"
    return "better" if ratio < before else "worse"


def ratios_vs(mine: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per visible suite both ran: this ratio, the parent's, and which improved."""
    def latest(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for run in runs:
            if not is_hidden(run["suite"]):
                out[run["suite"]] = {p.problem: p.ratio for p in load_report(run["summary"]).problems}
        return out

    ours, parents = latest(mine), latest(theirs)
    rows = []
    for suite in ours.keys() & parents.keys():
        for problem, ratio in ours[suite].items():
            if problem in parents[suite]:
                before = parents[suite][problem]
                rows.append({"suite": suite, "problem": problem, "ratio": ratio, "parent_ratio": before,
                             "change": _change(ratio, before)})
    return rows


def register(server: MCPServer) -> None:
    @server.tool(title="Experiment details", annotations=hints(read_only=True, idempotent=True), meta=UI_META)
    async def experiment(
        ctx: Context,
        experiment_id: Annotated[int, Field(description="The experiment to show.", ge=1)],
        include_source: Annotated[bool, Field(description="Include the Rust source.")] = False,
        include_reports: Annotated[bool, Field(
            description="Include the full benchmark reports (every baseline, curves) instead of compact numbers; "
                        "large. The resource frontier://experiments/{id} always has them.")] = False,
    ) -> Annotated[CallToolResult, ExperimentDetail]:
        """Everything the archive holds on one experiment: conjecture, lineage (parents, children), the source diff against its parent and how each problem's ratio changed, the last build's diagnostics, every benchmark run's per-problem numbers (full reports on request), and the verdict. Read-only."""
        rt = runtime(ctx)
        with archive_errors():
            result = _experiment(rt.archive, experiment_id, include_source, include_reports)
            return with_verdict(ctx, result, lambda: _verdict_view(rt.archive, experiment_id))


def _verdict_view(archive: Archive, experiment_id: int) -> str | None:
    from ..render.app import fragment_for_experiment

    return fragment_for_experiment(archive, experiment_id)


def _experiment(archive: Archive, experiment_id: int, include_source: bool, include_reports: bool) -> CallToolResult:
    row = archive.require_experiment(experiment_id)
    build = archive.last_build(experiment_id)
    if build is not None:
        build = {**build, "diagnostics": json.loads(build["diagnostics"])[:10],
                 "provenance": json.loads(build["provenance"])}
    runs = archive.benchmark_runs(experiment_id)
    reports = [(run["id"], run["suite"], visible_report(run)) for run in runs]
    benchmarks = [{"benchmark_run_id": run_id, "suite": suite,
                   "report": report.model_dump(mode="json") if include_reports else compact(report)}
                  for run_id, suite, report in reports]
    parent_diff, vs_parent = None, []
    if row["parent_id"] is not None:
        parent = archive.require_experiment(row["parent_id"])
        parent_diff = source_diff(parent["source"], row["source"])
        vs_parent = ratios_vs(runs, archive.benchmark_runs(row["parent_id"]))
    verdict = archive.verdict(experiment_id)
    if verdict is not None:
        verdict = {k: v for k, v in verdict.items() if k != "evidence"}
    relatives = archive.relatives(experiment_id)
    relatives["lessons"] = [{**r, "lesson": shown_lesson(archive, r["id"], r["lesson"])} for r in relatives["lessons"]]
    detail = ExperimentDetail(
        id=row["id"], name=row["name"], status=row["status"], field_a=row["field_a"], field_b=row["field_b"],
        pairing_id=row["pairing_id"], parent_id=row["parent_id"], lineage=archive.lineage(experiment_id),
        children=archive.children(experiment_id), statement=row["statement"], mechanism=row["mechanism"],
        prediction=row["prediction"], source_sha256=row["source_sha256"],
        source=row["source"] if include_source else None, last_build=build, benchmarks=benchmarks,
        parent_diff=parent_diff, vs_parent=vs_parent, verdict=verdict, relatives=dict(relatives),
        ablations=[{"suite": a["suite"], "switch": a["switch"], "mattered": bool(a["mattered"]),
                    "geomean_ratio": a["geomean_ratio"],
                    "worse_without_it": json.loads(a["summary"])["worse_without_it"]}
                   for a in archive.ablations(experiment_id)])
    # The text shows the start of the notes and lessons, cut visibly; the structured result has them whole.
    shown = detail if verdict is None else detail.model_copy(update={"verdict": {
        **verdict, "notes": clip(verdict["notes"], NOTES_SHOWN), "lessons": clip(verdict["lessons"], NOTES_SHOWN)}})
    return reply(detail, experiment_text(shown, reports, include_source))


def shown_lesson(archive: Archive, experiment_id: int, lesson: str) -> str:
    """A relative's lesson as shown: the archive's listing cuts it at LESSONS_SHOWN characters without a
    mark, so a lesson that long is read whole and cut with an ellipsis if it was longer."""
    if len(lesson) < LESSONS_SHOWN:
        return lesson
    full = archive.verdict(experiment_id)
    return clip(full["lessons"] if full else lesson, LESSONS_SHOWN)
