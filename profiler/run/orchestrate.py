"""One ``profiler run``, in the order it happens: reopen or start the run, resolve and check
every model (the pre-flight), describe the device, open the energy session, then measure model
after model, each in a child process (run/isolate.py) or in this one, committing each row to
the results store the moment it is finished.

The skeleton every run shares with ``profiler fleet run`` (reopen for --resume, resolve the
models, start a new run, register it in the store) is ``Ledger``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from profiler.backends import runtime_info
from profiler.errors import UserError
from profiler.measure import session as energy_run
from profiler.measure import stability
from profiler.measure.energy import EnergySession
from profiler.measure.plan import Sweep, TestConfig, expand
from profiler.models import catalog as catalog_mod
from profiler.models.catalog import ModelSpec
from profiler.models.modelinfo import ModelInfo, read_model_info
from profiler.platform import device as device_mod
from profiler.platform import sysfs
from profiler.results.schema import RunResult, TestResult, new_run_id, recover_failures
from profiler.results.store import Store, row_key
from profiler.run import isolate, placement_advice, preflight
from profiler.run.job import Job
from profiler.run.model_sweep import measure_model
from profiler.run.options import Callbacks, RunInterrupted, RunOptions
from profiler.sources import resolve_models

# Called with the stored run after every change: the caller's report writer (the run folder).
Publish = Callable[[RunResult], None]


@dataclass
class Plan:
    """What a run measures, stored with it so that --resume measures the same."""

    models: list[str]
    sweep: Sweep
    extra: dict = field(default_factory=dict)  # what else the caller stores (the fleet: its devices)

    def to_dict(self) -> dict:
        return {"models": list(self.models), "sweep": self.sweep.to_dict(), **self.extra}

    @classmethod
    def from_dict(cls, data: dict) -> Plan:
        extra = {k: v for k, v in data.items() if k not in ("models", "sweep")}
        return cls(list(data["models"]), Sweep.from_dict(data["sweep"]), extra)


class Ledger:
    """A run's place in the results store, as every run uses it: with ``resume`` (a run id) the
    stored run and its plan; else a new run, registered only once its input is known to be good."""

    def __init__(self, options: RunOptions, resume: str | None, plan: Plan) -> None:
        self.options, self.resume = options, resume
        self.store = Store(options.db_path) if resume else None
        self.plan = Plan.from_dict(self.store.plan(resume)) if resume else plan

    @property
    def resumed(self) -> bool:
        return self.resume is not None

    def specs(self, progress: Callable[[str], None] | None = None) -> list[ModelSpec]:
        return resolve_models(self.plan.models, self.options.catalog_path, progress)

    def run(self, device: dict) -> RunResult:
        """The stored run when resuming, else a new one measured on ``device``."""
        if self.resumed:
            return self.store.load_run(self.resume)
        return RunResult(run_id=new_run_id(), created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                         command=self.options.command, device=device)

    def begin(self, run: RunResult) -> Store:
        """The store, with a new run registered under the plan (a resumed one is there already)."""
        if self.store is None:
            self.store = Store(self.options.db_path)
            self.store.begin_run(run, self.plan.to_dict())
        return self.store


def profile(
    model_names: Sequence[str],
    sweep: Sweep,
    options: RunOptions | None = None,
    callbacks: Callbacks | None = None,
    resume: str | None = None,
    skip: Collection[str] = (),
    publish: Publish | None = None,
) -> RunResult:
    """Measure every test of ``sweep`` on every model.

    Each finished row is committed to the results store at once and ``publish`` called with the
    stored run; with ``resume`` (a run id) the stored plan is reused and finished tests skipped.
    ``skip`` holds further row keys (store.row_key) not to measure: the fleet's resume uses it.
    """
    options = options or RunOptions()
    cb = callbacks or Callbacks()
    ledger = Ledger(options, resume, Plan(list(model_names), sweep))
    specs = ledger.specs(cb.message)
    load_before = sysfs.load_average()
    device = device_mod.fingerprint()  # /proc and /sys only: the probes wait until the input is checked
    tests = energy_run.select_tests(expand(ledger.plan.sweep, device.physical_cores, device.core_clusters,
                                           device.logical_cores), options.energy)
    run = ledger.run(device.to_dict())
    busy = stability.busy_warning(load_before[0] if load_before else None, device.logical_cores)
    if busy:
        run.warnings.append(busy)
    run.warnings.extend(w for w in options.warnings if w not in run.warnings)  # a resumed run has them already
    _placement_notes(ledger.plan.sweep, tests, device, run, cb)
    models = _checked_models(specs, tests, ledger.plan.sweep.use_mmap, device, run, options, cb)
    _describe(device, tests, options)
    session = energy_run.open_session(options.energy, device.cpu_model, device.board, cb.message,
                                      options.energy_session)
    if not ledger.resumed:
        run.device = {**device.to_dict(), "energy": session.describe()}
        run.warnings.extend(session.run_warnings())
    recorder = _Recorder(ledger.begin(run), run, cb, publish)  # the store opens only once the input is good
    earlier = list(run.failures)  # a resumed run's: made good once their model has every test stored
    try:  # from here on a Ctrl-C, wherever it lands, leaves the registered run resumable
        _measure(models, tests, ledger.plan.sweep, device, options, cb, session, recorder, skip)
    except KeyboardInterrupt:
        recorder.finish("interrupted")
        raise RunInterrupted(run.run_id) from None
    run.warnings.extend(w for w in placement_advice.measured_comparison(run.rows, device.core_clusters)
                        if w not in run.warnings)
    done = recorder.store.done_keys(run.run_id)
    recover_failures(earlier, lambda f: all(row_key(f["model"], t) in done for t in tests))
    recorder.finish("failed" if run.open_failures else "done")
    return run


def _placement_notes(sweep: Sweep, tests: list[TestConfig], device: device_mod.Device, run: RunResult,
                     cb: Callbacks) -> None:
    """Say where the tests run when the run chose (the big cluster), and warn of threads on little cores."""
    note = placement_advice.default_note(sweep, device.core_clusters)
    if note:
        cb.message(note)
    run.warnings.extend(w for w in placement_advice.thread_warnings(tests, device.core_clusters)
                        if w not in run.warnings)


def _checked_models(specs: list[ModelSpec], tests: list[TestConfig], use_mmap: bool, device: device_mod.Device,
                    run: RunResult, options: RunOptions, cb: Callbacks) -> list[tuple[ModelSpec, Path, ModelInfo]]:
    """Resolve and check every model before measuring any, so bad input stops the run up front."""
    models = [(spec, catalog_mod.resolve(spec, progress=cb.message)) for spec in specs]
    models = [(spec, path, read_model_info(path, spec.format)) for spec, path in models]
    run.warnings.extend(preflight.check_models(models, tests, device.ram_available_bytes, options.force, use_mmap))
    return models


def _describe(device: device_mod.Device, tests: list[TestConfig], options: RunOptions) -> None:
    """The runtime versions and, once per thread count the tests use, the memory bandwidth."""
    device.runtime = runtime_info(options.verbose)
    if options.bandwidth_probe:
        device.memory_bandwidth = device_mod.probe_bandwidth(sorted({t.n_threads for t in tests}), device.caches,
                                                             device.ram_available_bytes)


def _measure(models, tests: list[TestConfig], sweep: Sweep, device: device_mod.Device, options: RunOptions,
             cb: Callbacks, session: EnergySession, recorder: _Recorder, skip: Collection[str]) -> None:
    """Every model's tests not in the store yet (nor in ``skip``), model after model."""
    done = recorder.store.done_keys(recorder.run.run_id) | set(skip)
    todo = [(spec, path, info, [t for t in tests if row_key(spec.name, t) not in done]) for spec, path, info in models]
    reps = 1 if options.energy.sustained_s is not None else sweep.repetitions
    n_tests = sum(len(t) for *_, t in todo)
    adaptive = reps == "auto" or options.energy.energy_target is not None
    cb.tests_planned(None if adaptive else n_tests * reps)  # -r auto, --energy-target: the count is not known ahead
    for spec, path, info, model_tests in todo:
        if model_tests:
            idle = session.idle.to_dict() if session.idle else None
            job = Job(spec, path, model_tests, sweep, device, options, idle, first=not recorder.run.rows)
            _run_one_model(job, info, cb, session, recorder)


