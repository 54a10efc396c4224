"""The Ray runner (frontier-mcp[ray]) against the local one, on a local Ray instance: same results."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from frontier_mcp import protocol
from frontier_mcp.ray_runner import RayExecutor, executor_for
from frontier_mcp.sandbox import Sandbox
from frontier_mcp.scaffold import WARMUP_NAME, Lab
from frontier_mcp.settings import Limits, load_settings

pytestmark = [pytest.mark.anyio, pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                                                     reason="the Ray runner needs the extra: pip install -e '.[ray]'")]

# Wall-clock measurements differ between any two runs; everything else must be identical.
TIMING = {"ns_per_step", "optimizer_ns", "first_step_ns", "oracle_ns", "wall_ns", "seconds", "timing",
          "time_ratio_vs_adam"}


@pytest.fixture(scope="module")
def local_ray() -> Iterator[RayExecutor]:
    """One driver child for the module; with no address it starts a local Ray instance of its own."""
    executor = RayExecutor()
    yield executor
    executor.close()


def harness(home: Path, executor: RayExecutor | None) -> protocol.Harness:
    limits = Limits()
    lab = Lab(home)
    trusted = lab.harness()
    assert trusted is not None, "the session lab has no installed harness"
    return protocol.Harness(binary=trusted, candidate=lab.binary(WARMUP_NAME), secret=lab.secret(),
                         sandbox=Sandbox(limits=limits), limits=limits, workers=2, executor=executor)


def untimed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: untimed(v) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        return [untimed(v) for v in value]
    return value


def test_settings_select_the_runner_and_local_labs_never_import_ray() -> None:
    assert load_settings(environ={}).runner == "local"
    chosen = load_settings(environ={"FRONTIER_RUNNER": "ray", "FRONTIER_RAY_ADDRESS": "ray://head:10001"})
    executor = executor_for(chosen)
    assert isinstance(executor, RayExecutor) and executor.address == "ray://head:10001"
    assert executor_for(chosen) is executor  # one driver per cluster for the whole server
    shipped = load_settings(environ={"FRONTIER_RAY_RUNTIME_ENV": '{"env_vars": {"OMP_NUM_THREADS": "1"}}'})
    assert shipped.ray_runtime_env == {"env_vars": {"OMP_NUM_THREADS": "1"}}
    probe = ("import sys; import frontier_mcp.server, frontier_mcp.tools.benchmark; "
             "from frontier_mcp.ray_runner import executor_for; from frontier_mcp.settings import load_settings; "
             "assert executor_for(load_settings(environ={})) is None; assert 'ray' not in sys.modules")
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=60)


async def test_a_plan_gives_the_same_results_on_ray_as_locally(lab_home: Path, local_ray: RayExecutor) -> None:
    suite = protocol.Suite(name="ray-plan", problems=(protocol.ProblemSpec("rosenbrock-10", 200),
                                                   protocol.ProblemSpec("quadratic-ill-50", 150),
                                                   protocol.ProblemSpec("logreg-breast-cancer", 100)),
                        lr_grid=(1e-3, 1e-2), tuning_seeds=(0, 1), eval_seeds=(100, 101, 102))
    runs: list[dict[str, Any]] = []
    for name in (protocol.CANDIDATE, "adam", "sgd"):
        runs += protocol.plan_lines(name, suite, phase="tune", start_id=len(runs))
    assert len(runs) == 36
    local = await harness(lab_home, None).run(runs, 10)
    seen: list[int] = []
    remote = await harness(lab_home, local_ray).run(runs, 10, lambda record: seen.append(record["id"]))
    # The driver is a child process: Ray's threads, prints and exits stay out of the server's process.
    assert "ray" not in sys.modules
    assert sorted(seen) == sorted(local) == list(range(36))
    assert all(record["error"] is None and record["curve"] for record in local.values())
    assert untimed(remote) == untimed(local)


async def test_the_quick_suite_reports_the_same_on_ray_as_locally(lab_home: Path, local_ray: RayExecutor,
                                                                   tmp_path: Path) -> None:
    reports = {}
    for name, executor in (("local", None), ("ray", local_ray)):
        # Separate caches: both runners compute the baselines too.
        (tmp_path / name).mkdir()
        report, trials = await protocol.benchmark(
            harness(lab_home, executor), protocol.SUITES["quick"], cache_dir=tmp_path / name,
            toolchain_version="test", provenance={"suite": "quick"})
        # Every optimizer's planned runs, plus the grid's extension wherever a problem needed it.
        planned = (1 + len(protocol.SUITES["quick"].baselines)) * protocol.runs_per_optimizer(protocol.SUITES["quick"])
        assert report.baseline_cache == "miss" and report.trials >= planned
        reports[name] = (untimed(report.model_dump(mode="json")), untimed(trials))
    assert reports["ray"] == reports["local"]
