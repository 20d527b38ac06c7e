"""Sustained mode on a fake backend whose decode slows down after 60 s, on a fake clock."""

from __future__ import annotations

import numpy as np
import pytest

from profiler.backends.base import Backend, ModelFacts
from profiler.errors import UserError
from profiler.measure import runner, sustained
from profiler.measure.plan import TestConfig
from profiler.measure.session import EnergyOptions, select_tests
from profiler.platform import thermal
from support.energy_fixtures import FakeClock

S = 1_000_000_000


class SlowingBackend(Backend):
    """Each decode takes 10 ms of fake time, 20 ms once 60 s have passed (a throttled CPU)."""

    name = "fake"

    def __init__(self, clock: FakeClock):
        self.clock, self.start, self._n_past, self.decodes = clock, clock.t_ns, 0, 0

    def load(self, path, params):
        return ModelFacts("fake", 0, 0, n_vocab=32, add_bos=False, bos_token=None)

    def configure(self, params): ...
    def set_threads(self, n_threads): ...
    def tokenize(self, text, add_special=True): return [1, 2, 3]
    def logits(self): return np.zeros(32, dtype=np.float32)
    def close(self): ...

    def reset(self):
        self._n_past = 0

    def prefill(self, tokens):
        self._n_past += len(tokens)

    def decode_one(self, token):
        slow = self.clock.t_ns - self.start >= 60 * S
        self.clock.advance(0.020 if slow else 0.010)
        self._n_past += 1
        self.decodes += 1


def test_sustained_reports_burst_steady_and_throttle_onset(monkeypatch):
    clock = FakeClock(0)
    monkeypatch.setattr(runner, "now_ns", clock)
    backend = SlowingBackend(clock)
    test = TestConfig(0, 100, 0, 2, 2048, 512, "f16", "f16", "auto")
    tokens = runner.TokenSource(backend, backend.load("", None), random_tokens=True)
    timings = sustained.run_sustained(backend, test, tokens, duration_s=120)
    assert clock.t_ns >= 120 * S and len(timings.token_ns) == len(timings.samples_ns)

    # The thermal sampler saw the clock fall to 70% of maximum at 60 s.
    readings = [thermal.ThermalReading(t * S, {"cpu": 50.0 + t / 4}, 1.0 if t < 60 else 0.7, None, None, None)
                for t in range(0, 121)]
    summary = thermal.summarize(readings, has_indicator=False, use_freq_drop=True)
    result = sustained.summarize(timings, 100, 120, summary, has_indicator=False)
    assert result.burst_ts == pytest.approx(100.0)  # 100 tokens per 1 s chunk
    assert result.steady_ts == pytest.approx(50.0)  # 100 tokens per 2 s chunk
    assert result.steady_over_burst == pytest.approx(0.5)
    assert result.throttle_onset_s == pytest.approx(60.0 - 0.010)  # the warm-up decode came first
    assert result.chunks == 60 + 30 and result.chunk_ts[0] == pytest.approx(100.0)

    fields = sustained.sustained_fields(result, readings, t0_ns=timings.windows[0][1])
    assert fields["sustained_s"] == 120 and fields["throttle_onset_s"] == pytest.approx(59.99)
    curve = fields["sustained_detail"]["thermal_curve"]
    assert len(curve["t_s"]) == 121 and curve["temp_max_c"][-1] == pytest.approx(80.0)


def test_no_indicator_and_steady_clock_gives_an_unknown_onset_not_zero(monkeypatch):
    clock = FakeClock(0)
    monkeypatch.setattr(runner, "now_ns", clock)
    backend = SlowingBackend(clock)
    test = TestConfig(0, 50, 0, 1, 2048, 512, "f16", "f16", "auto")
    tokens = runner.TokenSource(backend, backend.load("", None), random_tokens=True)
    timings = sustained.run_sustained(backend, test, tokens, duration_s=5, warmup=False)
    summary = thermal.summarize([], has_indicator=False, use_freq_drop=True)
    result = sustained.summarize(timings, 50, 5, summary, has_indicator=False)
    assert result.throttle_onset_s is None and result.onset_note.startswith("unknown")


def test_sustained_keeps_only_decode_tests_and_needs_one():
    tg = TestConfig(0, 128, 0, 2, 2048, 512, "f16", "f16", "auto")
    pp = TestConfig(512, 0, 0, 2, 2048, 512, "f16", "f16", "auto")
    assert select_tests([pp, tg, tg], EnergyOptions(sustained_s=30)) == [tg]
    assert select_tests([pp, tg], EnergyOptions()) == [pp, tg]
    with pytest.raises(UserError, match="-n"):
        select_tests([pp], EnergyOptions(sustained_s=30))
