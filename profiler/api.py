"""Python entry points; the CLI only parses arguments, calls these and renders."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from profiler import paths, stats
from profiler.backends import backend_name_for, create_backend
from profiler.backends.base import Backend, ModelFacts
from profiler.errors import UserError
from profiler.measure import adaptive, memory, stability
from profiler.measure import session as energy_run
from profiler.measure.plan import Sweep, TestConfig, context_groups, expand, load_params
from profiler.measure.runner import TestTimings, TokenSource
from profiler.models import catalog as catalog_mod
from profiler.models.catalog import ModelSpec
from profiler.models.modelinfo import ModelInfo, fixed_kv_type, read_model_info
from profiler.platform import device as device_mod
from profiler.platform import native_noise, sysfs
from profiler.report import save_run
from profiler.results.schema import FLASH_ATTN_INT, RunResult, TestResult
from profiler.results.store import Store, row_key
from profiler.run import isolate, preflight


@dataclass
class Callbacks:
    """Hooks the CLI uses for progress; all optional."""

    message: Callable[[str], None] = lambda text: None
    tests_planned: Callable[[int], None] = lambda total_reps: None
    test_started: Callable[[str, TestConfig], None] = lambda model, test: None
    repetition_done: Callable[[], None] = lambda: None
    row_done: Callable[[TestResult], None] = lambda row: None


@dataclass
class RunOptions:
    reports_dir: Path = field(default_factory=lambda: Path(os.environ.get("PROFILER_REPORTS", "reports")))
    catalog_path: Path | None = None
    backend: str = "auto"  # auto: llama.cpp for GGUF, ONNX Runtime (genai or plain) for ONNX
    # ONNX Runtime session options: execution_provider ("cpu", ...), graph_optimization ("all", ...)
    onnx_options: dict = field(default_factory=dict)
    warmup: bool = True
    bandwidth_probe: bool = True
    save: bool = True
    verbose: bool = False
    force: bool = False  # run models the memory pre-flight says will not fit
    command: str = ""
    # --idle, --watts, --sustained, --delay, --cooldown-to (docs/energy.md)
    energy: energy_run.EnergyOptions = field(default_factory=energy_run.EnergyOptions)
    energy_session: object | None = None  # an EnergySession to use instead of probing (tests)
    isolate: bool = True  # each model's sweep in a child process (crash isolation)
    timeout_s: float | None = None  # per test, with isolate: a child silent this long is killed
    db: Path | None = None  # the results store; default PROFILER_DB or <reports_dir>/profiler.db
    # warnings the caller found before the run, stored with the run's own (run --all-local: the skipped models)
    warnings: list[str] = field(default_factory=list)

    @property
    def db_path(self) -> Path:
        if not self.save:
            return Path(":memory:")  # nothing on disk, but the same code path
        if self.db is not None:
            return self.db
        return paths.db_path(self.reports_dir)


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run; the finished tests are in the store under ``run_id``."""

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self.run_id = run_id


def new_run_id() -> str:
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def resolve_models(names: Sequence[str], catalog_path: Path | None = None,
                   progress: Callable[[str], None] | None = None) -> list[ModelSpec]:
    """Catalogue names, file paths or models already on disk (``ollama:…``, ``hf:…``,
    ``hf-cache:…``, ``lmstudio:…``, ``llamacpp:…``: profiler.sources) -> specs; no names -> the
    catalogue's default models."""
    from profiler import sources

    needs_catalog = not names or any(not catalog_mod.looks_like_path(n) and not sources.handles(n) for n in names)
    catalog = catalog_mod.load_catalog(catalog_path) if needs_catalog else None
    if not names:
        return catalog.defaults()
    return [sources.spec_for(n, progress) if sources.handles(n) else
            catalog_mod.spec_for_path(n) if catalog_mod.looks_like_path(n) else catalog.get(n) for n in names]