class _Recorder:
    """Commits each finished row to the store, then publishes the run as the store holds it."""

    def __init__(self, store: Store, run: RunResult, cb: Callbacks, publish: Publish | None) -> None:
        self.store, self.run, self.cb, self.publish = store, run, cb, publish

    def add(self, spec_name: str, test: TestConfig, row: TestResult) -> None:
        self.store.add_row(self.run.run_id, row_key(spec_name, test), row)
        self.run.rows.append(row)
        self.store.update_run(self.run, "running")
        self.save()
        self.cb.row_done(row)

    def fail(self, record: dict) -> None:
        self.run.failures.append(record)
        where = record["test"] or "loading"
        self.cb.message(f"{record['model']} failed during {where}: {record['error']}")
        self.store.update_run(self.run, "running")
        self.save()

    def save(self) -> None:
        if self.publish is not None:
            self.publish(self.store.load_run(self.run.run_id))

    def finish(self, status: str) -> None:
        self.store.update_run(self.run, status)
        self.save()


def _run_one_model(job: Job, info: ModelInfo, cb: Callbacks, session: EnergySession, recorder: _Recorder) -> None:
    """In a child process (default) or in this one; a runtime failure ends only this model."""
    sink = lambda test, row: recorder.add(job.spec.name, test, row)  # noqa: E731
    if job.options.isolate:
        try:
            isolate.run_model(job, sink, cb, job.options.timeout_s, job.options.verbose)
        except isolate.ChildFailure as failure:
            recorder.fail(failure.record)
        return
    in_flight: list[TestConfig] = []  # the test being measured: what a failure record names

    def started(model: str, test: TestConfig) -> None:
        in_flight[:] = [test]
        cb.test_started(model, test)

    def finished(test: TestConfig, row: TestResult) -> None:
        sink(test, row)
        in_flight.clear()

    try:
        measure_model(job, info, session, dataclasses.replace(cb, test_started=started), finished)
    except (UserError, KeyboardInterrupt):
        raise
    except Exception as exc:  # a runtime failure ends this model's run, not the sweep
        test = in_flight[0].name if in_flight else None
        recorder.fail({"model": job.spec.name, "test": test, "error": f"{type(exc).__name__}: {exc}"})
