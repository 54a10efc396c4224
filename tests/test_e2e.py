"""The loop end to end: a real MCP client, the real server over stdio, real cargo, a real state.db."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from mcp import Client

from frontier_mcp.protocol import SUITES

from .conftest import call, call_error, compiled, example_source
from .test_validate import GOOD

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.e2e]

TOOLS = {"propose_pairing", "write_crate", "compile", "benchmark", "job_status", "record_result", "history",
         "experiment", "leaderboard", "ablate"}


def counts(home: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{home / 'state.db'}?mode=ro", uri=True) as db:
        return {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("pairings", "experiments", "sources", "builds", "benchmark_runs", "verdicts")}


async def test_every_tool_carries_the_contract(client: Client) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.title and tool.description and len(tool.description) > 60, tool.name
        hints = tool.annotations
        assert hints is not None, tool.name
        for hint in ("read_only_hint", "destructive_hint", "idempotent_hint", "open_world_hint"):
            assert getattr(hints, hint) is not None, (tool.name, hint)
        assert tool.output_schema, tool.name
        for prop, schema in tool.input_schema.get("properties", {}).items():
            assert schema.get("description"), (tool.name, prop)
    assert tools["history"].annotations.read_only_hint is True
    assert tools["write_crate"].annotations.read_only_hint is False


async def test_prompts_and_resources(client: Client) -> None:
    prompts = {p.name for p in (await client.list_prompts()).prompts}
    assert {"research_brief", "translate", "iterate"} <= prompts
    brief = await client.get_prompt("research_brief", {"field_a": "knot theory", "field_b": "fluid dynamics"})
    text = brief.messages[0].content.text
    assert "knot theory" in text and "fluid dynamics" in text
    fields = await client.read_resource("frontier://fields")
    assert fields.contents[0].text.count('"optimization_angle"') >= 40


# tools/list was 66k characters when three tools spelled the report's schema out, 34k with every output
# schema whole; output schemas are resources now (tests/test_model_surface.py pins the details).
TOOL_LIST_BUDGET = 15_000


async def test_the_tool_list_stays_within_its_budget_and_the_report_schema_is_a_resource(client: Client) -> None:
    listed = (await client.list_tools()).model_dump(mode="json", exclude_none=True, by_alias=True)
    assert len(json.dumps(listed)) <= TOOL_LIST_BUDGET
    by_name = {t["name"]: t for t in listed["tools"]}
    for name in ("benchmark", "job_status", "ablate"):
        assert f"frontier://schema/tools/{name}" in json.dumps(by_name[name]["outputSchema"]), name
        full = json.loads((await client.read_resource(f"frontier://schema/tools/{name}")).contents[0].text)
        assert "frontier://schema/benchmark-report" in full["properties"]["report"]["description"], name
    schema = json.loads((await client.read_resource("frontier://schema/benchmark-report")).contents[0].text)
    problem = schema["$defs"]["ProblemResult"]["properties"]
    assert "Holm" in problem["p_holm"]["description"] and "steps_to_accuracy" in problem


async def test_good_optimizer_goes_all_the_way_to_the_archive(client: Client, lab_home: Path) -> None:
    pairing = await call(client, "propose_pairing", {"seed": 7})
    assert pairing["field_a"]["id"] != pairing["field_b"]["id"]
    written = await call(client, "write_crate", {
        "pairing_id": pairing["pairing_id"], "name": "plain_sgd_e2e", "source": GOOD,
        "statement": "Plain SGD, as a sanity check of the loop.",
        "mechanism": "x <- x - lr * g on every coordinate.",
        "prediction": "Loses to Adam on the ill-conditioned quadratic."})
    exp_id = written["experiment_id"]
    built = await call(client, "compile", {"experiment_id": exp_id})
    assert built["ok"] and built["errors"] == 0, built
    status = await call(client, "benchmark", {"experiment_id": exp_id, "suite": "quick"})
    while status["status"] == "running":
        status = await call(client, "job_status", {"job_id": status["job_id"], "wait_seconds": 60})
    assert status["status"] == "done", status
    report = status["report"]
    assert {p["problem"] for p in report["problems"]} == {"rosenbrock-10", "quadratic-ill-50",
                                                          "logreg-breast-cancer"}
    for problem in report["problems"]:
        assert problem["candidate"]["runs"] == 8
        assert problem["ratio"] > 0 and 0 <= problem["p_holm"] <= 1
        assert problem["curves"]["candidate"], problem["problem"]
        assert {b["optimizer"] for b in problem["baselines"]} >= {"sgd", "momentum", "adam"}
    # The candidate *is* SGD: the harness must say so, and it must not beat SGD anywhere.
    assert report["rediscovery_of"] == "sgd"
    assert report["wins"] == 0
    refused = await call_error(client, "record_result", {"experiment_id": exp_id, "verdict": "win"})
    assert "standard" in refused
    recorded = await call(client, "record_result", {
        "experiment_id": exp_id, "verdict": report["outcome"], "notes": "sanity run", "lessons": "SGD is SGD"})
    assert recorded["evidence"]["benchmarks"][0]["outcome"] == report["outcome"]
    page = await call(client, "history", {"limit": 50})
    row = next(r for r in page["rows"] if r["id"] == exp_id)
    assert row["status"] == "recorded" and row["verdict"] == report["outcome"]
    assert row["rediscovery_of"] == "sgd"
    with sqlite3.connect(lab_home / "state.db") as db:
        trials = db.execute("SELECT COUNT(*) FROM trials t JOIN benchmark_runs b ON b.id = t.benchmark_run_id "
                            "WHERE b.experiment_id = ?", (exp_id,)).fetchone()[0]
    # problems x ((grid + tuner trials) x tuning seeds + evaluation seeds), plus 2 runs per grid extension point
    base = 3 * ((9 + SUITES["quick"].tuner_trials) * 2 + 8)
    assert trials >= base and (trials - base) % 2 == 0, trials
    detail = await call(client, "experiment", {"experiment_id": exp_id, "include_source": True})
    assert detail["source"] == GOOD and detail["verdict"]["verdict"] == report["outcome"]


async def test_compile_error_comes_back_on_the_models_line_and_can_be_fixed(client: Client) -> None:
    source = example_source()
    broken = source + "\nfn helper() -> f64 {\n    let x: f64 = \"oops\";\n    x\n}\n"
    bug_line = broken.splitlines().index('    let x: f64 = "oops";') + 1
    pairing = await call(client, "propose_pairing", {"allow_repeat": True})
    args = {"pairing_id": pairing["pairing_id"], "name": "broken_then_fixed", "statement": "A compile test.",
            "mechanism": "The built-in example.", "prediction": "It compiles once fixed."}
    written = await call(client, "write_crate", {**args, "source": broken})
    built = await call(client, "compile", {"experiment_id": written["experiment_id"]})
    assert not built["ok"]
    first = built["diagnostics"][0]
    assert (first["level"], first["file"], first["line"], first["code"]) == ("error", "optimizer.rs", bug_line,
                                                                           "E0308")
    assert "/candidates/" not in first["rendered"]
    await call_error(client, "benchmark", {"experiment_id": written["experiment_id"]})
    fixed = await call(client, "write_crate", {**args, "source": source})
    assert fixed["revised"] and fixed["experiment_id"] == written["experiment_id"]
    built = await call(client, "compile", {"experiment_id": written["experiment_id"]})
    assert built["ok"], built


async def test_bad_names_and_huge_sources_are_refused_and_nothing_is_written(client: Client,
                                                                            lab_home: Path) -> None:
    pairing = await call(client, "propose_pairing", {"allow_repeat": True})
    before = counts(lab_home)
    crates_before = sorted(p.name for p in (lab_home / "candidates").iterdir())
    base = {"pairing_id": pairing["pairing_id"], "statement": "A refused conjecture.",
            "mechanism": "Nothing at all here.", "prediction": "It is refused."}
    for name in ("../x", "a/b", "x\x00y", "-rf", "x" * 10_000):
        message = await call_error(client, "write_crate", {**base, "name": name, "source": GOOD})
        assert "name" in message
    message = await call_error(client, "write_crate", {**base, "name": "huge", "source": "x" * 10_000_000})
    assert "source" in message
    evil = GOOD + 'const S: &str = include_str!("/etc/passwd");\n'
    message = await call_error(client, "write_crate", {**base, "name": "evil", "source": evil})
    assert "include_str" in message and "line 11" in message
    assert counts(lab_home) == before
    assert sorted(p.name for p in (lab_home / "candidates").iterdir()) == crates_before


async def test_unknown_ids_get_actionable_errors(client: Client) -> None:
    assert "history" in await call_error(client, "experiment", {"experiment_id": 999_999})
    assert "no job" in await call_error(client, "job_status", {"job_id": "bench-quick-0000000000"})
    assert "propose_pairing" in await call_error(client, "write_crate", {
        "pairing_id": 999_999, "name": "orphan", "source": GOOD, "statement": "No pairing here.",
        "mechanism": "None at all.", "prediction": "It is refused."})


async def test_a_fresh_lab_builds_its_harness_and_the_first_crate_compiles(tmp_path: Path) -> None:
    """write_crate may run before the lab's first build has produced the Cargo.lock template."""
    from .conftest import server_params

    async with Client(server_params(tmp_path / "fresh"), read_timeout_seconds=600) as fresh:
        pairing = await call(fresh, "propose_pairing", {"seed": 1})
        written = await call(fresh, "write_crate", {
            "pairing_id": pairing["pairing_id"], "name": "first", "source": GOOD,
            "statement": "The first crate of a lab.", "mechanism": "Plain SGD steps.",
            "prediction": "It compiles on the first try."})
        built = await call(fresh, "compile", {"experiment_id": written["experiment_id"]})
        while built["status"] == "preparing":
            built = await call(fresh, "compile", {"experiment_id": written["experiment_id"]})
        assert built["ok"], built
    assert (tmp_path / "fresh" / "candidates" / "first" / "Cargo.lock").exists()