def describe_device(bandwidth_probe: bool = True, runtime: dict | None = None,
                    threads: Sequence[int] | None = None) -> device_mod.Device:
    """Fingerprint this machine; with ``bandwidth_probe``, measure read bandwidth once per
    thread count in ``threads`` (default: the physical cores), in a child process."""
    fp = device_mod.fingerprint(runtime=runtime)
    if bandwidth_probe:
        fp.memory_bandwidth = device_mod.probe_bandwidth(list(threads or [fp.physical_cores]), fp.caches,
                                                         fp.ram_available_bytes)
    return fp


def runtime_info(verbose: bool = False) -> dict:
    """Runtime versions. ONNX Runtime's come from package metadata: importing it runs its CPU
    detection, which prints warnings on boards whose /sys it cannot read."""
    from profiler.backends.llama_cpp import system_info

    with native_noise.captured(verbose):
        info = {"llama.cpp": system_info()}
    for package in ("onnxruntime", "onnxruntime-genai"):
        version = native_noise.package_version(package)
        if version:
            info[package] = {"version": version}
    return info


def profile(
    model_names: Sequence[str],
    sweep: Sweep,
    options: RunOptions | None = None,
    callbacks: Callbacks | None = None,
    resume: str | None = None,
    skip: Collection[str] = (),
) -> RunResult:
    """Measure every test of ``sweep`` on every model.

    Each finished row is committed to the results store at once and the run folder rewritten
    from it; with ``resume`` (a run id) the stored plan is reused and finished tests skipped.
    ``skip`` holds further row keys (store.row_key) not to measure: the fleet's resume uses it.
    """
    options = options or RunOptions()
    cb = callbacks or Callbacks()
    store = Store(options.db_path) if resume else None
    if resume:
        model_names, sweep = _stored_plan(store, resume)
    specs = resolve_models(model_names, options.catalog_path, cb.message)
    load_before = sysfs.load_average()
    device = device_mod.fingerprint()  # /proc and /sys only: the probes wait until the input is checked
    tests = energy_run.select_tests(expand(sweep, default_threads=device.physical_cores), options.energy)
    run = store.load_run(resume) if store else RunResult(
        run_id=new_run_id(),
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        command=options.command,
        device=device.to_dict(),
    )
    busy = stability.busy_warning(load_before[0] if load_before else None, device.logical_cores)
    if busy:
        run.warnings.append(busy)
    run.warnings.extend(w for w in options.warnings if w not in run.warnings)  # a resumed run has them already
    # Resolve and check every model before measuring any, so bad input stops the run up front.
    models = [(spec, catalog_mod.resolve(spec, progress=cb.message)) for spec in specs]
    models = [(spec, path, read_model_info(path, spec.format)) for spec, path in models]
    _preflight(models, tests, device, run, options.force)
    device.runtime = runtime_info(options.verbose)
    if options.bandwidth_probe:  # once per thread count the tests use
        device.memory_bandwidth = device_mod.probe_bandwidth(sorted({t.n_threads for t in tests}), device.caches,
                                                             device.ram_available_bytes)
    if not resume:
        run.device = device.to_dict()
    session = energy_run.open_session(options.energy, device.cpu_model, device.board, cb.message,
                                      options.energy_session)
    store = store or Store(options.db_path)  # opened only once the input is known to be good
    if not resume:
        run.device["energy"] = session.describe()
        run.warnings.extend(session.run_warnings())
        store.begin_run(run, {"models": list(model_names), "sweep": asdict(sweep)})
    recorder = _Recorder(store, run, options, cb)
    try:  # from here on a Ctrl-C, wherever it lands, leaves the registered run resumable
        done = store.done_keys(run.run_id) | set(skip)
        todo = [(spec, path, info, [t for t in tests if row_key(spec.name, t) not in done]) for spec, path, info in models]
        reps = 1 if options.energy.sustained_s is not None else sweep.repetitions
        n_tests = sum(len(t) for *_, t in todo)
        cb.tests_planned(None if reps == "auto" else n_tests * reps)  # -r auto: the count is not known ahead
        for spec, path, info, model_tests in todo:
            if model_tests:
                _run_one_model(spec, path, info, model_tests, sweep, device, options, cb, session, recorder)
    except KeyboardInterrupt:
        recorder.finish("interrupted")
        raise RunInterrupted(run.run_id) from None
    recorder.finish("failed" if run.failures else "done")
    return run


