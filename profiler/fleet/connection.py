"""Ray for the fleet: the optional import, token authentication, the saved coordinator address.

Ray's ports let anyone who reaches them run code, so every cluster the fleet starts uses Ray's
token authentication (``RAY_AUTH_MODE=token``, Ray >= 2.52): the coordinator writes a random token
to a file only its user can read, the join command carries it to each device, and every Ray
process gets it through ``RAY_AUTH_TOKEN_PATH``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import socket
from dataclasses import asdict, dataclass
from pathlib import Path

from profiler import atomic
from profiler.errors import UserError
from profiler.paths import cache_dir
from profiler.platform import device

TOKEN_ENV = "PROFILER_FLEET_TOKEN"
ADDRESS_ENV = "PROFILER_FLEET_ADDRESS"
DEFAULT_PORT = 6379
NAMESPACE = "profiler-fleet"
CONNECT_TIMEOUT_S = 5.0


def require_ray():
    """The ray module, or one line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UserError("the fleet needs Ray: pip install -e '.[fleet]' (or pip install 'ray[default]')") from None
    return ray


def fleet_dir() -> Path:
    return cache_dir() / "fleet"


@dataclass
class CoordinatorState:
    """What ``fleet up`` leaves behind for ``fleet run`` / ``fleet devices`` on the same machine."""

    address: str
    token_path: str


def state_path() -> Path:
    return fleet_dir() / "coordinator.json"


def save_state(state: CoordinatorState) -> None:
    atomic.write_user_file(state_path(), json.dumps(asdict(state)))


def load_state() -> CoordinatorState | None:
    try:
        return CoordinatorState(**json.loads(state_path().read_text()))
    except (OSError, ValueError, TypeError):
        return None


def split_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` -> (host, port); one line when it is not that."""
    match = re.fullmatch(r"\[?([^\]\s]+?)\]?:(\d{1,5})", address.strip())
    if not match or not 0 < int(match.group(2)) < 65536:
        raise UserError(f"'{address}' is not an address like 192.168.1.20:{DEFAULT_PORT}")
    return match.group(1), int(match.group(2))


def check_not_localhost(host: str) -> None:
    """Ray rewrites 127.0.0.1 / localhost to this machine's network address when it connects, and
    then finds nothing listening there; another loopback address keeps a one-machine fleet local."""
    if host in ("127.0.0.1", "localhost", "::1"):
        raise UserError(f"Ray cannot use {host} for a fleet (it rewrites it to this machine's network address); "
                        "for a fleet on this machine only, use another loopback address such as 127.0.0.2")


def check_reachable(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Fail in seconds, not after Ray's long connection retries, when nothing listens there."""
    host, port = split_address(address)
    check_not_localhost(host)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UserError(
            f"cannot reach the fleet coordinator at {host}:{port} ({reason}); is 'profiler fleet up' running "
            f"there, and is TCP port {port} open between the machines?"
        ) from None


def new_token_file(directory: Path) -> Path:
    """A fresh random token in a file only this user can read."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "auth_token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32))
    os.chmod(path, 0o600)
    return path


def write_token_file(directory: Path, token: str) -> Path:
    if not re.fullmatch(r"[0-9A-Za-z_\-]{16,256}", token):
        raise UserError(f"{TOKEN_ENV} does not look like a fleet token (copy it from 'profiler fleet up')")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "auth_token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token)
    return path


def auth_env(token_path: Path | str) -> dict[str, str]:
    """Environment that makes a Ray process authenticate with the token in ``token_path``."""
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_path)}


def resolve_address(address: str | None) -> tuple[str, str | None]:
    """The coordinator address to use and its token file: flag, then env, then ``fleet up``'s state."""
    state = load_state()
    chosen = address or os.environ.get(ADDRESS_ENV) or (state.address if state else None)
    if not chosen:
        raise UserError(f"no fleet coordinator: run 'profiler fleet up --address IP' first, or pass --address / {ADDRESS_ENV}")
    token_path = state.token_path if state and state.address == chosen else None
    return chosen, token_path


def connect(address: str | None = None):
    """Connect this process to the fleet as its driver; bad input is one line, before any work."""
    chosen, token_path = resolve_address(address)
    check_reachable(chosen)
    if token_path and "RAY_AUTH_TOKEN" not in os.environ:
        os.environ.update(auth_env(token_path))  # before Ray is imported: it reads its config once
    ray = require_ray()
    if ray.is_initialized():
        return ray
    try:
        ray.init(address=chosen, namespace=NAMESPACE, logging_level="ERROR", log_to_driver=False,
                 configure_logging=True)
    except Exception as exc:  # version mismatch, authentication, a port that is not Ray
        raise UserError(join_failure(chosen, exc)) from None
    keep_ray_messages_off_the_terminal(ray)
    return ray


def keep_ray_messages_off_the_terminal(ray) -> None:
    """Ray's driver prints what its processes publish (a dead raylet's last 20 log lines, its
    "[state-dump]" statistics, "node marked dead" notices) straight onto this process's stdout,
    log_to_driver=False or not, and into the middle of the run's output (even ``-o json``). Those
    lines are copies of logs that stay in Ray's log folder on each node; the fleet reports each
    event itself, in one line naming the device and that folder. Ray 2.60 has no public switch,
    so this turns off the flag its own debugger (ray.util.rpdb) uses to silence the same printer."""
    worker = getattr(getattr(ray, "_private", None), "worker", None)
    if worker is not None and hasattr(worker, "_worker_logs_enabled"):
        worker._worker_logs_enabled = False


def disconnect() -> None:
    with contextlib.suppress(ImportError):
        import ray

        if ray.is_initialized():
            ray.shutdown()


def join_failure(address: str, exc: BaseException) -> str:
    """The one line a failed ``ray.init`` becomes: Ray's message, the cause it chains (the part
    that says what went wrong), and under qemu-user why joining cannot work there at all."""
    text = f"cannot join the Ray cluster at {address}: {_first_line(exc)}"
    if exc.__cause__ is not None:
        text += f" ({_first_line(exc.__cause__)})"
    if device.emulation_note():
        # Ray's driver finds the raylet of its own node by the process's command line, whose first
        # word under qemu-user is the emulator, so it never finds one (Ray 2.60, _is_raylet_process).
        text += ("; this machine looks emulated (qemu-user), where Ray's driver cannot find its own node's "
                 "raylet: run the fleet on the device itself, not under emulation")
    return text


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
