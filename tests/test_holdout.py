"""The holdout gate and its budget, and how record_result reads them, on a real SQLite archive."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from frontier_mcp import holdout
from frontier_mcp.archive import Archive
from frontier_mcp.protocol import SuiteSummary, holdout_passed
from frontier_mcp.tools.record_result import Claim, refusal


def experiment(archive: Archive, pairing: int, name: str, parent: int | None = None) -> int:
    exp_id, _ = archive.add_experiment(name=name, pairing_id=pairing, parent_id=parent, source=f"// {name}",
                                       normalized_sha256=name, statement="s" * 12, mechanism="m" * 12,
                                       prediction="p" * 12)
    return exp_id


def consult(archive: Archive, exp_id: int, *, losses: int = 0, ratio: float = 0.5, job: str = "j") -> int:
    return archive.add_benchmark_run(exp_id, job_id=None, suite="holdout", harness_version="2.0.0",
                                     outcome="win" if not losses else "mixed", geomean_ratio=ratio, wins=1,
                                     ties=0, losses=losses, summary={}, provenance={}, seconds=1.0, trials=[])


def test_the_gate_needs_no_loss_and_a_geometric_mean_below_one() -> None:
    assert holdout_passed(0, 0.9)
    assert not holdout_passed(1, 0.1)
    assert not holdout_passed(0, 1.0)
    assert not holdout_passed(0, None)
    shown = SuiteSummary(suite="holdout", passed=True, classes={"smooth": True}, problems=8).model_dump()
    # A bit overall and a bit per class, and how many problems they cover: no numbers.
    assert set(shown) == {"suite", "passed", "classes", "problems"}


def test_the_budget_counts_a_lineage_and_the_lab_over_the_last_day(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "state.db")
    pairing = archive.add_pairing("p-adic-analysis", "fluid-dynamics", seed=1)
    root = experiment(archive, pairing, "root")
    child = experiment(archive, pairing, "child", parent=root)
    stranger = experiment(archive, pairing, "stranger")
    assert holdout.budget(archive, child).available
    consult(archive, root)
    consult(archive, child)
    spent = holdout.budget(archive, root)
    assert (spent.lineage_used, spent.lab_used, spent.available) == (2, 2, False)
    assert holdout.budget(archive, stranger).lineage_left == holdout.PER_LINEAGE_PER_DAY
    # A day later the window is free again.
    later = holdout.budget(archive, child, now=time.time() + holdout.DAY_SECONDS + 1)
    assert later.available and later.lab_used == 0
    # New roots each get a lineage allowance, but the lab's caps them all.
    for i in range(holdout.PER_LAB_PER_DAY):
        consult(archive, experiment(archive, pairing, f"root{i}"))
    fresh = experiment(archive, pairing, "fresh")
    assert holdout.budget(archive, fresh).lineage_left == holdout.PER_LINEAGE_PER_DAY
    assert not holdout.budget(archive, fresh).available
    archive.close()


def klass(outcome: str, p: float = 1e-6, pairs: int = 48) -> dict[str, Any]:
    return {"outcome": outcome, "geomean_ratio": 0.5 if outcome == "win" else 2.0, "wins": 1, "ties": 3,
            "losses": 0 if outcome in ("win", "tie") else 1, "pooled_p": p, "pairs": pairs}


def standard(outcome: str = "win", job: str = "job-1") -> dict[str, Any]:
    return {"benchmark_run_id": 1, "job_id": job, "suite": "standard", "outcome": outcome, "geomean_ratio": 0.5,
            "wins": 3, "ties": 7, "losses": 0, "rediscovery_of": None, "pooled_p": 1e-4, "pairs": 120,
            "classes": {"smooth": klass("win"), "stochastic": klass("mixed", p=0.3)}}


def test_a_win_is_refused_with_the_reason_for_each_failing_condition() -> None:
    never_running = lambda job_id: False  # noqa: E731
    gate = {"benchmark_run_id": 2, "job_id": "job-1", "suite": "holdout"}
    claim = refusal("win", {"benchmarks": [standard(), {**gate, "passed": True}]}, never_running)
    assert claim == Claim(scope="all", p_value=1e-4, pairs=120)
    not_passed = refusal("win", {"benchmarks": [standard(), {**gate, "passed": False}]}, never_running)
    assert not_passed and "did not pass the hidden holdout gate" in not_passed
    not_consulted = refusal("win", {"benchmarks": [standard()]}, never_running)
    assert not_consulted and "not consulted" in not_consulted
    running = refusal("win", {"benchmarks": [standard()]}, lambda job_id: job_id == "job-1")
    assert running and "still running" in running
    # A gate from another job does not confirm this win.
    other = refusal("win", {"benchmarks": [standard(), {**gate, "job_id": "job-0", "passed": True}]}, never_running)
    assert other and "not consulted" in other
    lost = refusal("win", {"benchmarks": [standard("mixed"), {**gate, "passed": True}]}, never_running)
    assert lost and "measured 'mixed'" in lost
    assert "holdout" not in (refusal("win", {"benchmarks": [standard("loss")]}, never_running) or "")


def test_a_claim_scoped_to_classes_needs_each_class_won_on_standard_and_holdout() -> None:
    never_running = lambda job_id: False  # noqa: E731
    gate = {"benchmark_run_id": 2, "job_id": "job-1", "suite": "holdout", "passed": False,
            "classes": {"smooth": True, "stochastic": False}}
    mixed = standard("mixed")
    assert "classes=[" in str(refusal("win", {"benchmarks": [mixed, gate]}, never_running))
    scoped = refusal("win", {"benchmarks": [mixed, gate]}, never_running, ["smooth"])
    assert scoped == Claim(scope="smooth", p_value=1e-6, pairs=48)
    both = refusal("win", {"benchmarks": [mixed, gate]}, never_running, ["smooth", "stochastic"])
    assert isinstance(both, str) and "does not support a win on stochastic" in both
    unknown = refusal("win", {"benchmarks": [mixed, gate]}, never_running, ["neural"])
    assert isinstance(unknown, str) and "unknown or unmeasured" in unknown
    gate_failed = {**gate, "classes": {"smooth": False}}
    refused = refusal("win", {"benchmarks": [mixed, gate_failed]}, never_running, ["smooth"])
    assert isinstance(refused, str) and "holdout gate for smooth" in refused
    assert "scopes a claim" in str(refusal("loss", {"benchmarks": [mixed]}, never_running, ["smooth"]))
