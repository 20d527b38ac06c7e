"""HellaSwag measured where the measurement index has none over the asked task count, so the
scoreboard that closes ``profiler run`` is driven by numbers from the exact files it ran."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from profiler.quality import data, store


@dataclass(frozen=True)
class ModelFile:
    """A file to measure: its catalogue name, path, sha256 (None: unknown) and the threads it ran with."""

    name: str
    path: str
    sha256: str | None
    threads: int


def has_hellaswag(model_sha256: str | None, n_tasks: int) -> bool:
    """A stored HellaSwag measurement of this file over exactly ``n_tasks`` tasks: a quick check on
    a handful of tasks must not stand in for the scoreboard's measurement, and a larger one is
    another task subset, which the scoreboard never ranks against the other files' numbers."""
    if model_sha256 is None:
        return False
    return any(m.get("metric") == "hellaswag" and m.get("n_tasks") == n_tasks
               for m in store.measurements(model_sha256))


def measure_missing(files: list[ModelFile], n_tasks: int, reports_dir: Path | None = None,
                    progress: Callable[[str], None] | None = None) -> list[str]:
    """Measure HellaSwag (``n_tasks`` of llama-perplexity's subset) on every file that has no
    measurement over that many tasks yet; returns notes for the scoreboard."""
    from profiler.quality.evaluate import EvalOptions, evaluate

    notes, done = [], set()
    for f in files:
        if f.sha256 in done or has_hellaswag(f.sha256, n_tasks):
            continue
        done.add(f.sha256)
        if data.dataset_path("hellaswag") is None:
            notes.append(f"HellaSwag data is not pulled, so nothing was measured on {n_tasks} tasks: the accuracy "
                         "shown is the stored one (its provenance says published/inherited, or measured on fewer "
                         "tasks); run `profiler data pull hellaswag` and the next run measures it on these exact files")
            break
        if progress:
            progress(f"measuring HellaSwag ({n_tasks} tasks) on {f.name} for the scoreboard")
        options = EvalOptions(perplexity=False, hellaswag="hellaswag", n_tasks=n_tasks, threads=f.threads)
        if reports_dir is not None:
            options.reports_dir = Path(reports_dir)
        evaluate(f.path, options)
    return notes
