"""A recording fake backend and builders of a test and its token source, for the measurement-loop tests
(tests/measure/test_runner.py, test_adaptive.py)."""

from __future__ import annotations

import numpy as np

from profiler.backends.base import Backend, ModelFacts
from profiler.measure.plan import TestConfig
from profiler.measure.runner import TokenSource


class FakeBackend(Backend):
    """Records every call; its logits depend only on the number of tokens seen, like a deterministic model."""

    name = "fake"

    def __init__(self, n_vocab: int = 50):
        self.calls: list[tuple] = []
        self._n_past = 0
        self.n_vocab = n_vocab

    def load(self, path, params):
        return ModelFacts("fake", 0, 0, self.n_vocab, True, 1)

    def configure(self, params):
        self.calls.append(("configure", params.n_ctx))

    def set_threads(self, n):
        self.calls.append(("threads", n))

    def reset(self):
        self.calls.append(("reset",))
        self._n_past = 0

    def prefill(self, tokens):
        self.calls.append(("prefill", list(tokens)))
        self._n_past += len(tokens)

    def decode_one(self, token):
        self.calls.append(("decode", token, self._n_past))
        self._n_past += 1

    def logits(self):
        out = np.zeros(self.n_vocab, dtype=np.float32)
        out[(self._n_past * 7) % self.n_vocab] = 1.0  # a deterministic "model"
        return out

    def tokenize(self, text, add_special=True):
        return [ord(c) % self.n_vocab for c in text]

    def close(self):
        pass


def make_config(p=0, n=0, d=0, t=2) -> TestConfig:
    """One test: p prompt tokens, n generated, at depth d, on t threads, with the default batch and KV settings."""
    return TestConfig(p, n, d, t, 2048, 512, "f16", "f16", "auto")


def tokens_for(backend, random_tokens=False) -> TokenSource:
    """The token source a run would build for ``backend``, over a fixed text."""
    return TokenSource(backend, backend.load("x", None), random_tokens, text="abcdefghij" * 20)
