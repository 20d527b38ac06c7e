"""KL-divergence of a candidate model against a saved reference, with llama-perplexity's statistics.

The reference file
------------------
``llama-perplexity --kl-divergence-base`` stores every log-probability of every scored token
(n_vocab uint16 values per token: ~16 GB for WikiText-2 with a 49k vocabulary). Ours keeps, per
scored token, the reference's **top-k** log-probabilities (k=128 by default) with their token
ids, the log of the **rest mass** outside the top-k, and the log-probability of the actual next
token, compressed with numpy's ``savez_compressed``. The evaluated tokens and the settings
(n_ctx, chunks, BOS handling, text sha256, reference model identity) are stored with them, so
a candidate is always scored on exactly the reference's tokens.

With P the reference and Q the candidate, the per-token divergence is

    KLD = sum_{i in top-k(P)} p_i (log p_i - log q_i) + p_rest (log p_rest - log q_rest)

where ``q_rest = 1 - sum_{i in top-k(P)} q_i``. Grouping the tail into one outcome can only
lower a KL-divergence (log-sum inequality), so this is a lower bound of the full-vocabulary
value; the gap is the tail's internal disagreement, which is negligible at k=128 (tests check
it against the full computation). llama-perplexity's own value also approximates: it drops
reference probabilities below e^-16 and quantises log-probabilities to 16 bits.

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

from profiler.errors import UserError
from profiler.quality.perplexity import ChunkLogits, ChunkPlan

FORMAT = "profiler-kld-reference"
FORMAT_VERSION = 1
DEFAULT_TOP_K = 128
PERCENTILES = (99.9, 99.0, 95.0, 90.0, 10.0, 5.0, 1.0, 0.1)
DP_PERCENTILES = (99.9, 99.0, 95.0, 90.0, 75.0, 25.0, 10.0, 5.0, 1.0, 0.1)


# --------------------------------------------------------------------------- the reference


class ReferenceWriter:
    """Collects the reference model's top-k log-probabilities chunk by chunk."""

    def __init__(self, top_k: int = DEFAULT_TOP_K) -> None:
        if top_k < 1:
            raise UserError(f"--top-k {top_k} is invalid: it must be >= 1")
        self.top_k = top_k
        self.ids: list[np.ndarray] = []
        self.logp: list[np.ndarray] = []
        self.rest: list[np.ndarray] = []
        self.tok_logp: list[np.ndarray] = []

    def __call__(self, chunk: ChunkLogits) -> None:
        logits, lse = chunk.logits, chunk.stats.log_sum_exp
        k = min(self.top_k, logits.shape[1])
        ids = np.argpartition(logits, -k, axis=1)[:, -k:]
        vals = np.take_along_axis(logits, ids, axis=1)
        order = np.argsort(-vals, axis=1, kind="stable")
        ids = np.take_along_axis(ids, order, axis=1)
        logp = np.take_along_axis(vals, order, axis=1).astype(np.float64) - lse[:, None]
        top_mass = np.exp(logp).sum(axis=1)
        self.ids.append(ids.astype(np.int32))
        self.logp.append(logp.astype(np.float32))
        self.rest.append(np.log(np.maximum(1.0 - top_mass, 1e-30)).astype(np.float32))
        self.tok_logp.append(chunk.stats.log_prob(logits, chunk.targets).astype(np.float32))

    def save(self, path: Path, tokens: list[int], plan: ChunkPlan, meta: dict) -> Path:
        header = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "top_k": self.top_k,
            "n_ctx": plan.n_ctx,
            "n_chunks": plan.n_chunks,
            "first": plan.first,
            **meta,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial.npz")
        np.savez_compressed(
            partial,
            meta=np.array(json.dumps(header)),
            tokens=np.asarray(tokens[: plan.n_chunks * plan.n_ctx], dtype=np.int32),
            top_ids=np.concatenate(self.ids),
            top_logp=np.concatenate(self.logp),
            rest_logp=np.concatenate(self.rest),
            tok_logp=np.concatenate(self.tok_logp),
        )
        partial.replace(path)
        return path


@dataclass
class Reference:
    meta: dict
    tokens: np.ndarray
    top_ids: np.ndarray
    top_logp: np.ndarray
    rest_logp: np.ndarray
    tok_logp: np.ndarray
    path: Path | None = None

    @property
    def n_ctx(self) -> int:
        return int(self.meta["n_ctx"])

    @property
    def n_chunks(self) -> int:
        return int(self.meta["n_chunks"])


