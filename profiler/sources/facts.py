"""Header facts remembered per file version, so ``profiler models`` reopens no header it has read.

A 262k-token vocabulary takes a tenth of a second to walk even in 1 MiB blocks; a hundred real
models would take seconds on every listing. Facts live in our cache, keyed by the file's path,
size and mtime (a file changed in its store is read again); never beside the file.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from profiler.errors import UserError
from profiler.paths import cache_dir

FIELDS = ("architecture", "quant_type", "n_params", "n_params_active", "n_ctx_train", "error")


def _index() -> Path:
    return cache_dir() / "sources" / "header-facts.json"


def _stamp(path: Path) -> list:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def _read(path: Path, fmt: str, native: bool = False) -> dict:
    try:
        if fmt == "onnx":
            from profiler.models.onnxinfo import cached_info

            info = cached_info(path)
        else:
            from profiler.models.ggufinfo import read_info

            info = read_info(path, native=native)
    except (UserError, ImportError, OSError) as exc:
        return {"error": str(exc)}
    return {
        "architecture": getattr(info, "architecture", None) or getattr(info, "model_type", None),
        "quant_type": info.quant_type,
        "n_params": info.n_params,
        "n_params_active": getattr(info, "n_params_active", 0) or info.n_params,
        "n_ctx_train": info.n_ctx_train or None,
    }


class FactsCache:
    """Load once, look up many, save once (only when something new was read)."""

    def __init__(self) -> None:
        try:
            self.entries = json.loads(_index().read_text())
        except (OSError, ValueError):
            self.entries = {}
        self.changed = False

    def facts(self, path: Path, fmt: str) -> dict:
        key, stamp, known = self._lookup(path, fmt)
        if known is not None:
            return known
        facts = _read(Path(path), fmt)
        self._remember(key, stamp, fmt, facts)
        return facts

    def prefetch(self, files: list[tuple[Path, str]]) -> None:
        """Read the GGUF headers not yet known with llama.cpp's C reader, on every core at once
        (it releases the GIL, so threads run in parallel). Without the library ``facts`` reads
        them one by one with the Python parser."""
        from profiler.models import gguf_native

        todo = []
        for path, fmt in files:
            key, stamp, known = self._lookup(path, fmt)
            if known is None and fmt == "gguf" and stamp is not None:
                todo.append((key, stamp, Path(path)))
        if not todo or gguf_native.library() is None:
            return
        workers = min(len(todo), os.cpu_count() or 1)
        with gguf_native.quiet_batch(), ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(lambda item: _read(item[2], "gguf", native=True), todo))
        for (key, stamp, _), facts in zip(todo, results, strict=True):
            self._remember(key, stamp, "gguf", facts)

    def _lookup(self, path: Path, fmt: str) -> tuple[str, list | None, dict | None]:
        key = str(Path(path).resolve())
        stamp = _stamp(path) if Path(path).exists() else None
        known = self.entries.get(key)
        if known and known.get("stamp") == stamp and known.get("format") == fmt:
            return key, stamp, known["facts"]
        return key, stamp, None

    def _remember(self, key: str, stamp: list | None, fmt: str, facts: dict) -> None:
        if stamp is not None:
            self.entries[key] = {"stamp": stamp, "format": fmt, "facts": facts}
            self.changed = True

    def save(self) -> None:
        if self.changed:
            from profiler import atomic

            atomic.write_text(_index(), json.dumps(self.entries) + "\n")
            self.changed = False
