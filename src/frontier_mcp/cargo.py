"""Build a candidate crate with cargo inside the sandbox, and read rustc's diagnostics.

cargo runs `--offline --frozen` with a CARGO_HOME the server owns, so neither the network nor
the user's cargo configuration can change a build. Inside the sandbox CARGO_HOME is a fresh
folder in the sandbox's private /tmp, and cargo starts in /tmp: cargo reads `.cargo/config.toml`
from its working directory's ancestors and from CARGO_HOME, never from the manifest's folder,
so a config file dropped next to a crate (or in `candidates/`) cannot swap the linker or add flags.
Diagnostics come from `--message-format=json`, one object per line, and are mapped back to the model's own file.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from .sandbox import Mount, Sandbox
from .scaffold import Lab

MODEL_FILE = "optimizer.rs"
# A candidate binary links only frontier-core (~0.6 MB); a compile that produces far more (huge
# literals, generics blown up on purpose) is refused and its output deleted, so it cannot fill the disk.
MAX_BINARY_BYTES = 32 * 1024 * 1024
MAX_DIAGNOSTICS = 20
MAX_RENDERED = 2500


class Diagnostic(BaseModel):
    level: str = Field(description="error or warning")
    message: str
    code: str | None = Field(None, description="rustc's error code, e.g. E0308")
    file: str = Field(description="optimizer.rs for the model's file; other files belong to the harness")
    line: int | None = Field(None, description="1-based line in `file`")
    column: int | None = Field(None, description="1-based column in `file`")
    rendered: str = Field(description="rustc's own rendering, with the source snippet")


@dataclass(frozen=True)
class Toolchain:
    cargo: Path
    rustc: Path
    sysroot: Path
    version: str

    @classmethod
    def discover(cls, cargo: Path) -> Toolchain:
        """Resolve the real toolchain behind a (possibly rustup proxy) cargo, outside the sandbox."""
        proxy_rustc = cargo.parent / "rustc"
        rustc_cmd = str(proxy_rustc) if proxy_rustc.exists() else "rustc"
        sysroot = Path(subprocess.run([rustc_cmd, "--print", "sysroot"], capture_output=True, text=True,
                                      check=True, timeout=60).stdout.strip())
        real_cargo = sysroot / "bin" / "cargo"
        real_rustc = sysroot / "bin" / "rustc"
        version = subprocess.run([str(real_rustc), "--version"], capture_output=True, text=True,
                                 check=True, timeout=60).stdout.strip()
        return cls(cargo=real_cargo if real_cargo.exists() else cargo, rustc=real_rustc,
                   sysroot=sysroot, version=version)


@dataclass
class BuildOutcome:
    ok: bool
    seconds: float
    diagnostics: list[Diagnostic]
    errors: int
    warnings: int
    binary: Path | None
    note: str | None = None


SANDBOX_CARGO_HOME = "/tmp/cargo-home"


def build_env(lab: Lab, toolchain: Toolchain, *, native_cpu: bool, jobs: int,
              sandboxed: bool = True) -> dict[str, str]:
    env = {
        "PATH": f"{toolchain.sysroot / 'bin'}:/usr/bin:/bin",
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "CARGO_HOME": SANDBOX_CARGO_HOME if sandboxed else str(lab.cargo_home),
        "CARGO_TARGET_DIR": str(lab.target),
        "RUSTC": str(toolchain.rustc),
        "CARGO_TERM_COLOR": "never",
        "CARGO_BUILD_JOBS": str(jobs),
        "CARGO_INCREMENTAL": "0",
    }
    if native_cpu:
        env["RUSTFLAGS"] = "-C target-cpu=native"
    return env


async def build_crate(lab: Lab, name: str, toolchain: Toolchain, sandbox: Sandbox, *, timeout: float,
                      native_cpu: bool, jobs: int, frozen: bool = True) -> BuildOutcome:
    crate = lab.crate_dir(name)
    argv = [str(toolchain.cargo), "build", "--release", "--offline", "--message-format=json",
            "--manifest-path", str(crate / "Cargo.toml")]
    if frozen:
        argv.insert(4, "--frozen")
    mounts = [Mount(toolchain.sysroot), Mount(lab.workspace), Mount(crate, writable=not frozen),
              Mount(lab.target, writable=True)]
    if not sandbox.enabled:
        mounts.append(Mount(lab.cargo_home, writable=True))
    env = build_env(lab, toolchain, native_cpu=native_cpu, jobs=jobs, sandboxed=sandbox.enabled)
    # cwd: never the crate's folder or the lab (cargo would read a .cargo/config.toml found there).
    cwd = Path("/tmp") if sandbox.enabled else lab.cargo_home
    result = await sandbox.run(argv, mounts=mounts, env=env, cwd=cwd, timeout=timeout)
    diagnostics, finished_ok = parse_messages(result.stdout, crate=crate, workspace=lab.workspace)
    errors = sum(d.level == "error" for d in diagnostics)
    warnings = sum(d.level == "warning" for d in diagnostics)
    ok = result.ok and finished_ok and errors == 0
    note = None
    if result.timed_out or result.killed_reason:
        note = f"the build was stopped: {result.killed_reason}"
    elif not ok and errors == 0:
        stderr = result.stderr.decode(errors="replace")
        killed = re.search(r"\(signal: \d+, (SIG[A-Z]+)", stderr)
        if killed or "memory allocation of" in stderr:
            how = f"killed by {killed.group(1)}" if killed else "out of memory"
            limits = sandbox.limits
            note = (f"the build was stopped: the compiler was {how}, most likely at a sandbox limit (memory "
                    f"{limits.memory_mb} MiB, CPU {limits.cpu_seconds} s, {limits.processes} processes). Reduce "
                    "compile-time work: macro expansion, const evaluation, huge literals.")
        else:
            tail = stderr.strip().splitlines()[-8:]
            note = "cargo failed without a compiler diagnostic: " + " | ".join(line[:300] for line in tail)
    if ok and lab.binary(name).stat().st_size > MAX_BINARY_BYTES:
        size = lab.binary(name).stat().st_size
        discard_binary(lab, name)
        ok, note = False, (f"the build produced a {size >> 20} MiB binary; the limit is {MAX_BINARY_BYTES >> 20} MiB "
                           "(an optimizer needs well under 1 MiB): remove large constant tables or generated code")
    binary = lab.binary(name) if ok else None
    return BuildOutcome(ok=ok, seconds=result.seconds, diagnostics=diagnostics[:MAX_DIAGNOSTICS],
                        errors=errors, warnings=warnings, binary=binary, note=note)


def discard_binary(lab: Lab, name: str) -> None:
    """Delete a candidate's binary and cargo's copies of it from the shared target dir."""
    release = lab.target / "release"
    for path in [lab.binary(name), *(release / "deps").glob(f"{lab.package_name(name)}-*")]:
        path.unlink(missing_ok=True)


async def build_harness(lab: Lab, toolchain: Toolchain, sandbox: Sandbox, *, timeout: float, native_cpu: bool,
                        jobs: int) -> tuple[Path | None, str | None]:
    """Build the lab's trusted harness (`frontier-bench`, no candidate code) from the lab's scaffold
    and install it by hash; the installed binary, or None and what went wrong."""
    manifest = lab.workspace / "Cargo.toml"
    argv = [str(toolchain.cargo), "build", "--release", "--offline", "--frozen", "--message-format=json",
            "-p", "frontier-bench", "--bin", "frontier-bench", "--manifest-path", str(manifest)]
    mounts = [Mount(toolchain.sysroot), Mount(lab.workspace), Mount(lab.target, writable=True)]
    if not sandbox.enabled:
        mounts.append(Mount(lab.cargo_home, writable=True))
    env = build_env(lab, toolchain, native_cpu=native_cpu, jobs=jobs, sandboxed=sandbox.enabled)
    cwd = Path("/tmp") if sandbox.enabled else lab.cargo_home
    result = await sandbox.run(argv, mounts=mounts, env=env, cwd=cwd, timeout=timeout)
    if not result.ok or not lab.built_harness().exists():
        diagnostics, _ = parse_messages(result.stdout, crate=lab.workspace, workspace=lab.workspace)
        detail = "; ".join(d.message for d in diagnostics[:3]) or result.killed_reason or \
            result.stderr.decode(errors="replace").strip()[-400:]
        return None, f"the harness failed to build: {detail}"
    return lab.install_harness(), None


def parse_messages(stdout: bytes, *, crate: Path, workspace: Path) -> tuple[list[Diagnostic], bool]:
    """Diagnostics from cargo's JSON lines, and whether the build reported success."""
    diagnostics: list[Diagnostic] = []
    finished_ok = False
    for raw in stdout.splitlines():
        try:
            message = json.loads(raw)
        except ValueError:
            continue
        if message.get("reason") == "build-finished":
            finished_ok = bool(message.get("success"))
        if message.get("reason") != "compiler-message":
            continue
        diagnostic = to_diagnostic(message.get("message") or {}, crate=crate, workspace=workspace)
        if diagnostic is not None:
            diagnostics.append(diagnostic)
    diagnostics.sort(key=lambda d: (d.level != "error", d.file != MODEL_FILE, d.line or 0))
    return diagnostics, finished_ok


