"""What a model meets on the tool surface: field names it may use, completions, and error texts that
say what to do. The server runs in memory (no cargo, no benchmark), so these are fast tests."""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, MCPError
from mcp_types import PromptReference, ResourceTemplateReference

from frontier_mcp.archive import Archive
from frontier_mcp.pairing import catalog, choose_pair, complete_field, resolve_field
from frontier_mcp.protocol.judging import _summary
from frontier_mcp.protocol.tuning import _trial_row
from frontier_mcp.scaffold import Lab
from frontier_mcp.server import build_server
from frontier_mcp.settings import load_settings
from frontier_mcp.tools.record_result import LESSONS_SHOWN, clip
from frontier_mcp.validate import normalized_hash

from .test_validate import GOOD

pytestmark = pytest.mark.anyio


def seed_experiments(home: Path, count: int) -> list[int]:
    archive = Archive(home / "state.db")
    try:
        pairing = archive.add_pairing("knot-theory", "fluid-dynamics", None)
        return [archive.add_experiment(name=f"seeded-{i}", pairing_id=pairing, parent_id=None, source=GOOD,
                                       normalized_sha256=normalized_hash(GOOD), statement="A seeded experiment.",
                                       mechanism="Plain SGD.", prediction="Nothing.")
                for i in range(count)]
    finally:
        archive.close()


@pytest.fixture
async def memory_client(tmp_path: Path) -> AsyncIterator[Client]:
    home = tmp_path / "lab"
    seed_experiments(home, 12)
    async with Client(build_server(load_settings(home=home, environ={}))) as connected:
        yield connected


