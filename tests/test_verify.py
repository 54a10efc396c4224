"""`frontier-mcp verify-baselines`: every baseline reproduces PyTorch, and a wrong file fails."""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from frontier_mcp.verify import (
    Check,
    NoMatchingBaseline,
    baseline_name,
    compare_steps,
    harness_options,
    replay_input,
    run_check,
    run_options,
)

FIXTURE = Path(__file__).parent / "fixtures" / "torch_trajectories.json"
MODERN = Path(__file__).parent / "fixtures" / "torch_trajectories_modern.json"


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


def test_modern_keyword_arguments_become_harness_options() -> None:
    assert harness_options({"betas": [0.9, 0.999, 0.9999], "t_alpha_beta3": 20}) == [
        ("beta1", 0.9), ("beta2", 0.999), ("beta3", 0.9999), ("t_alpha_beta3", 20.0)]
    assert harness_options({"adjust_lr_fn": "match_rms_adamw", "nesterov": False}) == [
        ("adjust_lr_fn", 1.0), ("nesterov", 0.0)]
    assert harness_options({"adjust_lr_fn": "spectral_unclamped"}) == [("adjust_lr_fn", 2.0)]
    assert harness_options({"adjust_lr_fn": None}) == [("adjust_lr_fn", 0.0)]
    # None and inf by the harness's spelling: beta3 None is sqrt(beta2) (-1), growth_rate inf is 0.
    assert harness_options({"beta3": None, "growth_rate": "inf", "shampoo_beta": None}) == [
        ("beta3", -1.0), ("growth_rate", 0.0), ("shampoo_beta", -1.0)]
    assert harness_options({"growth_rate": math.inf, "d_coef": "2.0"}) == [("growth_rate", 0.0), ("d_coef", 2.0)]
    with pytest.raises(NoMatchingBaseline, match="adjust_lr_fn='spectral'"):
        harness_options({"adjust_lr_fn": "spectral"})
    with pytest.raises(NoMatchingBaseline, match="weight_decay=None"):
        harness_options({"weight_decay": None})
    with pytest.raises(NoMatchingBaseline, match="not a number"):
        harness_options({"d0": "tiny"})
    with pytest.raises(NoMatchingBaseline, match="2 or 3 values"):
        harness_options({"betas": [0.9]})


def test_modern_optimizers_map_to_baselines() -> None:
    assert baseline_name("torch.optim.NAdam", {"decoupled_weight_decay": True}) == "nadamw"
    assert baseline_name("torch.optim.NAdam", {"decoupled_weight_decay": False}) == "nadam"
    assert baseline_name("torch.optim.NAdam") == "nadam"
    assert baseline_name("torch.optim.Muon") == "muon"
    assert baseline_name("schedulefree.AdamWScheduleFree") == "schedulefree_adamw"
    assert baseline_name("prodigyopt.Prodigy") == "prodigy"
    assert baseline_name("pytorch_optimizer.SOAP") == "soap"
    assert baseline_name("pytorch_optimizer.AdEMAMix") == "ademamix"
    muon = {"optimizer": "torch.optim.Muon", "kwargs": {}}
    assert run_options({**muon, "ns_dtype": "bfloat16 (unmodified torch.optim.Muon)"}) == [("ns_bf16", 1.0)]
    assert run_options({**muon, "ns_dtype": "float64 (...)"}) == [("ns_bf16", 0.0)]


def test_a_runs_recommended_check_sets_its_tolerance_and_injection() -> None:
    assert run_check({}) == Check(1e-12, 1e-10, False)
    loose = {"recommended_check": {"compare": "params", "atol": 1e-6, "rtol": 0.0, "requires": "float32 QR"}}
    assert run_check(loose) == Check(1e-6, 0.0, False)
    inject = {"recommended_check": {"compare": "params", "atol": 1e-8, "rtol": 0.0,
                                    "requires": "overwrite your eigenbases with soap_Q[t] after step t+1"}}
    assert run_check(inject).inject_bases
    with pytest.raises(NoMatchingBaseline, match="compares 'loss'"):
        run_check({"recommended_check": {"compare": "loss", "atol": 1.0, "rtol": 0.0}})
    # The tolerance decides: a 1e-9 miss fails the old tolerance and passes atol 1e-8.
    out = "params 1.000000001\n"
    assert compare_steps(out, [[1.0]])[0] > 1
    assert compare_steps(out, [[1.0]], check=Check(1e-8, 0.0))[0] <= 1


def test_eval_points_are_compared_too() -> None:
    out = "params 1.0\neval 2.0\nparams 3.0\neval 4.0\n"
    assert compare_steps(out, [[1.0], [3.0]], [[2.0], [4.0]])[3] is None
    ratio, _, step, error = compare_steps(out, [[1.0], [3.0]], [[2.0], [4.5]])
    assert error is None and ratio > 1 and step == 2
    # Missing eval lines, or eval lines nobody expects, are errors.
    assert compare_steps("params 1.0\n", [[1.0]], [[2.0]])[3] is not None
    assert compare_steps(out, [[1.0], [3.0]])[3] is not None


def test_modern_replay_input_carries_eval_points_and_recorded_bases() -> None:
    reference = json.loads(MODERN.read_text())
    runs = {f"{r['problem']}/{r['name']}": r for r in reference["runs"]}
    sf = runs["matreg/AdamWScheduleFree"]
    script, expected, expected_eval = replay_input(sf, reference["problems"]["matreg"])
    assert script.splitlines()[0].endswith(" eval=1") and expected_eval is not None
    assert len(expected) == len(expected_eval) == 50
    soap = runs["matreg/SOAP_pf1"]
    script, _, _ = replay_input(soap, reference["problems"]["matreg"])
    bases = [line for line in script.splitlines() if line.startswith("basis")]
    assert len(bases) == 100 and bases[0].startswith("basis 0 0 ") and len(bases[1].split()) == 3 + 25
    script, _, _ = replay_input(runs["matreg/SOAP_pf1_maxdim4"], reference["problems"]["matreg"])
    assert "basis" not in script


def test_every_modern_reference_run_passes(lab_home: Path) -> None:
    done = run_cli(lab_home, MODERN)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "32 passed, 0 failed" in done.stdout
    assert "recorded soap_Q injected" in done.stdout


def test_a_perturbed_eval_point_fails(lab_home: Path, tmp_path: Path) -> None:
    reference = json.loads(MODERN.read_text())
    run = next(r for r in reference["runs"] if r["name"] == "AdamWScheduleFree")
    run["eval_params"][20]["W"][3] += 1e-6
    reference["runs"] = [run]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(reference))
    done = run_cli(lab_home, path)
    assert done.returncode == 1 and "0 passed, 1 failed" in done.stdout, done.stdout + done.stderr
