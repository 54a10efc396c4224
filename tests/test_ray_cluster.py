"""The Ray runner on a real cluster: a head and two worker nodes as separate processes on this machine
(`ray start --head` / `ray start --address`, each worker limited to one CPU), a benchmark through the
MCP tools over stdio, the same verdict as the local runner's number for number, a worker node killed
mid-benchmark (its task runs again on the other), and the head killed (the job ends `interrupted`).

The cluster is this test's own: its own temporary folders, free ports and authentication token, and
teardown kills exactly the processes its `ray start` commands started (never `ray stop`, which stops
every Ray process of the machine).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from .conftest import call, compiled, example_source, server_params
from .test_ray import TIMING

pytestmark = [pytest.mark.anyio, pytest.mark.slow,
              pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                                 reason="the Ray runner needs the extra: pip install -e '.[ray]'")]

STARTED = "Ray runtime started"
# How long the server's Ray driver waits for a silent head before giving up (Ray's default is 60 s).
HEAD_TIMEOUT_S = 5


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (a Ray worker may leave its node's process group, not its tree)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@dataclass
class Node:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def started(self) -> bool:
        return STARTED in self.log.read_text(errors="replace")

    def running_a_harness(self) -> bool:
        return any(b"frontier-bench" in cmdline(pid) for pid in descendants(self.process.pid))

    def kill(self) -> None:
        """SIGKILL to the node's `ray start`, its process group and everything below it: a lost machine."""
        doomed = descendants(self.process.pid)
        for kill in (lambda: os.killpg(self.process.pid, signal.SIGKILL),
                     *(lambda pid=pid: os.kill(pid, signal.SIGKILL) for pid in doomed)):
            with contextlib.suppress(ProcessLookupError):
                kill()
        self.process.wait(timeout=30)


class LocalCluster:
    """A Ray cluster of separate node processes on this machine: a head with no CPU (it schedules, the
    workers run) and worker nodes of one CPU each, pinned to a core so that two nodes do not share one."""

    def __init__(self, workers: int) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="fr-ray-"))  # short: Ray's socket paths live below it
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        # Ray's own environment for every process of this cluster, the server's driver included.
        self.env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
                    "RAY_gcs_rpc_server_reconnect_timeout_s": str(HEAD_TIMEOUT_S)}
        self.head: Node | None = None
        self.workers: list[Node] = []
        self._wanted = workers
        self._failure: BaseException | None = None
        self._starter = threading.Thread(target=self._start, daemon=True)
        self._starter.start()

    def _ray(self, name: str, args: list[str], cpu: int | None = None) -> Node:
        ray = Path(sys.executable).with_name("ray")
        argv = [str(ray) if ray.exists() else "ray", "start", "--block", "--node-ip-address", "127.0.0.1",
                "--temp-dir", str(self.root / name), "--object-store-memory", str(100 * 2**20),
                "--dashboard-agent-listen-port", str(free_port()), "--disable-usage-stats", *args]
        if cpu is not None and shutil.which("taskset"):
            argv = ["taskset", "-c", str(cpu), *argv]
        log = self.root / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       env={**os.environ, **self.env}, start_new_session=True)
        return Node(name, process, log)

    def _wait(self, nodes: list[Node], seconds: float = 90) -> None:
        deadline = time.monotonic() + seconds
        while not all(node.started() for node in nodes):
            for node in nodes:
                if node.process.poll() is not None:
                    raise RuntimeError(f"ray node {node.name} exited:\n{node.log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError("the Ray cluster did not start: "
                                   + " | ".join(node.log.read_text()[-500:] for node in nodes))
            time.sleep(0.2)

    def _start(self) -> None:
        try:
            self.head = self._ray("head", ["--head", "--num-cpus", "0", "--port", str(self.port),
                                           "--dashboard-port", str(free_port()), "--include-dashboard", "false"])
            self._wait([self.head])
            self.add_workers(self._wanted)
        except BaseException as exc:  # handed to the test that waits for the cluster
            self._failure = exc

    def add_workers(self, count: int) -> None:
        """`count` more one-CPU worker nodes, each pinned to the next core in turn."""
        cores = sorted(os.sched_getaffinity(0))
        alive = sum(node.process.poll() is None for node in self.workers)
        added = [self._ray(f"worker{len(self.workers) + i}", ["--address", self.address, "--num-cpus", "1"],
                           cpu=cores[(alive + i) % len(cores)]) for i in range(count)]
        self.workers += added
        self._wait(added)

    def wait_ready(self) -> None:
        self._starter.join()
        if self._failure is not None:
            raise self._failure

    def close(self) -> None:
        self._starter.join(timeout=120)
        for node in [*self.workers, *([self.head] if self.head else [])]:
            if node.process.poll() is None or descendants(node.process.pid):
                node.kill()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    started = LocalCluster(workers=2)
    try:
        yield started
    finally:
        started.close()


def untimed(value: Any) -> Any:
    """The report without what differs between any two runs: wall-clock figures, and whether the
    baselines came from the cache."""
    if isinstance(value, dict):
        return {k: untimed(v) for k, v in value.items() if k not in TIMING | {"baseline_cache"}}
    if isinstance(value, list):
        return [untimed(v) for v in value]
    return value


