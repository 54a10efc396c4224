"""Plan lines and the lab's trusted harness binary: running plans in the sandbox (or on an executor)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import os
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from ..sandbox import Mount, RunResult, Sandbox
from ..settings import Limits
from .suites import Suite

MAX_CRASH_RETRIES = 20


_CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
_TASKSET = shutil.which("taskset")
_next_cpu = itertools.count()

# `list` of each harness binary this process asked, by the binary's (path, mtime_ns, size, inode):
# every benchmark reads it, and it cost a sandbox start each time (10-60 ms). A rebuilt or replaced
# binary is a new key.
_LISTED: dict[tuple[str, int, int, int], str] = {}

# Nanoseconds per step of a run, per (problem, isolated): learnt from the wall_ns the harness reports,
# to split a plan into chunks of equal cost. A candidate's step costs a pipe round trip more than a
# baseline's in-process step, and mlp-mnist1d's step 100x rosenbrock-10's, so splitting runs by count
# left one process waiting for the other at every barrier of the tuning.
_STEP_NS: dict[tuple[str, bool], float] = {}
_STEP_NS_WEIGHT = 0.3  # of a new observation in the running estimate


def _isolated(optimizer: str) -> bool:
    return optimizer == "candidate" or optimizer.startswith("served:")


def learn_cost(record: dict[str, Any]) -> None:
    """Fold one result's wall time per step into the estimate of its problem's cost."""
    wall, steps = record.get("wall_ns"), record.get("steps_done")
    problem, optimizer = record.get("problem"), record.get("optimizer")
    if not (isinstance(wall, int | float) and isinstance(steps, int) and steps > 0 and isinstance(problem, str)
            and isinstance(optimizer, str)):
        return
    key, observed = (problem, _isolated(optimizer)), wall / steps
    known = _STEP_NS.get(key)
    _STEP_NS[key] = observed if known is None else known + _STEP_NS_WEIGHT * (observed - known)


def estimated_cost(run: dict[str, Any]) -> float:
    """A run's expected wall time (ns), or its steps times the mean known step cost (1 if none)."""
    per_step = _STEP_NS.get((run["problem"], _isolated(run["optimizer"])))
    if per_step is None:
        per_step = sum(_STEP_NS.values()) / len(_STEP_NS) if _STEP_NS else 1.0
    return per_step * float(run["steps"])


def balanced_chunks(runs: list[dict[str, Any]], count: int) -> list[list[dict[str, Any]]]:
    """Split runs over `count` processes so that their estimated costs are even (longest first, each
    to the least loaded process); each chunk keeps plan order. Which process runs a run changes no
    number of it: every run is a fresh optimizer (a fresh process for a candidate) on a problem
    rebuilt from its line."""
    if count <= 1:
        return [list(runs)]
    costs = [estimated_cost(run) for run in runs]
    loads = [0.0] * count
    members: list[list[int]] = [[] for _ in range(count)]
    for index in sorted(range(len(runs)), key=lambda i: -costs[i]):
        lightest = min(range(count), key=lambda c: loads[c])
        loads[lightest] += costs[index]
        members[lightest].append(index)
    return [[runs[i] for i in sorted(indices)] for indices in members]

def plan_lines(optimizer: str, suite: Suite, *, phase: str, lrs: dict[str, float] | None = None,
               start_id: int = 0) -> list[dict[str, Any]]:
    """The harness runs for one optimizer: the tuning grid, or evaluation at chosen rates."""
    runs: list[dict[str, Any]] = []
    for spec in suite.problems:
        if phase == "tune":
            for lr in suite.lr_grid:
                for seed in suite.tuning_seeds:
                    runs.append({"optimizer": optimizer, "problem": spec.name, "lr": lr, "seed": seed,
                                 "steps": spec.steps, "phase": "tune"})
        else:
            assert lrs is not None
            for seed in suite.eval_seeds:
                runs.append({"optimizer": optimizer, "problem": spec.name, "lr": lrs[spec.name],
                             "seed": seed, "steps": spec.steps, "phase": "eval"})
    for offset, run in enumerate(runs):
        run["id"] = start_id + offset
    return runs


