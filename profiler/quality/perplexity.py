"""Perplexity over a text, computed the way ``llama-perplexity`` does.

* The whole text is tokenised once with the model's special tokens (BOS if the model adds one).
* It is cut into ``n_chunk = n_tokens // n_ctx`` chunks of n_ctx tokens (or ``--chunks``).
* In each chunk the first token is replaced by BOS (if the model adds one); the chunk is
  evaluated from an empty cache and only its second half is scored: the logits at positions
  ``first = n_ctx // 2 .. n_ctx - 2`` predict tokens ``first + 1 .. n_ctx - 1``
  (``n_ctx - 1 - first`` tokens per chunk), so every scored token has at least n_ctx/2 of context.
* ``n_batch // n_ctx`` chunks go into one batch as separate sequences (llama-perplexity's n_seq).
* PPL = exp(mean NLL); its uncertainty is PPL * sqrt(var(NLL) / (count - 1)).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from profiler.backends.base import Backend, ContextParams, ModelFacts, SeqBatch
from profiler.errors import UserError
from profiler.quality.logits import RowStats, row_stats
from profiler.stats import perplexity_and_stderr


@dataclass(frozen=True)
class ChunkPlan:
    n_ctx: int  # tokens per chunk (llama-perplexity's -c)
    n_batch: int  # tokens per llama_decode call
    n_seq: int  # chunks decoded together as separate sequences
    n_chunks: int
    n_tokens_text: int

    @property
    def first(self) -> int:
        return self.n_ctx // 2

    @property
    def scored_per_chunk(self) -> int:
        return self.n_ctx - 1 - self.first

    def context_params(self, flash_attn: str = "auto") -> ContextParams:
        n_ctx_total = self.n_seq * self.n_ctx
        n_batch = min(self.n_batch, n_ctx_total)
        return ContextParams(
            n_ctx=n_ctx_total, n_batch=n_batch, n_ubatch=min(512, n_batch), flash_attn=flash_attn,
            n_seq_max=self.n_seq, kv_unified=False,
        )


def plan_chunks(n_tokens: int, n_ctx: int, n_batch: int, n_chunks: int | None) -> ChunkPlan:
    """Check the settings as llama-perplexity does, with a one-line reason when they fail."""
    if n_ctx < 4:
        raise UserError(f"--ctx {n_ctx} is too small: it must be at least 4")
    if n_batch < 1:
        raise UserError(f"--batch {n_batch} is invalid: it must be >= 1")
    if not (n_batch < n_ctx or n_batch % n_ctx == 0):
        raise UserError(f"--batch {n_batch} must be below --ctx {n_ctx} or a multiple of it (llama-perplexity's rule)")
    if n_tokens < 2 * n_ctx:
        raise UserError(
            f"the text has {n_tokens} tokens; perplexity with --ctx {n_ctx} needs at least {2 * n_ctx} - "
            "give a longer file or a smaller --ctx"
        )
    n_max = n_tokens // n_ctx
    if n_chunks is not None and n_chunks < 1:
        raise UserError(f"--chunks {n_chunks} is invalid: it must be >= 1")
    chosen = n_max if n_chunks is None else min(n_chunks, n_max)
    return ChunkPlan(n_ctx=n_ctx, n_batch=n_batch, n_seq=max(1, n_batch // n_ctx), n_chunks=chosen, n_tokens_text=n_tokens)


@dataclass
class ChunkLogits:
    """The scored half of one chunk: logits predicting ``targets``, with their row statistics."""

    index: int
    logits: np.ndarray  # float32 [scored, n_vocab]; a view, valid only during the callback
    targets: np.ndarray  # int64 [scored]
    stats: RowStats

    @property
    def nll(self) -> np.ndarray:
        return -self.stats.log_prob(self.logits, self.targets)


def iter_chunks(
    backend: Backend,
    facts: ModelFacts,
    tokens: list[int],
    plan: ChunkPlan,
    threads: int,
    want_argmax: bool = False,
) -> Iterator[ChunkLogits]:
    """Evaluate the planned chunks (n_seq at a time) and yield each one's scored logits."""
    data = np.asarray(tokens[: plan.n_chunks * plan.n_ctx], dtype=np.int64)
    bos = facts.bos_token if facts.add_bos and facts.bos_token is not None else None
    first, scored = plan.first, plan.scored_per_chunk
    per_seq_rows = plan.n_ctx - first
    for group in range(0, plan.n_chunks, plan.n_seq):
        n_seq = min(plan.n_seq, plan.n_chunks - group)
        batch = SeqBatch()
        for seq in range(n_seq):
            chunk = data[(group + seq) * plan.n_ctx : (group + seq + 1) * plan.n_ctx].tolist()
            if bos is not None:
                chunk[0] = bos  # llama-perplexity swaps the chunk's first token for BOS
            batch.tokens += chunk
            batch.positions += range(plan.n_ctx)
            batch.seq_ids += [(seq,)] * plan.n_ctx
            batch.outputs += [pos >= first for pos in range(plan.n_ctx)]
        logits = backend.logits_batch(batch)
        for seq in range(n_seq):
            index = group + seq
            rows = logits[seq * per_seq_rows : seq * per_seq_rows + scored]
            start = index * plan.n_ctx
            targets = data[start + first + 1 : start + plan.n_ctx]
            yield ChunkLogits(index, rows, targets, row_stats(rows, threads, want_argmax))


