"""record_result: the model's verdict, checked against the measured evidence, closes an experiment."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult
from pydantic import BaseModel, Field

from .. import stats
from ..archive import ArchiveError, is_hidden, load_report
from ..protocol import CLAIM_SUITES, SUITES
from ..protocol.classes import CLASSES
from ..protocol.error_control import lord_level
from ._common import fail, hints, reply, runtime

Verdict = Literal["win", "loss", "tie", "mixed", "inconclusive", "broken"]

# How long notes and lessons may be, and how much of them the text views show (cut with an ellipsis):
# later pairings of the same fields and an experiment's relatives see a lesson's first LESSONS_SHOWN
# characters, `experiment` shows the first NOTES_SHOWN of its own notes and lessons in its text and
# all of them in its structured result.
NOTES_MAX, LESSONS_MAX = 8000, 4000
LESSONS_SHOWN, NOTES_SHOWN = 300, 500


def clip(text: str, limit: int) -> str:
    """`text` whole if it fits in `limit` characters, else its start and an ellipsis (limit characters in all)."""
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


# A claim of a win needs a suite built for claims (one with a hidden holdout), not one built for iterating.
WIN_SUITE = "standard"


class Recorded(BaseModel):
    experiment_id: int
    verdict: str
    benchmark_run_id: int | None
    evidence: dict[str, Any] = Field(description="the measured numbers the server attached")
    next_step: str


def evidence_of(rt: Any, experiment_id: int) -> tuple[dict[str, Any], int | None]:
    runs = rt.archive.benchmark_runs(experiment_id)
    build = rt.archive.last_build(experiment_id)
    evidence: dict[str, Any] = {
        "build": None if build is None else {"ok": bool(build["ok"]), "errors": build["errors"],
                                              "seconds": build["seconds"]},
        "benchmarks": [],
    }
    for run in runs:
        report = load_report(run["summary"])
        if is_hidden(run["suite"]):
            # The gate's bits only: the model must not learn the hidden suite's numbers from the evidence.
            gate = report.summary()
            evidence["benchmarks"].append({
                "benchmark_run_id": run["id"], "job_id": run["job_id"], "suite": run["suite"],
                "passed": gate.passed, "classes": gate.classes})
            continue
        evidence["benchmarks"].append({
            "benchmark_run_id": run["id"], "job_id": run["job_id"], "suite": run["suite"],
            "outcome": run["outcome"], "geomean_ratio": run["geomean_ratio"], "wins": run["wins"],
            "ties": run["ties"], "losses": run["losses"], "rediscovery_of": report.rediscovery_of,
            "pooled_p": report.pooled_p, "pairs": report.pairs,
            "classes": {name: c.model_dump(include={"outcome", "geomean_ratio", "wins", "ties", "losses",
                                                    "pooled_p", "pairs"}) for name, c in report.classes.items()},
            "per_problem": {p.problem: {"class": p.problem_class, "ratio": p.ratio, "ratio_ci": p.ratio_ci,
                                        "p_holm": p.p_holm, "outcome": p.outcome, "best_baseline": p.best_baseline,
                                        "candidate_lr": p.candidate.lr, "candidate_knobs": p.candidate.knobs,
                                        "candidate_settings": p.candidate.settings,
                                        "baseline_settings": next((b.settings for b in p.baselines
                                                                   if b.optimizer == p.best_baseline), {})}
                            for p in report.problems}})
    # The levels every number above was judged at: per benchmark (Holm, minimum effect) and lab-wide.
    evidence["levels"] = {"alpha": SUITES[WIN_SUITE].alpha, "min_effect": stats.MIN_EFFECT, "fdr_alpha": rt.settings.fdr_alpha}
    latest = runs[-1]["id"] if runs else None
    return evidence, latest


@dataclass(frozen=True)
class Claim:
    """What a win rests on once every gate passed: the p-value the lab-wide test is run on."""

    scope: str
    p_value: float
    pairs: int


def refusal(verdict: str, evidence: dict[str, Any], job_running: Callable[[str | None], bool],
            classes: Sequence[str] | None = None) -> str | Claim | None:
    """Why the numbers do not support this verdict; for a supported win, the Claim to test lab-wide."""
    benchmarks = evidence["benchmarks"]
    if verdict in ("broken", "inconclusive"):
        return None
    if classes and verdict != "win":
        return "`classes` scopes a claim of a win; leave it empty for any other verdict."
    if not benchmarks:
        return (f"there is no benchmark of this experiment, so '{verdict}' has no evidence; run benchmark, "
                "or record 'broken' (did not compile / did not run) or 'inconclusive'.")
    if verdict != "win":
        return None
    claims = [b for b in benchmarks if b["suite"] in CLAIM_SUITES]
    if classes:
        # A scoped claim rests on the latest claim-suite run that measured every class it names.
        claims = [b for b in claims if all(c in b["classes"] for c in classes)] or claims
    if not claims:
        return (f"a win must be supported by a suite built for claims ({', '.join(CLAIM_SUITES)}); run "
                f"benchmark(suite='{WIN_SUITE}') first (the quick suite is for iterating).")
    last = claims[-1]
    suite = last["suite"]
    if last["rediscovery_of"]:
        return f"the candidate reproduces {last['rediscovery_of']}: that is a rediscovery, not a win."
    if classes:
        unknown = [c for c in classes if c not in last["classes"]]
        if unknown:
            return (f"unknown or unmeasured class(es) {unknown}; the '{suite}' run measured "
                    f"{sorted(last['classes'])}.")
        lost = {c: last["classes"][c] for c in classes if last["classes"][c]["outcome"] != "win"}
        if lost:
            shown = "; ".join(f"{c}: {v['outcome']} ({v['wins']} wins, {v['ties']} ties, {v['losses']} losses, "
                              f"geomean ratio {_fmt(v['geomean_ratio'])})" for c, v in lost.items())
            return (f"the latest '{suite}' benchmark (run {last['benchmark_run_id']}) does not support a win on "
                    f"{', '.join(lost)}: {shown}. A class win needs a problem won (p_holm < alpha and the ratio's "
                    "interval below 0.95), none lost, and a geometric-mean ratio below 1.")
    elif last["outcome"] != "win":
        return (f"the latest '{suite}' benchmark (run {last['benchmark_run_id']}) measured "
                f"'{last['outcome']}' ({last['wins']} wins, {last['ties']} ties, {last['losses']} losses); an overall "
                "win needs a problem won (p_holm < alpha and the ratio's interval below 0.95) and none lost. If it "
                "won some classes, claim those: record_result(..., classes=[...]).")
    holdout = next((b for b in benchmarks if is_hidden(b["suite"]) and b["job_id"] == last["job_id"]), None)
    if holdout is None:
        if job_running(last["job_id"]):
            return (f"the hidden holdout suite is still running after the '{suite}' win; wait with "
                    f"job_status(job_id='{last['job_id']}') and record the verdict when it is done.")
        return (f"the hidden holdout gate was not consulted after the '{suite}' win (run "
                f"{last['benchmark_run_id']}: cancelled, interrupted, or its daily budget was spent); run "
                f"benchmark(suite='{suite}') again later.")
    failed = [c for c in classes or () if not holdout.get("classes", {}).get(c)]
    if (not classes and not holdout["passed"]) or failed:
        where = f" for {', '.join(failed)}" if failed else ""
        return (f"the win on '{suite}' did not pass the hidden holdout gate{where} (other functions, "
                "dimensions, datasets and instances). The candidate looks tuned to the suites it was shown; "
                "record 'mixed' or 'loss', or evolve it.")
    if classes:
        # A claim on several classes holds only if it holds on each: the largest p-value (intersection-union).
        chosen = [last["classes"][c] for c in classes]
        return Claim(scope=",".join(sorted(classes)), p_value=max(c["pooled_p"] for c in chosen),
                     pairs=min(c["pairs"] for c in chosen))
    return Claim(scope="all" if suite == WIN_SUITE else f"suite:{suite}",
                 p_value=last["pooled_p"] if last["pooled_p"] is not None else 1.0, pairs=last["pairs"])


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def register(server: MCPServer) -> None:
    @server.tool(title="Record the verdict", annotations=hints(read_only=False))
    async def record_result(
        ctx: Context,
        experiment_id: Annotated[int, Field(description="The experiment to close.", ge=1)],
        verdict: Annotated[Verdict, Field(
            description="win / loss / tie / mixed against the baselines, inconclusive, or broken (did not "
                        "compile or run).")],
        notes: Annotated[str, Field(description=(
            f"What happened: which problems, which numbers. Up to {NOTES_MAX} characters (text views show "
            f"{NOTES_SHOWN})."),
            max_length=NOTES_MAX)] = "",
        lessons: Annotated[str, Field(description=(
            "What the next conjecture should learn: shown to later pairings of these fields and to relatives. "
            f"Up to {LESSONS_MAX} characters; they show the first {LESSONS_SHOWN}, so put the point first."),
            max_length=LESSONS_MAX)] = "",
        classes: Annotated[list[Literal["smooth", "multimodal", "stochastic", "neural"]] | None, Field(
            description="Scope a 'win' to these problem classes when the candidate won them but not the whole "
                        "suite; each needs its own win and holdout gate. Empty: the whole suite.",
            max_length=4)] = None,
    ) -> Annotated[CallToolResult, Recorded]:
        """Close an experiment with your verdict, notes and lessons. The server attaches the measured evidence (builds, benchmark runs, ratios with intervals, p-values, tuned settings) and refuses a verdict the numbers do not support. A 'win' (of the whole suite, or scoped with `classes`) needs, on the latest run of a suite built for claims (standard, neural), a problem won (Holm-corrected p < alpha, the ratio's 95% interval below 0.95), none lost and a geometric-mean ratio below 1 in its scope; that suite's hidden holdout gate passed; and the pooled p-value within the lab-wide false-discovery budget (LORD++). Verdicts are final; evolve the idea as a child experiment (parent_id)."""
        rt = runtime(ctx)
        try:
            rt.archive.require_experiment(experiment_id)
        except ArchiveError as exc:
            raise fail(str(exc)) from None
        evidence, latest = evidence_of(rt, experiment_id)
        scope = sorted(set(classes or ()))
        problem = refusal(verdict, evidence, lambda job_id: job_id is not None and any(
            job.id == job_id and job.status == "running" for job in rt.jobs.jobs.values()), scope)
        if isinstance(problem, str):
            raise fail(f"verdict '{verdict}' not recorded: {problem}")
        if isinstance(problem, Claim):
            evidence["claim"] = spend_claim_test(rt, experiment_id, problem, verdict)
            evidence["claim"]["classes"] = {c: CLASSES[c] for c in scope} or "all"
        try:
            rt.archive.add_verdict(experiment_id, verdict=verdict, benchmark_run_id=latest, notes=notes,
                                   lessons=lessons, evidence=evidence)
        except ArchiveError as exc:
            raise fail(str(exc)) from None
        result = Recorded(experiment_id=experiment_id, verdict=verdict, benchmark_run_id=latest,
                          evidence=evidence,
                          next_step="call propose_pairing for a new idea, or write a child experiment "
                                    f"with parent_id={experiment_id}")
        claim = evidence.get("claim")
        if claim:
            measured_claim = (f" Claim on {claim['scope']}: pooled p {claim['p_value']:.3g} <= lab-wide level "
                              f"{claim['level']:.3g} (test {claim['test']}, FDR {claim['fdr_alpha']}).")
        else:
            measured_claim = ""
        measured = ", ".join(
            f"{b['suite']}: gate {'passed' if b['passed'] else 'not passed'}" if "passed" in b else
            f"{b['suite']}: {b['outcome']} (geomean ratio {b['geomean_ratio']:.3g})"
            for b in evidence["benchmarks"] if "passed" in b or b["geomean_ratio"] is not None) or "no benchmark"
        return reply(result, f"Recorded '{verdict}' for experiment {experiment_id}. Measured: {measured}."
                             f"{measured_claim} Next: {result.next_step}.")


def spend_claim_test(rt: Any, experiment_id: int, claim: Claim, verdict: str) -> dict[str, Any]:
    """The last gate of a win: the lab-wide online test (LORD++). A claim the seeds cannot support at
    the next level is refused without spending a test; otherwise the test is spent, found or not."""
    alpha = rt.settings.fdr_alpha
    level_of = lambda t, found: lord_level(t, found, alpha)  # noqa: E731
    upcoming = level_of(*rt.archive.next_claim_position())
    needed = stats.pairs_needed(upcoming)
    if claim.pairs < needed:
        raise fail(f"verdict '{verdict}' not recorded: the claim on {claim.scope} rests on {claim.pairs} untied "
                   f"(problem, seed) pairs, and the lab-wide level of the next claim is {upcoming:.3g} "
                   f"(FDR {alpha}, LORD++): even if every pair favoured the candidate, {claim.pairs} pairs could not "
                   f"reach it; at least {needed} are needed. Record 'inconclusive' (the seeds cannot support it).")
    tested = rt.archive.add_claim_test(experiment_id, scope=claim.scope, p_value=claim.p_value, level_of=level_of)
    tested["fdr_alpha"] = alpha
    tested["scope"] = claim.scope
    if not tested["discovery"]:
        raise fail(f"verdict '{verdict}' not recorded: the claim on {claim.scope} passed every gate of its "
                   f"benchmark, but its pooled p-value {claim.p_value:.3g} is above the lab-wide level "
                   f"{tested['level']:.3g} of test {tested['test']} (online FDR control at {alpha}, LORD++): too many "
                   "claims compete for the same error budget. The test is spent; record 'mixed' or 'tie', or "
                   "strengthen the evidence in a child experiment.")
    return tested
