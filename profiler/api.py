"""The profiler as a library: the functions the CLI calls, for people who call them from Python.

The option and progress types they take live with the code that uses them:
``profiler.run.options`` (RunOptions, Callbacks, RunInterrupted) and ``profiler.measure.plan``
(Sweep). Nothing here orchestrates; each function hands over to the room that does the work.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from functools import partial

from profiler.measure.plan import Sweep
from profiler.platform import device as device_mod
from profiler.report import save_run
from profiler.results.schema import RunResult
from profiler.run import orchestrate
from profiler.run.options import Callbacks, RunOptions

__all__ = ["describe_device", "profile"]


def profile(
    model_names: Sequence[str],
    sweep: Sweep,
    options: RunOptions | None = None,
    callbacks: Callbacks | None = None,
    resume: str | None = None,
    skip: Collection[str] = (),
) -> RunResult:
    """Measure every test of ``sweep`` on every model (catalogue names, paths, or models already
    on disk such as ``ollama:NAME``) and return the run.

    Each finished row is committed to the results store at once and, unless ``options.save`` is
    off, the run folder (``<reports_dir>/<run id>/results.{json,csv,md}``) rewritten from it.
    With ``resume`` (a run id) the stored plan is reused and finished tests skipped; ``skip``
    holds further row keys (results.store.row_key) not to measure. A Ctrl-C raises
    ``RunInterrupted`` carrying the run id to resume.
    """
    options = options or RunOptions()
    publish = partial(save_run, reports_dir=options.reports_dir) if options.save else None
    return orchestrate.profile(model_names, sweep, options, callbacks, resume, skip, publish)


def describe_device(bandwidth_probe: bool = True, runtime: dict | None = None,
                    threads: Sequence[int] | None = None) -> device_mod.Device:
    """Fingerprint this machine (``runtime``: the runtime versions, ``profiler.backends.runtime_info()``); with
    ``bandwidth_probe``, measure read bandwidth once per thread count in ``threads`` (default:
    the physical cores), in a child process."""
    fp = device_mod.fingerprint(runtime=runtime)
    if bandwidth_probe:
        fp.memory_bandwidth = device_mod.probe_bandwidth(list(threads or [fp.physical_cores]), fp.caches,
                                                         fp.ram_available_bytes)
    return fp
