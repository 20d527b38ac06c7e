"""KL-divergence of a candidate model against a saved reference, with llama-perplexity's statistics.

The reference file
------------------
``llama-perplexity --kl-divergence-base`` stores every log-probability of every scored token
(n_vocab uint16 values per token: ~16 GB for WikiText-2 with a 49k vocabulary). Ours stores, per
scored token (numpy ``savez_compressed``, ~1.5 KB per token):

* the reference's **top-k** log-probabilities with their token ids (k = 128 by default);
* the log of the **rest mass** p_rest outside the top k;
* an **importance sample of the rest**: m token ids (64 by default) drawn with probability
  proportional to p_i among the non-top-k tokens (systematic sampling, seeded per chunk), with
  their log-probabilities;
* the log-probability of the actual next token;

plus the evaluated tokens and the settings (n_ctx, chunks, BOS, text sha256, the reference
model's identity), so a candidate is always scored on exactly the reference's tokens.

Per token, with P the reference, Q the candidate and r_i = q_i / p_i:

    KLD = sum_{top-k} p_i (log p_i - log q_i)
          + p_rest * mean_{sampled j} (r_j - 1 - log r_j)
          - (q_rest - p_rest)

The tail identity behind it is sum_tail p_i (-log r_i) = sum_tail p_i (r_i - 1 - log r_i)
- (q_rest - p_rest), where q_rest = 1 - sum_{top-k} q_i is exact. The sampled mean is an
unbiased estimate of the first sum, and since r - 1 - log r ~ (log r)^2 / 2 its variance is
second order (a control variate): on SmolLM2 Q4_1 against its F16 reconstruction the mean KLD
is within 0.2% of the full-vocabulary value and the per-token error is ~5% of the per-token
KLD. With k >= n_vocab there is no tail and the value is exact. (Folding the tail into one
outcome instead, as plain "top-k + rest" does, loses ~17% of the divergence at k=128 there.)

Statistics are llama-perplexity's: mean +- standard error, percentiles of the per-token values
(its linear interpolation), "same top" (candidate argmax == reference argmax), Δp = p_Q(tok) -
p_base(tok), and PPL(Q), PPL(base), their ratio and the correlation of their log-likelihoods.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from profiler import atomic
from profiler.errors import UserError
from profiler.models.catalog import sha256_file
from profiler.quality.perplexity import ChunkLogits, ChunkPlan
from profiler.stats import (
    cluster_mean_stderr,
    mean_and_stderr,
    mean_covariance,
    proportion_stderr,
    sorted_percentile,
)

FORMAT = "profiler-kld-reference"
FORMAT_VERSION = 2
DEFAULT_TOP_K = 128
DEFAULT_TAIL_SAMPLES = 64
SAMPLE_BLOCK_ROWS = 32  # rows per float64 cumulative-sum block (32 x 49k x 8 B = 12 MB)
PERCENTILES = (99.9, 99.0, 95.0, 90.0, 10.0, 5.0, 1.0, 0.1)
DP_PERCENTILES = (99.9, 99.0, 95.0, 90.0, 75.0, 25.0, 10.0, 5.0, 1.0, 0.1)


# --------------------------------------------------------------------------- the reference


def top_k_indices(logits: np.ndarray, k: int) -> np.ndarray:
    """Ids of the k largest logits per row, most likely first."""
    if k >= logits.shape[1]:
        ids = np.broadcast_to(np.arange(logits.shape[1]), logits.shape)
    else:
        ids = np.argpartition(logits, -k, axis=1)[:, -k:]
    order = np.argsort(-np.take_along_axis(logits, ids, axis=1), axis=1, kind="stable")
    return np.take_along_axis(ids, order, axis=1)


def sample_tail(logits: np.ndarray, lse: np.ndarray, top_ids: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    """m ids per row drawn with probability proportional to p_i outside ``top_ids`` (systematic
    sampling: one uniform offset per row, m evenly spaced points of the tail's CDF)."""
    n, vocab = logits.shape
    out = np.zeros((n, m), dtype=np.int64)
    if m == 0 or top_ids.shape[1] >= vocab:
        return out[:, :0]
    offsets = rng.random(n)
    for lo in range(0, n, SAMPLE_BLOCK_ROWS):
        hi = min(lo + SAMPLE_BLOCK_ROWS, n)
        p = np.exp(logits[lo:hi].astype(np.float64) - lse[lo:hi, None])
        np.put_along_axis(p, top_ids[lo:hi], 0.0, axis=1)
        cdf = np.cumsum(p, axis=1)
        total = cdf[:, -1:]
        points = (np.arange(m)[None, :] + offsets[lo:hi, None]) / m * total
        # one searchsorted over all rows: shift row r's CDF and points by 2r (every CDF is in [0, 1])
        shift = 2.0 * np.arange(hi - lo)[:, None]
        idx = np.searchsorted((cdf + shift).ravel(), (points + shift).ravel(), side="right")
        idx = idx.reshape(hi - lo, m) - (np.arange(hi - lo) * vocab)[:, None]
        out[lo:hi] = np.clip(idx, 0, vocab - 1)
    return out


class ReferenceWriter:
    """Collects the reference model's top-k, rest mass and tail sample chunk by chunk."""

    def __init__(self, top_k: int = DEFAULT_TOP_K, tail_samples: int = DEFAULT_TAIL_SAMPLES) -> None:
        if top_k < 1:
            raise UserError(f"--top-k {top_k} is invalid: it must be >= 1")
        if tail_samples < 0:
            raise UserError(f"--tail-samples {tail_samples} is invalid: it must be >= 0")
        self.top_k = top_k
        self.tail_samples = tail_samples
        self.parts: dict[str, list[np.ndarray]] = {k: [] for k in ("top_ids", "top_logp", "rest_logp", "tail_ids", "tail_logp", "tok_logp")}

    def __call__(self, chunk: ChunkLogits) -> None:
        logits, lse = chunk.logits, chunk.stats.log_sum_exp
        ids = top_k_indices(logits, min(self.top_k, logits.shape[1]))
        logp = np.take_along_axis(logits, ids, axis=1).astype(np.float64) - lse[:, None]
        rest = np.log(np.maximum(1.0 - np.exp(logp).sum(axis=1), 1e-30))
        tail = sample_tail(logits, lse, ids, self.tail_samples, np.random.default_rng([20251127, chunk.index]))
        tail_logp = np.take_along_axis(logits, tail, axis=1).astype(np.float64) - lse[:, None]
        for key, value in (("top_ids", ids.astype(np.int32)), ("top_logp", logp.astype(np.float32)),
                           ("rest_logp", rest.astype(np.float32)), ("tail_ids", tail.astype(np.int32)),
                           ("tail_logp", tail_logp.astype(np.float32)),
                           ("tok_logp", chunk.stats.log_prob(logits, chunk.targets).astype(np.float32))):
            self.parts[key].append(value)

    def save(self, path: Path, tokens: list[int], plan: ChunkPlan, meta: dict) -> Path:
        header = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "top_k": self.top_k,
            "tail_samples": self.tail_samples,
            "n_ctx": plan.n_ctx,
            "n_chunks": plan.n_chunks,
            "first": plan.first,
            **meta,
        }
        arrays = {key: np.concatenate(values) for key, values in self.parts.items()}
        with atomic.replacing_path(path, suffix=".partial.npz") as partial:  # numpy adds .npz to other names
            np.savez_compressed(partial, meta=np.array(json.dumps(header)),
                                tokens=np.asarray(tokens[: plan.n_chunks * plan.n_ctx], dtype=np.int32), **arrays)
        return path


