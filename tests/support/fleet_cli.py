"""A fleet as a user starts it, for the tests that drive the CLI: 'profiler fleet up' (a Ray head
with token authentication on the loopback address 127.0.0.2, no device) and one 'profiler fleet
join' per device (a separate Ray node labelled with its name). ``running_fleet`` stops every Ray
process of it by process id ('profiler fleet down'), even when a test fails.

Only the CLI's own processes import Ray: importing it here would fix its authentication settings
for the whole pytest process.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

LOOPBACK = "127.0.0.2"
HUNG_S = 600.0  # only stops a hung test; far beyond what a busy machine needs


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def sigint_default() -> None:
    # A shell running the suite in the background hands its children SIGINT ignored, and Python
    # keeps an inherited SIG_IGN: the coordinator would never see the Ctrl-C.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def profiler_cli(args: list[str], env: dict, cwd: Path, timeout: float = HUNG_S) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "profiler", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, check=False)


@contextlib.contextmanager
def fleet_run(args: list[str], env: dict, cwd: Path, **popen):
    """'profiler fleet run ARGS' in the background (stdout and stderr piped, as text); killed and
    reaped on leaving the block if it is still running, so a failing test leaves no coordinator."""
    proc = subprocess.Popen([sys.executable, "-m", "profiler", "fleet", "run", *args], env=env, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def wait_until(predicate, what: str, run: subprocess.Popen | None = None, every_s: float = 0.5) -> None:
    """Poll ``predicate`` until it holds; fail if ``run`` (when given) ends first, or after HUNG_S,
    which only stops a hung test."""
    deadline = time.monotonic() + HUNG_S
    while not predicate():
        if run is not None and run.poll() is not None:
            raise AssertionError(f"the run ended (exit {run.returncode}) before {what}: {run.stderr.read()}")
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(every_s)


def join(name: str, fleet: dict) -> None:
    """'profiler fleet join' of one more device node (a device that comes back joins the same way).
    Under heavy load Ray's raylet can abort at start-up because its dashboard agent has not written
    its port file in time ("Timed out waiting for file .../metrics_agent_port_...", seen once in five
    runs under tools/busy): 'ray start failed' then, and a user would join again; so does this, once."""
    for attempt in (1, 2):
        joined = profiler_cli(["fleet", "join", fleet["address"], "--name", name, "--address", LOOPBACK],
                              {**fleet["env"], "PROFILER_FLEET_TOKEN": fleet["token"]}, fleet["base"])
        if joined.returncode == 0 or attempt == 2 or "ray start failed" not in joined.stderr:
            break
    assert joined.returncode == 0, joined.stdout + joined.stderr


@contextlib.contextmanager
def running_fleet(base: Path, devices: list[str]):
    """A head (coordinator only) and one joined node per device, in a private cache and store."""
    from profiler.fleet import cluster
    from support.emulation import skip_ray_under_emulation

    skip_ray_under_emulation()

    base.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PROFILER_CACHE": str(base / "cache"), "PROFILER_REPORTS": str(base / "reports")}
    for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "PROFILER_DB"):
        env.pop(key, None)  # the CLI sets up its own token; the store is the one under PROFILER_REPORTS
    port = free_port()
    try:
        up = profiler_cli(["fleet", "up", "--address", LOOPBACK, "--port", str(port)], env, base)
        assert up.returncode == 0, up.stderr
        token = re.search(r"PROFILER_FLEET_TOKEN=(\S+)", up.stdout).group(1)
        fleet = {"env": env, "base": base, "port": port, "address": f"{LOOPBACK}:{port}", "token": token}
        for name in devices:
            join(name, fleet)
        yield fleet
    finally:
        profiler_cli(["fleet", "down", "--port", str(port)], env, base)
        assert not cluster.session_processes(port), "the fleet's Ray processes outlived the test"


def stored(db: Path, run_id: str | None = None) -> list[tuple[str, str]]:
    """(device, test) of each row committed so far (of ``run_id``, or of every run); empty while
    the store is still being created."""
    if not db.exists():
        return []
    where, args = ("WHERE run_id=?", (run_id,)) if run_id else ("", ())
    try:
        with sqlite3.connect(db) as conn:
            rows = conn.execute(f"SELECT test_key, test FROM rows {where} ORDER BY id", args).fetchall()
            return [(key.split("|", 1)[0], test) for key, test in rows]
    except sqlite3.OperationalError:
        return []


def run_status(db: Path, run_id: str) -> str | None:
    with sqlite3.connect(db) as conn:
        found = conn.execute("SELECT status FROM runs WHERE run_id=?", (run_id,)).fetchone()
    return found[0] if found else None
