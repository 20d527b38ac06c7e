"""Section quality: the mean KLD's ± and the Wilson interval of a task accuracy.

**The KLD SE.** ``profiler eval --kld`` prints llama-perplexity's mean KLD ± SE (``stats.
mean_and_stderr``, the tokens taken as independent); ranking's z-test turns it into a 95%
interval, mean ± 1.96 SE. Per-token KLD is heavy-tailed: most tokens agree almost exactly, a few
disagree a lot. Simulated here as a mixture, 97% lognormal(-6, 1.5) and 3% lognormal(-1, 1)
(true mean 0.02560, nearly all of it from the 3%), in chunks of 255 scored tokens as perplexity
scores them (n_ctx 512), at 1,020, 10,200 and 51,000 tokens (4, 40 and 200 chunks):

- independent tokens;
- chunk-correlated tokens: every value of a chunk times exp(u - tau^2/2), u ~ N(0, 0.5^2) per chunk
  (a chunk of hard text raises all its tokens' KLD; the factor's mean is 1, so the true mean is
  unchanged). tau = 0.5 is an assumption, not a measurement: it makes the chunk means vary about
  2.5x more than independent tokens would.

Each case also rates the chunk-level SE the product computes beside it (``stats.
cluster_mean_stderr`` over the chunks' means, as ``KldAccumulator`` feeds it), with Student's t at
chunks - 1 degrees of freedom. One more row: ranking's z-test of two files of equal quality
scored on the same chunk-correlated tokens (how often it wrongly finds a difference).

**The Wilson accuracy interval.** ``tasks`` scores n tasks and prints ``stats.wilson_interval`` at
95%. Simulated: n tasks, each right with probability p (independent), at n = 24, 100, 200, 400,
1000 and p = 0.3, 0.45, 0.6; the interval is ``wilson_interval(correct / n, n)``, the call
``profiler/quality/tasks.py`` makes for every task result.
"""

from __future__ import annotations

import math

import numpy as np

from coverage_sections import CoverageRow
from profiler.stats import (
    ALPHA,
    Z_95,
    cluster_mean_stderr,
    mean_and_stderr,
    mean_difference_p,
    t_critical,
    wilson_interval,
)

TITLE = "Mean KLD ± (per token and per chunk) and the Wilson accuracy interval"
ORDER = 20

PER_CHUNK = 255  # scored tokens per chunk at n_ctx 512
CHUNKS = (4, 40, 200)
TAU = 0.5
TAIL_SHARE, SMALL, LARGE = 0.03, (-6.0, 1.5), (-1.0, 1.0)
TRUE_KLD = (1 - TAIL_SHARE) * math.exp(SMALL[0] + SMALL[1] ** 2 / 2) + TAIL_SHARE * math.exp(LARGE[0] + LARGE[1] ** 2 / 2)
TASK_COUNTS = (24, 100, 200, 400, 1000)
ACCURACIES = (0.3, 0.45, 0.6)


def token_kld(rng: np.random.Generator, n_chunks: int, tau: float) -> np.ndarray:
    """[n_chunks, PER_CHUNK] per-token KLD values of true mean TRUE_KLD."""
    shape = (n_chunks, PER_CHUNK)
    values = np.where(rng.random(shape) < TAIL_SHARE, rng.lognormal(*LARGE, shape), rng.lognormal(*SMALL, shape))
    if tau:
        values *= np.exp(rng.normal(0.0, tau, (n_chunks, 1)) - tau * tau / 2)
    return values


def simulate_kld(n_chunks: int, tau: float, runs: int, seed: int) -> dict:
    """Coverage and mean half-width of mean ± 1.96 SE (per token) and mean ± t SE (per chunk)."""
    rng = np.random.default_rng(seed)
    t = t_critical(n_chunks - 1)
    out = {"token": [0, 0.0], "chunk": [0, 0.0]}
    for _ in range(runs):
        values = token_kld(rng, n_chunks, tau)
        mean, se = mean_and_stderr(values.ravel())
        _, se_chunks = cluster_mean_stderr(values.mean(axis=1).tolist())
        for name, half in (("token", Z_95 * se), ("chunk", t * se_chunks)):
            out[name][0] += abs(mean - TRUE_KLD) <= half
            out[name][1] += half
    return {name: (covered, width / runs) for name, (covered, width) in out.items()}


def simulate_ranking_null(n_chunks: int, tau: float, runs: int, seed: int) -> tuple[int, float]:
    """Two files of equal quality scored on the same tokens (shared token difficulty and chunk
    effect, each file's own per-token noise): runs where ranking's z-test (``stats.
    mean_difference_p`` on the two per-token SEs) finds no difference, i.e. its 95% interval of the
    difference holds the true 0; and that interval's mean half-width in % of the mean."""
    rng = np.random.default_rng(seed)
    held, width = 0, 0.0
    for _ in range(runs):
        shared = token_kld(rng, n_chunks, tau)
        (ma, sa), (mb, sb) = (mean_and_stderr((shared * rng.lognormal(-0.125, 0.5, shared.shape)).ravel())
                              for _ in range(2))
        held += mean_difference_p(ma, sa, mb, sb) >= ALPHA
        width += 100 * Z_95 * math.hypot(sa, sb) / TRUE_KLD
    return held, width / runs


