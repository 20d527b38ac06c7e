"""What every local model source shares: the discovered entry, store checks, verified markers.

A source reads a store another program owns (Ollama, LM Studio, the Hugging Face cache,
llama.cpp's cache). Nothing here writes into such a store: sha256 checks are remembered in
our own cache (``$PROFILER_CACHE/verified``), keyed by the file's path, size and mtime.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from profiler.errors import UserError
from profiler.models.catalog import ModelSpec, sha256_file
from profiler.paths import cache_dir

GGUF_MAGIC = b"GGUF"


@dataclass
class Found:
    """One model file discovered in a store, named the way its owner names it."""

    name: str  # what the user types: ollama:llama3.2:1b, hf-cache:ORG/REPO/FILE, ...
    source: str  # ollama | hf-cache | lmstudio | llamacpp
    path: Path  # the file (or ONNX folder) profiled where it is
    root: Path  # the store it lives in
    size_bytes: int
    format: str = "gguf"  # gguf | onnx
    group: str = ""  # the model whose quants this file is one of (compare-quants --existing)
    sha256: str | None = None  # named by the store itself (Ollama digest, HF LFS blob); else hashed once
    runnable: bool = True
    note: str = ""  # why it cannot run, or what is left out (a projector layer)

    def spec(self, sha256: str | None = None) -> ModelSpec:
        return ModelSpec(name=self.name, format=self.format, sources=[str(self.path)],
                         sha256=sha256 or self.sha256, origin=self.source)

    def to_dict(self) -> dict:
        return {"name": self.name, "source": self.source, "path": str(self.path), "root": str(self.root),
                "size_bytes": self.size_bytes, "format": self.format, "group": self.group, "sha256": self.sha256,
                "runnable": self.runnable, "note": self.note}


Progress = Callable[[str], None]


def check_relative(ref: str, label: str) -> None:
    """A path inside a store: no absolute path, no '..' (a name never reaches outside its store)."""
    parts = ref.split("/")
    if ref.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise UserError(f"{label}: '{ref}' is not a path inside the store (no empty, '.' or '..' parts)")


def readable_dir(path: Path, what: str) -> bool:
    """True when ``path`` is a folder we may list; False when it does not exist; UserError when
    it exists but cannot be read (a permission problem is the user's to fix, not to hide)."""
    try:
        if not path.is_dir():
            return False
    except PermissionError:
        raise UserError(f"cannot read the {what} folder {path}: permission denied") from None
    if not os.access(path, os.R_OK | os.X_OK):
        raise UserError(f"cannot read the {what} folder {path}: permission denied")
    return True


def list_dir(path: Path, what: str) -> list[Path]:
    """Sorted entries of ``path`` (empty when it does not exist), UserError when unreadable."""
    if not readable_dir(path, what):
        return []
    try:
        return sorted(path.iterdir())
    except PermissionError:
        raise UserError(f"cannot read the {what} folder {path}: permission denied") from None


def is_gguf(path: Path) -> bool:
    """The first four bytes only: discovery never reads more than headers."""
    try:
        with path.open("rb") as fh:
            return fh.read(4) == GGUF_MAGIC
    except OSError:
        return False


def size_of(path: Path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size


# --------------------------------------------------------------------------- verified markers


def _marker(path: Path) -> Path:
    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]
    return cache_dir() / "verified" / f"{key}.json"


def _stamp(path: Path) -> dict:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def known_sha256(path: Path) -> str | None:
    """The sha256 recorded for this exact file version, or None (never hashes)."""
    try:
        data = json.loads(_marker(path).read_text())
    except (OSError, ValueError):
        return None
    return data.get("sha256") if data.get("stamp") == _stamp(path) else None


def _remember(path: Path, sha256: str) -> None:
    from profiler import atomic

    atomic.write_text(_marker(path), json.dumps({"sha256": sha256, "stamp": _stamp(path)}) + "\n")


def verify_once(path: Path, expected: str | None, label: str, progress: Progress | None = None) -> str:
    """The file's sha256, checked against ``expected`` (the store's own name for it) the first
    time and remembered in our cache, so a 2 GB blob is not hashed on every run."""
    sha = known_sha256(path)
    if sha is None:
        if progress is not None:
            progress(f"checking the sha256 of {label} once (remembered in profiler's cache)")
        sha = sha256_file(path)  # a folder (ONNX genai): every file's relative name and bytes
        if expected is None or sha == expected:
            _remember(path, sha)
    if expected is not None and sha != expected:
        raise UserError(
            f"{label}: {path} is damaged: its store names it sha256 {expected[:12]}..., its content hashes to "
            f"{sha[:12]}...; pull it again with the program that downloaded it"
        )
    return sha
