"""Files a user keeps are replaced whole or not at all: write a temporary file beside the
target, fsync it, then rename it over the target. A crash, a full disk or Ctrl-C leaves the
old file (or none), never half of a new one.

``replacing`` is the one writer for bytes we produce ourselves; ``replacing_path`` gives
outside code (llama.cpp's quantizer, the gguf package, a converter) a path of its own to
fill - a file or a folder - that takes the target's place only when it is complete."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from profiler.errors import UserError

PARTIAL_SUFFIX = ".partial"


@contextmanager
def replacing(path: Path) -> Iterator[BinaryIO]:
    """A binary handle whose contents become ``path`` when the block ends without an error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a unique hidden name: two processes writing the same file never share a temporary
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _mode_for(path))
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8); an OSError is the caller's to handle."""
    with replacing(path) as fh:
        fh.write(text.encode("utf-8"))


def write_user_file(path: Path, text: str) -> None:
    """``write_text`` for a file the user asked for (a report, saved state): a failure (full
    disk, no permission) is one line naming the file, not a traceback."""
    try:
        write_text(path, text)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None


@contextmanager
def replacing_path(path: Path, suffix: str = PARTIAL_SUFFIX) -> Iterator[Path]:
    """A path beside ``path`` (its name + ``suffix``) for outside code to write a file or a folder
    into. When the block ends without an error it replaces ``path`` (an old folder is removed
    first); on any error it is removed and ``path`` is left as it was. A leftover from a crash
    is cleared first, so it can be seen only while the work runs or after a hard kill."""
    path = Path(path)
    partial = path.with_name(path.name + suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove(partial)
    try:
        yield partial
        if partial.is_dir() and path.is_dir():
            shutil.rmtree(path)  # os.replace cannot put a folder over a non-empty one
        os.replace(partial, path)
    except BaseException:
        _remove(partial)
        raise


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path``.lock for a read-modify-replace cycle across processes."""
    lock = Path(path).with_name(Path(path).name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _mode_for(path: Path) -> int:
    """The old file's mode, or the one a plain open() would give (mkstemp's own is 0600)."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it; put it straight back
    os.umask(mask)
    return mask


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
