"""Perplexity, KL-divergence and multiple-choice maths, checked exactly against numpy on the
same logits of tiny random-weight GGUF models."""

from __future__ import annotations

import math

import numpy as np
import pytest

from profiler.backends.base import Backend, ContextParams, LoadParams, SeqBatch
from profiler.backends.llama_cpp import LlamaCppBackend
from profiler.errors import UserError
from profiler.quality import kld as kld_mod
from profiler.quality import tasks
from profiler.quality.logits import log_softmax, row_stats
from profiler.quality.perplexity import perplexity, plan_chunks
from profiler.quality.rng import MT19937, scaled_index, uniform_below
from profiler.stats import mean_and_stderr
from support.tinymodel import WORDS

N_CTX = 64


@pytest.fixture(scope="module")
def text() -> str:
    rng = np.random.default_rng(7)
    return " ".join(rng.choice(WORDS, 900))


def _open(path) -> tuple[LlamaCppBackend, object]:
    backend = LlamaCppBackend()
    facts = backend.load(str(path), LoadParams())
    return backend, facts


@pytest.fixture(scope="module")
def model_a(tiny_gguf):
    backend, facts = _open(tiny_gguf)
    yield backend, facts
    backend.close()


@pytest.fixture(scope="module")
def model_b(tiny_gguf_tied):
    backend, facts = _open(tiny_gguf_tied)
    yield backend, facts
    backend.close()


def _reference_logprobs(backend: Backend, facts, tokens: list[int], n_chunks: int) -> list[np.ndarray]:
    """Full float64 log-softmax of each chunk's scored half, one token at a time (no batching)."""
    out = []
    first = N_CTX // 2
    for c in range(n_chunks):
        chunk = tokens[c * N_CTX : (c + 1) * N_CTX]
        chunk[0] = facts.bos_token
        logits = Backend.logits_all(backend, chunk)  # the generic decode_one path
        out.append(log_softmax(logits)[first : N_CTX - 1])
    return out


def _targets(tokens: list[int], n_chunks: int) -> list[np.ndarray]:
    first = N_CTX // 2
    return [np.array(tokens[c * N_CTX + first + 1 : (c + 1) * N_CTX]) for c in range(n_chunks)]


def test_batched_logits_equal_token_by_token(model_a, text):
    backend, facts = model_a
    tokens = backend.tokenize(text)[:150]
    backend.configure(ContextParams(n_ctx=256, n_batch=64, n_ubatch=32, n_seq_max=3, kv_unified=True))
    batched = np.array(backend.logits_all(tokens, first_output=20))
    single = Backend.logits_all(backend, tokens, first_output=20)
    assert batched.shape == (130, facts.n_vocab)
    np.testing.assert_allclose(batched, single, atol=1e-3)
    # a shared prefix in three sequences, then three different continuations
    batch = SeqBatch()
    for i in range(10):
        batch.add(tokens[i], i, (0, 1, 2), i == 9)
    for s in range(3):
        for i in range(10, 20):
            batch.add(tokens[i + 30 * s], i, (s,), True)
    np.testing.assert_allclose(np.array(backend.logits_batch(batch)), Backend.logits_batch(backend, batch), atol=1e-3)


