"""The C++ random numbers llama-perplexity draws its task subsets with, reproduced bit for bit.

llama-perplexity picks HellaSwag and Winogrande subsets with ``std::mt19937 rng(1)``. Python's
``random`` is also MT19937 but seeds it differently (init_by_array), so the generator is
written out here with the C++ seeding (init_genrand). ``uniform_below`` is libstdc++'s
``uniform_int_distribution`` for a 32-bit engine (Lemire's multiply-and-reject, GCC >= 11).
"""

from __future__ import annotations

import numpy as np


class MT19937:
    """``std::mt19937`` (32-bit Mersenne Twister) seeded as ``std::mt19937 rng(seed)``."""

    def __init__(self, seed: int) -> None:
        state = [0] * 624
        state[0] = seed & 0xFFFFFFFF
        for i in range(1, 624):
            prev = state[i - 1]
            state[i] = (1812433253 * (prev ^ (prev >> 30)) + i) & 0xFFFFFFFF
        self._state = state
        self._index = 624

    def _twist(self) -> None:
        mt = self._state
        for i in range(624):
            y = (mt[i] & 0x80000000) | (mt[(i + 1) % 624] & 0x7FFFFFFF)
            mt[i] = mt[(i + 397) % 624] ^ (y >> 1) ^ (0x9908B0DF if y & 1 else 0)
        self._index = 0

    def __call__(self) -> int:
        if self._index >= 624:
            self._twist()
        y = self._state[self._index]
        self._index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C5680
        y ^= (y << 15) & 0xEFC60000
        y ^= y >> 18
        return y


def uniform_below(rng: MT19937, n: int) -> int:
    """``std::uniform_int_distribution<size_t>(0, n - 1)(rng)`` as libstdc++ computes it."""
    if not 0 < n <= 1 << 32:
        raise ValueError(f"range {n} is outside what a 32-bit engine downscales")
    product = rng() * n
    low = product & 0xFFFFFFFF
    if low < n:
        threshold = ((1 << 32) - n) % n
        while low < threshold:
            product = rng() * n
            low = product & 0xFFFFFFFF
    return product >> 32


def scaled_index(rng: MT19937, size: int) -> int:
    """``int(scale * rng() * size)`` in float32, with ``scale = 1 / (1.f + rng.max())``
    (llama-perplexity's Winogrande subset draw)."""
    scale = np.float32(1.0) / (np.float32(1.0) + np.float32(0xFFFFFFFF))
    return int(np.float32(scale * np.float32(rng())) * np.float32(size))