async def test_benchmark_as_a_job_reports_progress_and_can_be_polled(client: Client) -> None:
    exp_id = await compiled(client, "job_polled", example_source())
    status = await call(client, "benchmark", {"experiment_id": exp_id, "wait_seconds": 0})
    assert status["status"] == "running" and status["job_id"].startswith("bench-quick-")
    assert status["report"] is None
    seen: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total))

    result = await client.call_tool("job_status", {"job_id": status["job_id"], "wait_seconds": 120},
                                    progress_callback=on_progress)
    done = result.structured_content
    assert done is not None and done["status"] == "done", done
    assert done["report"]["problems"] and done["benchmark_run_id"]
    assert seen and seen[-1][0] == seen[-1][1] == done["total"]


async def test_cancelled_benchmark_leaves_nothing_partial(client: Client, lab_home: Path) -> None:
    exp_id = await compiled(client, "job_cancelled", example_source())
    before = counts(lab_home)["benchmark_runs"]
    status = await call(client, "benchmark", {"experiment_id": exp_id, "suite": "standard", "wait_seconds": 0})
    cancelled = await call(client, "job_status", {"job_id": status["job_id"], "cancel": True})
    assert cancelled["status"] == "cancelled", cancelled
    assert counts(lab_home)["benchmark_runs"] == before
    with sqlite3.connect(lab_home / "state.db") as db:
        assert db.execute("SELECT status FROM jobs WHERE id = ?", (status["job_id"],)).fetchone()[0] == "cancelled"


