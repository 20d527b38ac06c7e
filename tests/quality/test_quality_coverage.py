"""Coverage of the quality intervals on known truths (issue #19; benchmarks/coverage_sections/quality.py
runs the same at 2000 runs): the mean KLD's SE with tokens correlated within a chunk, and the
Wilson interval of a task accuracy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from profiler.stats import Z_95, cluster_mean_stderr, mean_and_stderr, t_critical, wilson_interval

PER_CHUNK = 255  # scored tokens per chunk at n_ctx 512
TRUE_KLD = 0.97 * math.exp(-6 + 1.5**2 / 2) + 0.03 * math.exp(-1 + 0.5)  # the mixture below


def _kld_coverage(n_chunks: int, tau: float, runs: int, seed: int) -> tuple[float, float]:
    """Coverage of mean ± 1.96 SE with llama-perplexity's per-token SE, and of mean ± t SE with
    the chunk-level SE the product prints beside it (Student's t at chunks - 1 df)."""
    rng = np.random.default_rng(seed)
    token = chunks = 0
    for _ in range(runs):
        shape = (n_chunks, PER_CHUNK)  # heavy tail: 3% of tokens carry most of the KLD
        x = np.where(rng.random(shape) < 0.03, rng.lognormal(-1, 1, shape), rng.lognormal(-6, 1.5, shape))
        x *= np.exp(rng.normal(0, tau, (n_chunks, 1)) - tau * tau / 2)  # a per-chunk effect of mean 1
        mean, se = mean_and_stderr(x.ravel())
        se_chunks = cluster_mean_stderr(x.mean(axis=1).tolist())[1]
        token += abs(mean - TRUE_KLD) <= Z_95 * se
        chunks += abs(mean - TRUE_KLD) <= t_critical(n_chunks - 1) * se_chunks
    return token / runs, chunks / runs


def test_the_per_token_kld_se_under_covers_chunk_correlated_tokens_and_the_chunk_se_does_not():
    token, chunks = _kld_coverage(n_chunks=80, tau=0.5, runs=600, seed=20)
    assert token < 0.88  # llama-perplexity's ± alone: ~80% (4000 runs: 80.4%)
    assert 0.92 <= chunks <= 0.97  # 4000 runs: 93.9%


def test_on_independent_tokens_both_kld_ses_cover():
    token, chunks = _kld_coverage(n_chunks=80, tau=0.0, runs=600, seed=21)
    assert 0.92 <= token <= 0.97 and 0.92 <= chunks <= 0.97


@pytest.mark.parametrize("n", [24, 100, 200, 400, 1000])
@pytest.mark.parametrize("p", [0.3, 0.45, 0.6])
def test_wilson_interval_coverage_is_near_95_percent(n, p):
    # exact: summed over the binomial distribution of the count right (no simulation noise);
    # Wilson's coverage oscillates with n and p, between 93.6% and 96.5% on this grid
    coverage = sum(math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)
                   if wilson_interval(k / n, n)[0] <= p <= wilson_interval(k / n, n)[1])
    assert 0.93 <= coverage <= 0.97
