"""`frontier-mcp verify-baselines`: every baseline reproduces PyTorch, and a wrong file fails."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

FIXTURE = Path(__file__).parent / "fixtures" / "torch_trajectories.json"


def run_cli(home: Path, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "frontier_mcp", "--home", str(home), "verify-baselines", str(path)],
                          capture_output=True, text=True, timeout=600, env={"PATH": "/usr/bin:/bin",
                                                                            "HOME": str(Path.home()),
                                                                            "COLUMNS": "200"})


def test_every_reference_run_passes(lab_home: Path) -> None:
    done = run_cli(lab_home, FIXTURE)
    assert done.returncode == 0, done.stdout + done.stderr
    runs = len(json.loads(FIXTURE.read_text())["runs"])
    assert f"{runs} passed, 0 failed" in done.stdout


def test_a_perturbed_trajectory_and_an_unknown_optimizer_fail(lab_home: Path, tmp_path: Path) -> None:
    reference = json.loads(FIXTURE.read_text())
    bad = copy.deepcopy(reference)
    bad["runs"] = [copy.deepcopy(reference["runs"][6])]  # rosenbrock2d/Adam
    tensors = bad["runs"][0]["params"][10]
    name = next(iter(tensors))
    tensors[name][0] *= 1 + 1e-8  # far above 1e-10 relative
    unknown = copy.deepcopy(reference["runs"][0])
    unknown["optimizer"], unknown["name"] = "torch.optim.LBFGS", "LBFGS"
    bad["runs"].append(unknown)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    done = run_cli(lab_home, path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "0 passed, 2 failed" in done.stdout
    assert "no baseline matches 'torch.optim.LBFGS'" in done.stdout