T0 = time.monotonic()


def mark(what: str) -> None:
    """Where the time went, in the output pytest shows when the test fails (CI's budget is tight)."""
    print(f"[{time.monotonic() - T0:7.1f} s] {what}", file=sys.stderr, flush=True)


def forget_quick_baselines(home: Path) -> None:
    """So that a benchmark runs every baseline too, on the runner under test."""
    for cached in (home / "cache").glob("baselines-quick-*"):
        cached.unlink()


def ray_server(home: Path, cluster: LocalCluster) -> Any:
    return server_params(home, FRONTIER_RUNNER="ray", FRONTIER_RAY_ADDRESS=cluster.address, FRONTIER_WORKERS="2",
                         **cluster.env)


async def wait_until(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await anyio.sleep(0.02)


async def finish(client: Client, job_id: str) -> dict[str, Any]:
    status = await call(client, "job_status", {"job_id": job_id, "wait_seconds": 300})
    assert status["status"] != "running", status
    return status


async def test_a_cluster_gives_the_local_verdict_and_survives_losing_a_worker(
        cluster: LocalCluster, lab_home: Path) -> None:
    # The local runner's verdict, while the cluster starts.
    async with Client(server_params(lab_home, FRONTIER_WORKERS="2"), read_timeout_seconds=600) as local:
        experiment = await compiled(local, "ray_cluster_example", example_source())
        forget_quick_baselines(lab_home)
        expected = await call(local, "benchmark", {"experiment_id": experiment, "wait_seconds": 300})
    assert expected["status"] == "done", expected
    mark("local done")
    report = expected["report"]
    assert report["baseline_cache"] == "miss"
    # The comparison covers the numbers that make the verdict: ratios, p-values, tuned rates, outcomes.
    assert all(p["ratio"] > 0 and 0 <= p["p_holm"] <= 1 and p["outcome"] and p["candidate"]["lr"] > 0
               and all(b["lr"] > 0 for b in p["baselines"]) for p in report["problems"]), report

    await anyio.to_thread.run_sync(cluster.wait_ready)
    mark("cluster ready")
    async with Client(ray_server(lab_home, cluster), read_timeout_seconds=600) as remote:
        forget_quick_baselines(lab_home)  # the baselines run on the cluster too
        on_ray = await call(remote, "benchmark", {"experiment_id": experiment, "wait_seconds": 300})
        assert on_ray["status"] == "done", on_ray
        assert on_ray["report"]["baseline_cache"] == "miss"
        assert untimed(on_ray["report"]) == untimed(report)
        mark("ray done")

        # A worker node dies while it runs a chunk: Ray runs that task again on the other node.
        started = await call(remote, "benchmark", {"experiment_id": experiment, "wait_seconds": 0})
        victim = cluster.workers[0]
        await wait_until(victim.running_a_harness, 120, "worker0 runs a harness process")
        victim.kill()
        mark("worker killed")
        still = await call(remote, "job_status", {"job_id": started["job_id"], "wait_seconds": 0})
        assert still["status"] == "running", still
        survived = await finish(remote, started["job_id"])
        assert survived["status"] == "done", survived
        mark("survived")
        # Only the candidate ran this time (the baselines came from the cache the cluster wrote).
        assert survived["report"]["baseline_cache"] == "hit"
        assert untimed(survived["report"]) == {**untimed(report), "trials": survived["report"]["trials"]}
        assert cluster.workers[1].process.poll() is None


async def test_losing_the_head_interrupts_the_job_and_archives_nothing(cluster: LocalCluster, lab_home: Path) -> None:
    await anyio.to_thread.run_sync(cluster.wait_ready)
    alive = [node for node in cluster.workers if node.process.poll() is None]
    assert alive and cluster.head is not None
    db = lab_home / "state.db"

    def archived() -> tuple[int, int]:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return (conn.execute("SELECT COUNT(*) FROM benchmark_runs").fetchone()[0],
                    conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0])

    async with Client(ray_server(lab_home, cluster), read_timeout_seconds=600) as remote:
        experiment = await compiled(remote, "ray_cluster_head_lost", example_source())
        before = archived()
        forget_quick_baselines(lab_home)
        started = await call(remote, "benchmark", {"experiment_id": experiment, "wait_seconds": 0})
        await wait_until(lambda: any(node.running_a_harness() for node in alive), 120, "a worker runs a harness")
        cluster.head.kill()
        mark("head killed")
        ended = await finish(remote, started["job_id"])
        assert ended["status"] == "interrupted", ended
        mark("interrupted")
        assert "Ray cluster at " + cluster.address in ended["error"] and "was lost" in ended["error"], ended
        assert "none of its results were recorded" in ended["error"]
        assert ended["report"] is None and ended["benchmark_run_id"] is None
        # The server outlived its cluster and still answers.
        assert (await call(remote, "history", {}))
    assert archived() == before
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        status, error = conn.execute("SELECT status, error FROM jobs WHERE id = ?", (started["job_id"],)).fetchone()
    assert status == "interrupted" and "was lost" in error
    assert not list((lab_home / "cache").glob("baselines-quick-*")), "a partial baseline cache was written"
