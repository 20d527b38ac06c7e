"""The only place that reads /sys, /proc, /etc or runs device commands.

Tests point it at a fixture tree with ``PROFILER_SYSFS_ROOT`` (or ``set_root``)
and replace device commands with ``set_command_runner``, so every reader of
hardware state can be exercised on a machine that has none of that hardware.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

CommandRunner = Callable[[Sequence[str]], "str | None"]

_root: Path | None = None
_runner: CommandRunner | None = None


def root() -> Path:
    """The directory that stands for ``/``."""
    if _root is not None:
        return _root
    return Path(os.environ.get("PROFILER_SYSFS_ROOT", "/"))


def set_root(path: str | os.PathLike | None) -> None:
    """Redirect every read to ``path`` (``None`` restores the environment default)."""
    global _root
    _root = Path(path) if path is not None else None


def path(absolute: str) -> Path:
    """Map an absolute system path such as ``/proc/meminfo`` into the current root."""
    return root() / absolute.lstrip("/")


def read_text(absolute: str) -> str | None:
    """File contents, or ``None`` when it is missing or unreadable."""
    try:
        return path(absolute).read_text(errors="replace")
    except (OSError, ValueError):
        return None


def read_int(absolute: str) -> int | None:
    text = read_text(absolute)
    if text is None:
        return None
    try:
        return int(text.strip().split()[0])
    except (ValueError, IndexError):
        return None


def read_str(absolute: str) -> str | None:
    """Stripped contents with trailing NULs removed (device-tree strings end in one)."""
    text = read_text(absolute)
    return text.strip().rstrip("\x00").strip() if text is not None else None


def read_kib_fields(absolute: str, names: tuple[str, ...]) -> dict[str, int]:
    """The ``Name:  N kB`` lines of a /proc file (status, meminfo, smaps_rollup) among ``names``,
    in bytes; a missing file or an unparsable line gives no entry."""
    found: dict[str, int] = {}
    for line in (read_text(absolute) or "").splitlines():
        key, _, rest = line.partition(":")
        if key in names:
            try:
                found[key] = int(rest.split()[0]) * 1024
            except (ValueError, IndexError):
                continue
    return found


def read_error(absolute: str) -> OSError | None:
    """The OSError reading ``absolute`` raises (e.g. PermissionError), or ``None`` if it reads."""
    try:
        path(absolute).read_bytes()
    except OSError as exc:
        return exc
    return None


def write_text(absolute: str, text: str) -> bool:
    """Write to a control file (e.g. ``/proc/self/clear_refs``); ``False`` when refused."""
    try:
        path(absolute).write_text(text)
    except OSError:
        return False
    return True


def glob(pattern: str) -> list[Path]:
    """Sorted matches of an absolute glob pattern inside the root."""
    return sorted(root().glob(pattern.lstrip("/")))


def listdir(absolute: str) -> list[str]:
    try:
        return sorted(os.listdir(path(absolute)))
    except OSError:
        return []


def exists(absolute: str) -> bool:
    return path(absolute).exists()


def own_thread_ids() -> list[int]:
    """This process's thread ids (the real /proc/self/task, never the fixture root: a process's own
    threads are not part of the device being described)."""
    try:
        return sorted(int(name) for name in os.listdir("/proc/self/task") if name.isdigit())
    except OSError:
        return []


def _default_runner(argv: Sequence[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def run_command(argv: Sequence[str]) -> str | None:
    """Stdout of a device command (``vcgencmd``, ``tegrastats`` ...) or ``None`` if it is absent or fails."""
    return (_runner or _default_runner)(argv)


def command_runner_replaced() -> bool:
    """True while tests feed recorded command output: a child process would not see it."""
    return _runner is not None


def set_command_runner(runner: CommandRunner | None) -> None:
    """Replace how device commands run (tests feed recorded output)."""
    global _runner
    _runner = runner


def load_average() -> tuple[float, float, float] | None:
    text = read_text("/proc/loadavg")
    if not text:
        return None
    try:
        one, five, fifteen = (float(x) for x in text.split()[:3])
    except ValueError:
        return None
    return one, five, fifteen