def text_of(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


# -- field names ------------------------------------------------------------------------------

@pytest.mark.parametrize(("spelling", "field"), [
    ("random matrix theory", "random-matrix-theory"),
    ("Random Matrix Theory", "random-matrix-theory"),
    ("random_matrix_theory", "random-matrix-theory"),
    ("  RANDOM-matrix  theory ", "random-matrix-theory"),
    ("p adic analysis", "p-adic-analysis"),
    ("Persistent homology (topological data analysis)", "persistent-homology"),
    ("topological data analysis", "persistent-homology"),
    ("Lie groups", "lie-theory"),
])
def test_names_and_ids_resolve_in_any_spelling(spelling: str, field: str) -> None:
    assert resolve_field(spelling) == field


def test_every_catalog_id_and_name_resolves_to_itself() -> None:
    for card in catalog().values():
        assert resolve_field(card.id) == card.id
        assert resolve_field(card.name) == card.id
        assert resolve_field(card.name.upper()) == card.id


def test_a_miss_names_the_nearest_ids() -> None:
    with pytest.raises(ValueError, match="did you mean knot-theory") as caught:
        resolve_field("knot theroy")
    assert len(str(caught.value)) < 400
    with pytest.raises(ValueError, match="unknown field 'xyzzy'"):
        resolve_field("xyzzy")


def test_choose_pair_takes_names() -> None:
    pair = choose_pair({}, include=["Knot theory", "random matrix theory"], exclude=[], seed=1, allow_repeat=False)
    assert pair == ("knot-theory", "random-matrix-theory")
    with pytest.raises(ValueError, match="same field twice"):
        choose_pair({}, include=["Knot theory", "knot-theory"], exclude=[], seed=1, allow_repeat=False)
    for seed in range(20):
        assert "knot-theory" not in choose_pair({}, include=[], exclude=["KNOT THEORY"], seed=seed,
                                                allow_repeat=False)


def test_field_completion_matches_prefixes_and_words() -> None:
    assert complete_field("rand")[:2] == ["random-matrix-theory", "randomized-linear-algebra"]
    assert "random-matrix-theory" in complete_field("matrix")
    assert "knot-theory" not in complete_field("rand")
    assert sorted(complete_field("")) == sorted(catalog())


async def test_propose_pairing_accepts_names_through_the_client(memory_client: Client) -> None:
    result = await memory_client.call_tool(
        "propose_pairing", {"include": ["random matrix theory", "Knot Theory"]})
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    assert result.structured_content["field_a"]["id"] == "random-matrix-theory"
    assert result.structured_content["field_b"]["id"] == "knot-theory"


async def test_propose_pairing_miss_suggests_ids(memory_client: Client) -> None:
    result = await memory_client.call_tool("propose_pairing", {"include": ["random matrix thoery"]})
    assert result.is_error
    text = text_of(result)
    assert "did you mean random-matrix-theory" in text
    assert len(text) < 400


# -- completions --------------------------------------------------------------------------------

async def test_research_brief_completes_field_ids(memory_client: Client) -> None:
    assert memory_client.server_capabilities is not None
    assert memory_client.server_capabilities.completions is not None
    ref = PromptReference(type="ref/prompt", name="research_brief")
    done = await memory_client.complete(ref, {"name": "field_a", "value": "rand"})
    assert done.completion.values[:2] == ["random-matrix-theory", "randomized-linear-algebra"]
    everything = await memory_client.complete(ref, {"name": "field_b", "value": ""})
    assert len(everything.completion.values) <= 100
    assert everything.completion.total == len(catalog())
    assert everything.completion.has_more == (len(catalog()) > 100)
    other = await memory_client.complete(ref, {"name": "field_b", "value": "random-m"},
                                         context_arguments={"field_a": "random-matrix-theory"})
    assert other.completion.values == []


async def test_experiment_templates_complete_ids(memory_client: Client) -> None:
    ref = ResourceTemplateReference(type="ref/resource", uri="frontier://experiments/{experiment_id}")
    done = await memory_client.complete(ref, {"name": "experiment_id", "value": "1"})
    assert done.completion.values == ["12", "11", "10", "1"]
    source = ResourceTemplateReference(type="ref/resource", uri="frontier://sources/{experiment_id}")
    assert len((await memory_client.complete(source, {"name": "experiment_id", "value": ""})).completion.values) == 12
    iterate = PromptReference(type="ref/prompt", name="iterate")
    assert (await memory_client.complete(iterate, {"name": "experiment_id", "value": "#2"})).completion.values == ["2"]
    assert (await memory_client.complete(ref, {"name": "experiment_id", "value": "x"})).completion.values == []


async def test_other_arguments_complete_to_nothing(memory_client: Client) -> None:
    ref = PromptReference(type="ref/prompt", name="translate")
    assert (await memory_client.complete(ref, {"name": "conjecture", "value": "a"})).completion.values == []


# -- summaries that say when they are cut ---------------------------------------------------------

LONG_LESSON = "Damping by the spectral gap helps on the Rosenbrock valley. " + "x" * 900 + " THE-END"
LONG_NOTES = "Notes start here. " + "y" * 1500 + " NOTES-END"


@pytest.fixture
async def judged_client(tmp_path: Path) -> AsyncIterator[tuple[Client, Path]]:
    """Experiment 1 (knot-theory x fluid-dynamics) has a verdict with long notes and lessons; experiment 2 is
    its child without a verdict; job 'bench-quick-0000000001' was cancelled by an earlier server."""
    home = tmp_path / "lab"
    seed_experiments(home, 1)
    archive = Archive(home / "state.db")
    try:
        archive.add_experiment(name="child", pairing_id=1, parent_id=1, source=GOOD + "\n// child\n",
                               normalized_sha256=normalized_hash(GOOD + "\n// child\n"),
                               statement="A child.", mechanism="Plain SGD.", prediction="Nothing.")
        archive.add_verdict(1, verdict="inconclusive", benchmark_run_id=None, notes=LONG_NOTES,
                            lessons=LONG_LESSON, evidence={})
        archive.add_job("bench-quick-0000000001", "benchmark", 1, 40)
        archive.update_job("bench-quick-0000000001", status="cancelled", done=3, message="cancelled")
    finally:
        archive.close()
    async with Client(build_server(load_settings(home=home, environ={}))) as connected:
        yield connected, home


def test_clip_marks_a_cut() -> None:
    assert clip("short", 10) == "short"
    assert clip("x" * 10, 10) == "x" * 10
    cut = clip("abcdefghijkl", 10)
    assert cut == "abcdefghi…" and len(cut) == 10


async def test_propose_pairing_shows_lessons_cut_with_an_ellipsis(judged_client: tuple[Client, Path]) -> None:
    client, _ = judged_client
    result = await client.call_tool("propose_pairing", {"include": ["knot theory"], "seed": 3})
    assert not result.is_error, text_of(result)
    line = next(ln for ln in text_of(result).splitlines() if ln.startswith("- #1 "))
    assert line.endswith("…") and "THE-END" not in line
    assert LONG_LESSON[:200] in line
    assert result.structured_content is not None
    assert result.structured_content["lessons"][0]["lessons"] == LONG_LESSON


async def test_experiment_text_cuts_notes_visibly_and_keeps_them_whole(judged_client: tuple[Client, Path]) -> None:
    client, _ = judged_client
    result = await client.call_tool("experiment", {"experiment_id": 1})
    assert not result.is_error, text_of(result)
    verdict_line = next(ln for ln in text_of(result).splitlines() if ln.startswith("Verdict:"))
    assert "NOTES-END" not in verdict_line and "THE-END" not in verdict_line
    assert verdict_line.count("…") == 2
    assert result.structured_content is not None
    assert result.structured_content["verdict"]["notes"] == LONG_NOTES
    assert result.structured_content["verdict"]["lessons"] == LONG_LESSON


async def test_a_relatives_lesson_is_cut_visibly(judged_client: tuple[Client, Path]) -> None:
    client, _ = judged_client
    result = await client.call_tool("experiment", {"experiment_id": 2})
    assert not result.is_error, text_of(result)
    line = next(ln for ln in text_of(result).splitlines() if "lesson of #1" in ln)
    assert line.endswith("…")
    assert result.structured_content is not None
    shown = result.structured_content["relatives"]["lessons"][0]["lesson"]
    assert shown == clip(LONG_LESSON, LESSONS_SHOWN)


async def test_record_result_says_how_long_notes_and_lessons_may_be(memory_client: Client) -> None:
    tool = next(t for t in (await memory_client.list_tools()).tools if t.name == "record_result")
    properties = tool.input_schema["properties"]
    assert properties["lessons"]["maxLength"] == 4000
    assert "4000" in properties["lessons"]["description"] and "300" in properties["lessons"]["description"]
    assert "8000" in properties["notes"]["description"] and "500" in properties["notes"]["description"]


async def test_a_cancelled_job_says_so_once(judged_client: tuple[Client, Path]) -> None:
    client, _ = judged_client
    result = await client.call_tool("job_status", {"job_id": "bench-quick-0000000001", "wait_seconds": 0})
    text = text_of(result)
    assert "cancelled: cancelled" not in text
    assert "cancelled: stopped after 3 of 40 harness runs" in text


# -- resource errors -------------------------------------------------------------------------------

@pytest.mark.parametrize("uri", ["frontier://experiments/999", "frontier://experiments/abc",
                                 "frontier://sources/12x", "frontier://experiments/1.5"])
async def test_a_missing_experiment_resource_says_what_to_do(memory_client: Client, uri: str) -> None:
    with pytest.raises(MCPError) as caught:
        await memory_client.read_resource(uri)
    message = str(caught.value)
    assert "Error creating resource" not in message
    assert "see `history` for ids" in message


async def test_an_experiment_resource_takes_a_hash(memory_client: Client) -> None:
    read = await memory_client.read_resource("frontier://experiments/%2312")
    assert '"id": 12' in read.contents[0].text  # type: ignore[union-attr]


# -- evals_per_step ---------------------------------------------------------------------------------



def trial(record: dict[str, Any], lr: float = 0.01) -> dict[str, Any]:
    run = {"phase": "eval", "problem": "rosenbrock-10", "optimizer": "candidate", "lr": lr, "seed": 1}
    return _trial_row(run, {"final_loss": 1.0, "best_loss": 1.0, **record})


def test_a_gradient_only_optimizer_reads_one_eval_a_step_even_when_runs_diverge() -> None:
    # What frontier-bench reports (measured): 50 clean steps = 50 gradients; a run whose loss went bad
    # after step 1 = 2 gradients (step 2's was spent finding it) with steps_done 1.
    clean = trial({"steps_done": 50, "grad_evals": 50, "loss_evals": 0})
    blown = trial({"steps_done": 1, "grad_evals": 2, "loss_evals": 0, "diverged": True})
    panicked = trial({"steps_done": 7, "grad_evals": 8, "loss_evals": 0, "diverged": True,
                      "error": "panicked at optimizer.rs:3:5"})
    summary = _summary("candidate", [clean, blown, blown, panicked])
    assert summary.evals_per_step == 1.0


def test_oracle_calls_still_count() -> None:
    # One extra loss and one extra gradient a step: 3 evaluations a step.
    rows = [trial({"steps_done": 40, "grad_evals": 80, "loss_evals": 40}) for _ in range(3)]
    assert _summary("candidate", rows).evals_per_step == 3.0
    assert _summary("candidate", [trial({"steps_done": 1, "grad_evals": 2, "loss_evals": 0,
                                         "diverged": True})]).evals_per_step is None


@pytest.mark.slow
def test_the_harness_counts_a_diverged_runs_last_gradient(lab_home: Path) -> None:
    """The premise of the filter above, from the lab's harness itself: if it changes, so can the filter."""
    bench = Lab(lab_home).harness()
    assert bench is not None
    plan = ("id=a optimizer=sgd problem=rosenbrock-10 lr=0.0001 seed=1 steps=20 curve_points=5\n"
            "id=b optimizer=sgd problem=rosenbrock-10 lr=10 seed=1 steps=20 curve_points=5\n")
    done = subprocess.run([str(bench), "run"], input=plan, capture_output=True, text=True, timeout=60, check=True)
    records = {r["id"]: r for r in map(json.loads, done.stdout.splitlines())}
    assert (records["a"]["steps_done"], records["a"]["grad_evals"]) == (20, 20)
    assert records["b"]["diverged"] and records["b"]["grad_evals"] == records["b"]["steps_done"] + 1
    rows = [_trial_row({"phase": "eval", "problem": "rosenbrock-10", "optimizer": "sgd", "lr": 1.0, "seed": 1},
                       records[k]) for k in ("a", "b", "b")]
    assert _summary("sgd", rows).evals_per_step == 1.0


# -- the tool list's size ------------------------------------------------------------------------

# tools/list was 66k characters when three tools spelled the report's schema out, 34k with each tool's
# whole output schema; issue 12 asks for at most 15k: output schemas are resources now.
TOOL_LIST_BUDGET = 15_000


async def test_the_tool_list_fits_its_budget_and_every_output_schema_is_a_resource(memory_client: Client) -> None:
    import jsonschema

    listed = await memory_client.list_tools()
    size = len(json.dumps(listed.model_dump(mode="json", exclude_none=True, by_alias=True)))
    assert size <= TOOL_LIST_BUDGET, size
    for tool in listed.tools:
        assert tool.output_schema is not None, tool.name
        uri = f"frontier://schema/tools/{tool.name}"
        assert uri in tool.output_schema["description"], tool.name
        full = json.loads(getattr((await memory_client.read_resource(uri)).contents[0], "text", ""))
        assert full["type"] == "object" and full["properties"], tool.name
        assert all("title" not in prop for prop in tool.input_schema.get("properties", {}).values()), tool.name
    # The full schema describes what the tool returns: a real result validates against it, field for field.
    result = await memory_client.call_tool("history", {"limit": 3})
    full = json.loads(getattr((await memory_client.read_resource("frontier://schema/tools/history")).contents[0],
                              "text", ""))
    assert result.structured_content is not None and set(result.structured_content) <= set(full["properties"])
    jsonschema.validate(result.structured_content, full)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**result.structured_content, "rows": "not a list"}, full)
    benchmark = json.loads(getattr((await memory_client.read_resource("frontier://schema/tools/benchmark")).contents[0],
                                   "text", ""))
    assert "frontier://schema/benchmark-report" in benchmark["properties"]["report"]["description"]