def simulate_wilson(n: int, p: float, runs: int, seed: int) -> tuple[int, float]:
    """Runs whose printed interval holds p, and the mean full width in points."""
    rng = np.random.default_rng(seed)
    covered, width = 0, 0.0
    for correct in rng.binomial(n, p, runs):
        low, high = wilson_interval(correct / n, n)  # what tasks' result builder prints, from the count right
        covered += low <= p <= high
        width += 100 * (high - low)
    return covered, width / runs


def exact_wilson_coverage(n: int, p: float) -> float:
    """P(the interval holds p) summed over the binomial distribution of the count right: no
    simulation noise, to show the oscillation the simulated figure blurs."""
    return sum(math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)
               if wilson_interval(k / n, n)[0] <= p <= wilson_interval(k / n, n)[1])


def kld_rows(runs: int, seed: int) -> list[CoverageRow]:
    rows = []
    for tau in (0.0, TAU):
        for n_chunks in CHUNKS:
            n = n_chunks * PER_CHUNK
            case = f"{n:,} tokens, " + ("independent" if not tau else f"chunk effect tau {tau}")
            result = simulate_kld(n_chunks, tau, runs, seed + n_chunks + int(100 * tau))
            for name, label in (("token", "mean KLD ± (per token, z)"), ("chunk", "mean KLD ± (per chunk, t)")):
                covered, half = result[name]
                # known limits: the per-token SE under chunk correlation; 1k tokens hold ~30 tail tokens,
                # too few for the mean to be near normal
                goal = n_chunks > CHUNKS[0] and not (name == "token" and tau)
                rows.append(CoverageRow(
                    interval=label, case=case, runs=runs, covered=covered, mean_width=100 * half / TRUE_KLD,
                    width_unit="% of mean, half-width", goal=goal,
                    detail=[f"KLD  {case:<34} {label:<26} {covered / runs:>8.1%} {100 * half / TRUE_KLD:>8.1f}%"]))
    return rows


def wilson_rows(runs: int, seed: int) -> list[CoverageRow]:
    rows = []
    for n in TASK_COUNTS:
        for p in ACCURACIES:
            covered, width = simulate_wilson(n, p, runs, seed + n + int(100 * p))
            case = f"n {n} tasks, p {p:.2f}"
            rows.append(CoverageRow(
                interval="Wilson accuracy interval", case=case, runs=runs, covered=covered, mean_width=width,
                width_unit="points, full width",
                detail=[f"acc  {case:<34} {'Wilson 95%':<26} {covered / runs:>8.1%} {width:>8.1f} pt  "
                        f"exact {exact_wilson_coverage(n, p):.1%}"]))
    return rows


def ranking_rows(runs: int, seed: int) -> list[CoverageRow]:
    n_chunks = CHUNKS[1]
    held, width = simulate_ranking_null(n_chunks, TAU, runs, seed + 7)
    case = f"{n_chunks * PER_CHUNK:,} tokens, tau {TAU}, equal files"
    return [CoverageRow(interval="KLD z-test (difference holds 0)", case=case, runs=runs, covered=held, mean_width=width,
                        width_unit="% of mean, half-width", goal=False,
                        detail=[f"KLD  {case:<34} {'z-test of the difference':<26} {held / runs:>8.1%} {width:>8.1f}%"])]


def rows(runs: int, seed: int) -> list[CoverageRow]:
    return kld_rows(runs, seed) + ranking_rows(runs, seed) + wilson_rows(runs, seed)


HEADER = f"{'':5}{'case':<34} {'interval':<26} {'coverage':>8} {'width':>9}  (KLD: half-width % of the mean; accuracy: full width)"
NOTES = [
    "Per-token KLD ±: llama-perplexity's SE takes every token as independent. Tokens of one chunk share their "
    "text, so with a chunk effect the mean varies more than it says and mean ± 1.96 SE covers far less than 95% "
    "at any length (rows marked limit). The chunk-level SE (the spread of the chunks' means, Student's t at "
    "chunks - 1 df) counts it; profiler eval prints and stores both.",
    "Ranking's z-test keeps the per-token SE: two files are compared on the same tokens, so the chunk effect "
    "and the token difficulty are shared and cancel under 'equal quality'; the unpaired test is then "
    "conservative (the 'equal files' row: it finds a difference in ~0% of runs, nominal 5%). The chunk-level SE "
    "would make it more conservative still (t at 1 df for a 2-chunk ladder), so it is not used there.",
    "1,020 tokens (4 chunks): ~30 tokens from the heavy tail carry most of the mean, which is then skewed: both "
    "intervals cover under 95% (shown as a limit). Read a mean KLD from 10k tokens or more.",
    "Wilson: binomial coverage oscillates with n and p (the count is discrete); 'exact' is the coverage summed "
    "over the binomial distribution, free of simulation noise; at n = 24 it swings most. It covers the sampling "
    "of tasks from one population only: not a task set unlike the benchmark, nor prompt or scoring changes.",
]
