"""A test's result row, built in one place from what the test measured.

The timings give the speed figures; the memory, energy and thermal trackers each hand over
their own fields (measure/memory.py, measure/session.py) and the bandwidth and adaptive-
repetition figures come from measure/bandwidth.py and measure/adaptive.py. Nothing is set on
the row after it is built.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from profiler import stats
from profiler.backends.base import Backend, ModelFacts
from profiler.measure import adaptive, bandwidth, memory, stability
from profiler.measure.adaptive import AutoReps
from profiler.measure.plan import Sweep, TestConfig
from profiler.measure.runner import TestTimings
from profiler.models.modelinfo import ModelInfo, fixed_kv_type
from profiler.platform import placement
from profiler.results.schema import FLASH_ATTN_INT, TestResult
from profiler.run.job import Job


@dataclass
class LoadedModel:
    """A model as the backend loaded it, with what its header says."""

    info: ModelInfo
    facts: ModelFacts
    backend: Backend
    load_s: float


@dataclass
class Measured:
    """What one test measured: its timings and its trackers' row fields."""

    timings: TestTimings
    memory: dict  # measure/memory.row_fields: the peak during the test
    energy: dict  # measure/session.row_fields: energy, thermal, sustained; its ``warnings``
    affinity: list[int] = field(default_factory=list)  # the process's CPUs after the test (sched_getaffinity)


def repetition_rule(sweep: Sweep, energy_target: float | None = None) -> int | AutoReps:
    """-r N as a count, -r auto as the adaptive policy with --ci-target and --max-time; with
    --energy-target the policy also waits for the J/token interval."""
    return adaptive.policy(sweep.repetitions, sweep.ci_target, sweep.max_time_s, energy_target)


def active_params(info: ModelInfo, runtime_n_params: int) -> int:
    """The runtime's parameter count less the experts a token does not run through (the header
    tells which share that is); a dense model's count is unchanged."""
    active = getattr(info, "n_params_active", 0) or info.n_params
    return int(runtime_n_params - (info.n_params - active))


def _ms(ns_values) -> list[float]:
    return [v / 1e6 for v in ns_values]


def build_row(job: Job, model: LoadedModel, test: TestConfig, n_ctx: int, measured: Measured) -> TestResult:
    spec, info, backend, timings = job.spec, model.info, model.backend, measured.timings
    label = f"{spec.name} {test.name}"
    samples_ts = [(test.n_prompt + test.n_gen) * 1e9 / ns for ns in timings.samples_ns]
    speed = _speed_fields(test, timings, samples_ts)
    bw = bandwidth.row_fields(info, test, timings.decode_step_ts, job.device)
    reps = adaptive.row_fields(timings, samples_ts, repetition_rule(job.sweep, job.options.energy.energy_target), label)
    energy = dict(measured.energy)
    warnings = (stability.stability_warnings([s / 1e9 for s in timings.samples_ns], label) + reps.pop("warnings")
                + bw.pop("warnings") + energy.pop("warnings"))
    build = backend.build_info
    mem = memory.snapshot()
    fields = dict(
        build_commit=build.get("build_commit") or f"llama-cpp-python {build.get('llama_cpp_python', '?')}",
        build_number=0,
        cpu_info=job.device.cpu_model,
        gpu_info="",
        backends=backend.session_options.get("execution_provider", "CPU").removesuffix("ExecutionProvider"),
        model_filename=str(info.path),
        model_type=model.facts.description,
        model_size=model.facts.size_bytes,
        model_n_params=model.facts.n_params,
        model_n_params_active=active_params(info, model.facts.n_params),
        n_batch=test.n_batch,
        n_ubatch=test.n_ubatch,
        n_threads=test.n_threads,
        type_k=fixed_kv_type(info) or test.type_k,  # an ONNX graph fixes its KV type
        type_v=fixed_kv_type(info) or test.type_v,
        n_gpu_layers=0,
        flash_attn=FLASH_ATTN_INT[test.flash_attn],
        use_mmap=job.sweep.use_mmap,
        n_prompt=test.n_prompt,
        n_gen=test.n_gen,
        n_depth=test.n_depth,
        test_time=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
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
        random_tokens=job.sweep.random_tokens,
        kv_cache_bytes=info.kv_cache_bytes(n_ctx, test.type_k, test.type_v, test.n_ubatch),
        load_s=model.load_s,
        rss_bytes=mem.rss_bytes,
        pss_bytes=mem.pss_bytes,
        uss_bytes=mem.uss_bytes,
        weight_bytes_per_token=info.weight_bytes_per_token,
        session_options=backend.session_options,
        **_placement_fields(job, test, measured.affinity),
    )
    # the trackers' fields last: in sustained mode the energy fields rename the test
    return TestResult(**{**fields, **speed, **bw, **reps, **measured.memory, **energy}, warnings=warnings)


def _placement_fields(job: Job, test: TestConfig, affinity: list[int]) -> dict:
    return dict(cpu_mask=test.cpu_mask, cpu_strict=bool(test.cpu_strict), cpu_affinity=list(affinity) or None,
                cpu_cores=placement.describe_cpus(affinity, job.device.core_clusters) if affinity else None)


def _speed_fields(test: TestConfig, timings: TestTimings, samples_ts: list[float]) -> dict:
    itl_ms = _ms(timings.all_itl_ns)
    decode_ts = None
    if test.n_gen:  # MLPerf Client: tokens after the first over the time between them
        decode_ts = stats.mean([len(rep) * 1e9 / sum(rep) for rep in timings.itl_ns])
    return dict(
        avg_ns=int(round(stats.mean(timings.samples_ns))),
        stddev_ns=int(round(stats.stdev(timings.samples_ns))),
        avg_ts=stats.mean(samples_ts),
        stddev_ts=stats.stdev(samples_ts),
        ttft_ms=stats.mean(_ms(timings.ttft_ns)) if timings.ttft_ns else None,
        ttft_ms_samples=_ms(timings.ttft_ns),
        prefill_ts=stats.mean([test.n_prompt * 1e9 / ns for ns in timings.prefill_ns]) if test.n_prompt else None,
        decode_ts=decode_ts,
        itl_ms_p50=stats.percentile(itl_ms, 50) if itl_ms else None,
        itl_ms_p90=stats.percentile(itl_ms, 90) if itl_ms else None,
        itl_ms_p99=stats.percentile(itl_ms, 99) if itl_ms else None,
        itl_ms_samples=itl_ms,
    )
