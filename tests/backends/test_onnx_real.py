"""Integration on the default model converted to ONNX (SmolLM2-135M-Instruct Q4_1 -> genai fp32/int4).

The conversion is cached in PROFILER_CACHE/converted/: a cached conversion is used as it is;
without one, the test converts (minutes) when torch, transformers and the genai builder are
installed, and skips otherwise.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxruntime_genai")

from profiler import api  # noqa: E402
from profiler.convert import MARKER, convert, converted_dir  # noqa: E402
from profiler.measure.plan import Sweep  # noqa: E402
from profiler.measure.session import EnergyOptions  # noqa: E402
from profiler.models import catalog
from profiler.quality.parity import parity  # noqa: E402
from profiler.run.options import RunOptions  # noqa: E402

pytestmark = pytest.mark.slow
HEAVY = ("torch", "transformers", "onnx_ir")


@pytest.fixture(scope="module")
def converted():
    gguf = catalog.resolve(catalog.load_catalog().defaults()[0])
    root = converted_dir(gguf)
    cached = {p: root / f"genai-{p}" for p in ("fp32", "int4") if (root / f"genai-{p}" / MARKER).exists()}
    if len(cached) < 2:
        missing = [m for m in HEAVY if importlib.util.find_spec(m) is None]
        if missing:
            pytest.skip(f"no cached conversion and {', '.join(missing)} not installed (pip install 'profiler[convert]')")
        cached = {m.precision: m.path for m in convert(gguf, ["fp32", "int4"], ["genai"])}
    return gguf, cached


def test_greedy_tokens_and_parity_of_the_fp32_conversion(converted):
    gguf, models = converted
    result = parity(models["fp32"], reference=gguf, n_tokens=256, n_greedy=8, threads=2)
    # Same weights (dequantized exactly), different runtime and kernels: close, not bit-equal.
    assert result.greedy_reference[:4] == result.greedy_candidate[:4]
    assert result.stats.kld_mean < 0.02 and result.stats.same_top_fraction > 0.9
    # "Paris" first: both runtimes read the model the same way
    assert result.greedy_reference[0] == result.greedy_candidate[0] == 7042


def test_the_f16_reference_isolates_the_runtime(converted):
    gguf, models = converted
    f16 = converted_dir(gguf) / "work" / "model-f16.gguf"
    if not f16.exists():
        pytest.skip("the conversion's F16 GGUF was removed")
    result = parity(models["fp32"], reference=f16, n_tokens=128, n_greedy=16, threads=2)
    assert result.stats.kld_mean < 1e-3 and result.greedy_agree == 16


def test_int4_conversion_costs_measurable_quality(converted):
    gguf, models = converted
    result = parity(models["int4"], reference=gguf, n_tokens=128, n_greedy=2, threads=2)
    assert 0.01 < result.stats.kld_mean < 1.0  # re-quantizing Q4_1 weights to int4 is not free


def test_profile_rows_for_both_onnx_loops(converted, tmp_path):
    _, models = converted
    options = RunOptions(reports_dir=tmp_path, bandwidth_probe=False, energy=EnergyOptions(idle_s=0), isolate=False)
    sweep = Sweep(n_prompt=[32], n_gen=[8], n_threads=[2], repetitions=1)
    run = api.profile([str(models["int4"]), str(models["int4"] / "model.onnx")], sweep, options)
    assert not run.failures
    by_backend = {(r.backend, r.test): r for r in run.rows}
    assert set(by_backend) == {("onnxruntime-genai", "pp32"), ("onnxruntime-genai", "tg8"),
                               ("onnxruntime", "pp32"), ("onnxruntime", "tg8")}
    for row in run.rows:
        assert row.quant_type == "int4" and row.model_n_params == 134515008  # the GGUF's own count
        assert row.session_options["intra_op_num_threads"] == 2
        assert row.load_s > 0 and row.peak_rss_bytes > row.file_size_bytes / 2
    assert np.isfinite(by_backend[("onnxruntime", "tg8")].decode_ts)
