"""One model's sweep: load it, then measure each test of the job and hand over its row.

The same code runs in the measuring child (run/worker.py) and, without crash isolation, in
the run's own process (run/orchestrate.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from profiler.backends import backend_name_for, create_backend
from profiler.backends.base import Backend
from profiler.measure import memory
from profiler.measure import session as energy_run
from profiler.measure.energy import EnergySession
from profiler.measure.plan import TestConfig, context_groups, load_params
from profiler.measure.runner import TokenSource
from profiler.models.modelinfo import ModelInfo
from profiler.platform import native_noise, placement
from profiler.results.schema import TestResult
from profiler.run.job import Job
from profiler.run.options import Callbacks
from profiler.run.row import LoadedModel, Measured, build_row, repetition_rule

Sink = Callable[[TestConfig, TestResult], None]


def measure_model(job: Job, info: ModelInfo, session: EnergySession, cb: Callbacks, sink: Sink) -> None:
    """Load the job's model and run its tests; ``sink(test, row)`` receives each finished row.
    ``cb.test_started`` names the test in flight, which is what a failure record names."""
    unplaced = sorted(os.sched_getaffinity(0))  # what a test without a placement runs on
    _place(job.tests[0], unplaced)  # before the runtime loads: the threads it starts inherit the CPUs
    try:
        _measure_all(job, info, session, cb, sink, unplaced)
    finally:
        placement.set_process_affinity(unplaced)  # in-process runs: the caller gets its CPUs back


def _place(test: TestConfig, unplaced: list[int]) -> None:
    placement.set_process_affinity(placement.parse_cpu_mask(test.cpu_mask) or unplaced)


def _measure_all(job: Job, info: ModelInfo, session: EnergySession, cb: Callbacks, sink: Sink,
                 unplaced: list[int]) -> None:
    options = job.options
    name = backend_name_for(options.backend, job.path, job.spec.format)
    with native_noise.captured(options.verbose):  # a runtime's import-time chatter (ONNX Runtime's CPU probe)
        backend: Backend = create_backend(name, options.verbose, options.onnx_options)
    rss_before_load = memory.rss_now()  # the interpreter, numpy, the runtime library: not the model
    try:
        start = time.perf_counter()
        facts = backend.load(str(job.path), load_params(job.sweep))
        model = LoadedModel(info, facts, backend, time.perf_counter() - start)
        tokens = TokenSource(backend, facts, job.sweep.random_tokens, n_tokens=max(t.n_ctx_needed for t in job.tests))
        first = job.first
        for ctx_params, group in context_groups(job.tests, info.n_ctx_train or None):
            backend.configure(ctx_params)
            for test in group:
                cooldown = energy_run.pause(session, options.energy, first=first, message=cb.message)
                first = False
                cb.test_started(job.spec.name, test)
                _place(test, unplaced)  # every thread, the runtime's workers included
                measured = _measure_test(job, model, test, tokens, session, cb, cooldown, rss_before_load)
                sink(test, build_row(job, model, test, ctx_params.n_ctx, measured))
    finally:
        backend.close()


def _measure_test(job: Job, model: LoadedModel, test: TestConfig, tokens: TokenSource, session: EnergySession,
                  cb: Callbacks, cooldown: dict | None, rss_before_load: int | None) -> Measured:
    options = job.options
    with memory.PeakWatch() as peak:  # this test's peak alone
        timings, tracker = energy_run.run_tracked(session, model.backend, test, tokens,
                                                  repetition_rule(job.sweep, options.energy.energy_target),
                                                  options.warmup, options.energy, lambda _: cb.repetition_done())
    energy = energy_run.row_fields(job.spec.name, test, tracker, timings, options.energy, cooldown)
    # read back after the test, so threads the runtime started during it are counted
    return Measured(timings, memory.row_fields(peak, rss_before_load), energy, placement.process_affinity())