@dataclass
class PerplexityResult:
    ppl: float
    ppl_uncertainty: float  # one standard error, as llama-perplexity's "+/-"
    mean_nll_nats: float
    n_ctx: int
    n_batch: int
    n_seq: int
    n_chunks: int
    n_chunks_available: int
    n_tokens_text: int
    n_tokens_scored: int
    n_tokens_evaluated: int
    eval_seconds: float
    eval_tokens_per_s: float
    chunk_mean_nll_nats: list[float] = field(default_factory=list)  # raw samples, one per chunk
    running_ppl: list[float] = field(default_factory=list)  # llama-perplexity's "[i]ppl" after each chunk


class NllAccumulator:
    """Sums of NLL and NLL^2 in float64, as llama-perplexity keeps them."""

    def __init__(self) -> None:
        self.nll = 0.0
        self.nll2 = 0.0
        self.count = 0
        self.chunk_means: list[float] = []
        self.running: list[float] = []
        self.token_nll: list[np.ndarray] = []

    def add(self, nll: np.ndarray) -> None:
        self.nll += float(nll.sum())
        self.nll2 += float(np.square(nll).sum())
        self.count += len(nll)
        self.chunk_means.append(float(nll.mean()))
        self.running.append(math.exp(self.nll / self.count))
        self.token_nll.append(nll.astype(np.float32))

    def ppl(self) -> tuple[float, float, float]:
        """(PPL, its uncertainty, mean NLL)."""
        return perplexity_and_stderr(self.nll, self.nll2, self.count)


def perplexity(
    backend: Backend,
    facts: ModelFacts,
    tokens: list[int],
    plan: ChunkPlan,
    threads: int,
    on_chunk: Callable[[ChunkLogits], None] | None = None,
    want_argmax: bool = False,
) -> tuple[PerplexityResult, NllAccumulator]:
    """Run the chunks; ``on_chunk`` sees every chunk's logits (KL-divergence hooks in here)."""
    acc = NllAccumulator()
    start = time.perf_counter()
    for chunk in iter_chunks(backend, facts, tokens, plan, threads, want_argmax):
        acc.add(chunk.nll)
        if on_chunk is not None:
            on_chunk(chunk)
    seconds = time.perf_counter() - start
    ppl, unc, mean = acc.ppl()
    evaluated = plan.n_chunks * plan.n_ctx
    result = PerplexityResult(
        ppl=ppl,
        ppl_uncertainty=unc,
        mean_nll_nats=mean,
        n_ctx=plan.n_ctx,
        n_batch=plan.n_batch,
        n_seq=plan.n_seq,
        n_chunks=plan.n_chunks,
        n_chunks_available=plan.n_tokens_text // plan.n_ctx,
        n_tokens_text=plan.n_tokens_text,
        n_tokens_scored=acc.count,
        n_tokens_evaluated=evaluated,
        eval_seconds=seconds,
        eval_tokens_per_s=evaluated / seconds if seconds > 0 else math.nan,
        chunk_mean_nll_nats=acc.chunk_means,
        running_ppl=acc.running,
    )
    return result, acc
