"""experiment: one experiment in full: conjecture, lineage, builds, benchmarks, verdict."""

from __future__ import annotations

import difflib
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


def visible_report(run: dict[str, Any]) -> dict[str, Any]:
    """A hidden suite's report without its problems: the model sees the verdict only."""
    report = BenchmarkReport.model_validate(json.loads(run["summary"]))
    if SUITES[run["suite"]].hidden:
        return report.summary().model_dump()
    return report.model_dump(mode="json")


def compact(report: dict[str, Any]) -> dict[str, Any]:
    """The numbers a model iterates on, without per-baseline tables and curves."""
    if not isinstance(report.get("problems"), list):
        return report
    keep = ("outcome", "wins", "ties", "losses", "geomean_ratio", "geomean_speedup", "reached_target",
            "time_ratio_vs_adam", "rediscovery_of", "indistinguishable_from")
    return {**{k: report.get(k) for k in keep}, "problems": [
        {"problem": p["problem"], "ratio": p["ratio"], "p_holm": p["p_holm"], "outcome": p["outcome"],
         "candidate_loss": p["candidate"]["median_final_loss"], "candidate_lr": p["candidate"]["lr"],
         "diverged": p["candidate"]["diverged"], "best_baseline": p["best_baseline"], "speedup": p.get("speedup")}
        for p in report["problems"]]}


def source_diff(parent_source: str, source: str, max_lines: int = 150) -> str:
    lines = list(difflib.unified_diff(parent_source.splitlines(), source.splitlines(), "parent/optimizer.rs",
                                      "optimizer.rs", lineterm=""))
    if len(lines) > max_lines:
        lines = [*lines[:max_lines], f"... ({len(lines) - max_lines} more diff lines)"]
    return "\n".join(lines)