def test_perplexity_matches_numpy(model_a, text):
    backend, facts = model_a
    tokens = backend.tokenize(text)
    plan = plan_chunks(len(tokens), N_CTX, 128, 5)
    backend.configure(plan.context_params())
    result, acc = perplexity(backend, facts, tokens, plan, threads=2)
    logps = _reference_logprobs(backend, facts, tokens, 5)
    nll = np.concatenate([-lp[np.arange(len(t)), t] for lp, t in zip(logps, _targets(tokens, 5), strict=True)])
    assert result.n_tokens_scored == len(nll) == 5 * (N_CTX - 1 - N_CTX // 2)
    assert result.ppl == pytest.approx(math.exp(nll.mean()), rel=1e-5)
    # llama-perplexity's uncertainty: PPL * sqrt(var / (n - 1)), var with 1/n
    assert result.ppl_uncertainty == pytest.approx(result.ppl * math.sqrt(nll.var() / (len(nll) - 1)), rel=1e-4)
    assert result.running_ppl[-1] == pytest.approx(result.ppl)
    assert len(result.chunk_mean_nll_nats) == 5


def test_perplexity_same_with_one_sequence_per_batch(model_a, text):
    backend, facts = model_a
    tokens = backend.tokenize(text)
    values = []
    for n_batch in (16, 64, 256):  # several decodes per chunk / one chunk / four chunks per decode
        plan = plan_chunks(len(tokens), N_CTX, n_batch, 4)
        backend.configure(plan.context_params())
        values.append(perplexity(backend, facts, tokens, plan, threads=1)[0].ppl)
    assert values[0] == pytest.approx(values[1], rel=1e-4) and values[1] == pytest.approx(values[2], rel=1e-4)


def test_chunk_plan_rules():
    with pytest.raises(UserError, match="needs at least 1024"):
        plan_chunks(1000, 512, 2048, None)
    with pytest.raises(UserError, match="multiple"):
        plan_chunks(10_000, 512, 700, None)
    plan = plan_chunks(10_000, 512, 2048, None)
    assert (plan.n_chunks, plan.n_seq, plan.first, plan.scored_per_chunk) == (19, 4, 256, 255)
    assert plan.context_params().n_ctx == 2048 and plan.context_params().n_seq_max == 4
    assert plan_chunks(10_000, 512, 2048, 3).n_chunks == 3


def _save_reference(backend, facts, tokens, tmp_path, top_k):
    plan = plan_chunks(len(tokens), N_CTX, 128, 6)
    backend.configure(plan.context_params())
    writer = kld_mod.ReferenceWriter(top_k)
    base, _ = perplexity(backend, facts, tokens, plan, 1, writer)
    path = writer.save(tmp_path / f"ref-{top_k}.npz", tokens, plan, {"n_vocab": facts.n_vocab, "model": {"sha256": "a"}})
    return kld_mod.load_reference(path), plan, base


def _compare(backend, facts, ref, plan):
    backend.configure(plan.context_params())
    acc = kld_mod.KldAccumulator(ref, facts.n_vocab)
    cand, _ = perplexity(backend, facts, ref.tokens.tolist(), plan, 2, acc, want_argmax=True)
    return acc.result(), cand


def test_kld_matches_numpy_with_full_vocabulary(model_a, model_b, text, tmp_path):
    (a, fa), (b, fb) = model_a, model_b
    tokens = a.tokenize(text)
    ref, plan, base = _save_reference(a, fa, tokens, tmp_path, top_k=fa.n_vocab)
    result, cand = _compare(b, fb, ref, plan)
    p_all = _reference_logprobs(a, fa, tokens, 6)
    q_all = _reference_logprobs(b, fb, tokens, 6)
    targets = _targets(tokens, 6)
    kl = np.concatenate([(np.exp(p) * (p - q)).sum(axis=1) for p, q in zip(p_all, q_all, strict=True)])
    nll_q = np.concatenate([-q[np.arange(len(t)), t] for q, t in zip(q_all, targets, strict=True)])
    nll_p = np.concatenate([-p[np.arange(len(t)), t] for p, t in zip(p_all, targets, strict=True)])
    same = np.concatenate([p.argmax(1) == q.argmax(1) for p, q in zip(p_all, q_all, strict=True)])
    dp = np.exp(-nll_q) - np.exp(-nll_p)
    assert result.n_tokens == len(kl)
    assert result.mean_kld == pytest.approx(kl.mean(), rel=1e-4)
    assert result.mean_kld_uncertainty == pytest.approx(math.sqrt(kl.var() / (len(kl) - 1)), rel=1e-3)
    assert result.kld_percentiles["max"] == pytest.approx(kl.max(), rel=1e-4)
    assert result.kld_percentiles["min"] == pytest.approx(kl.min(), rel=1e-3, abs=1e-6)
    assert result.kld_percentiles["median"] == pytest.approx(np.median(kl), rel=1e-4)
    assert result.kld_percentiles["90"] == pytest.approx(np.percentile(kl, 90), rel=1e-4)
    assert result.same_top_pct == pytest.approx(100 * same.mean())
    assert result.mean_dp_pct == pytest.approx(100 * dp.mean(), abs=1e-5)
    assert result.rms_dp_pct == pytest.approx(100 * math.sqrt((dp**2).mean()), rel=1e-4)
    assert result.ppl_q == pytest.approx(math.exp(nll_q.mean()), rel=1e-5)
    assert result.ppl_q == pytest.approx(cand.ppl, rel=1e-6)
    assert result.ppl_base == pytest.approx(math.exp(nll_p.mean()), rel=1e-5)
    assert result.ppl_base == pytest.approx(base.ppl, rel=1e-5)
    assert result.ppl_ratio == pytest.approx(result.ppl_q / result.ppl_base, rel=1e-9)
    assert result.ln_ppl_correlation_pct == pytest.approx(100 * np.corrcoef(nll_q, nll_p)[0, 1], abs=0.5)


def test_kld_from_top_k_and_tail_sample_is_close_to_exact(model_a, model_b, text, tmp_path):
    (a, fa), (b, fb) = model_a, model_b
    tokens = a.tokenize(text)
    full, plan, _ = _save_reference(a, fa, tokens, tmp_path, top_k=fa.n_vocab)
    assert full.tail_ids.shape[1] == 0  # no tail: exact
    top, _, _ = _save_reference(a, fa, tokens, tmp_path, top_k=16)
    exact = _compare(b, fb, full, plan)[0]
    approx = _compare(b, fb, top, plan)[0]
    assert approx.mean_kld == pytest.approx(exact.mean_kld, rel=0.03)
    assert approx.kld_percentiles["median"] == pytest.approx(exact.kld_percentiles["median"], rel=0.05)
    assert top.top_ids.shape[1] == 16 and np.all(np.diff(top.top_logp, axis=1) <= 0)  # sorted, most likely first
    assert top.tail_ids.shape[1] == kld_mod.DEFAULT_TAIL_SAMPLES
    assert not np.isin(top.tail_ids, top.top_ids).all(axis=1).any()  # samples come from beyond the top-k


def test_tail_sampling_follows_the_tail_distribution():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((4, 50)).astype(np.float32)
    lse = np.log(np.exp(logits.astype(np.float64)).sum(axis=1))
    top = kld_mod.top_k_indices(logits, 5)
    counts = np.zeros((4, 50))
    for seed in range(300):
        ids = kld_mod.sample_tail(logits, lse, top, 40, np.random.default_rng(seed))
        for r in range(4):
            np.add.at(counts[r], ids[r], 1)
    p = np.exp(logits - lse[:, None])
    np.put_along_axis(p, top, 0.0, axis=1)
    expected = p / p.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(counts / counts.sum(axis=1, keepdims=True), expected, atol=0.01)
    assert np.all(np.take_along_axis(counts, top, axis=1) == 0)


def test_kld_of_a_model_against_itself_is_zero(model_a, text, tmp_path):
    backend, facts = model_a
    ref, plan, _ = _save_reference(backend, facts, backend.tokenize(text), tmp_path, top_k=64)
    result, _ = _compare(backend, facts, ref, plan)
    assert abs(result.mean_kld) < 1e-4
    assert result.same_top_pct == 100.0
    assert result.ppl_ratio == pytest.approx(1.0, abs=1e-4)


def test_reference_rejects_other_files(tmp_path, model_a):
    bad = tmp_path / "x.npz"
    np.savez(bad, meta=np.array('{"format": "other"}'), tokens=np.zeros(2), top_ids=np.zeros((1, 1)),
             top_logp=np.zeros((1, 1)), rest_logp=np.zeros(1), tok_logp=np.zeros(1))
    with pytest.raises(UserError, match="unsupported KLD reference"):
        kld_mod.load_reference(bad)
    with pytest.raises(UserError, match="not found"):
        kld_mod.load_reference(tmp_path / "missing.npz")


def test_llama_perplexity_stats():
    mean, unc = mean_and_stderr(np.arange(20, dtype=np.float64))
    assert mean == 9.5 and unc == pytest.approx(math.sqrt(np.var(np.arange(20)) / 19))
    assert mean_and_stderr(np.ones(5))[1] == 0.0  # llama-perplexity: no error below 11 values


def test_row_stats_threads_agree():
    logits = np.random.default_rng(0).standard_normal((70, 1000)).astype(np.float32) * 5
    one, two = row_stats(logits, 1, want_argmax=True), row_stats(logits, 2, want_argmax=True)
    expected = np.log(np.exp(logits.astype(np.float64)).sum(axis=1))
    np.testing.assert_allclose(one.log_sum_exp, expected, rtol=1e-6)
    np.testing.assert_array_equal(one.log_sum_exp, two.log_sum_exp)
    np.testing.assert_array_equal(two.argmax, logits.argmax(axis=1))


# --------------------------------------------------------------------------- the C++ random draws


def test_mt19937_and_libstdcxx_distributions_match_cpp():
    # Values printed by a C++ program built with g++ 12 (libstdc++): std::mt19937 rng(1); ...
    assert MT19937(1)() == 1791095845
    rng, n, draws = MT19937(1), 10042, []
    for _ in range(8):
        draws.append(uniform_below(rng, n))
        n -= 1
    assert draws == [4187, 10012, 7232, 9361, 1, 1285, 3034, 10025]
    rng, size, picks = MT19937(1), 1267, []
    for _ in range(5):
        picks.append(scaled_index(rng, size))
        size -= 1
    assert picks == [528, 1262, 911, 1178, 0]


def test_hellaswag_order_is_llama_perplexity_subset():
    order = tasks.hellaswag_order(10042, 4)
    assert order == [4187, 10013, 7233, 9363]  # the draws above, mapped back to original indices
    assert sorted(tasks.hellaswag_order(30, None)) == list(range(30))


# --------------------------------------------------------------------------- HellaSwag / Winogrande


def _hellaswag_text(n: int, seed: int = 3) -> tuple[str, list]:
    rng = np.random.default_rng(seed)
    lines, items = [], []
    for _ in range(n):
        context = "Topic: " + " ".join(rng.choice(WORDS, 8))
        endings = [" ".join(rng.choice(WORDS, int(rng.integers(2, 6)))) + "." for _ in range(4)]
        gold = int(rng.integers(0, 4))
        lines += [context, str(gold), *endings]
        items.append((context, gold, endings))
    return "\n".join(lines), items


def test_hellaswag_scores_match_numpy(model_a):
    backend, facts = model_a
    text, items = _hellaswag_text(12)
    result = tasks.hellaswag(backend, text, n_tasks=None, n_ctx=128, n_parallel=8, threads=1)
    assert result.n_tasks == 12 and result.n_tasks_in_file == 12
    for pred in result.predictions:
        context, gold, endings = items[pred["task"]]
        seqs = [backend.tokenize(context + " " + e) for e in endings]
        common = tasks.common_prefix(seqs)
        expected = []
        for seq in seqs:
            lp = log_softmax(Backend.logits_all(backend, seq))
            expected.append(np.mean([lp[j - 1, seq[j]] for j in range(common, len(seq))]))
        np.testing.assert_allclose(pred["scores"], expected, rtol=1e-4, atol=2e-4)
        assert pred["choice"] == int(np.argmax(expected)) and pred["gold"] == gold
    correct = sum(p["choice"] == p["gold"] for p in result.predictions)
    assert result.accuracy_pct == pytest.approx(100 * correct / 12)
    assert result.ci95_low_pct < result.accuracy_pct < result.ci95_high_pct or correct in (0, 12)


def test_hellaswag_subset_and_bad_files(model_a):
    backend, _ = model_a
    text, _ = _hellaswag_text(10)
    result = tasks.hellaswag(backend, text, n_tasks=3, n_ctx=128)
    assert [p["task"] for p in result.predictions] == tasks.hellaswag_order(10, 3)
    with pytest.raises(UserError, match="multiple of 6"):
        tasks.hellaswag(backend, "a\nb\nc", n_tasks=None)
    with pytest.raises(UserError, match="not 0-3"):
        tasks.load_hellaswag("ctx\n7\na\nb\nc\nd")


WINOGRANDE_CSV = """index,sentence,option1,option2,answer
0,the of and _ to in is was for on as,with,from,2
1,"this it are _ be an or the of and to",in,is,1
2,the _ of,at,by,1
"""


def test_winogrande_parsing():
    rows, skipped = tasks.load_winogrande(WINOGRANDE_CSV)
    assert skipped == 1  # the header
    assert rows[1]["first"] == "this it are " and rows[1]["second"] == " be an or the of and to"
    assert rows[0]["choices"] == ("with", "from") and rows[0]["answer"] == 2


def test_winogrande_scores_match_numpy(model_a):
    backend, _ = model_a
    result = tasks.winogrande(backend, WINOGRANDE_CSV, n_ctx=128)
    assert result.n_tasks == 3
    rows, _ = tasks.load_winogrande(WINOGRANDE_CSV)
    pred = result.predictions[0]
    row = rows[pred["task"]]
    seqs = [backend.tokenize(row["first"] + c + row["second"]) for c in row["choices"]]
    n_base = [len(backend.tokenize(row["first"] + c)) for c in row["choices"]]
    assert min(len(s) for s in seqs) - tasks.common_prefix(seqs) > 3  # the "skip the option" case
    expected = []
    for seq, nb in zip(seqs, n_base, strict=True):
        lp = log_softmax(Backend.logits_all(backend, seq))
        expected.append(np.mean([lp[j, seq[j + 1]] for j in range(nb - 1, len(seq) - 2)]))
    np.testing.assert_allclose(pred["scores"], expected, rtol=1e-4, atol=2e-4)


def test_winogrande_subset_order():
    assert tasks.winogrande_order(1267, 3) == [528, 1262, 911]
    assert tasks.winogrande_order(5, None) == [0, 1, 2, 3, 4]
