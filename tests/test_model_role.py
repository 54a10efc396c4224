"""A model's part of the loop, played from the tool surface alone: tools/list, the tools' answers and
the resources — no prompt (hosts let only the user pick those) and no file of this repository. The
"model" takes the example from the contract resource, makes the two mistakes models make, and fixes
each from what the tools report: a compile error from `compile`'s diagnostics (line in optimizer.rs),
a panic from the benchmark report's candidate errors (message and optimizer.rs:line:col)."""

from __future__ import annotations

import json
import re

import anyio
import pytest
from mcp import Client

from .conftest import call

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.e2e]

COMPILE_MISTAKE = '        let lr_scale: f64 = "one";\n'
PANIC = '        panic!("curvature estimate went negative");\n'


def insert_after_step_signature(source: str, line: str) -> str:
    lines = source.splitlines(keepends=True)
    at = next(i for i, text in enumerate(lines) if "fn step(" in text) + 1
    return "".join([*lines[:at], line, *lines[at:]])


def drop_line(source: str, number: int) -> str:
    """What a model does with `optimizer.rs:N`: removes line N (1-based)."""
    lines = source.splitlines(keepends=True)
    return "".join(lines[:number - 1] + lines[number:])


async def wait_for(client: Client, status: dict) -> dict:
    while status["status"] == "running":
        status = await call(client, "job_status", {"job_id": status["job_id"], "wait_seconds": 60})
    return status


async def compiled_or_diagnostics(client: Client, experiment_id: int) -> dict:
    built = await call(client, "compile", {"experiment_id": experiment_id})
    while built["status"] == "preparing":
        await anyio.sleep(2)
        built = await call(client, "compile", {"experiment_id": experiment_id})
    return built


async def test_a_model_fixes_a_compile_error_and_a_panic_from_what_the_tools_report(client: Client) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    # write_crate's description sends the model to the contract; the contract carries a whole example.
    assert "frontier://contract" in (tools["write_crate"].description or "")
    contract = getattr((await client.read_resource("frontier://contract")).contents[0], "text", "")
    example = next(block for block in re.findall(r"```rust\n(.*?)```", contract, re.S) if "pub fn build" in block)

    pairing = await call(client, "propose_pairing", {"include": ["Random matrix theory"], "allow_repeat": True})
    conjecture = {"statement": "Adam with a look-ahead damped where gradient and momentum disagree.",
                  "mechanism": "Sign agreement between the gradient and the momentum scales each step.",
                  "prediction": "Ties Adam on smooth problems; never diverges where Adam does not."}

    # 1. A compile error, fixed from compile's diagnostics.
    source = insert_after_step_signature(example, COMPILE_MISTAKE)
    written = await call(client, "write_crate", {"pairing_id": pairing["pairing_id"], "name": "role_played",
                                                 "source": source, **conjecture})
    built = await compiled_or_diagnostics(client, written["experiment_id"])
    assert not built["ok"] and built["errors"] >= 1, built
    error = next(d for d in built["diagnostics"] if d["level"] == "error")
    assert error["line"] == source.splitlines().index(COMPILE_MISTAKE.rstrip("\n")) + 1, error
    source = drop_line(source, error["line"])
    rewritten = await call(client, "write_crate", {"pairing_id": pairing["pairing_id"], "name": "role_played",
                                                   "source": source, **conjecture})
    assert rewritten["experiment_id"] == written["experiment_id"] and rewritten["revised"]
    assert (await compiled_or_diagnostics(client, written["experiment_id"]))["ok"]

    # 2. A panic, found in the benchmark report (the schema resource says where errors are) and fixed.
    schema = json.loads(getattr((await client.read_resource("frontier://schema/benchmark-report")).contents[0],
                                "text", ""))
    assert "candidate_errors" in schema["$defs"]["ProblemResult"]["properties"]
    panicking = insert_after_step_signature(source, PANIC)
    child = await call(client, "write_crate", {"pairing_id": pairing["pairing_id"], "name": "role_played_2",
                                               "source": panicking, "parent_id": written["experiment_id"],
                                               **conjecture})
    assert (await compiled_or_diagnostics(client, child["experiment_id"]))["ok"]
    report = (await wait_for(client, await call(client, "benchmark", {"experiment_id": child["experiment_id"],
                                                                      "suite": "quick"})))["report"]
    errors = [e for problem in report["problems"] for e in problem["candidate_errors"]]
    assert errors and all("curvature estimate went negative" in e["message"] for e in errors), errors
    location = errors[0]["location"]
    path, line_text, _column = location.rsplit(":", 2)
    assert path.endswith("optimizer.rs"), errors[0]
    line = int(line_text)
    assert panicking.splitlines()[line - 1] == PANIC.rstrip("\n")
    assert all(problem["all_tuning_failed"] for problem in report["problems"])

    fixed = drop_line(panicking, line)
    assert fixed == source
    final = await call(client, "write_crate", {"pairing_id": pairing["pairing_id"], "name": "role_played_3",
                                               "source": fixed, "parent_id": child["experiment_id"], **conjecture})
    assert (await compiled_or_diagnostics(client, final["experiment_id"]))["ok"]
    status = await wait_for(client, await call(client, "benchmark", {"experiment_id": final["experiment_id"],
                                                                     "suite": "quick"}))
    assert status["status"] == "done", status
    assert all(not problem["candidate_errors"] for problem in status["report"]["problems"])
    # The summary every result carries states the verdict for hosts that show only text.
    assert status["summary"] and status["report"]["outcome"] in status["summary"]

    # 3. The verdict the numbers support, recorded; a win the quick suite cannot support is refused.
    outcome = status["report"]["outcome"]
    if outcome == "win":
        refused = await client.call_tool("record_result", {"experiment_id": final["experiment_id"], "verdict": "win"})
        assert refused.is_error
        outcome = "inconclusive"
    recorded = await call(client, "record_result", {
        "experiment_id": final["experiment_id"], "verdict": outcome,
        "notes": "Fixed a type error and a panic found by the tools.",
        "lessons": "Sign-agreement damping on Adam: see the quick suite's ratios."})
    assert recorded["verdict"] == outcome
    lineage = await call(client, "experiment", {"experiment_id": final["experiment_id"]})
    assert [entry["id"] for entry in lineage["lineage"]] == [
        written["experiment_id"], child["experiment_id"], final["experiment_id"]]
