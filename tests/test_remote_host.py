"""The server on a Linux machine, the host elsewhere (macOS, Windows): a real sshd on loopback, and a
real MCP client whose server command is `ssh -T host <frontier-mcp serve>`, as README's "From macOS or
Windows" section configures it. stdio passes through ssh unchanged, so the whole loop works; this test
drives pairing, crate, compile and history through it."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

from .conftest import ROOT, call, example_source

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SSHD = shutil.which("sshd") or next((p for p in ("/usr/sbin/sshd",) if os.path.exists(p)), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def ssh_target(tmp_path: Path) -> Iterator[list[str]]:
    """An sshd on 127.0.0.1 that lets this user in with a fresh key; the ssh command line to reach it."""
    if SSHD is None or shutil.which("ssh") is None:
        pytest.skip("needs openssh-server and openssh-client (apt-get install openssh-server openssh-client)")
    if os.geteuid() != 0:
        pytest.skip("sshd here runs as root (CI does); as another user it cannot switch to the login user")
    os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege-separation directory
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / name)], check=True)
    (tmp_path / "authorized_keys").write_text((tmp_path / "client_key.pub").read_text())
    port = free_port()
    config = tmp_path / "sshd_config"
    config.write_text(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {tmp_path / 'host_key'}
AuthorizedKeysFile {tmp_path / 'authorized_keys'}
PidFile {tmp_path / 'sshd.pid'}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
""")
    sshd = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if sshd.poll() is not None:
                pytest.fail(f"sshd did not start: {sshd.stderr.read() if sshd.stderr else ''}")
            time.sleep(0.05)
        yield ["ssh", "-T", "-p", str(port), "-i", str(tmp_path / "client_key"), "-o", "BatchMode=yes",
               "-o", "StrictHostKeyChecking=no", "-o", f"UserKnownHostsFile={tmp_path / 'known_hosts'}",
               "-o", "LogLevel=ERROR", f"{os.environ.get('USER', 'root')}@127.0.0.1"]
    finally:
        sshd.terminate()
        sshd.wait(timeout=10)


async def test_a_host_reaches_the_server_over_ssh_and_runs_the_loop(ssh_target: list[str], lab_home: Path) -> None:
    home = lab_home  # the session's built lab: the harness is not built again
    cargo = shutil.which("cargo") or str(Path.home() / ".cargo" / "bin" / "cargo")
    # What the remote side runs: sshd gives it a login shell's bare environment, not this process's.
    remote = (f"env FRONTIER_HOME={home} FRONTIER_CARGO={cargo} FRONTIER_LOG_LEVEL=WARNING "
              f"PYTHONPATH={ROOT / 'src'} {sys.executable} -m frontier_mcp serve")
    params = StdioServerParameters(command=ssh_target[0], args=[*ssh_target[1:], remote],
                                   env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    async with Client(params, read_timeout_seconds=600) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert {"propose_pairing", "write_crate", "compile", "benchmark", "record_result"} <= tools
        contract = (await client.read_resource("frontier://contract")).contents[0]
        assert "trait Optimizer" in getattr(contract, "text", "")
        pairing = await call(client, "propose_pairing", {"field_a": "random matrix theory"})
        written = await call(client, "write_crate", {
            "pairing_id": pairing["pairing_id"], "name": "over_ssh", "source": example_source(),
            "statement": "The example optimizer, reached over ssh.", "mechanism": "See the source.",
            "prediction": "Compiles on the remote machine."})
        built = await call(client, "compile", {"experiment_id": written["experiment_id"]})
        for _ in range(120):  # a server still checking its lab says so
            if built["status"] != "preparing":
                break
            await anyio.sleep(2)
            built = await call(client, "compile", {"experiment_id": written["experiment_id"]})
        assert built["ok"], built
        history = await call(client, "history", {})
        assert written["experiment_id"] in [row["id"] for row in history["rows"]]
    # The lab lives on the remote side (here the same disk, written by the server ssh started).
    with sqlite3.connect(f"file:{home / 'state.db'}?mode=ro", uri=True) as db:
        assert db.execute("SELECT name FROM experiments WHERE id = ?", (written["experiment_id"],)).fetchone() == (
            "over_ssh",)
