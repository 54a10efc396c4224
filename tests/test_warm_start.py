"""Issue 16's start-up and per-call waste: the baseline cache is parsed once per process, and the server
warms scipy in the background after `initialize` instead of the first benchmark paying the import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import pytest

from frontier_mcp import runtime
from frontier_mcp.protocol import run

TRIALS = [{"phase": "eval", "optimizer": "adam", "problem": "p", "lr": 0.1, "seed": s, "final_loss": 1.0 / (s + 1)}
          for s in range(5)]


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts json.loads calls of the cache reader."""
    count: list[int] = []
    real = json.loads

    def counting(text: Any) -> Any:
        count.append(1)
        return real(text)

    monkeypatch.setattr(run.json, "loads", counting)
    monkeypatch.setattr(run, "_PARSED", type(run._PARSED)())
    return count


def test_the_baseline_cache_is_parsed_once_while_the_file_is_unchanged(tmp_path: Path, parses: list[int]) -> None:
    cache = tmp_path / "baselines-quick-abc.json"
    cache.write_text(json.dumps(TRIALS))
    assert run.read_baselines(cache) == TRIALS
    first = run.read_baselines(cache)
    assert first == TRIALS and len(parses) == 1
    assert first is not None
    first[0]["lr"] = 99.0  # a caller's edit of its rows never reaches the next caller
    assert run.read_baselines(cache) == TRIALS and len(parses) == 1


def test_a_hit_holds_and_hands_out_only_the_evaluation_rows(tmp_path: Path, parses: list[int]) -> None:
    """Judging, timing and the tuned settings read only the baselines' evaluation runs; their tuning
    runs (4,400 of 5,300 rows in `standard`) stay in the file, not in every hit's copy."""
    tuning = [{**row, "phase": "tune", "lr": lr} for row in TRIALS for lr in (0.01, 1.0)]
    cache = tmp_path / "baselines-quick-abc.json"
    cache.write_text(json.dumps(tuning + TRIALS))
    assert run.read_baselines(cache) == TRIALS and run.read_baselines(cache) == TRIALS and len(parses) == 1
    run.write_baselines(cache, TRIALS + tuning)
    assert json.loads(cache.read_text()) == TRIALS + tuning
    assert run.read_baselines(cache) == TRIALS


def test_a_replaced_or_damaged_cache_file_is_read_again(tmp_path: Path, parses: list[int]) -> None:
    cache = tmp_path / "baselines-quick-abc.json"
    cache.write_text(json.dumps(TRIALS))
    assert run.read_baselines(cache) == TRIALS
    other = tmp_path / "from-another-server.tmp"
    other.write_text(json.dumps(TRIALS[:2]))
    other.replace(cache)  # another server's atomic write
    assert run.read_baselines(cache) == TRIALS[:2] and len(parses) == 2
    cache.write_text("{not json")
    assert run.read_baselines(cache) is None
    cache.unlink()
    assert run.read_baselines(cache) is None
    assert run.read_baselines(tmp_path / "never-written.json") is None


def test_writing_keeps_the_format_and_the_parse(tmp_path: Path, parses: list[int]) -> None:
    cache = tmp_path / "baselines-quick-abc.json"
    run.write_baselines(cache, TRIALS)
    assert json.loads(cache.read_text()) == TRIALS  # plain JSON on disk, as before
    del parses[:]
    assert run.read_baselines(cache) == TRIALS and parses == []  # this process wrote it: no parse
    assert [p.name for p in tmp_path.iterdir()] == [cache.name]  # the temporary file was renamed over it


def test_the_server_warms_scipy_after_a_delay_on_a_daemon_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    started = threading.Event()
    seen: list[threading.Thread] = []

    def fake_import() -> None:
        seen.append(threading.current_thread())
        started.set()

    monkeypatch.setattr(runtime, "_import_statistics", fake_import)
    monkeypatch.delitem(sys.modules, "scipy.stats", raising=False)

    async def main() -> None:
        async with anyio.create_task_group() as group:
            fake = SimpleNamespace(jobs=SimpleNamespace(group=group))
            runtime.Runtime.warm_statistics_in_background(fake, delay=0.05)  # type: ignore[arg-type]
            await anyio.sleep(0.01)
            assert not started.is_set()  # not on the initialize path
        assert started.wait(5)

    anyio.run(main)
    assert seen and seen[0].daemon and seen[0] is not threading.main_thread()


def test_importing_the_server_and_the_cli_does_not_import_scipy() -> None:
    code = "import sys, frontier_mcp.server, frontier_mcp.cli; sys.exit('scipy' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": "src"},
                          cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
