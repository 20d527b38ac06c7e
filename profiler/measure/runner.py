"""The one measurement loop every backend uses: warm-up, repetitions, per-token timing.

It follows llama-bench: one warm-up pass (the whole prompt, one generated token), then
``repetitions`` timed passes, each on an emptied KV cache that is first filled to the test's
depth outside the timer. The timer covers prompt processing and token decodes only:
tokenisation, choosing the next token and the depth fill are outside it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field

import numpy as np

from profiler.backends.base import Backend, ModelFacts
from profiler.plan import TestConfig

now_ns = time.perf_counter_ns

# A tracker that reads cumulative counters only at window edges (measure/energy.py) sets this
# for the length of a test; it is called just before each timed window starts and just after
# it ends, so the reads are never inside a window and no sampling thread is needed.
window_edge: ContextVar[Callable[[], None] | None] = ContextVar("window_edge", default=None)


def _edge() -> None:
    hook = window_edge.get()
    if hook is not None:
        hook()


class TokenSource:
    """Prompt and generation tokens: real text by default, uniform random ids with ``random_tokens``.

    Real text is the built-in text, tokenised once; generation continues greedily from the
    model's own logits. Random mode is llama-bench's: BOS first (if the model adds one),
    then ids drawn uniformly from the vocabulary.
    """

    def __init__(
        self, backend: Backend, facts: ModelFacts, random_tokens: bool, seed: int = 42, text: str | None = None,
        n_tokens: int | None = None,
    ):
        self.backend = backend
        self.facts = facts
        self.random = random_tokens
        self.rng = np.random.default_rng(seed)
        self._text_tokens: list[int] = []
        if not random_tokens:
            if text is None:
                from profiler.textdata import builtin_text

                text = builtin_text()[0]
            self._text_tokens = _tokenize_enough(backend, text, n_tokens)

    def sequence(self, start: int, count: int) -> list[int]:
        """Tokens for positions ``start .. start+count`` of a sequence (BOS at position 0)."""
        if count <= 0:
            return []
        if self.random:
            tokens = self.rng.integers(0, self.facts.n_vocab, size=count).tolist()
        else:
            n = len(self._text_tokens)
            tokens = [self._text_tokens[(start + i) % n] for i in range(count)]
        if start == 0 and self.facts.add_bos and self.facts.bos_token is not None:
            tokens[0] = self.facts.bos_token
        return tokens

    def next_token(self, position: int) -> int:
        """The token to decode at ``position``: argmax of the last logits, or random."""
        if position == 0 and self.facts.add_bos and self.facts.bos_token is not None:
            return self.facts.bos_token
        if self.random or position == 0:
            return int(self.rng.integers(0, self.facts.n_vocab))
        return int(np.argmax(self.backend.logits()))


def _tokenize_enough(backend: Backend, text: str, n_tokens: int | None) -> list[int]:
    """Tokenise only as much text as ``n_tokens`` needs: tokenising a whole megabyte can take
    hundreds of MB for large vocabularies, which would show up as the model's peak memory."""
    if n_tokens is None:
        return backend.tokenize(text, add_special=False) or [0]
    chars = 8 * n_tokens + 64
    while True:
        tokens = backend.tokenize(text[:chars], add_special=False)
        if len(tokens) >= n_tokens or chars >= len(text):
            return tokens or [0]
        chars *= 2


@dataclass
class TestTimings:
    """Raw timings of one test; every list has one entry per repetition (tokens: per token)."""

    samples_ns: list[int] = field(default_factory=list)
    prefill_ns: list[int] = field(default_factory=list)
    ttft_ns: list[int] = field(default_factory=list)
    token_ns: list[list[int]] = field(default_factory=list)
    # (phase, start_ns, end_ns) on the perf_counter_ns clock, one "prefill" and one "decode"
    # window per repetition: trackers (energy, thermal) integrate their samples over these.
    windows: list[tuple[str, int, int]] = field(default_factory=list)

    @property
    def all_token_ns(self) -> list[int]:
        return [t for rep in self.token_ns for t in rep]


def _generate(backend: Backend, tokens: TokenSource, position: int, n_gen: int) -> list[int]:
    times = []
    for i in range(n_gen):
        token = tokens.next_token(position + i)
        start = now_ns()
        backend.decode_one(token)
        times.append(now_ns() - start)
    return times


def warm_up(backend: Backend, test: TestConfig, tokens: TokenSource) -> None:
    backend.reset()
    if test.n_prompt:
        backend.prefill(tokens.sequence(0, test.n_prompt))
    if test.n_gen:
        backend.decode_one(tokens.next_token(backend.n_past()))


def run_repetition(backend: Backend, test: TestConfig, tokens: TokenSource, timings: TestTimings) -> None:
    backend.reset()
    if test.n_depth:
        backend.prefill(tokens.sequence(0, test.n_depth))
    prompt = tokens.sequence(test.n_depth, test.n_prompt)
    prefill_ns = 0
    if prompt:
        _edge()  # energy counters are read at window edges, outside the timed windows
        start = now_ns()
        backend.prefill(prompt)
        end = now_ns()
        _edge()
        prefill_ns = end - start
        timings.windows.append(("prefill", start, end))
    if test.n_gen and not prompt:
        _edge()
    start = now_ns()
    token_ns = _generate(backend, tokens, test.n_depth + test.n_prompt, test.n_gen)
    if token_ns:
        timings.windows.append(("decode", start, now_ns()))
        _edge()
    timings.samples_ns.append(prefill_ns + sum(token_ns))
    timings.prefill_ns.append(prefill_ns)
    timings.token_ns.append(token_ns)
    if token_ns:
        timings.ttft_ns.append(prefill_ns + token_ns[0])
    else:  # prompt-only test: one more decode, outside the sample, completes the first token
        first = _generate(backend, tokens, test.n_depth + test.n_prompt, 1)[0]
        timings.ttft_ns.append(prefill_ns + first)


def run_test(
    backend: Backend,
    test: TestConfig,
    tokens: TokenSource,
    repetitions: int,
    warmup: bool = True,
    on_repetition: Callable[[int], None] | None = None,
) -> TestTimings:
    backend.set_threads(test.n_threads)
    if warmup:
        warm_up(backend, test, tokens)
    timings = TestTimings()
    for rep in range(repetitions):
        run_repetition(backend, test, tokens, timings)
        if on_repetition is not None:
            on_repetition(rep)
    return timings
