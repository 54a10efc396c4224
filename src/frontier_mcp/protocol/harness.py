"""Plan lines and the lab's trusted harness binary: running plans in the sandbox (or on an executor)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import os
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from ..sandbox import LiveProcess, Mount, RunResult, Sandbox
from ..settings import Limits
from .suites import Suite
from .tasks import task_group

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
class _Pool:
    """Harness processes kept up between calls to `Harness.run` (see `Harness.session`)."""

    group: Any  # the task group their stderr drains run in
    # At most `workers` of them busy at once (however many calls of the benchmark run side by side).
    slots: anyio.CapacityLimiter
    idle: list[LiveProcess] = field(default_factory=list)
    # Every process started and not yet closed, idle or busy.
    live: list[LiveProcess] = field(default_factory=list)
    # The core each live process is kept on, by id(process).
    cpus: dict[int, int] = field(default_factory=dict)
    # Why a process ended badly (an unclean exit at its retirement): any voids the benchmark.
    problems: list[str] = field(default_factory=list)


# The longest result line a harness prints (an evaluation run's curves are a few KiB).
MAX_LINE_BYTES = 1 << 20
# How long a pooled harness process has to exit once its input ends.
CLOSE_SECONDS = 10.0


@dataclass
class Harness:
    """Runs plans through the lab's trusted harness binary, in the sandbox, over `workers` processes.

    `binary` is the lab's own `frontier-bench`: it owns the problems, the oracle budget and every
    number it prints, and never runs candidate code. For `optimizer=candidate` runs it starts a
    fresh process of `candidate` (the experiment's binary) per run, forked by that binary's zygote,
    and talks to it over a shared-memory channel (see `crates/core/src/zygote.rs`).
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
    _pool: _Pool | None = field(default=None, init=False, repr=False)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[None]:
        """Keep harness processes up between calls to `run` until the block ends (local runs only).

        A benchmark makes a dozen calls (the grid, each round of the tuner, the evaluation, the timing
        pairs): each used to start its sandboxes afresh (10-20 ms each, on the critical path of every
        round). A process still runs one plan line after another, sweeping its sandbox after each run,
        as it did inside one call; what changes is that its results are delivered before it exits. So
        whatever would have voided one call's runs (an unplanned line, an unclean exit) now voids the
        whole benchmark: `run` or the end of the block raises HarnessError."""
        if self.executor is not None or self._pool is not None:
            yield
            return
        async with task_group() as group:
            self._pool = pool = _Pool(group, anyio.CapacityLimiter(self.workers))
            try:
                yield
            finally:
                self._pool = None
                with anyio.CancelScope(shield=True):
                    for live in list(pool.live):
                        # one still busy (a cancelled job) is killed at once: nothing of it counts
                        await self._retire(pool, live, healthy=live in pool.idle)
                group.cancel_scope.cancel()
        if pool.problems:
            raise HarnessError(f"{pool.problems[0]}; no result of this benchmark counts")

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
        """Every run's result line by its id (a failure record for a run that got none)."""
        count = processes or self.workers
        chunks = balanced_chunks(runs, count)
        results: dict[int, dict[str, Any]] = {}

        def fail(run_ids: list[int], error: str) -> None:
            for run_id in run_ids:
                results[run_id] = {"id": run_id, "diverged": True, "final_loss": None, "error": error}
                if progress is not None:
                    progress(results[run_id])

        def deliver(record: dict[str, Any]) -> None:
            results[record["id"]] = record
            learn_cost(record)
            if progress is not None:
                progress(record)

        # A process of this call only counts once it has exited cleanly, so its results wait for that;
        # a kept process (a session) never exits, and whatever would void its results voids the whole
        # benchmark instead, so each result is passed on as it comes: the tuner tells its study and
        # asks for the next trial while the round's other runs go on (at the end of a chunk, the
        # ten problems' asks, ~25 ms, left both processes idle between rounds).
        streamed = self._pool is not None

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
                    if streamed and not tampered:
                        deliver(record)

                stdin = "\n".join(format_line(run, curve_points, self.secret) for run in chunk).encode() + b"\n"
                if self._pool is not None:
                    outcome = await self._run_pooled(self._pool, stdin, len(chunk), on_line, tampered.__len__)
                    if tampered:
                        raise HarnessError(f"the harness's output was tampered with ({tampered[0]}); no result "
                                           "of this benchmark counts")
                else:
                    outcome = await self.run_process(stdin, on_line)
                if not tampered and len(got) == len(planned) and not outcome.ok:
                    tampered.append("every result arrived, yet the process did not exit cleanly")
                if tampered:
                    fail(list(planned), f"the run's output was tampered with ({tampered[0]}); every run of "
                                        "this process counts as failed")
                    return
                for record in got.values():
                    if record["id"] not in results:
                        deliver(record)
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

        async with task_group() as group:
            for chunk in chunks:
                group.start_soon(run_chunk, chunk)
        return results

    def command(self, cpu: int | None = None) -> tuple[list[str], list[Mount]]:
        """The harness's argv and what it needs mounted (read-only); `cpu`: the core to keep it on
        (default: the next in turn)."""
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
                argv = [_TASKSET, "-c", str(cpu if cpu is not None else _CPUS[next(_next_cpu) % len(_CPUS)]), *argv]
        return argv, mounts

    async def run_process(self, stdin: bytes, on_line: Callable[[bytes], None]) -> RunResult:
        """One harness process over these plan lines: in the local sandbox, or on the executor."""
        if self.slots is not None:
            async with self.slots:
                return await self._run_process(stdin, on_line)
        return await self._run_process(stdin, on_line)

    async def _run_pooled(self, pool: _Pool, stdin: bytes, expected: int, on_line: Callable[[bytes], None],
                          spoiled: Callable[[], int]) -> RunResult:
        """`stdin`'s plan lines through a kept process (or a new one): `expected` result lines, then the
        process goes back to the pool, unless it died, timed out, misbehaved or is old enough to retire."""
        async def attempt() -> RunResult:
            live = pool.idle.pop() if pool.idle else await self._start_live(pool)
            outcome = RunResult(returncode=None, stdout=b"", stderr=b"", seconds=0.0)
            received, ended = 0, False
            with anyio.move_on_after(self.limits.run_seconds) as scope:
                if await live.send(stdin):
                    while received < expected:
                        try:
                            line = await live.read_line(MAX_LINE_BYTES)
                        except ValueError as exc:
                            outcome.killed_reason = str(exc)
                            break
                        if line is None:
                            ended = True
                            break
                        if line.strip():
                            received += 1
                        on_line(line)
            if scope.cancelled_caught:
                outcome.timed_out = True
                outcome.killed_reason = f"wall-clock limit of {self.limits.run_seconds:g} s reached"
            if received == expected and not ended and outcome.killed_reason is None and not spoiled():
                outcome.returncode = 0
                # A call lasts at most run_seconds, so a process retired once it is that old never
                # nears its RLIMIT_CPU (cpu_seconds, several times run_seconds).
                if time.perf_counter() - live.started < self.limits.run_seconds:
                    pool.idle.append(live)
                else:
                    await self._retire(pool, live, healthy=True)
                return outcome
            ended_as = await self._retire(pool, live, healthy=False)
            outcome.returncode = ended_as.returncode
            outcome.stderr = ended_as.stderr
            if outcome.killed_reason is None:
                outcome.killed_reason = ended_as.killed_reason
            return outcome

        async with pool.slots:
            if self.slots is not None:
                async with self.slots:
                    return await attempt()
            return await attempt()

    async def _start_live(self, pool: _Pool) -> LiveProcess:
        # On the core fewest of the pool's processes are kept on: two on one core would halve it.
        # Taken before the start is awaited: two processes starting side by side must not pick the same.
        cpu = min(_CPUS, key=lambda c: (list(pool.cpus.values()).count(c), c)) if _CPUS else None
        booking = object()
        if cpu is not None:
            pool.cpus[id(booking)] = cpu
        try:
            argv, mounts = self.command(cpu)
            live = await self.sandbox.start(argv, mounts=mounts, env={"PATH": "/usr/bin:/bin"}, cwd=Path("/"),
                                            scratch=False)
        finally:
            pool.cpus.pop(id(booking), None)
        if cpu is not None:
            pool.cpus[id(live)] = cpu
        pool.live.append(live)
        pool.group.start_soon(live.drain_stderr)
        return live

    async def _retire(self, pool: _Pool, live: LiveProcess, healthy: bool) -> RunResult:
        """End a kept process and reap it: a `healthy` one (every answer it owed given) is given its
        end of input and must exit cleanly, having printed nothing more, or the benchmark is void;
        any other is killed at once."""
        if live in pool.idle:
            pool.idle.remove(live)
        pool.live.remove(live)
        pool.cpus.pop(id(live), None)
        ended = await live.close(CLOSE_SECONDS if healthy else 0)
        if healthy and not ended.ok:
            pool.problems.append(f"a harness process did not exit cleanly: {_reason(ended)}")
        elif healthy and ended.stdout.strip():
            pool.problems.append(f"a harness process printed lines nobody asked for: {ended.stdout[:120]!r}")
        return ended

    async def _run_process(self, stdin: bytes, on_line: Callable[[bytes], None]) -> RunResult:
        if self.executor is not None:
            return await self.executor(self, stdin, on_line)
        argv, mounts = self.command()
        return await self.sandbox.run(
            argv, mounts=mounts, env={"PATH": "/usr/bin:/bin"}, cwd=Path("/"), timeout=self.limits.run_seconds,
            stdin=stdin, on_stdout_line=on_line, scratch=False)


def _reason(result: RunResult) -> str:
    return result.killed_reason or (f"exit code {result.returncode}: "
                                    f"{result.stderr.decode(errors='replace')[-300:]}")
