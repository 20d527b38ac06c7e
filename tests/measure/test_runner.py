"""The shared measurement loop, checked with a recording fake backend."""

from __future__ import annotations

from profiler.measure import runner
from profiler.measure.runner import run_test
from support.fakes import FakeBackend, make_config, tokens_for


def test_warmup_then_repetitions_each_on_an_empty_cache():
    fake = FakeBackend()
    timings = run_test(fake, make_config(p=8, n=3), tokens_for(fake), repetitions=2)
    kinds = [c[0] for c in fake.calls]
    # warm-up: reset, whole prompt, one token; then per rep: reset, prompt, 3 tokens
    assert kinds == ["threads", "reset", "prefill", "decode"] + ["reset", "prefill", "decode", "decode", "decode"] * 2
    assert len(timings.samples_ns) == 2 and len(timings.token_ns[0]) == 3
    assert all(s == p + sum(t) for s, p, t in zip(timings.samples_ns, timings.prefill_ns, timings.token_ns, strict=True))
    # TTFT: the prompt and choosing the first token from its logits (no decode)
    assert len(timings.ttft_ns) == 2 and all(t >= p for t, p in zip(timings.ttft_ns, timings.prefill_ns, strict=True))
    assert [w[0] for w in timings.windows] == ["prefill", "decode"] * 2
    assert all(end >= start for _, start, end in timings.windows)


def test_no_warmup_option():
    fake = FakeBackend()
    run_test(fake, make_config(n=2), tokens_for(fake), repetitions=1, warmup=False)
    assert [c[0] for c in fake.calls] == ["threads", "reset", "decode", "decode"]


def test_depth_is_filled_outside_the_timer_and_prompt_continues_the_text():
    fake = FakeBackend()
    timings = run_test(fake, make_config(p=4, d=6), tokens_for(fake), repetitions=1, warmup=False)
    prefills = [c[1] for c in fake.calls if c[0] == "prefill"]
    text = tokens_for(FakeBackend())._text_tokens
    assert prefills[0] == [1] + text[1:6]  # BOS, then the text
    assert prefills[1] == text[6:10]
    # a prompt-only test's first token comes from the prompt's logits: nothing more is decoded
    assert not [c for c in fake.calls if c[0] == "decode"]
    assert timings.samples_ns == timings.prefill_ns
    assert timings.ttft_ns[0] >= timings.prefill_ns[0]


def test_generation_is_greedy_from_the_models_logits():
    fake = FakeBackend()
    run_test(fake, make_config(p=5, n=4), tokens_for(fake), repetitions=1, warmup=False)
    decodes = [c for c in fake.calls if c[0] == "decode"]
    assert [d[1] for d in decodes] == [(pos * 7) % 50 for pos in (5, 6, 7, 8)]


def test_generation_from_an_empty_cache_starts_with_bos():
    fake = FakeBackend()
    run_test(fake, make_config(n=2), tokens_for(fake), repetitions=1, warmup=False)
    assert [c for c in fake.calls if c[0] == "decode"][0][1] == 1


def test_random_tokens_are_uniform_ids_in_the_vocabulary():
    fake = FakeBackend(n_vocab=1000)
    source = tokens_for(fake, random_tokens=True)
    seq = source.sequence(0, 500)
    assert seq[0] == 1 and all(0 <= t < 1000 for t in seq)
    assert len(set(seq)) > 300
    assert source.sequence(10, 3) != source.sequence(10, 3)  # fresh draws, as llama-bench


def test_timer_covers_backend_work_only(monkeypatch):
    """With a fake clock advancing only inside backend calls, samples equal backend time."""
    clock = {"now": 0}
    monkeypatch.setattr(runner, "now_ns", lambda: clock["now"])

    class Slow(FakeBackend):
        def prefill(self, tokens):
            super().prefill(tokens)
            clock["now"] += 1000 * len(tokens)

        def decode_one(self, token):
            super().decode_one(token)
            clock["now"] += 50

    fake = Slow()
    timings = run_test(fake, make_config(p=10, n=4), tokens_for(fake), repetitions=3)
    assert timings.samples_ns == [10_000 + 4 * 50] * 3
    assert timings.ttft_ns == [10_000] * 3  # choosing a token costs nothing on this clock
    assert timings.all_token_ns == [50] * 12
    assert timings.all_itl_ns == [50] * 12


def test_decode_step_rate_leaves_token_choice_out(monkeypatch):
    """decode_step_ts (what bw_fraction uses) counts the decode steps alone; the inter-token
    latency adds the choice of the next token."""
    clock = {"now": 0}
    monkeypatch.setattr(runner, "now_ns", lambda: clock["now"])
    real_next = runner.TokenSource.next_token

    def slow_next(self, position):
        clock["now"] += 1000
        return real_next(self, position)

    monkeypatch.setattr(runner.TokenSource, "next_token", slow_next)

    class Timed(FakeBackend):
        def decode_one(self, token):
            super().decode_one(token)
            clock["now"] += 250

    fake = Timed()
    timings = run_test(fake, make_config(n=4), tokens_for(fake), repetitions=2)
    assert timings.all_itl_ns == [1250] * 8
    assert timings.decode_step_ts == 1e9 / 250