async def test_a_child_experiment_shows_its_diff_and_how_each_problem_changed(client: Client) -> None:
    pairing = await call(client, "propose_pairing", {"allow_repeat": True})
    base = {"pairing_id": pairing["pairing_id"], "statement": "Lineage check, generation n.",
            "mechanism": "SGD with a scaled step.", "prediction": "The child differs from its parent."}
    ids = []
    for name, source, parent in (("lineage_parent", GOOD, None),
                                 ("lineage_child", GOOD.replace("ctx.lr * d", "0.5 * ctx.lr * d"), "parent")):
        args = {**base, "name": name, "source": source}
        if parent:
            args["parent_id"] = ids[0]
        written = await call(client, "write_crate", args)
        ids.append(written["experiment_id"])
        assert (await call(client, "compile", {"experiment_id": ids[-1]}))["ok"]
        status = await call(client, "benchmark", {"experiment_id": ids[-1], "wait_seconds": 300})
        assert status["status"] == "done", status
    detail = await call(client, "experiment", {"experiment_id": ids[1]})
    assert [a["id"] for a in detail["lineage"]] == ids
    assert "+" in detail["parent_diff"] and "0.5 * ctx.lr * d" in detail["parent_diff"]
    assert {row["problem"] for row in detail["vs_parent"]} == {"rosenbrock-10", "quadratic-ill-50",
                                                               "logreg-breast-cancer"}
    assert all(row["change"] in ("better", "worse", "same") for row in detail["vs_parent"])
    assert "curves" not in str(detail["benchmarks"])  # compact unless include_reports
    full = await call(client, "experiment", {"experiment_id": ids[1], "include_reports": True})
    assert full["benchmarks"][0]["report"]["problems"][0]["curves"]
    parent = await call(client, "experiment", {"experiment_id": ids[0]})
    assert [c["id"] for c in parent["children"]] == [ids[1]]
    assert detail["relatives"]["count"] == 1 and detail["relatives"]["best"]["id"] == ids[0]
    assert parent["relatives"]["best"]["id"] == ids[1]


