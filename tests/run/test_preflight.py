"""Memory and disk pre-flight checks."""

from __future__ import annotations

import pytest

from profiler import api
from profiler.errors import UserError
from profiler.measure.plan import Sweep
from profiler.measure.session import EnergyOptions
from profiler.models.ggufinfo import read_info
from profiler.platform import device as device_mod
from profiler.run import preflight
from profiler.run.options import RunOptions


def _pretend_64_mib_available(monkeypatch) -> None:
    real = device_mod.fingerprint

    def tiny_machine(*args, **kwargs):
        dev = real(*args, **kwargs)
        dev.ram_available_bytes = 64 * 2**20
        return dev

    monkeypatch.setattr(device_mod, "fingerprint", tiny_machine)


def test_estimate_adds_weights_kv_and_compute(tiny_gguf):
    info = read_info(tiny_gguf)
    est = preflight.estimate_memory(info, n_ctx=513, n_ubatch=512)
    assert est.weights_bytes == info.tensor_bytes
    assert est.kv_cache_bytes == info.kv_cache_bytes(513)
    # without flash attention: 2 heads of scores beside the mask rows
    assert est.compute_bytes == int(4 * (375 + 512 * ((2 + preflight.MASK_ROWS_PLAIN) * 513 + 3 * 128 + 4 * 64)))
    assert est.library_bytes == preflight.LLAMA_FIXED_BYTES + preflight.LLAMA_VOCAB_BYTES_PER_TOKEN * 375
    assert est.total_bytes == (est.weights_bytes + est.kv_cache_bytes + est.compute_bytes + est.library_bytes
                               + preflight.RUNTIME_OVERHEAD_BYTES)
    assert "weights" in est.describe() and "KV cache" in est.describe()


def test_model_that_does_not_fit_is_refused_with_the_estimate(tiny_gguf, tmp_path, monkeypatch):
    _pretend_64_mib_available(monkeypatch)
    options = RunOptions(reports_dir=tmp_path, bandwidth_probe=False, energy=EnergyOptions(idle_s=0))
    sweep = Sweep(n_prompt=[16], n_gen=[0], repetitions=1)
    with pytest.raises(UserError, match=r"tiny.gguf needs about \d+ MiB \(weights .*only 64 MiB is available.*--force"):
        api.profile([str(tiny_gguf)], sweep, options)
    options.force = True
    run = api.profile([str(tiny_gguf)], sweep, options)
    assert len(run.rows) == 1
    assert any("--force given" in w for w in run.warnings)


@pytest.mark.parametrize("layout", ["genai", "plain"])
def test_onnx_estimate_counts_weights_kv_and_prompt_logits(tmp_path, layout):
    pytest.importorskip("onnx")
    from profiler.models.onnxinfo import read_info as read_onnx_info
    from support import tinyonnx

    folder = getattr(tinyonnx, f"write_{layout}")(tmp_path / layout, tokenizer=False)
    info = read_onnx_info(folder)
    n_vocab = len(tinyonnx.vocabulary())
    assert info.n_vocab == n_vocab
    est = preflight.estimate_memory_onnx(info, n_ctx=129, n_prompt=64)
    assert info.tensor_bytes > 0
    assert est.weights_bytes == int(info.tensor_bytes * preflight.ONNX_WEIGHT_FACTOR[layout])
    # genai graphs share one KV buffer; plain exports hold past and present at once
    copies = 1 if layout == "genai" else 2
    assert est.kv_cache_bytes == copies * info.kv_cache_bytes(129)
    assert est.compute_bytes == int(4 * n_vocab * 64 * preflight.ONNX_LOGITS_COPIES)
    assert est.total_bytes > est.weights_bytes + est.kv_cache_bytes + est.compute_bytes


def test_onnx_model_that_does_not_fit_is_refused(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime_genai")
    from support import tinyonnx

    folder = tinyonnx.write_genai(tmp_path / "genai")
    _pretend_64_mib_available(monkeypatch)
    options = RunOptions(reports_dir=tmp_path / "reports", bandwidth_probe=False, energy=EnergyOptions(idle_s=0))
    sweep = Sweep(n_prompt=[16], n_gen=[0], repetitions=1)
    with pytest.raises(UserError, match=r"genai needs about \d+ MiB \(weights .*only 64 MiB is available.*--force"):
        api.profile([str(folder)], sweep, options)