def _stored_plan(store: Store, run_id: str) -> tuple[list[str], Sweep]:
    plan = store.plan(run_id)
    data = dict(plan["sweep"])
    data["prompt_gen"] = [tuple(p) for p in data.get("prompt_gen", [])]
    return plan["models"], Sweep(**data)


class _Recorder:
    """Commits each finished row to the store, then regenerates the run folder from the store."""

    def __init__(self, store: Store, run: RunResult, options: RunOptions, cb: Callbacks) -> None:
        self.store, self.run, self.options, self.cb = store, run, options, cb

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
        if self.options.save:
            save_run(self.store.load_run(self.run.run_id), self.options.reports_dir)

    def finish(self, status: str) -> None:
        self.store.update_run(self.run, status)
        self.save()


def _run_one_model(spec, path, info, tests, sweep, device, options, cb, session, recorder: _Recorder) -> None:
    """In a child process (default) or in this one; a runtime failure ends only this model."""
    sink = lambda test, row: recorder.add(spec.name, test, row)  # noqa: E731
    first = not recorder.run.rows
    if options.isolate:
        idle = session.idle.to_dict() if session.idle else None
        job = isolate.job_for(spec, path, tests, sweep, device, options, idle, first)
        try:
            isolate.run_model(job, sink, cb, options.timeout_s, options.verbose)
        except isolate.ChildFailure as failure:
            recorder.fail(failure.record)
        return
    state = {"test": None, "first": first}
    try:
        profile_model(spec, path, info, tests, sweep, device, options, cb, session, sink, state)
    except (UserError, KeyboardInterrupt):
        raise
    except Exception as exc:  # a runtime failure ends this model's run, not the sweep
        test = state["test"]
        recorder.fail({"model": spec.name, "test": test.name if test else None, "error": f"{type(exc).__name__}: {exc}"})


def _preflight(models, tests, device, run: RunResult, force: bool) -> None:
    """Refuse tests longer than a model's context, and (unless forced) models whose estimated
    memory exceeds what is available."""
    available = device.ram_available_bytes
    for spec, _, info in models:
        worst = preflight.worst_estimate(info, tests)  # refuses a test longer than the model's context
        warning = preflight.check_memory(spec.name, worst, available, force)
        if warning:
            run.warnings.append(warning)


def profile_model(spec, path, info, tests, sweep, device, options, cb, session, sink, state: dict) -> None:
    """Load one model and run its tests; ``sink(test, row)`` receives each finished row.

    ``state["test"]`` names the test in flight (for failure records); ``state["first"]`` says
    whether no test of the run has happened yet (no --delay before the first).
    """
    name = backend_name_for(options.backend, path, spec.format)
    with native_noise.captured(options.verbose):  # a runtime's import-time chatter (ONNX Runtime's CPU probe)
        backend: Backend = create_backend(name, options.verbose, options.onnx_options)
    rss_before_load = memory.rss_now()  # the interpreter, numpy, the runtime library: not the model
    try:
        start = time.perf_counter()
        facts = backend.load(str(path), load_params(sweep))
        load_s = time.perf_counter() - start
        tokens = TokenSource(backend, facts, sweep.random_tokens, n_tokens=max(t.n_ctx_needed for t in tests))
        for ctx_params, group in context_groups(tests, info.n_ctx_train or None):
            backend.configure(ctx_params)
            for test in group:
                state["test"] = test
                cooldown = energy_run.pause(session, options.energy, first=state["first"], message=cb.message)
                state["first"] = False
                cb.test_started(spec.name, test)
                with memory.PeakWatch() as peak:  # this test's peak alone
                    timings, tracker = energy_run.run_tracked(session, backend, test, tokens, _repetitions(sweep),
                                                              options.warmup, options.energy,
                                                              lambda _: cb.repetition_done())
                row = build_row(spec, info, facts, backend, test, timings, ctx_params.n_ctx, load_s, sweep, device)
                for field_name, value in memory.row_fields(peak, rss_before_load).items():
                    setattr(row, field_name, value)
                energy_run.finish_row(row, tracker, timings, options.energy, cooldown)
                sink(test, row)
                state["test"] = None
    finally:
        backend.close()


