"""The profiler as a library: the functions the CLI calls, for people who call them from Python.

The option and progress types they take live with the code that uses them:
``profiler.run.options`` (RunOptions, Callbacks, RunInterrupted) and ``profiler.measure.plan``
(Sweep). Nothing here orchestrates; each function hands over to the room that does the work.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from functools import partial
from pathlib import Path

from profiler import paths
from profiler.analysis import density_io, scoring, scoring_io
from profiler.analysis import fit as fit_mod
from profiler.analysis import suites as suites_mod
from profiler.analysis.density import DensityReport
from profiler.measure import suites as suite_defs
from profiler.measure.plan import Sweep
from profiler.measure.session import EnergyOptions
from profiler.platform import device as device_mod
from profiler.quality import evaluate as evaluate_mod
from profiler.report import save_run
from profiler.results import compare as compare_mod
from profiler.results.schema import RunResult
from profiler.results.store import Store
from profiler.run import orchestrate
from profiler.run.options import Callbacks, RunOptions

__all__ = ["compare", "density", "describe_device", "evaluate", "fit", "profile", "score", "suite_scores",
           "suite_sweep"]


def profile(
    model_names: Sequence[str],
    sweep: Sweep,
    options: RunOptions | None = None,
    callbacks: Callbacks | None = None,
    resume: str | None = None,
    skip: Collection[str] = (),
    answer: tuple[int, int] | None = None,
) -> RunResult:
    """Measure every test of ``sweep`` on every model (catalogue names, paths, or models already
    on disk such as ``ollama:NAME``) and return the run.

    Each finished row is committed to the results store at once and, unless ``options.save`` is
    off, the run folder (``<reports_dir>/<run id>/results.{json,csv,md}``) rewritten from it.
    With ``resume`` (a run id) the stored plan is reused and finished tests skipped; ``skip``
    holds further row keys (results.store.row_key) not to measure. A Ctrl-C raises
    ``RunInterrupted`` carrying the run id to resume. ``answer`` is the (prompt, answer) token
    shape of results.json's battery life (default 512, 256).
    """
    options = options or RunOptions()
    shape = {"answer": tuple(answer)} if answer else {}
    publish = partial(save_run, reports_dir=options.reports_dir, **shape) if options.save else None
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


def evaluate(model: str, options: evaluate_mod.EvalOptions,
             progress: Callable[[str], None] | None = None) -> evaluate_mod.EvalResult:
    """``profiler eval``: perplexity, KLD against a reference, HellaSwag/Winogrande on the exact
    file ``model`` (a catalogue name or a path), as ``options`` asks; saved unless ``options.save`` is off."""
    return evaluate_mod.evaluate(model, options, progress)


def score(runs: Sequence[str] = (), reports_dir: Path | None = None, metric: str = "hellaswag",
          price_per_kwh: float = scoring.DEFAULT_PRICE_PER_KWH, catalogs: Sequence[Path] = (),
          lm_eval: Sequence[str] = (), answer: tuple[int, int] = (512, 256)) -> scoring.Scoreboard:
    """``profiler score``: the cost-effectiveness scoreboard (scores, Pareto frontier, recommendation
    inputs) over saved runs, the latest by default; ``lm_eval`` holds ``MODEL=results.json`` pairs of
    lm-eval output to merge; ``answer`` the (prompt, answer) tokens of answers per battery charge."""
    return scoring_io.scoreboard_for_runs(list(runs) or None, reports_dir or paths.reports_dir(), metric,
                                          price_per_kwh, list(catalogs) or None, scoring.parse_lm_eval(list(lm_eval)),
                                          answer)


def density(runs: Sequence[str] = (), reports_dir: Path | None = None, family: str | None = None,
            families_file: Path | None = None, catalogs: Sequence[Path] = (), lm_eval: Sequence[str] = (),
            from_catalog: bool = False) -> tuple[DensityReport, list[RunResult]]:
    """``profiler density``: knowledge density (effective size, rho, the trend) of saved runs (the
    latest by default) or of the catalogue alone; returns the report and the runs it read."""
    return density_io.density_report(list(runs) or None, reports_dir or paths.reports_dir(), family, families_file,
                                     list(catalogs) or None, scoring.parse_lm_eval(list(lm_eval)), from_catalog)


def compare(a: str, b: str, store: Store | None = None) -> list[compare_mod.Comparison]:
    """``profiler compare``: ``b`` against ``a`` test by test (speedup, Welch's test). Each side is a
    run id in ``store``, a results.json (or its folder), a llama-bench JSON/JSONL file or SQLite db."""
    return compare_mod.compare(compare_mod.load_side(a, store), compare_mod.load_side(b, store))


def fit(models: Sequence[str] = (), settings: fit_mod.FitSettings | None = None, all_local: bool = False,
        verify: bool = False, catalog_path: Path | None = None,
        progress: Callable[[str], None] | None = None,
        verify_contexts: Sequence[int] = fit_mod.VERIFY_CONTEXTS) -> tuple[list[fit_mod.FitReport], list[str]]:
    """``profiler fit``: per model (catalogue names, paths, ``ollama:NAME`` and other local models, or
    every local model with ``all_local``), the predicted memory at each context, the largest context
    that fits ``settings.ram_bytes`` (default: available here) less the margin, and where the bytes go.
    With ``verify``, each model is also run here at ``verify_contexts`` (only those that fit here) and its measured peak set beside the prediction. Returns the reports and the models
    left out, with why."""
    settings = settings or fit_mod.FitSettings()
    reports, skipped = fit_mod.fit(models, settings, all_local, catalog_path, progress)
    if verify:
        for report in reports:
            fit_mod.verify(report, fit_mod.read_info(report.path), settings, partial(_model_peak, progress=progress),
                           verify_contexts)
    return reports, skipped


def _model_peak(path: str, sweep: Sweep, progress: Callable[[str], None] | None = None) -> int | None:
    """The largest model_peak_rss_bytes of one unsaved run of ``sweep`` (the pre-flight refuses
    what does not fit, as for any run)."""
    options = RunOptions(save=False, bandwidth_probe=False, warmup=False,
                         energy=EnergyOptions(idle_s=0, track=False))
    callbacks = Callbacks(message=progress) if progress else None
    run = orchestrate.profile([path], sweep, options, callbacks)
    peaks = [r.model_peak_rss_bytes for r in run.rows if r.model_peak_rss_bytes is not None]
    return max(peaks) if peaks else None


def suite_sweep(sweep: Sweep, name: str) -> Sweep:
    """``sweep`` with a known suite's test shapes (``localscore``, ``mlperf-client``; docs/suites.md)
    in place of its -p/-n/-pg, and random token ids; threads, batch sizes, repetitions stay."""
    return suite_defs.apply(sweep, name)


def suite_scores(run: RunResult, names: Sequence[str] | None = None) -> list[suites_mod.GroupScore]:
    """The suite scores (with 95% intervals) of every model and setting in ``run`` that has all of a
    suite's shapes; ``names`` limits which suites."""
    return suites_mod.suite_scores(run.rows, list(names) if names else None)
