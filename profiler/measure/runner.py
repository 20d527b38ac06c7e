"""The one measurement loop every backend uses: warm-up, repetitions, per-token timing.

It follows llama-bench: one warm-up pass (the whole prompt, one generated token), then
``repetitions`` timed passes, each on an emptied KV cache that is first filled to the test's
depth outside the timer. The sample timer covers prompt processing and token decodes only,
as llama-bench's: tokenisation, choosing the next token and the depth fill are outside it.
A timed decode is ``Backend.decode_one`` alone, the same step on every backend (llama-bench's
llama_decode + llama_synchronize; each backend's ``decode_step`` says which calls); reading
the logits out for the choice is part of choosing.

Latency follows MLPerf Client: the first generated token is chosen from the prompt's logits,
so TTFT = prompt processing + choosing that token (no decode). Inter-token latency is the time
between consecutive tokens (a decode + choosing the next token), and the decode rate counts
only those later tokens.

With ``-r auto`` (an ``adaptive.AutoReps`` policy) the warm-up is calibrated and repetitions
go on until the rule in ``adaptive.py`` says stop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field

import numpy as np

from profiler import stats
from profiler.backends.base import Backend, ModelFacts
from profiler.measure import adaptive
from profiler.measure.adaptive import AutoReps
from profiler.measure.plan import TestConfig

now_ns = time.perf_counter_ns

# --energy-target: the J/token interval after the repetitions so far, (its half-width over the
# mean, or None with why); measure/session.py builds it from the energy tracker.
EnergyCheck = Callable[["TestTimings"], "tuple[float | None, str | None]"]

# A tracker that reads cumulative counters only at window edges (measure/energy.py) sets this
# for the length of a test; it is called just before each timed window starts and just after
# it ends, so the reads are never inside a window and no sampling thread is needed.
window_edge: ContextVar[Callable[[], None] | None] = ContextVar("window_edge", default=None)


def at_window_edge() -> None:
    """Call the edge hook a window-edge tracker set, if any; runners call it around every timed window."""
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
                from profiler.models.textdata import builtin_text

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
    """Raw timings of one test; every list has one entry per kept repetition (tokens: per token)."""

    samples_ns: list[int] = field(default_factory=list)
    prefill_ns: list[int] = field(default_factory=list)
    # prompt processing + choosing the first token; absent for a test without a prompt
    ttft_ns: list[int] = field(default_factory=list)
    token_ns: list[list[int]] = field(default_factory=list)  # each decode_one (llama-bench's timer)
    itl_ns: list[list[int]] = field(default_factory=list)  # token to token: a decode + choosing the next
    # (phase, start_ns, end_ns) on the perf_counter_ns clock, one "prefill" and one "decode"
    # window per repetition: trackers (energy, thermal) integrate their samples over these.
    windows: list[tuple[str, int, int]] = field(default_factory=list)
    stop_reason: str = "fixed"  # adaptive.STOP_REASONS
    warmup_passes: int = 0  # llama-bench's short pass + full passes dropped by calibration
    warmup_settled: bool = True
    trend: adaptive.Trend | None = None
    wall_ns: int = 0  # the whole test: warm-up, every pass (dropped ones too), untimed parts

    @property
    def all_token_ns(self) -> list[int]:
        return [t for rep in self.token_ns for t in rep]

    @property
    def decode_step_ts(self) -> float | None:
        """Decode steps per second without token choice: each repetition's decodes over their
        summed time, averaged (the roofline's rate; None without decodes)."""
        reps = [len(rep) * 1e9 / sum(rep) for rep in self.token_ns if rep]
        return stats.mean(reps) if reps else None

    @property
    def all_itl_ns(self) -> list[int]:
        return [t for rep in self.itl_ns for t in rep]

    def drop_first_repetition(self, windows_per_rep: int) -> None:
        """Forget the oldest repetition (it turned out to be a warm-up pass)."""
        for values in (self.samples_ns, self.prefill_ns, self.ttft_ns, self.token_ns, self.itl_ns):
            if values:
                del values[0]
        del self.windows[:windows_per_rep]


def _choose(tokens: TokenSource, position: int) -> tuple[int, int]:
    """The token for ``position`` and the time choosing it took."""
    start = now_ns()
    token = tokens.next_token(position)
    return token, now_ns() - start


def _generate(backend: Backend, tokens: TokenSource, position: int, n_gen: int,
              first_token: int) -> tuple[list[int], list[int]]:
    """Decode ``n_gen`` tokens starting with ``first_token``; returns each decode's time and each
    inter-token latency (that decode + choosing the token after it)."""
    decode_ns, itl_ns = [], []
    token = first_token
    for i in range(n_gen):
        start = now_ns()
        backend.decode_one(token)
        decode_ns.append(now_ns() - start)
        token, choose_ns = _choose(tokens, position + i + 1)
        itl_ns.append(decode_ns[-1] + choose_ns)
    return decode_ns, itl_ns


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
        at_window_edge()  # energy counters are read at window edges, outside the timed windows
        start = now_ns()
        backend.prefill(prompt)
        end = now_ns()
        at_window_edge()
        prefill_ns = end - start
        timings.windows.append(("prefill", start, end))
    position = test.n_depth + test.n_prompt
    first, choose_ns = _choose(tokens, position)  # from the prompt's logits: that is the first token
    if prompt:
        timings.ttft_ns.append(prefill_ns + choose_ns)
    if test.n_gen and not prompt:
        at_window_edge()
    start = now_ns()
    token_ns, itl_ns = _generate(backend, tokens, position, test.n_gen, first)
    if token_ns:
        timings.windows.append(("decode", start, now_ns()))
        at_window_edge()
    timings.samples_ns.append(prefill_ns + sum(token_ns))
    timings.prefill_ns.append(prefill_ns)
    timings.token_ns.append(token_ns)
    timings.itl_ns.append(itl_ns)


def run_test(
    backend: Backend,
    test: TestConfig,
    tokens: TokenSource,
    repetitions: int | AutoReps,
    warmup: bool = True,
    on_repetition: Callable[[int], None] | None = None,
    energy_check: EnergyCheck | None = None,
) -> TestTimings:
    """Warm up, then run a fixed number of repetitions or, with ``AutoReps``, as many as the rule wants
    (``energy_check`` tells the rule how the J/token interval stands, for its energy target)."""
    backend.set_threads(test.n_threads)
    timings = TestTimings()
    started = now_ns()
    if warmup:
        warm_up(backend, test, tokens)
        timings.warmup_passes = 1
    if isinstance(repetitions, AutoReps):
        _run_adaptive(backend, test, tokens, repetitions, warmup, timings, started, on_repetition, energy_check)
    else:
        for rep in range(repetitions):
            run_repetition(backend, test, tokens, timings)
            if on_repetition is not None:
                on_repetition(rep)
    timings.wall_ns = now_ns() - started
    return timings


def _run_adaptive(backend: Backend, test: TestConfig, tokens: TokenSource, rule: AutoReps, warmup: bool,
                  timings: TestTimings, started: int, on_repetition: Callable[[int], None] | None,
                  energy_check: EnergyCheck | None = None) -> None:
    """Repeat until ``adaptive.stop_reason`` says stop; while calibrating, a pass that does not
    agree with the next one is dropped as a warm-up pass."""
    n_tokens = test.n_prompt + test.n_gen
    windows_per_rep = bool(test.n_prompt) + bool(test.n_gen)
    calibrating = warmup
    count = 0
    while True:
        rep_start = now_ns()
        run_repetition(backend, test, tokens, timings)
        rep_s = (now_ns() - rep_start) / 1e9
        if on_repetition is not None:
            on_repetition(count)
        count += 1
        if calibrating and len(timings.samples_ns) >= 2:
            out_of_time = now_ns() - started > adaptive.WARMUP_TIME_SHARE * rule.max_time_s * 1e9
            calibrating = _calibrate(timings, windows_per_rep, out_of_time)
        if calibrating:
            continue
        samples_ts = [n_tokens * 1e9 / ns for ns in timings.samples_ns]
        energy_rel, energy_why = (None, None)
        if rule.energy_target is not None:
            energy_rel, energy_why = energy_check(timings) if energy_check else (None, "no energy tracker")
        reason, trend = adaptive.stop_reason(samples_ts, (now_ns() - started) / 1e9, rep_s, rule, energy_rel, energy_why)
        if reason is not None:
            timings.stop_reason, timings.trend = reason, trend
            return


def _calibrate(timings: TestTimings, windows_per_rep: int, out_of_time: bool) -> bool:
    """One calibration step on the two oldest passes; True while warm-up goes on."""
    first, second = timings.samples_ns[0], timings.samples_ns[1]
    if adaptive.passes_agree(first, second):
        return False
    if out_of_time:  # keep what there is rather than spend the samples' time on warm-up
        timings.warmup_settled = False
        return False
    timings.drop_first_repetition(windows_per_rep)
    timings.warmup_passes += 1
    if timings.warmup_passes - 1 >= adaptive.MAX_WARMUP_PASSES:
        timings.warmup_settled = False
        return False
    return True
