"""A small archive built in-process from recorded benchmark reports: what the rendering tests draw."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from frontier_mcp.archive import Archive

FIXTURES = Path(__file__).parent / "fixtures"
INJECTED = "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">"
SOURCE = "use frontier_core::{Optimizer, StepContext, Tensor};\n// a < b && c > d\nfn build() {}\n"


def recorded(name: str = "quick") -> dict[str, Any]:
    return dict(json.loads((FIXTURES / f"report_{name}.json").read_text()))


def add_run(archive: Archive, exp_id: int, report: dict[str, Any], *, suite: str | None = None,
            job_id: str | None = None) -> int:
    return archive.add_benchmark_run(
        exp_id, job_id=job_id, suite=suite or report.get("suite", "quick"), harness_version="test",
        outcome=report.get("outcome", "tie"), geomean_ratio=report.get("geomean_ratio"), wins=report.get("wins", 0),
        ties=report.get("ties", 0), losses=report.get("losses", 0), summary=report,
        provenance=report.get("provenance", {}), seconds=1.0, trials=[])


def build_archive(path: Path) -> dict[str, Any]:
    """A parent (model-written HTML in every text field, a failed then a good build, a verdict) and a
    child with a quick run and a hidden holdout run whose problems are secret."""
    archive = Archive(path)
    pairing = archive.add_pairing("knot-theory", "fluid-dynamics", None)
    parent, _ = archive.add_experiment(
        name="render_parent", pairing_id=pairing, parent_id=None, source=SOURCE, normalized_sha256="p",
        statement=f"Plain SGD as the root of a lineage. {INJECTED}", mechanism="x <- x - lr * g; a & b < c > d "
        '"quoted".', prediction="Loses to momentum.")
    diagnostic = {"level": "error", "message": "mismatched types", "file": "optimizer.rs", "line": 2,
                  "column": 1, "rendered": "error[E0308]: mismatched types <b>here</b>\n"}
    sha = archive.require_experiment(parent)["source_sha256"]
    archive.add_build(parent, ok=True, seconds=0.3, errors=0, warnings=0, diagnostics=[],
                      provenance={"source_sha256": sha, "rustc": "rustc 1.0 <x>"})
    archive.add_build(parent, ok=False, seconds=0.2, errors=1, warnings=0, diagnostics=[diagnostic],
                      provenance={"source_sha256": sha, "rustc": "rustc 1.0 <x>"})
    quick = recorded("quick")
    add_run(archive, parent, quick)
    archive.add_verdict(parent, verdict=quick["outcome"], benchmark_run_id=None, notes="root <i>note</i>",
                        lessons="plain SGD <b>is</b> SGD", evidence={})
    child, _ = archive.add_experiment(
        name="render_child", pairing_id=pairing, parent_id=parent, source=SOURCE + "// child\n",
        normalized_sha256="c", statement="Adam with damping.", mechanism="Moments.", prediction="Beats its parent.")
    add_run(archive, child, quick, job_id=None)
    hidden = {**quick, "suite": "holdout",
              "problems": [{**p, "problem": f"secret-problem-{i}"} for i, p in enumerate(quick["problems"])],
              "provenance": {**quick["provenance"], "eval_seeds": [31337]}}
    add_run(archive, child, hidden, suite="holdout")
    archive.close()
    return {"path": path, "parent": parent, "child": child, "report": quick}