@dataclass
class Reference:
    meta: dict
    tokens: np.ndarray
    top_ids: np.ndarray
    top_logp: np.ndarray
    rest_logp: np.ndarray
    tail_ids: np.ndarray
    tail_logp: np.ndarray
    tok_logp: np.ndarray
    path: Path | None = None
    file_sha256: str | None = None  # of the .npz: two KLDs are comparable only against the same file

    @property
    def n_ctx(self) -> int:
        return int(self.meta["n_ctx"])

    @property
    def n_chunks(self) -> int:
        return int(self.meta["n_chunks"])


ARRAYS = ("tokens", "top_ids", "top_logp", "rest_logp", "tail_ids", "tail_logp", "tok_logp")


def load_reference(path: str | Path) -> Reference:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
                raise UserError(f"{path}: unsupported KLD reference format {meta.get('format')} v{meta.get('version')} "
                                f"(this profiler reads {FORMAT} v{FORMAT_VERSION}); save it again with --save-reference")
            ref = Reference(meta=meta, path=path, **{name: data[name] for name in ARRAYS})
        ref.file_sha256 = sha256_file(path)
    except FileNotFoundError:
        raise UserError(f"KLD reference not found: {path}") from None
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"{path} is not a KLD reference saved by profiler eval --save-reference ({exc})") from None
    return ref


