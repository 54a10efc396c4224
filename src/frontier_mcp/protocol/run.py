"""A whole benchmark: the candidate, the baselines (cached per harness version), timing and the verdict."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

from .harness import Harness, HarnessError
from .judging import judge
from .probe import probe_rediscovery
from .report import BenchmarkReport
from .suites import CANDIDATE, Suite
from .tasks import task_group
from .timing import time_against_adam
from .tuning import annotate_settings, baseline_space, run_optimizer, runs_per_optimizer

Progress = Callable[[int, int, str], None]


async def benchmark(harness: Harness, suite: Suite, *, cache_dir: Path, toolchain_version: str,
                    provenance: dict[str, Any], progress: Progress | None = None,
                    switched_off: tuple[str, ...] = ()) -> tuple[
                        BenchmarkReport, list[dict[str, Any]]]:
    """Run the candidate (and the baselines unless cached); return the report and candidate trials."""
    started = time.perf_counter()
    # What does not depend on the candidate's runs overlaps with them: the harness's `list` and the
    # candidate's knobs are two sandbox starts, the rediscovery probe two harness processes that fill
    # the gaps the tuning's barriers leave; judging (Python) runs beside the timing pairs (a harness
    # process). Every number is the one the sequential order gave: nothing here feeds another.
    found: dict[str, Any] = {}

    async def list_harness() -> None:
        found["info"] = await harness.version()

    async def read_knobs() -> None:
        found["declared"] = await harness.declared()

    async with task_group() as group:
        group.start_soon(list_harness)
        group.start_soon(read_knobs)
    info, declared = found["info"], found["declared"]
    harness_version = str(info.get("harness_version", "unknown"))
    known = set(info.get("problems_names") or [p["name"] for p in info.get("problems", [])])
    missing = [p.name for p in suite.problems if known and p.name not in known]
    if missing:
        raise HarnessError(f"the harness lacks problems {missing}; the lab's scaffold is out of date")
    # libm picks code paths by CPU, so results are bit-identical per CPU model, not across them.
    secret_id = hashlib.sha256(harness.secret or b"").hexdigest()[:16]
    cache_key = hashlib.sha256(f"{harness_version}|{toolchain_version}|{suite.key()}|{secret_id}|"
                               f"{provenance.get('rustflags')}|{machine_info()['cpu']}".encode()).hexdigest()[:20]
    cache_file = cache_dir / f"baselines-{suite.name}-{cache_key}.json"
    baseline_trials = read_baselines(cache_file)
    optimizers = [CANDIDATE] + ([] if baseline_trials is not None else list(suite.baselines))
    total = runs_per_optimizer(suite) * len(optimizers)
    done = 0

    def tick(_record: dict[str, Any]) -> None:
        nonlocal done, total
        done += 1
        total = max(total, done)  # the grid's extension adds runs where a problem needs it
        if progress is not None:
            progress(done, total, f"{done}/{total} harness runs")

    async def probe() -> None:
        # Curves can only say "the same to 1e-3" and chaos blurs even that; a replay of a fixed gradient
        # sequence names the baseline (and its settings) a candidate reproduces, whatever it is called.
        found["probed"] = await probe_rediscovery(harness, suite.baselines)

    # One set of harness processes serves every call of this benchmark (see Harness.session).
    async with harness.session():
        async with task_group() as group:
            if not switched_off and harness.candidate is not None:
                group.start_soon(probe)
            candidate_trials = await run_optimizer(harness, CANDIDATE, suite, tick, knobs=declared["knobs"],
                                                   switched_off=switched_off)
            if baseline_trials is None:
                baseline_trials = []
                for name in suite.baselines:
                    baseline_trials += await run_optimizer(harness, name, suite, tick, space=baseline_space(info, name))
                write_baselines(cache_file, baseline_trials)
                cache_state = "miss"
            else:
                cache_state = "hit"
        assert baseline_trials is not None

        async def timing() -> None:
            found["timing"] = (None if switched_off else
                               await time_against_adam(harness, suite, candidate_trials, baseline_trials))

        async with task_group() as group:
            group.start_soon(timing)
            trials = done
            report = await anyio.to_thread.run_sync(lambda: judge(
                suite, candidate_trials, baseline_trials, harness_version=harness_version,
                trials=trials, cache_state=cache_state, seconds=0.0,
                provenance={**provenance, "harness_version": harness_version,
                            "machine": machine_info(), "tuning_seeds": list(suite.tuning_seeds),
                            "eval_seeds": list(suite.eval_seeds), "lr_grid": list(suite.lr_grid),
                            "suite_key": suite.key(), "instances_secret_sha256": secret_id}))
            annotate_settings(report, candidate_trials + baseline_trials)
    probed, timed = found.get("probed"), found["timing"]
    if probed is not None:
        report.rediscovery_of = probed["baseline"]
        report.rediscovery = probed
    if timed is not None:
        report.time_ratio_vs_adam, report.timing = timed["ratio"], timed
    report.seconds = time.perf_counter() - started
    return report, candidate_trials


# The baseline cache files (several MB of JSON) as this process last parsed them: path -> (the file's
# (mtime_ns, size, inode) when read, its trials). A server parses each once; a file replaced by another
# server (atomic rename: a new inode) or edited is read again.
_PARSED: OrderedDict[Path, tuple[tuple[int, int, int], list[dict[str, Any]]]] = OrderedDict()
_PARSED_MAX = 8
_PARSED_LOCK = threading.Lock()


def _stamp(stat: os.stat_result) -> tuple[int, int, int]:
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


def _remember(cache_file: Path, stamp: tuple[int, int, int], trials: list[dict[str, Any]]) -> None:
    # Only the evaluation rows: judging, timing and the settings read nothing else of the baselines
    # (their ~4,400 tuning rows of `standard` made each hit copy 5,300 rows, ~30 ms under load).
    evaluated = [row for row in trials if row.get("phase") == "eval"]
    with _PARSED_LOCK:
        _PARSED[cache_file] = (stamp, evaluated)
        _PARSED.move_to_end(cache_file)
        while len(_PARSED) > _PARSED_MAX:
            _PARSED.popitem(last=False)


def read_baselines(cache_file: Path) -> list[dict[str, Any]] | None:
    """The cached baselines' evaluation rows (all a benchmark reads of them; the file keeps their
    tuning rows too), or None (no file, or one that does not parse). Parsed once per process while
    the file is unchanged; each call gets its own row dicts."""
    try:
        stamp = _stamp(cache_file.stat())
    except OSError:
        return None
    with _PARSED_LOCK:
        held = _PARSED.get(cache_file)
    if held is None or held[0] != stamp:
        try:
            text = cache_file.read_bytes()
            stamp = _stamp(cache_file.stat())  # as read: a concurrent replace shows up next time
            trials = json.loads(text)
        except (OSError, ValueError):
            return None
        if not isinstance(trials, list) or not all(isinstance(row, dict) for row in trials):
            return None
        _remember(cache_file, stamp, trials)
        with _PARSED_LOCK:
            held = _PARSED[cache_file]
    return [dict(row) for row in held[1]]


def write_baselines(cache_file: Path, trials: list[dict[str, Any]]) -> None:
    """Write the cache atomically (a temporary file renamed over it) and keep it parsed in memory."""
    tmp = cache_file.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(trials))
    tmp.replace(cache_file)
    with contextlib.suppress(OSError):
        _remember(cache_file, _stamp(cache_file.stat()), [dict(row) for row in trials])


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "system": platform.system(), "python": platform.python_version()}
