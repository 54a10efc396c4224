"""The sandbox's limits as most users meet them: run by an unprivileged user.

CI runs as root, where the kernel ignores RLIMIT_NPROC and the server falls back to a pids cgroup
(tested by tests/test_hostile.py). This test runs the server's own sandbox profile as the
unprivileged user `.ci/run` creates, so the rlimit path is tested too.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

import pytest

from frontier_mcp.sandbox import Sandbox
from frontier_mcp.settings import Limits

USER = "frontier"


def unprivileged_user() -> str:
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user (as a normal user, every test already is one)")
    try:
        pwd.getpwnam(USER)
    except KeyError:
        pytest.skip(f"no user {USER!r} (.ci/run creates it)")
    return USER


def test_a_fork_storm_stops_at_the_process_limit_for_an_unprivileged_user() -> None:
    user = unprivileged_user()
    sandbox = Sandbox(limits=Limits(processes=24))
    # Each fork that succeeds prints its pid (a builtin: no fork); bash gives up at the limit.
    storm = 'for i in $(seq 1 200); do sleep 20 & echo "pid $!"; done'
    argv = sandbox.wrap(["/usr/bin/bash", "-c", storm], mounts=[], env={"PATH": "/usr/bin:/bin"}, cwd=Path("/tmp"))
    done = subprocess.run(["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--", *argv],
                          capture_output=True, text=True, timeout=120, cwd="/tmp", start_new_session=True)
    started = done.stdout.count("pid ")
    assert 0 < started < 24, done.stdout[-500:] + done.stderr[-500:]
    left = subprocess.run(["pgrep", "-u", user, "-f", "sleep 20"], capture_output=True, text=True)
    assert left.stdout.strip() == "", "the sandbox left processes behind"
