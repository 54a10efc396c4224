"""`frontier-mcp serve --http` as a user starts it, for the tests that talk to it over streamable HTTP."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .conftest import bare_env


@dataclass
class HttpServer:
    url: str
    stdout: Path
    stderr: Path
    returncode: int | None = None


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def http_server(home: Path, logs: Path, **env: str) -> Iterator[HttpServer]:
    """The server on a free loopback port with a host's bare environment, from when it accepts connections
    until it is stopped with Ctrl-C (SIGINT). Its output goes to files in `logs`: a pipe nobody reads would
    fill up and stall it."""
    port = free_loopback_port()
    server = HttpServer(url=f"http://127.0.0.1:{port}/mcp", stdout=logs / "stdout.txt", stderr=logs / "stderr.txt")
    with server.stdout.open("w") as out, server.stderr.open("w") as err:
        process = subprocess.Popen([sys.executable, "-m", "frontier_mcp", "serve", "--http", f"127.0.0.1:{port}"],
                                   env=bare_env(home, **env), cwd="/", stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=err, start_new_session=True)
        try:
            deadline = time.monotonic() + 120  # imports alone take seconds on a loaded machine
            while not accepts_connections(port):
                assert process.poll() is None, f"the server exited {process.returncode}: {server.stderr.read_text()}"
                assert time.monotonic() < deadline, f"no connection in 120 s: {server.stderr.read_text()}"
                time.sleep(0.2)
            yield server
        finally:
            process.send_signal(signal.SIGINT)
            try:
                server.returncode = process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise AssertionError(f"Ctrl-C did not stop the server in 30 s: {server.stderr.read_text()}") from None


def accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False
