"""``fleet up`` and ``fleet join``: a Ray head on the coordinator, a labelled Ray node per device.

Both are ``ray start`` with the settings the fleet relies on: token authentication, the address
the user named (never a default of 0.0.0.0), no dashboard, a small object store (models are
streamed in chunks, rows are small), and on a device one profiling slot plus the device label.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from profiler.errors import UserError
from profiler.fleet import DEVICE_LABEL, SLOT_RESOURCE
from profiler.fleet import connection as conn

# Ray's lower limit is 75 MiB; 200 MB holds many 4 MiB model chunks and leaves a Pi its RAM.
OBJECT_STORE_BYTES = 200 * 1000 * 1000
# Ray sets OMP_NUM_THREADS in its workers (1 for a task that claims no CPU); the device task puts
# back what the user had when the node started, so the measured child sees the user's environment.
ORIGINAL_OMP_ENV = "PROFILER_FLEET_OMP_NUM_THREADS"
NAME_PATTERN = r"[A-Za-z0-9]([A-Za-z0-9_.\-]{0,61}[A-Za-z0-9])?"  # a Ray (Kubernetes-style) label value


def check_device_name(name: str) -> str:
    if not re.fullmatch(NAME_PATTERN, name or ""):
        raise UserError(f"device name '{name}' must be 1-63 letters, digits, '-', '_' or '.', starting and ending "
                        "with a letter or digit (e.g. pi5-kitchen)")
    return name


def ray_executable() -> str:
    """The ``ray`` command of the Python that runs the profiler (so versions match)."""
    beside = Path(sys.executable).parent / "ray"
    found = str(beside) if beside.exists() else shutil.which("ray")
    if not found:
        conn.require_ray()
        raise UserError("the 'ray' command is missing next to this Python; reinstall with pip install -e '.[fleet]'")
    return found


def device_args(name: str) -> list[str]:
    """The ``ray start`` arguments that make a node a device: one slot, and its name as a label."""
    return [f"--resources={json.dumps({SLOT_RESOURCE: 1})}", f"--labels={DEVICE_LABEL}={check_device_name(name)}"]


@dataclass
class Started:
    argv: list[str]
    output: str


def page_size_env() -> dict[str, str]:
    """Ray preloads its bundled jemalloc into the raylet and GCS; a jemalloc built for 4 KiB pages
    aborts ("Unsupported system page size") on kernels with larger pages, such as the Raspberry Pi
    5's default 16 KiB kernel. An empty RAY_JEMALLOC_LIB_PATH makes Ray skip the preload."""
    if os.sysconf("SC_PAGE_SIZE") > 4096 and "RAY_JEMALLOC_LIB_PATH" not in os.environ:
        return {"RAY_JEMALLOC_LIB_PATH": ""}
    return {}


def _ray_start(args: list[str], env: dict[str, str]) -> Started:
    argv = [ray_executable(), "start", *args, "--disable-usage-stats", f"--object-store-memory={OBJECT_STORE_BYTES}"]
    # Ray starts its workers at niceness 15; the measuring child would inherit it and lose the CPU
    # to anything else running, so the fleet's workers keep the user's priority.
    env = {**os.environ, **page_size_env(), ORIGINAL_OMP_ENV: os.environ.get("OMP_NUM_THREADS", ""),
           "RAY_worker_niceness": "0", **env}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        text = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()
        # Ray prints a banner, then the reason; the last line that says something is the reason
        reason = next((line for line in reversed(text) if line.strip() and not set(line.strip()) <= set("-=")), text[-1])
        raise UserError(f"ray start failed: {reason.strip()[:300]}")
    return Started(argv, done.stdout)


def up(bind_address: str, port: int = conn.DEFAULT_PORT, device_name: str | None = None) -> tuple[conn.CoordinatorState, str]:
    """Start the Ray head bound to ``bind_address``; return its state and the join command to print."""
    if not bind_address or bind_address in ("0.0.0.0", "::"):
        raise UserError("fleet up needs the address of one interface (--address 192.168.1.20); "
                        "binding every interface (0.0.0.0) is refused: Ray's ports run code for whoever reaches them")
    conn.check_not_localhost(bind_address)
    conn.require_ray()
    token_path = conn.new_token_file(conn.fleet_dir() / "coordinator")
    args = ["--head", f"--node-ip-address={bind_address}", f"--port={port}", "--include-dashboard=false"]
    if device_name:  # the coordinator can be a device too (one laptop profiling itself and others)
        args += device_args(device_name)
    _ray_start(args, conn.auth_env(token_path))
    state = conn.CoordinatorState(address=f"{bind_address}:{port}", token_path=str(token_path))
    conn.save_state(state)
    token = token_path.read_text().strip()
    join = f"{conn.TOKEN_ENV}={token} profiler fleet join {state.address} --name DEVICE-NAME"
    return state, join


def join(head_address: str, name: str, token: str | None, own_address: str | None = None) -> Started:
    """Start this machine's Ray node as the device ``name`` in the fleet at ``head_address``."""
    check_device_name(name)
    conn.check_reachable(head_address)
    token = token or os.environ.get(conn.TOKEN_ENV)
    if not token:
        raise UserError(f"no fleet token: copy the {conn.TOKEN_ENV}=... part of the command 'profiler fleet up' printed")
    token_path = conn.write_token_file(conn.fleet_dir() / "device", token)
    args = [f"--address={head_address}", *device_args(name)]
    if own_address:
        args.append(f"--node-ip-address={own_address}")
    return _ray_start(args, conn.auth_env(token_path))


def session_processes(port: int) -> list:
    """The processes of the Ray cluster whose GCS listens on ``port`` on this machine: those that name
    its session folder or its port, and their descendants (workers rename themselves ray::...)."""
    import psutil

    listening = [c.pid for c in psutil.net_connections(kind="tcp")
                 if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid]
    sessions = set()
    for pid in listening:
        with contextlib.suppress(psutil.Error):
            sessions.update(re.findall(r"/tmp/ray/session_[0-9_\-]+", " ".join(psutil.Process(pid).cmdline())))
    found = {}
    for proc in psutil.process_iter(["cmdline"]):
        line = " ".join(proc.info["cmdline"] or [])
        if proc.pid != os.getpid() and (any(s in line for s in sessions) or f"--gcs-address={port}" in line
                                        or re.search(rf"[:=]{port}\b", line) and "ray" in line):
            found[proc.pid] = proc
            with contextlib.suppress(psutil.Error):
                found.update({c.pid: c for c in proc.children(recursive=True)})
    return list(found.values())


def down(port: int = conn.DEFAULT_PORT) -> int:
    """Stop, by process id, the Ray head (and this machine's nodes) of the fleet on ``port``;
    unlike ``ray stop`` it leaves any other Ray on the machine alone. Returns how many stopped."""
    import psutil

    procs = session_processes(port)
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=5)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    return len(procs)


def quoted(argv: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)
