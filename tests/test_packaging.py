"""The wheel carries the scaffold and the prompts (so `uvx frontier-mcp` works) and no build output."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_holds_scaffold_and_prompts_but_no_target(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    wheel = next(tmp_path.glob("frontier_mcp-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "frontier_mcp/rust_scaffold/Cargo.toml" in names
    assert "frontier_mcp/rust_scaffold/crates/core/src/lib.rs" in names
    assert "frontier_mcp/rust_scaffold/template/optimizer.rs" in names
    assert "frontier_mcp/data/fields.toml" in names
    assert "frontier_mcp/render/templates/experiment.html.j2" in names  # the HTML reports' templates
    for prompt in ("research_brief", "translate", "iterate"):
        assert f"frontier_mcp/prompts/{prompt}.md" in names
    assert not [n for n in names if "/target/" in n], "build output leaked into the wheel"
