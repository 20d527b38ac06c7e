"""The llama.cpp backend on a tiny random-weight GGUF (real llama.cpp, no download)."""

from __future__ import annotations

import numpy as np
import pytest

from profiler.backends.base import ContextParams, LoadParams
from profiler.backends.llama_cpp import LlamaCppBackend
from profiler.errors import UserError


@pytest.fixture
def backend(tiny_gguf):
    b = LlamaCppBackend()
    facts = b.load(str(tiny_gguf), LoadParams())
    b.configure(ContextParams(n_ctx=256, n_batch=64, n_ubatch=32))
    b.set_threads(1)
    b.facts = facts
    yield b
    b.close()


def test_model_facts(backend, tiny_gguf):
    facts = backend.facts
    assert facts.n_vocab == 375 and facts.add_bos and facts.bos_token == 1
    assert facts.n_params == 122048
    assert "llama" in facts.description


def test_tokenize_uses_the_gguf_vocabulary(backend):
    ids = backend.tokenize("the cat", add_special=True)
    assert ids[0] == 1  # BOS
    assert len(ids) >= 3
    assert backend.tokenize("the cat", add_special=False) == ids[1:]


def test_prefill_in_chunks_equals_one_pass(backend):
    tokens = [1] + list(range(300, 370))  # 71 tokens: two chunks of n_batch=64
    backend.reset()
    backend.prefill(tokens)
    chunked = backend.logits().copy()
    assert backend.n_past() == 71
    backend.configure(ContextParams(n_ctx=256, n_batch=128, n_ubatch=128))
    backend.set_threads(1)
    backend.reset()
    backend.prefill(tokens)
    # different ubatch sizes take different matmul paths: equal up to float rounding
    np.testing.assert_allclose(backend.logits(), chunked, rtol=1e-3, atol=5e-3)


def test_decode_one_matches_prefill_of_the_same_sequence(backend):
    backend.reset()
    backend.prefill([1, 300, 301])
    backend.decode_one(302)
    stepwise = backend.logits().copy()
    backend.reset()
    backend.prefill([1, 300, 301, 302])
    np.testing.assert_allclose(backend.logits(), stepwise, rtol=1e-3, atol=5e-3)


def test_reset_empties_the_cache(backend):
    backend.reset()
    backend.prefill([1, 5, 6])
    first = backend.logits().copy()
    backend.prefill([7, 8])
    backend.reset()
    assert backend.n_past() == 0
    backend.prefill([1, 5, 6])
    np.testing.assert_allclose(backend.logits(), first, rtol=1e-5, atol=1e-5)


def test_overflowing_the_context_is_refused(backend):
    backend.reset()
    with pytest.raises(UserError, match="exceeds the context size"):
        backend.prefill(list(range(10, 10 + 300)))


def test_same_context_params_reuse_the_context(backend):
    ctx = backend._ctx
    backend.configure(ContextParams(n_ctx=256, n_batch=64, n_ubatch=32))
    assert backend._ctx is ctx
    backend.configure(ContextParams(n_ctx=512, n_batch=64, n_ubatch=32))
    assert backend._ctx is not ctx


def test_quantized_kv_cache(backend):
    backend.configure(ContextParams(n_ctx=256, n_batch=64, n_ubatch=32, type_k="q8_0", type_v="q8_0", flash_attn="on"))
    backend.set_threads(1)
    backend.reset()
    backend.prefill([1, 2, 3])
    assert np.isfinite(backend.logits()).all()


def test_context_failure_quotes_llama_cpp(tiny_gguf):
    b = LlamaCppBackend()
    b.load(str(tiny_gguf), LoadParams())
    with pytest.raises(UserError, match="could not create a context.*: quantized V cache requires flash_attn"):
        b.configure(ContextParams(n_ctx=256, n_batch=64, n_ubatch=32, type_k="q8_0", type_v="q8_0", flash_attn="off"))
    b.close()


def test_corrupt_tensor_data_is_a_user_error(tiny_gguf, tmp_path):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_gguf.read_bytes()[: tiny_gguf.stat().st_size // 2])
    b = LlamaCppBackend()
    with pytest.raises(UserError, match="llama.cpp could not load .*cut.gguf: .*not within the file bounds"):
        b.load(str(cut), LoadParams())
    b.close()


@pytest.mark.parametrize("use_mmap, expected", [(True, 1), (False, 0)])
def test_no_mmap_reaches_llama_cpp(tiny_gguf, monkeypatch, use_mmap, expected):
    import llama_cpp

    seen = {}
    real = llama_cpp.llama_model_load_from_file

    def spy(path, mparams):
        seen["load_mode"] = mparams.load_mode
        return real(path, mparams)

    monkeypatch.setattr(llama_cpp, "llama_model_load_from_file", spy)
    b = LlamaCppBackend()
    b.load(str(tiny_gguf), LoadParams(use_mmap=use_mmap))
    b.close()
    assert seen["load_mode"] == expected  # LLAMA_LOAD_MODE_MMAP / _NONE


def test_timed_decode_step_is_llama_decode_and_synchronize_alone(backend, monkeypatch):
    """llama-bench's tg step: llama_decode of one token + llama_synchronize. Reading the logits
    (and the argmax over them) is the runner's token choice, outside the timer."""
    import llama_cpp

    from profiler.measure import runner
    from profiler.measure.plan import TestConfig

    clock = {"now": 0}
    monkeypatch.setattr(runner, "now_ns", lambda: clock["now"])
    real_decode, real_logits = llama_cpp.llama_decode, llama_cpp.llama_get_logits_ith

    def decode(ctx, batch):
        clock["now"] += 1_000 * batch.n_tokens
        return real_decode(ctx, batch)

    def logits(ctx, i):
        clock["now"] += 70_000
        return real_logits(ctx, i)

    monkeypatch.setattr(llama_cpp, "llama_decode", decode)
    monkeypatch.setattr(llama_cpp, "llama_get_logits_ith", logits)
    test = TestConfig(6, 5, 0, 1, 64, 32, "f16", "f16", "auto")
    timings = runner.run_test(backend, test, runner.TokenSource(backend, backend.facts, False), repetitions=2)
    assert timings.all_token_ns == [1_000] * 10
    assert timings.all_itl_ns == [71_000] * 10
    assert "llama_decode" in backend.session_options["decode_step"]
