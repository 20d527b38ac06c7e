"""Builders shared by tests."""

from __future__ import annotations

from profiler.results.schema import TestResult


def make_row(**overrides) -> TestResult:
    """A complete TestResult with plausible values; override what a test cares about."""
    values = dict(
        build_commit="llama-cpp-python 0.3.36", build_number=0, cpu_info="cpu", gpu_info="", backends="CPU",
        model_filename="/m/tiny.gguf", model_type="llama ?B F32", model_size=1000, model_n_params=500,
        n_batch=2048, n_ubatch=512, n_threads=2, type_k="f16", type_v="f16", n_gpu_layers=0, flash_attn=-1,
        use_mmap=True, n_prompt=64, n_gen=0, n_depth=0, test_time="2026-11-27T04:00:00Z", avg_ns=1000,
        stddev_ns=10, avg_ts=64000.0, stddev_ts=640.0, samples_ns=[990, 1010], samples_ts=[64646.5, 63366.3],
        backend="llama.cpp", model_name="tiny", test="pp64", quant_type="F32", file_size_bytes=1200, n_ctx=65,
        repetitions=2, random_tokens=False, kv_cache_bytes=100, load_s=0.01, ttft_ms=1.2, ttft_ms_samples=[1.1, 1.3],
        prefill_ts=64000.0, decode_ts=None, itl_ms_p50=None, itl_ms_p90=None, itl_ms_p99=None, itl_ms_samples=[],
        rss_bytes=100, peak_rss_bytes=200, peak_rss_method="VmHWM", pss_bytes=90, uss_bytes=80,
        weight_bytes_per_token=800, bytes_per_token=None, achieved_gbps=None, bw_fraction=None,
    )
    values.update(overrides)
    return TestResult(**values)