def instance_key(secret: bytes | None, problem: str, seed: int) -> int:
    """The problem instance a (problem, seed) pair runs on: drawn from the lab's secret, so no one
    who lacks it (a candidate, a reader of the docs) can predict where an optimum is. Every
    optimizer meets the same instance on the same seed, which keeps runs paired. 0 (no secret) is
    the canonical problem, for tests and reference runs."""
    if not secret:
        return 0
    digest = hmac.new(secret, f"{problem}|{seed}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "little") | 1


def format_line(run: dict[str, Any], curve_points: int, secret: bytes | None = None) -> str:
    # The oracle budget equals the step budget: a baseline spends one gradient a step, and a
    # candidate that calls loss_at/grad_at/hvp inside its step pays for them with steps.
    knobs = "".join(f" opt.{name}={value!r}" for name, value in (run.get("opts") or {}).items())
    knobs += "".join(f" knob.{name}={value!r}" for name, value in (run.get("knobs") or {}).items())
    if run.get("warmup"):
        knobs += f" warmup={run['warmup']!r}"
    if run.get("decay", "constant") != "constant":
        knobs += f" decay={run['decay']}"
    knobs += "".join(f" switch.{name}=0" for name in run.get("switched_off") or ())
    if run.get("accuracy") is False:
        knobs += " accuracy=0"
    instance = instance_key(secret, run["problem"], run["seed"])
    return (f"id={run['id']} optimizer={run['optimizer']} problem={run['problem']} lr={run['lr']!r} "
            f"seed={run['seed']} instance={instance} steps={run['steps']} eval_budget={run['steps']} "
            f"curve_points={curve_points}{knobs}")


class HarnessError(RuntimeError):
    pass


@dataclass
class Harness:
    """Runs plans through the lab's trusted harness binary, in the sandbox, over `workers` processes.

    `binary` is the lab's own `frontier-bench`: it owns the problems, the oracle budget and every
    number it prints, and never runs candidate code. For `optimizer=candidate` runs it starts a
    fresh process of `candidate` (the experiment's binary) per run and talks to it over a pipe.
    """

    binary: Path
    sandbox: Sandbox
    limits: Limits
    workers: int
    candidate: Path | None = None
    # The lab's secret from which problem instances are drawn (None: canonical problems).
    secret: bytes | None = field(default=None, repr=False)
    # Runs one harness process over some plan lines elsewhere (ray_runner.RayExecutor), feeding it
    # each stdout line; None runs it here. Chunking, results by id and crash retries stay in `run`.
    executor: Callable[[Harness, bytes, Callable[[bytes], None]], Awaitable[RunResult]] | None = None
    # Shared by every Harness of a server: however many benchmarks run at once, at most this many
    # harness processes (sandboxes) exist (eight concurrent calls used to start 13).
    slots: anyio.CapacityLimiter | None = field(default=None, repr=False)

    async def version(self) -> dict[str, Any]:
        """The harness's `list` line: its version, problems, baselines and their search spaces."""
        try:
            stat = self.binary.stat()
            stamp: tuple[str, int, int, int] | None = (str(self.binary), stat.st_mtime_ns, stat.st_size,
                                                       stat.st_ino)
        except OSError:
            stamp = None
        if stamp is not None and stamp in _LISTED:
            return json.loads(_LISTED[stamp])
        result = await self.sandbox.run([str(self.binary), "list"], mounts=[Mount(self.binary)],
                                        env={"PATH": "/usr/bin:/bin"}, cwd=Path("/tmp"), timeout=30)
        if not result.ok:
            raise HarnessError(f"the harness did not start: {result.stderr.decode(errors='replace')[-400:]}")
        line = result.stdout.decode().strip().splitlines()[0]
        info = json.loads(line)
        if stamp is not None:
            _LISTED[stamp] = line
        return info

    async def declared(self) -> dict[str, list[Any]]:
        """The candidate's declared knobs and switches (checked again by the harness at every run)."""
        if self.candidate is None:
            return {"knobs": [], "switches": []}
        result = await self.sandbox.run([str(self.candidate), "knobs"], mounts=[Mount(self.candidate)],
                                        env={"PATH": "/usr/bin:/bin"}, cwd=Path("/tmp"), timeout=30)
        try:
            # The declaration is the last line: whatever the candidate's build() printed comes before it.
            answer = json.loads(result.stdout.decode(errors="replace").strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise HarnessError(f"the candidate's knobs could not be read: {result.killed_reason or result.returncode}"
                               ) from None
        if not isinstance(answer, dict):
            raise HarnessError("the candidate's knobs could not be read: not a JSON object")
        if "error" in answer:
            raise HarnessError(f"the candidate's knobs() or switches() is invalid: {str(answer['error'])[:500]}")
        try:
            knobs = [{"name": str(k["name"]), "low": float(k["low"]), "high": float(k["high"]),
                      "default": float(k["default"]), "log_scale": bool(k["log_scale"])} for k in answer["knobs"]]
            switches = [str(name) for name in answer.get("switches", [])]
        except (KeyError, TypeError, ValueError):
            raise HarnessError("the candidate's knobs could not be read: malformed declaration") from None
        return {"knobs": knobs[:4], "switches": switches[:8]}

    async def run(self, runs: list[dict[str, Any]], curve_points: int,
                  progress: Callable[[dict[str, Any]], None] | None = None,
                  processes: int | None = None) -> dict[int, dict[str, Any]]:
        count = processes or self.workers
        chunks = balanced_chunks(runs, count)
        results: dict[int, dict[str, Any]] = {}

        def fail(run_ids: list[int], error: str) -> None:
            for run_id in run_ids:
                results[run_id] = {"id": run_id, "diverged": True, "final_loss": None, "error": error}
                if progress is not None:
                    progress(results[run_id])

        async def run_chunk(chunk: list[dict[str, Any]]) -> None:
            # Runs print in plan order, so when the process dies (stack overflow, abort, timeout)
            # the first missing run is the culprit: it fails, and the rest are sent again.
            crashes = 0
            while chunk:
                planned = {run["id"]: run for run in chunk}
                got: dict[int, dict[str, Any]] = {}
                tampered: list[str] = []

                def on_line(line: bytes, planned: dict[int, dict[str, Any]] = planned,
                            got: dict[int, dict[str, Any]] = got, tampered: list[str] = tampered) -> None:
                    # The harness prints exactly one line per planned run, echoing its plan; anything
                    # else came from somewhere else in the process and voids the whole chunk.
                    if not line.strip():
                        return
                    try:
                        record = json.loads(line)
                    except ValueError:
                        tampered.append("a line that is not JSON")
                        return
                    record_id = record.get("id") if isinstance(record, dict) else None
                    run = planned.get(record_id) if isinstance(record_id, int) else None
                    refused = run is not None and str(record.get("error", "")).startswith("bad plan line")
                    if run is None or record["id"] in got or (not refused and any(
                            record.get(key) != run[key] for key in ("optimizer", "problem", "seed", "steps"))):
                        tampered.append(f"an unplanned or repeated result line: {line[:120]!r}")
                        return
                    got[record["id"]] = record

                stdin = "\n".join(format_line(run, curve_points, self.secret) for run in chunk).encode() + b"\n"
                outcome = await self.run_process(stdin, on_line)
                if not tampered and len(got) == len(planned) and not outcome.ok:
                    tampered.append("every result arrived, yet the process did not exit cleanly")
                if tampered:
                    fail(list(planned), f"the run's output was tampered with ({tampered[0]}); every run of "
                                        "this process counts as failed")
                    return
                for record in got.values():
                    results[record["id"]] = record
                    learn_cost(record)
                    if progress is not None:
                        progress(record)
                missing = [run for run in chunk if run["id"] not in results]
                if not missing:
                    return
                reason = outcome.killed_reason or (
                    f"exit code {outcome.returncode}: {outcome.stderr.decode(errors='replace')[-300:]}")
                # A hang costs a whole timeout, so after one the remaining runs are not retried.
                failed = missing if outcome.timed_out or crashes >= MAX_CRASH_RETRIES else missing[:1]
                fail([run["id"] for run in failed], f"the harness process died during this run: {reason}")
                crashes += 1
                chunk = missing[len(failed):]

        async with anyio.create_task_group() as group:
            for chunk in chunks:
                group.start_soon(run_chunk, chunk)
        return results

    def command(self) -> tuple[list[str], list[Mount]]:
        """The harness's argv and what it needs mounted (read-only)."""
        argv, mounts = [str(self.binary), "run"], [Mount(self.binary)]
        if self.candidate is not None:
            argv += ["--candidate", str(self.candidate), "--run-timeout-ms", str(int(self.limits.run_seconds * 1000))]
            if self.sandbox.enabled:
                argv.append("--sweep")  # the harness is pid 2 of its sandbox: nothing else may outlive a run
            mounts.append(Mount(self.candidate))
            # The harness and its candidate take turns, one step each, over a pipe. On one core the
            # hand-over is a direct switch (~9 us a step); across two, a step can wait for an idle
            # core to wake (~65-80 us on this VM when the machine is otherwise idle). So each harness
            # process keeps its candidates on one core, and the processes are spread over the cores.
            if _TASKSET and len(_CPUS) > 1:
                argv = [_TASKSET, "-c", str(_CPUS[next(_next_cpu) % len(_CPUS)]), *argv]
        return argv, mounts

    async def run_process(self, stdin: bytes, on_line: Callable[[bytes], None]) -> RunResult:
        """One harness process over these plan lines: in the local sandbox, or on the executor."""
        if self.slots is not None:
            async with self.slots:
                return await self._run_process(stdin, on_line)
        return await self._run_process(stdin, on_line)

    async def _run_process(self, stdin: bytes, on_line: Callable[[bytes], None]) -> RunResult:
        if self.executor is not None:
            return await self.executor(self, stdin, on_line)
        argv, mounts = self.command()
        return await self.sandbox.run(
            argv, mounts=mounts, env={"PATH": "/usr/bin:/bin"}, cwd=Path("/"), timeout=self.limits.run_seconds,
            stdin=stdin, on_stdout_line=on_line, scratch=False)
