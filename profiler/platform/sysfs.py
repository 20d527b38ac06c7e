"""The only place that reads /sys, /proc, /etc or runs device commands.

Tests point it at a fixture tree with ``PROFILER_SYSFS_ROOT`` (or ``set_root``),
replace device commands with ``set_command_runner`` and the Raspberry Pi firmware
mailbox's ioctl with ``set_mailbox_ioctl``, so every reader of hardware state can be
exercised on a machine that has none of that hardware.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import struct
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

CommandRunner = Callable[[Sequence[str]], "str | None"]
# fcntl.ioctl's shape: (fd, request, mutable buffer) -> result; the buffer is changed in place
MailboxIoctl = Callable[[int, int, bytearray], object]

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
    close_mailbox()  # the mailbox device is opened inside the root


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
    """True while tests feed recorded command output or a fake mailbox: a child process would not see it."""
    return _runner is not None or _mailbox_ioctl is not None


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


# ----------------------------------------------------------------------------- Raspberry Pi firmware mailbox
# ``vcgencmd`` is a thin client of the VideoCore property mailbox: it opens /dev/vcio, sends one
# GET_GENCMD_RESULT property tag with the command string through the IOCTL_MBOX_PROPERTY ioctl and
# prints the reply (raspberrypi/utils vcgencmd/vcgencmd.c). Doing the same here reads the firmware
# without a process per sample. /dev/vcio is root:video 0660, so the ``video`` group is enough.

VCIO = "/dev/vcio"
GENCMD_TAG = 0x00030080  # GET_GENCMD_RESULT
GENCMD_MAX = 1024  # bytes for the command and for the reply, as vcgencmd uses
MBOX_REQUEST, MBOX_SUCCESS = 0x00000000, 0x80000000
GENCMD_HEADER = struct.Struct("=6I")  # size, request code, tag, value size, value length, error
GENCMD_TEXT_AT = GENCMD_HEADER.size  # the command, then the reply, start after the six words


def _iowr(kind: int, number: int, size: int) -> int:
    """Linux's _IOWR(kind, number, size) request number (read-write direction is 3)."""
    return (3 << 30) | (size << 16) | (kind << 8) | number


# _IOWR(100, 0, char *): the size field is a pointer's, 8 bytes on 64-bit and 4 on 32-bit kernels
IOCTL_MBOX_PROPERTY = _iowr(100, 0, ctypes.sizeof(ctypes.c_void_p))


@dataclass(frozen=True)
class Gencmd:
    """One firmware command's answer and how it was fetched."""

    text: str | None  # what ``vcgencmd <command>`` prints; None when neither way answered
    transport: str  # "mailbox", "vcgencmd" or "none"
    error: int = 0  # the firmware's error code (non-zero: the firmware does not know the command)
    mailbox_problem: str | None = None  # why the mailbox was not used, when it was not


_mailbox_ioctl: MailboxIoctl | None = None
_mailbox_fd: int | None = None
_mailbox_problem: str | None = None  # set once opening failed; not retried until reset
_mailbox_lock = threading.Lock()


def set_mailbox_ioctl(ioctl: MailboxIoctl | None) -> None:
    """Replace the mailbox ioctl (tests answer as the firmware would); ``None`` restores fcntl.ioctl."""
    global _mailbox_ioctl
    _mailbox_ioctl = ioctl
    close_mailbox()


def close_mailbox() -> None:
    """Close the persistent /dev/vcio descriptor and forget a failed open (the next call retries)."""
    global _mailbox_fd, _mailbox_problem
    with _mailbox_lock:
        if _mailbox_fd is not None:
            with contextlib.suppress(OSError):
                os.close(_mailbox_fd)
        _mailbox_fd, _mailbox_problem = None, None


def gencmd_request(command: str) -> bytearray:
    """The property message vcgencmd sends: header, the command (NUL-terminated, padded), end tag."""
    body = command.encode() + b"\0"
    if len(body) > GENCMD_MAX:
        raise ValueError(f"gencmd command longer than {GENCMD_MAX - 1} bytes")
    size = GENCMD_TEXT_AT + GENCMD_MAX + 4
    message = bytearray(size)
    GENCMD_HEADER.pack_into(message, 0, size, MBOX_REQUEST, GENCMD_TAG, GENCMD_MAX, 0, 0)
    message[GENCMD_TEXT_AT:GENCMD_TEXT_AT + len(body)] = body
    return message  # the last word stays 0: the end tag


def gencmd_reply(message: bytes | bytearray) -> tuple[str, int] | None:
    """(reply text, firmware error code) from an answered message; None if the firmware did not answer."""
    _, code, _, _, _, error = GENCMD_HEADER.unpack_from(message, 0)
    if code != MBOX_SUCCESS:
        return None
    raw = bytes(message[GENCMD_TEXT_AT:GENCMD_TEXT_AT + GENCMD_MAX]).split(b"\0\0")[0]
    # vcgencmd prints up to the first NUL; a reply that separates lines with NULs is read whole
    return raw.rstrip(b"\0").replace(b"\0", b"\n").decode(errors="replace"), error


def _open_mailbox() -> int | None:
    """The persistent descriptor (opened once), or None with ``_mailbox_problem`` set."""
    global _mailbox_fd, _mailbox_problem
    if _mailbox_fd is None and _mailbox_problem is None:
        try:
            _mailbox_fd = os.open(path(VCIO), os.O_RDONLY)
        except PermissionError:
            _mailbox_problem = f"{VCIO}: permission denied (add your user to the video group: sudo usermod -aG video $USER)"
        except OSError as exc:
            _mailbox_problem = f"{VCIO}: {exc.strerror or exc} (not a Raspberry Pi, or the vcio driver is not loaded)"
    return _mailbox_fd


def _default_ioctl(fd: int, request: int, message: bytearray) -> object:
    import fcntl  # Linux only; the mailbox exists only there

    return fcntl.ioctl(fd, request, message, True)


def mailbox_gencmd(command: str) -> Gencmd | None:
    """``command`` through the firmware mailbox on the persistent descriptor; None when it cannot be used."""
    global _mailbox_problem
    message = gencmd_request(command)
    with _mailbox_lock:
        fd = _open_mailbox()
        if fd is None:
            return None
        try:
            (_mailbox_ioctl or _default_ioctl)(fd, IOCTL_MBOX_PROPERTY, message)
        except (OSError, ImportError) as exc:
            _mailbox_problem = f"{VCIO}: the mailbox ioctl failed ({exc})"
            return None
    reply = gencmd_reply(message)
    if reply is None:
        return None
    return Gencmd(reply[0], "mailbox", reply[1])


def gencmd(command: str) -> Gencmd:
    """A firmware command through the mailbox, else by running ``vcgencmd`` (a process per call)."""
    found = mailbox_gencmd(command)
    if found is not None:
        return found
    text = run_command(("vcgencmd", *command.split()))
    return Gencmd(text, "vcgencmd" if text is not None else "none", 0, _mailbox_problem or "no reply from the firmware")
