"""llama-perplexity's arithmetic: mean +- standard error from sums, perplexity +- its error, the
covariance behind a ratio's error, and the chunk-level (cluster) standard error."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from profiler.stats.summary import (
    mean,
    stdev,
)

# --------------------------------------------------------------------------- llama-perplexity's mean +- SE


def mean_stderr_from_sums(total: float, total_sq: float, n: int) -> tuple[float, float]:
    """Mean and standard error from a sum and a sum of squares, in llama-perplexity's arithmetic:
    var = sum(x^2)/n - mean^2 (the population variance), SE = sqrt(var / (n - 1)). The SE is NaN
    when it is undefined (var <= 0 or n < 2); the mean is NaN for no values."""
    if n < 1:
        return math.nan, math.nan
    mean_value = total / n
    var = total_sq / n - mean_value * mean_value
    return mean_value, math.sqrt(var / (n - 1)) if var > 0 and n > 1 else math.nan


def mean_and_stderr(values: np.ndarray) -> tuple[float, float]:
    """Mean and standard error of per-token values as llama-perplexity's KL-divergence report:
    the SE above, but 0 (llama-perplexity's "not known") below 11 values or with no spread. It
    treats the tokens as independent: see ``cluster_mean_stderr`` for tokens that come in chunks."""
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    mean_value, se = mean_stderr_from_sums(float(values.sum()), float(np.square(values).sum()), n)
    return mean_value, se if n > 10 and not math.isnan(se) else (0.0 if n else math.nan)


def perplexity_and_stderr(nll_total: float, nll_sq_total: float, n: int) -> tuple[float, float, float]:
    """(PPL, its standard error, mean NLL) from sums of per-token NLL, as llama-perplexity:
    PPL = exp(mean NLL), SE = PPL x SE(mean NLL) (the delta method; NaN when undefined)."""
    mean_nll, se = mean_stderr_from_sums(nll_total, nll_sq_total, n)
    ppl = math.exp(mean_nll)
    return ppl, ppl * se, mean_nll


def mean_covariance(a: np.ndarray, b: np.ndarray) -> float:
    """Covariance of the means of two paired series, cov(a, b) / (n - 1) with the population
    covariance, as llama-perplexity's PPL ratio error uses it; 0 below 10 pairs."""
    n = len(a)
    if n < 10:
        return 0.0
    return (float((a * b).sum()) / n - float(a.sum()) / n * float(b.sum()) / n) / (n - 1)


def cluster_mean_stderr(cluster_means: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean from equal-size clusters (perplexity's chunks): the
    spread of the cluster means, sd / sqrt(k), so whatever the values within a cluster share (a
    chunk of hard text) is counted, which the per-value SE treats as independent evidence. NaN
    below 2 clusters. Its interval needs Student's t with k - 1 degrees of freedom."""
    k = len(cluster_means)
    if k < 2:
        return (float(cluster_means[0]) if k else math.nan), math.nan
    return mean(cluster_means), stdev(cluster_means) / math.sqrt(k)


