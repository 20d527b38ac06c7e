"""Vectorised log-softmax over [n_tokens, n_vocab] logits, split over threads.

llama-perplexity computes ``log p(tok) = logit[tok] - max - log(sum(exp(logit - max)))`` per
row on all cores. Here numpy does the same per block of rows; numpy releases the GIL inside
ufuncs, so blocks on a small thread pool run in parallel. Sums are float32 pairwise sums
(relative error ~1e-7, far below the statistical uncertainty of any PPL).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

BLOCK_ROWS = 32  # 32 rows x 49k vocab x 4 B = 6 MB of scratch per thread

_pool: ThreadPoolExecutor | None = None
_pool_threads = 0


def _executor(threads: int) -> ThreadPoolExecutor:
    global _pool, _pool_threads
    if _pool is None or _pool_threads != threads:
        if _pool is not None:
            _pool.shutdown(wait=False)
        _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="logsoftmax")
        _pool_threads = threads
    return _pool


@dataclass
class RowStats:
    """Per-row results of one log-softmax pass."""

    row_max: np.ndarray  # float32 [n]
    log_sum_exp: np.ndarray  # float64 [n]: log(sum(exp(logit))) including the max
    argmax: np.ndarray  # int64 [n]

    def log_prob(self, logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """log p(target) per row, float64."""
        picked = logits[np.arange(len(targets)), targets].astype(np.float64)
        return picked - self.log_sum_exp


def _block(logits: np.ndarray, lo: int, hi: int, out: RowStats, want_argmax: bool) -> None:
    rows = logits[lo:hi]
    m = rows.max(axis=1)
    scratch = np.subtract(rows, m[:, None])
    np.exp(scratch, out=scratch)
    out.row_max[lo:hi] = m
    out.log_sum_exp[lo:hi] = m.astype(np.float64) + np.log(scratch.sum(axis=1, dtype=np.float32).astype(np.float64))
    if want_argmax:
        out.argmax[lo:hi] = rows.argmax(axis=1)


def row_stats(logits: np.ndarray, threads: int | None = None, want_argmax: bool = False) -> RowStats:
    """Max, log-sum-exp (and argmax, when wanted) of every row of ``logits`` (float32 [n, n_vocab])."""
    n = logits.shape[0]
    stats = RowStats(np.empty(n, np.float32), np.empty(n, np.float64), np.full(n, -1, np.int64))
    spans = [(lo, min(lo + BLOCK_ROWS, n)) for lo in range(0, n, BLOCK_ROWS)]
    threads = threads or os.cpu_count() or 1
    if threads <= 1 or len(spans) <= 1:
        for lo, hi in spans:
            _block(logits, lo, hi, stats, want_argmax)
        return stats
    list(_executor(threads).map(lambda span: _block(logits, span[0], span[1], stats, want_argmax), spans))
    return stats


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Full log-probabilities in float64 (small vocabularies and tests only)."""
    x = logits.astype(np.float64)
    x -= x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))
