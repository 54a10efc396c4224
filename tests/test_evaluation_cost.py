"""No wasted evaluation (issue 16): tuning runs ask for the fewest curve points, plans are split over
processes by cost, the harness's `list` is read once per binary, and independent steps of a benchmark
overlap, each without changing a single number of a verdict.

The fast tests pin the pure parts (the split, the error a benchmark raises); the slow ones run the
lab's real harness in the real sandbox on the example candidate."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pytest

from frontier_mcp.protocol import CANDIDATE, SUITES, Harness, HarnessError, run_optimizer, tuning
from frontier_mcp.protocol import harness as harness_module
from frontier_mcp.protocol.tasks import task_group
from frontier_mcp.sandbox import Sandbox
from frontier_mcp.scaffold import WARMUP_NAME, Lab
from frontier_mcp.settings import load_settings

pytestmark = pytest.mark.anyio

# What a run measures about time (differs between any two runs) and nothing else.
TIME_FIELDS = {"ns_per_step", "optimizer_ns", "first_step_ns", "oracle_ns", "wall_ns"}


def _run(problem: str, run_id: int, optimizer: str = "candidate", steps: int = 500) -> dict[str, Any]:
    return {"id": run_id, "optimizer": optimizer, "problem": problem, "lr": 0.01, "seed": run_id, "steps": steps}


@pytest.fixture
def learnt_costs() -> Any:
    saved = dict(harness_module._STEP_NS)
    harness_module._STEP_NS.clear()
    yield harness_module._STEP_NS
    harness_module._STEP_NS.clear()
    harness_module._STEP_NS.update(saved)


def test_a_plan_is_split_by_learnt_cost_and_each_chunk_keeps_plan_order(learnt_costs: dict[Any, float]) -> None:
    # Ten cheap runs and three 50x dearer ones, the dear ones last (as mlp-mnist1d is in `standard`).
    runs = [_run("rosenbrock-10", i) for i in range(10)] + [_run("mlp-mnist1d", 10 + i) for i in range(3)]
    by_count = harness_module.balanced_chunks(runs, 2)
    assert sorted(r["id"] for chunk in by_count for r in chunk) == list(range(13))
    # Nothing learnt yet: the cost is the steps, so the count splits evenly.
    assert sorted(len(c) for c in by_count) == [6, 7]
    for record in ({"problem": "rosenbrock-10", "optimizer": "candidate", "wall_ns": 10_000_000, "steps_done": 1000},
                   {"problem": "mlp-mnist1d", "optimizer": "candidate", "wall_ns": 250_000_000, "steps_done": 500}):
        harness_module.learn_cost(record)
    chunks = harness_module.balanced_chunks(runs, 2)
    assert sorted(r["id"] for chunk in chunks for r in chunk) == list(range(13))
    for chunk in chunks:
        assert [r["id"] for r in chunk] == sorted(r["id"] for r in chunk)
    loads = sorted(sum(harness_module.estimated_cost(r) for r in chunk) for chunk in chunks)
    # 3 x 250 ms and 10 x 5 ms: the best split is 2 dear runs against 1 dear and the 10 cheap ones.
    assert loads == [pytest.approx(0.3e9), pytest.approx(0.5e9)]
    # Split by count (every other run), one process got two dear runs and five cheap ones: 0.525 s.
    by_count_loads = sorted(sum(harness_module.estimated_cost(r) for r in c) for c in by_count)
    assert max(loads) < max(by_count_loads)


def test_one_process_keeps_the_plan_exactly(learnt_costs: dict[Any, float]) -> None:
    # The timing pairs alternate candidate and Adam in one process: their order is the measurement.
    harness_module.learn_cost({"problem": "b", "optimizer": "served:adam", "wall_ns": 9e9, "steps_done": 1})
    runs = [_run("a", 0), _run("b", 1, "served:adam"), _run("a", 2), _run("b", 3, "served:adam")]
    assert harness_module.balanced_chunks(runs, 1) == [runs]


def test_cost_learning_ignores_records_without_a_time_or_steps(learnt_costs: dict[Any, float]) -> None:
    for record in ({"problem": "a", "optimizer": "adam", "wall_ns": 5, "steps_done": 0},
                   {"problem": "a", "optimizer": "adam", "steps_done": 3},
                   {"id": 1, "error": "bad plan line: x"},
                   {"problem": "a", "optimizer": "adam", "wall_ns": "5", "steps_done": 3}):
        harness_module.learn_cost(record)
    assert learnt_costs == {}
    harness_module.learn_cost({"problem": "a", "optimizer": "adam", "wall_ns": 300, "steps_done": 3})
    harness_module.learn_cost({"problem": "a", "optimizer": "candidate", "wall_ns": 3000, "steps_done": 3})
    assert learnt_costs == {("a", False): 100.0, ("a", True): 1000.0}


async def test_a_failure_inside_the_overlapping_steps_is_raised_as_itself() -> None:
    """The tools catch HarnessError from `benchmark`; a task group would wrap it in an ExceptionGroup."""
    async def sleeper() -> None:
        await anyio.sleep(10)

    with pytest.raises(HarnessError, match="the candidate's knobs"):
        async with task_group() as group:
            group.start_soon(sleeper)
            raise HarnessError("the candidate's knobs could not be read")

    async def failing() -> None:
        raise HarnessError("the harness did not start")

    with pytest.raises(HarnessError, match="did not start"):
        async with task_group() as group:
            group.start_soon(failing)
            await anyio.sleep(10)


# ------------------------------------------------------------------------------ the real harness

def _harness(home: Path, workers: int = 2, sandbox: Sandbox | None = None) -> Harness:
    settings = load_settings(home, environ={"FRONTIER_WORKERS": str(workers)})
    lab = Lab(home)
    binary = lab.harness()
    assert binary is not None
    return Harness(binary=binary, candidate=lab.binary(WARMUP_NAME), secret=lab.secret(),
                   sandbox=sandbox or Sandbox(limits=settings.limits, enabled=settings.sandbox, bwrap=settings.bwrap),
                   limits=settings.limits, workers=workers)


def _numbers(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in TIME_FIELDS}


async def test_how_a_plan_is_split_changes_no_number(lab_home: Path, learnt_costs: dict[Any, float]) -> None:
    suite = SUITES["standard"]
    runs = [{**_run(spec.name, i * 3 + k, steps=spec.steps), "lr": lr, "seed": k}
            for i, (spec, lr) in enumerate(zip(suite.problems, (1e-3, 1e-2, 0.1, 1.0, 3.16) * 2, strict=True))
            for k in range(3)]
    # SGD at rates where it diverges on the ill-conditioned problems, beside the candidate.
    runs += [{**_run(name, len(runs) + i, "sgd", steps=500), "lr": lr}
             for i, (name, lr) in enumerate((("rosenbrock-10", 10.0), ("quadratic-ill-50-k1e5", 1.0),
                                             ("mlp-mnist1d", 0.1), ("softmax-digits", 100.0)))]
    one = await _harness(lab_home, 1).run(runs, 2)
    learnt = dict(learnt_costs)
    assert learnt, "the harness reports wall_ns per run"
    two = await _harness(lab_home, 2).run(runs, 2)
    # Another split altogether: costs reversed, three processes.
    learnt_costs.update({key: 1e9 / value for key, value in learnt.items()})
    three = await _harness(lab_home).run(runs, 2, processes=3)
    assert set(one) == set(two) == set(three) == {r["id"] for r in runs}
    assert any(r["diverged"] for r in one.values()) and not all(r["diverged"] for r in one.values())
    for run_id in one:
        assert _numbers(one[run_id]) == _numbers(two[run_id]) == _numbers(three[run_id])


async def test_tuning_with_two_curve_points_reads_the_same_as_with_forty(lab_home: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Tuning reads only final losses and divergence: the run's per-step loss check catches a
    divergence between curve points, so asking tuning runs for the start and the end only changes
    nothing the tuning reads (chosen settings, final losses, divergences, every evaluation run). A
    diverged tuning run may count one gradient more (the step whose loss showed the divergence that
    a full loss at a curve point showed one step earlier); nothing reads a diverged run's count."""
    quick = SUITES["quick"]
    # SGD at the grid's top rates diverges on rosenbrock and logreg; the candidate is the example.
    suite = replace(quick, tuner_trials=2)
    harness = _harness(lab_home)
    assert tuning.TUNING_CURVE_POINTS == 2
    outcomes: dict[int, list[list[dict[str, Any]]]] = {}
    for points in (2, 40):
        monkeypatch.setattr(tuning, "TUNING_CURVE_POINTS", points)
        outcomes[points] = [await run_optimizer(harness, CANDIDATE, suite, lambda _r: None),
                            await run_optimizer(harness, "sgd", suite, lambda _r: None, space=[])]
    diverged = 0
    for two, forty in zip(outcomes[2], outcomes[40], strict=True):
        assert len(two) == len(forty)
        for a, b in zip(two, forty, strict=True):
            if a["phase"] == "tune":
                # Tuning computes no accuracy (full passes over the data that nothing reads).
                assert a["test_accuracy"] is None and a["accuracy_curve"] is None, a
                # Made of the curve's points: the curve itself, its best point and the accuracy curve.
                assert len(a["curve"]) <= 2 and len(b["curve"]) >= len(a["curve"])
                made_of_points = {"curve", "best_loss", "accuracy_curve"}
                if a["diverged"]:
                    # Caught by a full loss at one of the 40 points, or by the next step's own loss
                    # with two: the same step (steps_done), one gradient more spent on the way.
                    diverged += 1
                    assert 0 <= a["grad_evals"] - b["grad_evals"] <= 1, (a, b)
                    made_of_points |= {"grad_evals", "oracle_evals"}
                a, b = ({k: v for k, v in row.items() if k not in made_of_points} for row in (a, b))
            assert _numbers(a) == _numbers(b)
    assert diverged, "the grid's top rates must diverge somewhere, or divergence was not exercised"
    evaluated = [r for rows in outcomes[2] for r in rows if r["phase"] == "eval" and r["problem"].startswith("logreg")]
    assert evaluated and all(r["test_accuracy"] is not None and r["accuracy_curve"] for r in evaluated
                             if not r["diverged"])