# --------------------------------------------------------------------------- the comparison


class KldAccumulator:
    """Per-token KLD, Δp, same-top and the two NLLs, compared chunk by chunk with a Reference."""

    def __init__(self, ref: Reference, n_vocab: int) -> None:
        self.ref = ref
        vocab_ref = ref.meta.get("n_vocab")
        if vocab_ref is not None and int(vocab_ref) != n_vocab:
            raise UserError(f"the reference has a {vocab_ref}-token vocabulary, this model {n_vocab}: not the same model family")
        self.per_chunk = ref.n_ctx - 1 - ref.n_ctx // 2
        self.kld: list[np.ndarray] = []
        self.p_diff: list[np.ndarray] = []
        self.nll: list[np.ndarray] = []
        self.nll_base: list[np.ndarray] = []
        self.same_top: list[np.ndarray] = []

    def __call__(self, chunk: ChunkLogits) -> None:
        lo = chunk.index * self.per_chunk
        sl = slice(lo, lo + self.per_chunk)
        lse = chunk.stats.log_sum_exp

        def log_q(ids: np.ndarray) -> np.ndarray:
            return np.take_along_axis(chunk.logits, ids.astype(np.int64), axis=1).astype(np.float64) - lse[:, None]

        ids, logp_top = self.ref.top_ids[sl], self.ref.top_logp[sl].astype(np.float64)
        logq_top = log_q(ids)
        top = (np.exp(logp_top) * (logp_top - logq_top)).sum(axis=1)
        p_rest = np.exp(self.ref.rest_logp[sl].astype(np.float64))
        q_rest = 1.0 - np.exp(logq_top).sum(axis=1)
        kld = top - (q_rest - p_rest)
        if self.ref.tail_ids.shape[1]:  # sum_tail p (r - 1 - log r), estimated from the sample
            log_r = log_q(self.ref.tail_ids[sl]) - self.ref.tail_logp[sl].astype(np.float64)
            kld += p_rest * (np.expm1(log_r) - log_r).mean(axis=1)
        nll = -chunk.stats.log_prob(chunk.logits, chunk.targets)
        nll_base = -self.ref.tok_logp[sl].astype(np.float64)
        self.kld.append(kld)
        self.nll.append(nll)
        self.nll_base.append(nll_base)
        self.p_diff.append(np.exp(-nll) - np.exp(-nll_base))
        self.same_top.append(chunk.stats.argmax == ids[:, 0])

    def result(self) -> KldResult:
        return summarise(
            np.concatenate(self.kld), np.concatenate(self.p_diff), np.concatenate(self.nll),
            np.concatenate(self.nll_base), np.concatenate(self.same_top), [float(c.mean()) for c in self.kld],
        )


def _percentile_table(sorted_values: np.ndarray, levels: tuple[float, ...], scale: float) -> dict[str, float]:
    """max, the levels above 50, median, the levels below 50, min - in llama-perplexity's order."""
    table = {"max": scale * float(sorted_values[-1])}
    table.update({f"{q:g}": scale * sorted_percentile(sorted_values, q / 100) for q in levels if q > 50})
    table["median"] = scale * sorted_percentile(sorted_values, 0.5)
    table.update({f"{q:g}": scale * sorted_percentile(sorted_values, q / 100) for q in levels if q < 50})
    table["min"] = scale * float(sorted_values[0])
    return table


