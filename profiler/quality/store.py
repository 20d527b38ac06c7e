"""The measured-quality index: every ``profiler eval`` result keyed by the exact model file.

Reports keep the full results (``reports/<run-id>/quality.json``); this index, one JSON line per
measurement in ``$PROFILER_CACHE/quality/measurements.jsonl``, lets ``profiler score`` find the
number measured on *this* artifact (matched by sha256, never by name), so a quantized file can
never pick up another file's score.
"""

from __future__ import annotations

import json
from pathlib import Path

from profiler import atomic
from profiler.paths import cache_dir


def store_path() -> Path:
    return cache_dir() / "quality" / "measurements.jsonl"


def record(entries: list[dict]) -> None:
    """Append measurements (each with at least model_sha256, metric, value)."""
    if not entries:
        return
    path = store_path()
    new = "".join(json.dumps(entry, sort_keys=True) + "\n" for entry in entries)
    with atomic.locked(path):  # two evals at once must not lose each other's lines
        try:
            old = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            old = ""
        if old and not old.endswith("\n"):
            old += "\n"  # a torn line from an older version stays on its own line, skipped on read
        atomic.write_text(path, old + new)


def measurements(model_sha256: str | None = None) -> list[dict]:
    """All stored measurements (of one model file if given), oldest first; bad lines are skipped."""
    path = store_path()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a torn last line from a killed process
        if isinstance(entry, dict) and (model_sha256 is None or entry.get("model_sha256") == model_sha256):
            out.append(entry)
    return out