async def test_an_optional_argument_is_listed_as_its_type_and_still_validated_in_full(memory_client: Client) -> None:
    listed = {t.name: t for t in (await memory_client.list_tools()).tools}
    parent = listed["write_crate"].input_schema["properties"]["parent_id"]
    assert parent["type"] == "integer" and parent["minimum"] == 1 and "anyOf" not in parent
    assert "parent_id" not in listed["write_crate"].input_schema["required"]
    # The server validates against the full schema: null is still accepted, 0 still refused.
    result = await memory_client.call_tool("history", {"limit": 2, "status": None})
    assert not result.is_error, text_of(result)
    refused = await memory_client.call_tool("history", {"limit": 0})
    assert refused.is_error


async def test_a_tool_schema_resource_for_an_unknown_tool_names_the_list(memory_client: Client) -> None:
    with pytest.raises(MCPError, match="no tool named 'nope'"):
        await memory_client.read_resource("frontier://schema/tools/nope")


def test_a_change_against_the_parent_at_rounding_level_is_the_same() -> None:
    from frontier_mcp.tools.experiment import _change

    assert _change(1.0, 1.0 + 1e-9) == "same" and _change(0.5, 0.5) == "same"
    assert _change(0.5, 1.0) == "better" and _change(2.0, 1.0) == "worse"
    assert _change(1.0, 1.0 + 1e-5) == "better"