async def test_the_contract_is_a_resource_and_contract_errors_point_to_it(client: Client) -> None:
    contract = await client.read_resource("frontier://contract")
    text = contract.contents[0].text  # type: ignore[union-attr]
    for needle in ("pub trait Optimizer", "budget_left", "pub fn build()", "ctx.knob", "fresh process"):
        assert needle in text, needle
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert "frontier://contract" in (tools["write_crate"].description or "")
    pairing = await call(client, "propose_pairing", {"allow_repeat": True})
    guessed = example_source().replace("ctx.lr * scale", "ctx.learning_rate() * scale")
    written = await call(client, "write_crate", {
        "pairing_id": pairing["pairing_id"], "name": "guessed_api", "source": guessed,
        "statement": "A guess at the API.", "mechanism": "Calls a method the context does not have.",
        "prediction": "The compiler says so, and points at the contract."})
    built = await call(client, "compile", {"experiment_id": written["experiment_id"]})
    assert not built["ok"] and "frontier://contract" in built["next_step"], built["next_step"]
    assert built["diagnostics"][0]["code"] == "E0599"


async def test_a_panicking_candidate_says_why_and_where_and_structured_results_carry_a_summary(
        client: Client) -> None:
    panic = 'if ctx.step == 3 { panic!("moment buffer exhausted"); }'
    panicky = example_source().replace("let t = ctx.step as f64; // 1-based",
                                       "let t = ctx.step as f64; // 1-based\n        " + panic)
    assert panicky != example_source()
    exp_id = await compiled(client, "panics_at_three", panicky)
    status = await call(client, "benchmark", {"experiment_id": exp_id, "suite": "quick"})
    while status["status"] == "running":
        status = await call(client, "job_status", {"job_id": status["job_id"], "wait_seconds": 60})
    problem = status["report"]["problems"][0]
    assert problem["all_tuning_failed"] and problem["candidate_errors"], problem["candidate_errors"]
    error = problem["candidate_errors"][0]
    assert "moment buffer exhausted" in error["message"] and error["location"].startswith("src/optimizer.rs:"), error
    assert "moment buffer exhausted" in status["summary"] and "FAILED" in status["summary"]
