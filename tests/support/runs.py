"""Runs, rows and scoreboards shared by the report, analysis and energy tests."""

from __future__ import annotations

from profiler.analysis import scoring
from profiler.analysis.accuracy import AccuracyScore
from profiler.results.schema import RunResult, TestResult
from support.tests_support import make_row

MIB = 2**20


def sweep_row(model: str, quant: str, test: str, threads: int, ts: float, **kw) -> TestResult:
    """A row with every column a report shows filled in (estimated energy, an ITL spread for decode)."""
    decode = test.startswith("tg")
    values = dict(
        model_name=model, quant_type=quant, test=test, n_threads=threads, avg_ts=ts, stddev_ts=ts * 0.0712,
        samples_ts=[ts * 0.95, ts, ts * 1.05], n_prompt=0 if decode else 512, n_gen=128 if decode else 0,
        prefill_ts=None if decode else ts, decode_ts=ts if decode else None, ttft_ms=26.54 if not decode else 8.1,
        peak_rss_bytes=int(196.4 * MIB), model_peak_rss_bytes=int(148.2 * MIB), pss_bytes=int(150 * MIB), file_size_bytes=int(86 * MIB), load_s=0.4123,
        itl_ms_p50=8.1 if decode else None, itl_ms_p90=9.2 if decode else None, itl_ms_p99=12.3 if decode else None,
        energy_method="model", energy_source="cpu-tdp-model", energy_measured=False,
        j_per_decode_token=0.0951 if decode else None, j_per_prefill_token=None if decode else 0.00412,
        bw_note="probe skipped (--no-bandwidth)",
    )
    values.update(kw)
    return make_row(**values)


def sweep_run() -> RunResult:
    """Two models, pp512 and tg128, at 1 and 2 threads: eight rows on a 2-core device."""
    rows = []
    for model, quant, base in (("smollm2-135m-instruct-q4_1", "Q4_1", 300.0), ("gemma-3-270m-it-q4_k_m", "Q4_K_M", 150.0)):
        for threads in (1, 2):
            rows.append(sweep_row(model, quant, "pp512", threads, base * threads * 1.0123))
            rows.append(sweep_row(model, quant, "tg128", threads, base / 2.44 * threads))
    device = {"cpu_model": "AMD EPYC 7B13 64-Core Processor", "physical_cores": 2, "logical_cores": 2,
              "ram_total_bytes": 8 * 2**30, "isa": ["avx2"], "memory_bandwidth": {"read_gbps": 9.5}}
    return RunResult("20261129-1", "2026-11-29T19:00:00Z", "profiler run", device, rows)


def three_config_scoreboard() -> scoring.Scoreboard:
    """Three configurations, one dominated by another, with published accuracy and estimated energy."""
    def config(name, quant, threads, tps, peak, j):
        return scoring.Configuration(key=f"{name} t{threads}", model_name=name, model_file=f"/m/{name}.gguf", quant=quant,
                                     n_params=134_515_008, file_size_bytes=86 * MIB, n_threads=threads,
                                     runtime="b2048/ub512, kv f16/f16, fa auto", decode_tps=tps, prefill_tps=tps * 3,
                                     peak_rss_bytes=peak, j_per_decode_token=j, energy_measured=False,
                                     energy_note="ESTIMATED: cpu-tdp-model (model)")

    configs = [config("smollm2-135m-instruct-q4_1", "Q4_1", 2, 123.4, 196 * MIB, 0.095),
               config("smollm2-135m-instruct-q8_0", "Q8_0", 2, 98.1, 260 * MIB, 0.121),
               config("gemma-3-270m-it-q4_k_m", "Q4_K_M", 2, 61.0, 330 * MIB, 0.19)]
    accuracy = {c.key: AccuracyScore(metric="hellaswag", value_pct=v, n_shot=0, provenance="published",
                                     source="a long published leaderboard name")
                for c, v in zip(configs, (38.7, 39.1, 41.2), strict=True)}
    scores = [scoring.score(c, "hellaswag", accuracy[c.key], 0.30) for c in configs]
    return scoring.scoreboard(scores, 0.30)


def stored_energy_rows(name: str, j: float, **overrides) -> list[TestResult]:
    """One stored tg128 row of ``name`` with a measured ``j`` J/decode token; ``overrides`` change any field."""
    values = dict(model_name=name, model_filename=f"/m/{name}.gguf", n_threads=2, n_batch=2048, n_ubatch=512,
                  type_k="f16", type_v="f16", flash_attn=-1, quant_type="Q4_0", model_n_params=1e8,
                  file_size_bytes=1e8, test="tg128", n_gen=128, n_prompt=0, decode_ts=50.0, peak_rss_bytes=1e8,
                  j_per_decode_token=j, energy_measured=True, energy_source="rapl", energy_method="counter")
    return [make_row(**{**values, **overrides})]