def _ms(ns_values) -> list[float]:
    return [v / 1e6 for v in ns_values]


def build_row(
    spec: ModelSpec,
    info: ModelInfo,
    facts: ModelFacts,
    backend: Backend,
    test: TestConfig,
    timings: TestTimings,
    n_ctx: int,
    load_s: float,
    sweep: Sweep,
    device: device_mod.Device,
) -> TestResult:
    n_tokens = test.n_prompt + test.n_gen
    samples_ts = [n_tokens * 1e9 / ns for ns in timings.samples_ns]
    itl_ms = _ms(timings.all_itl_ns)
    decode_ts = None
    if test.n_gen:  # MLPerf Client: tokens after the first over the time between them
        decode_ts = stats.mean([len(rep) * 1e9 / sum(rep) for rep in timings.itl_ns])
    prefill_ts = stats.mean([test.n_prompt * 1e9 / ns for ns in timings.prefill_ns]) if test.n_prompt else None
    bw = _bandwidth(info, test, decode_ts, device)
    mem = memory.snapshot()
    build = backend.build_info
    warnings = stability.stability_warnings([s / 1e9 for s in timings.samples_ns], f"{spec.name} {test.name}")
    reps = adaptive.row_fields(timings, samples_ts, _repetitions(sweep), f"{spec.name} {test.name}")
    warnings += reps.pop("warnings")
    return TestResult(
        build_commit=build.get("build_commit") or f"llama-cpp-python {build.get('llama_cpp_python', '?')}",
        build_number=0,
        cpu_info=device.cpu_model,
        gpu_info="",
        backends=backend.session_options.get("execution_provider", "CPU").removesuffix("ExecutionProvider"),
        model_filename=str(info.path),
        model_type=facts.description,
        model_size=facts.size_bytes,
        model_n_params=facts.n_params,
        model_n_params_active=active_params(info, facts.n_params),
        n_batch=test.n_batch,
        n_ubatch=test.n_ubatch,
        n_threads=test.n_threads,
        type_k=fixed_kv_type(info) or test.type_k,  # an ONNX graph fixes its KV type
        type_v=fixed_kv_type(info) or test.type_v,
        n_gpu_layers=0,
        flash_attn=FLASH_ATTN_INT[test.flash_attn],
        use_mmap=sweep.use_mmap,
        n_prompt=test.n_prompt,
        n_gen=test.n_gen,
        n_depth=test.n_depth,
        test_time=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        avg_ns=int(round(stats.mean(timings.samples_ns))),
        stddev_ns=int(round(stats.stdev(timings.samples_ns))),
        avg_ts=stats.mean(samples_ts),
        stddev_ts=stats.stdev(samples_ts),
        samples_ns=list(timings.samples_ns),
        samples_ts=samples_ts,
        backend=backend.name,
        model_name=spec.name,
        model_source=spec.origin or ("catalog" if spec.base_dir is not None else "path"),
        model_sha256=spec.sha256,
        test=test.name,
        quant_type=spec.quant or info.quant_type,
        file_size_bytes=info.file_size_bytes,
        n_ctx=n_ctx,
        repetitions=len(timings.samples_ns),
        random_tokens=sweep.random_tokens,
        kv_cache_bytes=info.kv_cache_bytes(n_ctx, test.type_k, test.type_v, test.n_ubatch),
        load_s=load_s,
        ttft_ms=stats.mean(_ms(timings.ttft_ns)) if timings.ttft_ns else None,
        ttft_ms_samples=_ms(timings.ttft_ns),
        prefill_ts=prefill_ts,
        decode_ts=decode_ts,
        itl_ms_p50=stats.percentile(itl_ms, 50) if itl_ms else None,
        itl_ms_p90=stats.percentile(itl_ms, 90) if itl_ms else None,
        itl_ms_p99=stats.percentile(itl_ms, 99) if itl_ms else None,
        itl_ms_samples=itl_ms,
        rss_bytes=mem.rss_bytes,
        peak_rss_bytes=mem.peak_rss_bytes,
        peak_rss_method=mem.peak_method,
        pss_bytes=mem.pss_bytes,
        uss_bytes=mem.uss_bytes,
        weight_bytes_per_token=info.weight_bytes_per_token,
        session_options=backend.session_options,
        warnings=warnings + bw.pop("warnings"),
        **bw,
        **reps,
    )


