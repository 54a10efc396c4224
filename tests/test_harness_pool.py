"""A benchmark's harness processes kept between its calls (`Harness.session`, issue 16).

The fast tests drive the pool with small shell-script harnesses in the real sandbox, one per way a
process can go wrong (a forged line, a line too many, an unclean exit, a hang, a crash, a cancelled
job); the slow one runs the lab's real harness and checks that a kept process changes no number."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import anyio
import pytest

from frontier_mcp.protocol import Harness, HarnessError
from frontier_mcp.sandbox import LiveProcess, Sandbox, check_sandbox
from frontier_mcp.settings import Limits

pytestmark = pytest.mark.anyio

# Answers each plan line as the harness does: one JSON line echoing the plan, flushed. `$BEFORE` and
# `$AFTER` are the shell each script variant adds around that answer.
SCRIPT = r"""#!/bin/sh
n=0
while read -r line; do
  n=$((n+1))
  for kv in $line; do
    case $kv in
      id=*) id=${kv#id=};; optimizer=*) opt=${kv#optimizer=};; problem=*) prob=${kv#problem=};;
      seed=*) seed=${kv#seed=};; steps=*) steps=${kv#steps=};;
    esac
  done
  BEFORE
  printf '{"id": %s, "optimizer": "%s", "problem": "%s", "seed": %s, ' "$id" "$opt" "$prob" "$seed"
  printf '"steps": %s, ' "$steps"
  printf '"final_loss": 0.5, "diverged": false}\n'
  AFTER
done
EXIT
"""


def fake_harness(tmp_path: Path, name: str, before: str = ":", after: str = ":", at_exit: str = "exit 0") -> Path:
    path = tmp_path / name
    path.write_text(SCRIPT.replace("BEFORE", before).replace("AFTER", after).replace("EXIT", at_exit))
    path.chmod(0o755)
    return path


@pytest.fixture
def sandbox() -> Sandbox:
    box = Sandbox(limits=Limits(run_seconds=2.0))
    if check_sandbox(box):
        pytest.skip("bubblewrap cannot run here")
    return box


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[LiveProcess]:
    """Every process the pool starts."""
    kept: list[LiveProcess] = []
    original = Sandbox.start

    async def start(self: Sandbox, argv: Any, **kwargs: Any) -> LiveProcess:
        live = await original(self, argv, **kwargs)
        kept.append(live)
        return live

    monkeypatch.setattr(Sandbox, "start", start)
    return kept


def plan(count: int, first: int = 0) -> list[dict[str, Any]]:
    return [{"id": first + i, "optimizer": "adam", "problem": "rosenbrock-10", "lr": 0.01, "seed": first + i,
             "steps": 10} for i in range(count)]


def harness(binary: Path, sandbox: Sandbox, workers: int = 2) -> Harness:
    return Harness(binary=binary, sandbox=sandbox, limits=sandbox.limits, workers=workers)


def all_reaped(processes: list[LiveProcess]) -> bool:
    return bool(processes) and all(live.process.returncode is not None for live in processes)


async def test_calls_of_a_session_share_its_processes(tmp_path: Path, sandbox: Sandbox,
                                                      started: list[LiveProcess]) -> None:
    kept = harness(fake_harness(tmp_path, "honest"), sandbox)
    async with kept.session():
        for call in range(5):
            results = await kept.run(plan(6, call * 6), 2)
            assert sorted(results) == list(range(call * 6, call * 6 + 6))
            assert all(r["final_loss"] == 0.5 and "error" not in r for r in results.values())
    assert len(started) == 2, "two workers: two processes for five calls"
    assert all_reaped(started) and all(live.process.returncode == 0 for live in started)
    # Outside a session every call starts its own processes, as before.
    await kept.run(plan(4), 2)
    assert len(started) == 2


async def test_in_a_session_each_result_is_passed_on_as_it_comes(tmp_path: Path, sandbox: Sandbox) -> None:
    # The second answer comes a second after the first: the tuner can act on the first meanwhile.
    kept = harness(fake_harness(tmp_path, "paced", before="[ $n = 2 ] && sleep 1"), sandbox, workers=1)
    for in_session in (True, False):
        seen: dict[int, float] = {}

        def progress(record: dict[str, Any], seen: dict[int, float] = seen) -> None:
            seen[record["id"]] = anyio.current_time()

        async with kept.session() if in_session else contextlib.AsyncExitStack():
            await kept.run(plan(2), 2, progress)
            returned = anyio.current_time()
        assert sorted(seen) == [0, 1]
        if in_session:
            assert returned - seen[0] > 0.5 and returned - seen[1] < 0.5, (seen, returned)
        else:  # a process of its own: nothing counts before it has exited cleanly
            assert returned - seen[0] < 0.5, (seen, returned)


async def test_a_process_retires_once_as_old_as_a_call_may_last(tmp_path: Path, sandbox: Sandbox,
                                                                started: list[LiveProcess]) -> None:
    # Calls of ~0.8 s against a 2 s limit: the process serves two (1.6 s old, under the limit), and
    # after the third (2.4 s old) it is retired, cleanly; the fourth call starts another.
    kept = harness(fake_harness(tmp_path, "slowish", before="sleep 0.4"), sandbox, workers=1)
    async with kept.session():
        for call in range(4):
            assert all(r["final_loss"] == 0.5 for r in (await kept.run(plan(2, call * 2), 2)).values())
    assert len(started) == 2 and all_reaped(started)
    assert started[0].process.returncode == 0


async def test_a_forged_line_voids_the_benchmark(tmp_path: Path, sandbox: Sandbox,
                                                 started: list[LiveProcess]) -> None:
    forger = fake_harness(tmp_path, "forger", after='[ $n = 2 ] && echo \'{"id": 999, "final_loss": 0.0}\'')
    kept = harness(forger, sandbox, workers=1)
    with pytest.raises(HarnessError, match=r"tampered with.*no result of this benchmark counts"):
        async with kept.session():
            await kept.run(plan(4), 2)
    assert all_reaped(started)


async def test_a_line_too_many_after_the_last_answer_voids_the_benchmark(tmp_path: Path, sandbox: Sandbox,
                                                                       started: list[LiveProcess]) -> None:
    # Printed after its answer to the last line, so no call reads it: the end of the session does.
    chatty = fake_harness(tmp_path, "chatty", at_exit='echo \'{"id": 3, "final_loss": 0.0}\'; exit 0')
    kept = harness(chatty, sandbox, workers=1)
    with pytest.raises(HarnessError, match="printed lines nobody asked for"):
        async with kept.session():
            results = await kept.run(plan(4), 2)
            assert len(results) == 4
    assert all_reaped(started)


async def test_an_unclean_exit_voids_the_benchmark(tmp_path: Path, sandbox: Sandbox,
                                                   started: list[LiveProcess]) -> None:
    kept = harness(fake_harness(tmp_path, "unclean", at_exit="exit 3"), sandbox, workers=1)
    with pytest.raises(HarnessError, match="did not exit cleanly: exit code 3"):
        async with kept.session():
            await kept.run(plan(2), 2)
    assert all_reaped(started)


async def test_a_crash_fails_its_run_and_the_rest_go_to_a_new_process(tmp_path: Path, sandbox: Sandbox,
                                                                      started: list[LiveProcess]) -> None:
    # Every process dies on the third line it is given: the first on run 2, the next (given 3, 4, 5) on 5.
    kept = harness(fake_harness(tmp_path, "crasher", before="[ $n = 3 ] && kill -9 $$"), sandbox, workers=1)
    async with kept.session():
        results = await kept.run(plan(6), 2)
    assert sorted(results) == list(range(6))
    assert sorted(run_id for run_id, r in results.items() if r.get("error")) == [2, 5], results
    assert "the harness process died during this run" in results[2]["error"]
    assert all(results[i]["final_loss"] == 0.5 for i in (0, 1, 3, 4))
    assert len(started) == 2 and all_reaped(started)


async def test_a_hang_fails_the_call_and_the_next_call_gets_a_new_process(tmp_path: Path, sandbox: Sandbox,
                                                                         started: list[LiveProcess]) -> None:
    hang = fake_harness(tmp_path, "hang", before='[ "$seed" = 1 ] && sleep 60')
    kept = harness(hang, sandbox, workers=1)
    async with kept.session():
        stuck = await kept.run(plan(3), 2)
        assert stuck[0]["final_loss"] == 0.5
        assert all("wall-clock limit of 2 s reached" in stuck[i]["error"] for i in (1, 2)), stuck
        after = await kept.run(plan(2, 10), 2)
        assert all(r["final_loss"] == 0.5 for r in after.values())
    assert len(started) == 2 and all_reaped(started)


async def test_a_cancelled_call_leaves_no_process(tmp_path: Path, sandbox: Sandbox,
                                                  started: list[LiveProcess]) -> None:
    slow = fake_harness(tmp_path, "slow", before="sleep 30")
    kept = harness(slow, sandbox)
    with anyio.move_on_after(0.5):
        async with kept.session():
            await kept.run(plan(4), 2)
    assert len(started) == 2 and all_reaped(started)
    for live in started:
        with pytest.raises(ProcessLookupError):
            os.kill(live.process.pid, 0)