@dataclass
class KldResult:
    n_tokens: int
    mean_kld: float
    mean_kld_uncertainty: float
    kld_percentiles: dict[str, float]  # "max", "99.9", ..., "median", ..., "min"
    same_top_pct: float
    same_top_pct_uncertainty: float
    mean_dp_pct: float  # Δp = p_Q(token) - p_base(token), in percentage points
    mean_dp_pct_uncertainty: float
    rms_dp_pct: float
    rms_dp_pct_uncertainty: float
    dp_percentiles_pct: dict[str, float]
    ppl_q: float
    ppl_q_uncertainty: float
    ppl_base: float
    ppl_base_uncertainty: float
    ln_ppl_ratio: float  # mean ln(PPL(Q)/PPL(base))
    ln_ppl_ratio_uncertainty: float
    ppl_ratio: float
    ppl_ratio_uncertainty: float
    ppl_diff: float
    ppl_diff_uncertainty: float
    ln_ppl_correlation_pct: float  # Cor(ln PPL(Q), ln PPL(base))
    # the SE of the mean KLD from the spread of the chunks' means: it counts what the tokens of one
    # chunk share (hard text), which llama-perplexity's per-token SE above takes as independent
    n_chunks: int = 0
    mean_kld_chunk_uncertainty: float = math.nan
    reference: dict = field(default_factory=dict)
    method: str = (
        "reference top-k + rest mass + importance sample of the rest (control variate); statistics as llama-perplexity"
    )


def summarise(kld, p_diff, nll, nll_base, same_top, chunk_kld_means: list[float] | None = None) -> KldResult:
    """llama-perplexity's KLD report from per-token arrays, plus the chunk-level SE of the mean KLD
    from ``chunk_kld_means`` (one per chunk of equal size)."""
    n = len(kld)
    if n < 2:
        raise UserError(f"only {n} token(s) compared; KL statistics need more - raise --chunks")
    k_sorted, d_sorted = np.sort(kld), np.sort(p_diff)
    log_ppl, log_ppl_unc = mean_and_stderr(nll)
    log_base, log_base_unc = mean_and_stderr(nll_base)
    cov = mean_covariance(nll, nll_base)
    ratio_unc = math.sqrt(max(log_ppl_unc**2 + log_base_unc**2 - 2 * cov, 0.0))
    ppl, ppl_base = math.exp(log_ppl), math.exp(log_base)
    ppl_unc, base_unc = ppl * log_ppl_unc, ppl_base * log_base_unc
    kl_mean, kl_unc = mean_and_stderr(kld)
    dp_mean, dp_unc = mean_and_stderr(p_diff)
    mse, mse_unc = mean_and_stderr(np.square(p_diff))
    rms = math.sqrt(mse)
    top = float(same_top.sum()) / n
    k_pct = _percentile_table(k_sorted, PERCENTILES, 1.0)
    d_pct = _percentile_table(d_sorted, DP_PERCENTILES, 100.0)
    denominator = log_ppl_unc * log_base_unc
    return KldResult(
        n_tokens=n,
        mean_kld=kl_mean,
        mean_kld_uncertainty=kl_unc,
        kld_percentiles=k_pct,
        same_top_pct=100 * top,
        same_top_pct_uncertainty=100 * proportion_stderr(top, n),
        mean_dp_pct=100 * dp_mean,
        mean_dp_pct_uncertainty=100 * dp_unc,
        rms_dp_pct=100 * rms,
        rms_dp_pct_uncertainty=100 * (0.5 / rms * mse_unc if rms > 0 else 0.0),
        dp_percentiles_pct=d_pct,
        ppl_q=ppl,
        ppl_q_uncertainty=ppl_unc,
        ppl_base=ppl_base,
        ppl_base_uncertainty=base_unc,
        ln_ppl_ratio=log_ppl - log_base,
        ln_ppl_ratio_uncertainty=ratio_unc,
        ppl_ratio=math.exp(log_ppl - log_base),
        ppl_ratio_uncertainty=math.exp(log_ppl - log_base) * ratio_unc,
        ppl_diff=ppl - ppl_base,
        ppl_diff_uncertainty=math.sqrt(max(ppl_unc**2 + base_unc**2 - 2 * ppl * ppl_base * cov, 0.0)),
        ln_ppl_correlation_pct=100 * cov / denominator if denominator > 0 else math.nan,
        n_chunks=len(chunk_kld_means or []),
        mean_kld_chunk_uncertainty=cluster_mean_stderr(chunk_kld_means or [])[1],
    )