def ratios_vs(mine: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per visible suite both ran: this ratio, the parent's, and which improved."""
    def latest(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for run in runs:
            if not SUITES[run["suite"]].hidden:
                out[run["suite"]] = {p["problem"]: p["ratio"] for p in json.loads(run["summary"])["problems"]}
        return out

    ours, parents = latest(mine), latest(theirs)
    rows = []
    for suite in ours.keys() & parents.keys():
        for problem, ratio in ours[suite].items():
            if problem in parents[suite]:
                before = parents[suite][problem]
                rows.append({"suite": suite, "problem": problem, "ratio": ratio, "parent_ratio": before,
                             "change": "better" if ratio < before else "worse" if ratio > before else "same"})
    return rows


def family(rt: Any, experiment_id: int) -> dict[str, Any]:
    """Ancestors, descendants and siblings with their best ratio, verdict and lesson."""
    rows = rt.archive.query(
        """WITH RECURSIVE up(id) AS (SELECT parent_id FROM experiments WHERE id = :id
                                     UNION SELECT e.parent_id FROM experiments e JOIN up ON e.id = up.id),
                down(id) AS (SELECT id FROM experiments WHERE parent_id = :id
                             UNION SELECT e.id FROM experiments e JOIN down ON e.parent_id = down.id),
                kin(id) AS (SELECT id FROM up UNION SELECT id FROM down
                            UNION SELECT id FROM experiments WHERE parent_id =
                                  (SELECT parent_id FROM experiments WHERE id = :id))
           SELECT e.id, e.name, e.best_ratio, v.verdict, v.lessons FROM experiments e
           LEFT JOIN verdicts v ON v.experiment_id = e.id
           WHERE e.id IN (SELECT id FROM kin WHERE id IS NOT NULL) AND e.id != :id ORDER BY e.id LIMIT 200""",
        {"id": experiment_id})
    ranked = sorted((r for r in rows if r["best_ratio"] is not None), key=lambda r: r["best_ratio"])
    return {"count": len(rows), "best": ranked[0] if ranked else None, "worst": ranked[-1] if ranked else None,
            "lessons": [{"id": r["id"], "name": r["name"], "verdict": r["verdict"], "lesson": r["lessons"][:300]}
                        for r in rows if r["lessons"]][:20]}


def register(server: MCPServer) -> None:
    @server.tool(title="Experiment details", annotations=hints(read_only=True, idempotent=True))
    async def experiment(
        ctx: Context,
        experiment_id: Annotated[int, Field(description="The experiment to show.", ge=1)],
        include_source: Annotated[bool, Field(description="Include the Rust source.")] = False,
        include_reports: Annotated[bool, Field(
            description="Include the full benchmark reports (every baseline, curves) instead of compact numbers; "
                        "large. The resource frontier://experiments/{id} always has them.")] = False,
    ) -> Annotated[CallToolResult, ExperimentDetail]:
        """Everything the archive holds on one experiment: conjecture, lineage (parent chain, children), the source diff against its parent and how each problem's loss ratio changed, the last build's diagnostics, every benchmark run's per-problem numbers (full reports with curves on request), and the verdict. Read-only. The source is also at resource frontier://sources/{experiment_id}."""
        rt = runtime(ctx)
        try:
            row = rt.archive.require_experiment(experiment_id)
        except ArchiveError as exc:
            raise fail(str(exc)) from None
        build = rt.archive.last_build(experiment_id)
        if build is not None:
            build = {**build, "diagnostics": json.loads(build["diagnostics"])[:10],
                     "provenance": json.loads(build["provenance"])}
        runs = rt.archive.benchmark_runs(experiment_id)
        benchmarks = [{"benchmark_run_id": run["id"], "suite": run["suite"],
                       "report": visible_report(run) if include_reports else compact(visible_report(run))}
                      for run in runs]
        parent_diff, vs_parent = None, []
        if row["parent_id"] is not None:
            parent = rt.archive.require_experiment(row["parent_id"])
            parent_diff = source_diff(parent["source"], row["source"])
            vs_parent = ratios_vs(runs, rt.archive.benchmark_runs(row["parent_id"]))
        verdict = rt.archive.verdict(experiment_id)
        if verdict is not None:
            verdict = {k: v for k, v in verdict.items() if k != "evidence"}
        detail = ExperimentDetail(
            id=row["id"], name=row["name"], status=row["status"], field_a=row["field_a"], field_b=row["field_b"],
            pairing_id=row["pairing_id"], parent_id=row["parent_id"], lineage=rt.archive.lineage(experiment_id),
            children=rt.archive.children(experiment_id), statement=row["statement"], mechanism=row["mechanism"],
            prediction=row["prediction"], source_sha256=row["source_sha256"],
            source=row["source"] if include_source else None, last_build=build, benchmarks=benchmarks,
            parent_diff=parent_diff, vs_parent=vs_parent, verdict=verdict, relatives=family(rt, experiment_id),
            ablations=[{"suite": a["suite"], "switch": a["switch"], "mattered": bool(a["mattered"]),
                        "geomean_ratio": a["geomean_ratio"],
                        "worse_without_it": json.loads(a["summary"])["worse_without_it"]}
                       for a in rt.archive.ablations(experiment_id)])
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
        if vs_parent:
            better = sum(r["change"] == "better" for r in vs_parent)
            lines.append(f"Against parent #{row['parent_id']}: better on {better} of {len(vs_parent)} problems: "
                         + ", ".join(f"{r['problem']} {r['parent_ratio']:.3g}→{r['ratio']:.3g}" for r in vs_parent[:10]))
        if parent_diff:
            lines.append("Diff against the parent:\n" + "\n".join(parent_diff.splitlines()[:60]))
        kin = detail.relatives
        if kin["count"]:
            best, worst = kin["best"], kin["worst"]
            lines.append(f"Family: {kin['count']} relative(s)"
                         + (f"; best #{best['id']} {best['name']} (ratio {best['best_ratio']:.3g}), worst "
                            f"#{worst['id']} {worst['name']} (ratio {worst['best_ratio']:.3g})" if best else ""))
            lines += [f"  lesson of #{r['id']} {r['name']} ({r['verdict']}): {r['lesson']}" for r in kin["lessons"][:5]]
        for ablation in detail.ablations:
            lines.append(f"Ablation ({ablation['suite']}) of '{ablation['switch']}': "
                         + ("mattered (worse without it on " + ", ".join(ablation["worse_without_it"]) + ")"
                            if ablation["mattered"] else "did not matter"))
        if verdict is not None:
            lines.append(f"Verdict: {verdict['verdict']}. Notes: {verdict['notes'][:500]} Lessons: {verdict['lessons'][:500]}")
        if include_source:
            lines.append("Source:\n" + row["source"])
        return reply(detail, "\n".join(lines))