def _repetitions(sweep: Sweep):
    """-r N as a count, -r auto as the adaptive policy with --ci-target and --max-time."""
    return adaptive.policy(sweep.repetitions, sweep.ci_target, sweep.max_time_s)


def active_params(info: ModelInfo, runtime_n_params: int) -> int:
    """The runtime's parameter count less the experts a token does not run through (the header
    tells which share that is); a dense model's count is unchanged."""
    active = getattr(info, "n_params_active", 0) or info.n_params
    return int(runtime_n_params - (info.n_params - active))


def _bandwidth(info: ModelInfo, test: TestConfig, decode_ts: float | None, device) -> dict:
    """Bytes one decode step reads (weights + the KV cache it attends to, averaged over the
    test's decode positions), what that makes per second, and its fraction of the read
    bandwidth measured at the test's own thread count."""
    fields = {"bytes_per_token": None, "achieved_gbps": None, "bw_fraction": None, "warnings": []}
    if decode_ts is None:
        return {**fields, "bw_note": "no decode in this test"}
    first = test.n_depth + test.n_prompt
    per_token = int(info.weight_bytes_per_token + info.kv_bytes_read(first, test.n_gen, test.type_k, test.type_v))
    achieved = per_token * decode_ts / 1e9
    fields.update(bytes_per_token=per_token, achieved_gbps=achieved)
    rate, why_not = device_mod.bandwidth_at(device.memory_bandwidth, test.n_threads)
    if rate is None:
        return {**fields, "bw_note": why_not}
    fraction = achieved / rate["read_gbps"]
    fields.update(bw_fraction=fraction, bw_read_gbps=rate["read_gbps"], bw_probe_threads=test.n_threads,
                  bw_probe_buffer_bytes=rate["buffer_bytes"], bw_note=device.memory_bandwidth.get("note"))
    if fraction > 1.0:
        fields["warnings"].append(_over_one(fraction, per_token, device, test))
    return fields


def _over_one(fraction: float, per_token: int, device, test: TestConfig) -> str:
    """A bw_fraction above 1 reads more than RAM can deliver: say which explanation applies."""
    llc = max(device.caches.values(), default=0)
    if per_token <= llc:
        why = (f"the {per_token / 2**20:.1f} MiB a token reads fit in the {llc / 2**20:.0f} MiB last-level cache, "
               "so decoding is not limited by RAM bandwidth")
    else:
        why = "physically impossible from RAM: the bandwidth probe under-measured (was the machine busy during it?)"
    return f"{test.name}: bw_fraction {fraction:.2f} > 1.0; {why}"