def test_tuning_lines_ask_for_two_points_and_no_accuracy() -> None:
    tune = {"id": 3, "optimizer": "candidate", "problem": "mlp-mnist1d", "lr": 0.1, "seed": 0, "steps": 500,
            "accuracy": False}
    line = harness_module.format_line(tune, tuning.TUNING_CURVE_POINTS)
    assert line.endswith("curve_points=2 accuracy=0"), line
    evaluation = {**tune, "accuracy": True}
    assert "accuracy" not in harness_module.format_line(evaluation, 40)
    assert "accuracy" not in harness_module.format_line({k: v for k, v in tune.items() if k != "accuracy"}, 40)


async def test_the_harness_list_is_read_once_per_binary(lab_home: Path, tmp_path: Path) -> None:
    settings = load_settings(lab_home)
    starts: list[list[str]] = []

    class Counting(Sandbox):
        async def run(self, argv: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            starts.append(list(argv))
            return await super().run(argv, **kwargs)

    # A copy of the harness, so that touching it leaves the lab's own binary alone.
    binary = tmp_path / "frontier-bench"
    source = Lab(lab_home).harness()
    assert source is not None
    binary.write_bytes(source.read_bytes())
    binary.chmod(0o755)
    sandbox = Counting(limits=settings.limits, enabled=settings.sandbox, bwrap=settings.bwrap,
                       extra_read_only=[tmp_path])
    harness = replace(_harness(lab_home, sandbox=sandbox), binary=binary)
    first = await harness.version()
    second = await harness.version()
    assert first == second and first["harness_version"]
    assert len(starts) == 1
    second["harness_version"] = "changed by a caller"
    assert (await harness.version())["harness_version"] == first["harness_version"]
    # A rebuilt binary (here: a new modification time) is asked again.
    stat = binary.stat()
    os.utime(binary, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert (await harness.version()) == first
    assert len(starts) == 2
