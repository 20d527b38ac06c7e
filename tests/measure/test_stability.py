"""The warnings that a measurement may be unreliable."""

from __future__ import annotations

from profiler.measure import stability


def test_stability_warnings():
    assert stability.stability_warnings([1.0, 1.01, 0.99], "t") == []
    noisy = stability.stability_warnings([1.0, 1.5, 0.6], "pp512")
    assert len(noisy) == 1 and "CV" in noisy[0] and "pp512" in noisy[0] and "-r" in noisy[0]
    short = stability.stability_warnings([0.01, 0.01], "tg8")
    assert len(short) == 1 and "10.0 ms < 100 ms" in short[0]


def test_busy_warning():
    assert stability.busy_warning(0.2, 4) is None
    text = stability.busy_warning(3.0, 4)
    assert "load average 3.00 on 4 CPUs" in text
    assert stability.busy_warning(None, 4) is None