def load_reference(path: str | Path) -> Reference:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            ref = Reference(
                meta=meta, tokens=data["tokens"], top_ids=data["top_ids"], top_logp=data["top_logp"],
                rest_logp=data["rest_logp"], tok_logp=data["tok_logp"], path=path,
            )
    except FileNotFoundError:
        raise UserError(f"KLD reference not found: {path}") from None
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"{path} is not a KLD reference saved by profiler eval --save-reference ({exc})") from None
    if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
        raise UserError(f"{path}: unsupported KLD reference format {meta.get('format')} v{meta.get('version')}")
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
        ids, logp_p = self.ref.top_ids[sl], self.ref.top_logp[sl].astype(np.float64)
        lse = chunk.stats.log_sum_exp
        logq = np.take_along_axis(chunk.logits, ids.astype(np.int64), axis=1).astype(np.float64) - lse[:, None]
        p = np.exp(logp_p)
        rest_p = self.ref.rest_logp[sl].astype(np.float64)
        q_rest = np.maximum(1.0 - np.exp(logq).sum(axis=1), 1e-30)
        kld = (p * (logp_p - logq)).sum(axis=1) + np.exp(rest_p) * (rest_p - np.log(q_rest))
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
            np.concatenate(self.nll_base), np.concatenate(self.same_top),
        )


def mean_and_uncertainty(values: np.ndarray) -> tuple[float, float]:
    """Mean and standard error from sums, as llama-perplexity (0 below 11 values)."""
    n = len(values)
    if n < 1:
        return math.nan, math.nan
    mean = float(values.sum() / n)
    var = float(np.square(values).sum() / n) - mean * mean
    return mean, math.sqrt(var / (n - 1)) if var > 0 and n > 10 else 0.0


def percentile(sorted_values: np.ndarray, fraction: float) -> float:
    """llama-perplexity's percentile: linear between the two nearest ranks."""
    if fraction <= 0:
        return float(sorted_values[0])
    if fraction >= 1:
        return float(sorted_values[-1])
    pos = fraction * (len(sorted_values) - 1)
    lo = int(pos)
    frac = pos - lo
    return float((1 - frac) * sorted_values[lo] + frac * sorted_values[min(lo + 1, len(sorted_values) - 1)])


def _median(sorted_values: np.ndarray) -> float:
    n = len(sorted_values)
    return float(0.5 * (sorted_values[n // 2] + sorted_values[n // 2 - 1]) if n % 2 == 0 else sorted_values[n // 2])


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
    reference: dict = field(default_factory=dict)
    method: str = (
        "top-k reference + rest mass (a lower bound of the full-vocabulary KLD); statistics as llama-perplexity"
    )


def _covariance(a: np.ndarray, b: np.ndarray) -> float:
    n = len(a)
    if n < 10:
        return 0.0
    return (float((a * b).sum()) / n - float(a.sum()) / n * float(b.sum()) / n) / (n - 1)


def summarise(kld, p_diff, nll, nll_base, same_top) -> KldResult:
    """llama-perplexity's KLD report from per-token arrays."""
    n = len(kld)
    if n < 2:
        raise UserError(f"only {n} token(s) compared; KL statistics need more - raise --chunks")
    k_sorted, d_sorted = np.sort(kld), np.sort(p_diff)
    log_ppl, log_ppl_unc = mean_and_uncertainty(nll)
    log_base, log_base_unc = mean_and_uncertainty(nll_base)
    cov = _covariance(nll, nll_base)
    ratio_unc = math.sqrt(max(log_ppl_unc**2 + log_base_unc**2 - 2 * cov, 0.0))
    ppl, ppl_base = math.exp(log_ppl), math.exp(log_base)
    ppl_unc, base_unc = ppl * log_ppl_unc, ppl_base * log_base_unc
    kl_mean, kl_unc = mean_and_uncertainty(kld)
    dp_mean, dp_unc = mean_and_uncertainty(p_diff)
    mse, mse_unc = mean_and_uncertainty(np.square(p_diff))
    rms = math.sqrt(mse)
    top = float(same_top.sum()) / n
    k_pct = {"max": float(k_sorted[-1])}
    k_pct.update({f"{q:g}": percentile(k_sorted, q / 100) for q in PERCENTILES[:4]})
    k_pct["median"] = _median(k_sorted)
    k_pct.update({f"{q:g}": percentile(k_sorted, q / 100) for q in PERCENTILES[4:]})
    k_pct["min"] = float(k_sorted[0])
    d_pct = {"max": 100 * float(d_sorted[-1])}
    d_pct.update({f"{q:g}": 100 * percentile(d_sorted, q / 100) for q in DP_PERCENTILES[:5]})
    d_pct["median"] = 100 * _median(d_sorted)
    d_pct.update({f"{q:g}": 100 * percentile(d_sorted, q / 100) for q in DP_PERCENTILES[5:]})
    d_pct["min"] = 100 * float(d_sorted[0])
    denominator = log_ppl_unc * log_base_unc
    return KldResult(
        n_tokens=n,
        mean_kld=kl_mean,
        mean_kld_uncertainty=kl_unc,
        kld_percentiles=k_pct,
        same_top_pct=100 * top,
        same_top_pct_uncertainty=100 * math.sqrt(top * (1 - top) / (n - 1)),
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
    )
