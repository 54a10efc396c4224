"""Shared by the benches: a warmed temporary lab, statistics, the machine, a stdio MCP client.

Every bench builds its own lab in a temporary folder (the harness is built once by
`frontier-mcp doctor`, as a user's lab would be) and reuses it for all its measurements.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "rust_scaffold" / "template" / "optimizer.rs"
# The floor of a server's start-up: the same MCP SDK, one tool, stdio.
MINIMAL_SERVER = """
from mcp.server.mcpserver import MCPServer
server = MCPServer("minimal")
@server.tool()
def ping() -> str:
    return "pong"
server.run()
"""


def example_source(variant: int | None = None) -> str:
    """The shipped example optimizer; a variant changes one constant, so it is a new candidate."""
    text = EXAMPLE.read_text()
    if variant is None:
        return text
    return text.replace("damping: 0.5,", f"damping: {0.5 + variant * 1e-4!r},", 1)


# -- statistics --------------------------------------------------------------------------------

def median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    if n == 0:
        return math.nan
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def quantile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    if not s:
        return math.nan
    pos = q * (len(s) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def bootstrap_ratio_ci(num: list[float], den: list[float], *, paired: bool = True, reps: int = 4000,
                       seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap of median(num) / median(den); pairs resampled together if `paired`."""
    rng = random.Random(seed)
    n, m = len(num), len(den)
    ratios = []
    for _ in range(reps):
        if paired:
            idx = [rng.randrange(n) for _ in range(n)]
            a = [num[i] for i in idx]
            b = [den[i] for i in idx]
        else:
            a = [num[rng.randrange(n)] for _ in range(n)]
            b = [den[rng.randrange(m)] for _ in range(m)]
        ratios.append(median(a) / median(b))
    alpha = (1 - level) / 2
    return quantile(ratios, alpha), quantile(ratios, 1 - alpha)


def linear_fit(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """Least squares y = a + b x; returns (a, b, r^2)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    b = sxy / sxx if sxx else math.nan
    a = my - b * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - a - b * x) ** 2 for x, y in zip(xs, ys, strict=True))
    return a, b, (1 - ss_res / ss_tot) if ss_tot else math.nan


def fmt_s(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


# -- the machine -------------------------------------------------------------------------------

SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512dq", "avx512vl", "avx512bw", "neon", "asimd", "sve")


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"cores": os.cpu_count(), "python": sys.version.split()[0]}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for key in ("Model name", "L3 cache"):
            m = re.search(rf"^{key}:\s*(.+)$", lscpu, re.M)
            if m:
                info[key.lower().replace(" ", "_")] = m.group(1).strip()
    except OSError:
        pass
    with suppress(OSError):
        # The vector units decide the kernels' ceilings: the same model name can hide AVX2 or AVX-512.
        flags = re.search(r"^flags\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        if flags:
            info["simd"] = " ".join(f for f in flags.group(1).split() if f in SIMD_FLAGS)
    try:
        mem = Path("/proc/meminfo").read_text().split("\n")[0].split()[1]
        info["memory_gib"] = round(int(mem) / 2**20, 1)
    except (OSError, IndexError, ValueError):
        pass
    with suppress(OSError):
        info["rustc"] = subprocess.run(["rustc", "--version"], capture_output=True, text=True,
                                       timeout=30).stdout.strip()
    with suppress(OSError):
        info["load_avg_1m"] = os.getloadavg()[0]
    return info


def header(title: str) -> None:
    print(f"== {title}")
    print("machine: " + json.dumps(machine()))
    sys.stdout.flush()


def verdict(name: str, figure: str, target: str, met: bool | None, baseline: str = "") -> None:
    state = "n/a" if met is None else ("MET" if met else "NOT MET")
    line = f"RESULT {name}: {figure} (target {target}) -> {state}"
    if baseline:
        line += f"; baseline: {baseline}"
    print(line)
    sys.stdout.flush()


# -- labs --------------------------------------------------------------------------------------

def warm_lab(home: Path, env: dict[str, str] | None = None) -> float:
    """Install the scaffold and build the harness once (`frontier-mcp doctor`); seconds taken."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "frontier_mcp", "--home", str(home), "doctor"],
                          capture_output=True, text=True, timeout=900,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})
    if done.returncode != 0:
        raise SystemExit(f"doctor failed in {home}:\n{done.stdout}\n{done.stderr}")
    return time.perf_counter() - started


@contextmanager
def temp_lab(keep: bool = False, warm: bool = True) -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="frontier-bench-"))
    home = base / "lab"
    try:
        if warm:
            seconds = warm_lab(home)
            print(f"lab: {home} (scaffold installed and harness built in {seconds:.1f} s, once)")
        yield home
    finally:
        if keep:
            print(f"kept lab: {home}")
        else:
            shutil.rmtree(base, ignore_errors=True)


def server_env(home: Path, **extra: str) -> dict[str, str]:
    """What hosts give a server: PATH and HOME, little else."""
    env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
           "HOME": os.environ.get("HOME", "/root"), "FRONTIER_HOME": str(home),
           "FRONTIER_LOG_LEVEL": "WARNING"}
    env.update(extra)
    return env


def server_params(home: Path, **extra: str) -> Any:
    from mcp import StdioServerParameters

    return StdioServerParameters(command=sys.executable, args=["-m", "frontier_mcp", "serve"],
                                 env=server_env(home, **extra), cwd="/")


async def call(client: Any, name: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(name, args)
    if result.is_error:
        text = " ".join(getattr(c, "text", "") for c in result.content)
        raise RuntimeError(f"{name} failed: {text[:1000]}")
    return result.structured_content or {}


def children_of(pid: int) -> list[int]:
    """Direct children of `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.append(int(entry.name))
    return found


def server_pid() -> int:
    """The `frontier_mcp serve` process this bench started (a child of this process)."""
    for pid in children_of(os.getpid()):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"frontier_mcp" in cmdline and b"serve" in cmdline:
            return pid
    raise RuntimeError("the server process was not found among this process's children")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")