def test_the_experiment_text_compares_with_the_parent_per_suite_and_gives_both_sides_of_an_ablation() -> None:
    from types import SimpleNamespace

    from frontier_mcp.render.text import experiment_text

    detail = SimpleNamespace(
        id=2, name="child", field_a="knot-theory", field_b="fluid-dynamics", status="recorded", parent_id=1,
        lineage=[{"id": 1, "name": "root"}, {"id": 2, "name": "child"}], statement="s", mechanism="m",
        prediction="p", last_build=None, parent_diff=None, source=None, verdict=None,
        relatives={"count": 0, "best": None, "worst": None, "lessons": []},
        vs_parent=[{"suite": "quick", "problem": "a", "ratio": 0.5, "parent_ratio": 1.0, "change": "better"},
                   {"suite": "quick", "problem": "b", "ratio": 1.0, "parent_ratio": 1.0, "change": "same"},
                   {"suite": "standard", "problem": "a", "ratio": 2.0, "parent_ratio": 1.0, "change": "worse"}],
        ablations=[{"suite": "quick", "switch": "damping", "mattered": True, "worse_without_it": ["a"],
                    "better_without_it": ["b"]},
                   {"suite": "quick", "switch": "lookahead", "mattered": False, "worse_without_it": [],
                    "better_without_it": ["c"]}])
    text = experiment_text(detail, [], include_source=False)
    assert "Against parent #1 on 'quick': better on 1, worse on 0, the same on 1 of 2 problems" in text
    assert "Against parent #1 on 'standard': better on 0, worse on 1, the same on 0 of 1 problems" in text
    assert "Ablation (quick) of 'damping': mattered (worse without it on a); better without it on b" in text
    assert "Ablation (quick) of 'lookahead': did not matter; better without it on c" in text