def to_diagnostic(message: dict[str, Any], *, crate: Path, workspace: Path) -> Diagnostic | None:
    level = message.get("level", "")
    text = message.get("message", "")
    if level not in {"error", "warning"}:
        return None
    spans = message.get("spans") or []
    if not spans and (text.startswith("aborting due to") or "warning emitted" in text
                      or "warnings emitted" in text):
        return None
    primary = next((s for s in spans if s.get("is_primary")), spans[0] if spans else None)
    file, line, column = "", None, None
    if primary is not None:
        file = display_path(primary.get("file_name", ""), crate=crate, workspace=workspace)
        line, column = primary.get("line_start"), primary.get("column_start")
    rendered = clean_rendered(message.get("rendered") or text, crate=crate, workspace=workspace)
    code = (message.get("code") or {}).get("code")
    return Diagnostic(level=level, message=text, code=code, file=file, line=line, column=column,
                      rendered=rendered)


def display_path(file_name: str, *, crate: Path, workspace: Path) -> str:
    path = Path(file_name)
    if path.name == MODEL_FILE and (not path.is_absolute() or path.parent == crate / "src"):
        return MODEL_FILE
    if path.name == "main.rs" and (not path.is_absolute() or path.parent == crate / "src"):
        return "main.rs (server glue: check that `pub fn build() -> impl Optimizer + 'static` exists)"
    if str(path).startswith(str(workspace)):
        return "frontier/" + str(path.relative_to(workspace))
    return path.name


def clean_rendered(rendered: str, *, crate: Path, workspace: Path) -> str:
    text = rendered.replace(str(crate / "src") + "/", "").replace("src/" + MODEL_FILE, MODEL_FILE)
    text = text.replace(str(workspace) + "/", "frontier/")
    if len(text) > MAX_RENDERED:
        text = text[:MAX_RENDERED] + "\n... (cut)"
    return text


def file_sha256(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None
