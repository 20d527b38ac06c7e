"""Energy and CPU time over any window, from readings taken before, during and after it.

Cumulative sources (counters, models): the counter is interpolated linearly at the window
edges, i.e. power is taken as constant between two reads. Power sources: the samples are
joined into a piecewise-linear power curve, cut at the window edges and integrated by the
trapezoid rule. Outside the sampled span the edge value is held (the sampler brackets
every test with a reading before the first window and after the last, so this is rare
and ``covers`` tells).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence

from profiler.platform.energy.sampler import Reading


def value_at(ts: Sequence[int], vs: Sequence[float], t: int) -> float:
    """Linear interpolation of a series at time ``t`` (the edge value outside it)."""
    if t <= ts[0]:
        return vs[0]
    if t >= ts[-1]:
        return vs[-1]
    i = bisect_right(ts, t)
    t_a, t_b, v_a, v_b = ts[i - 1], ts[i], vs[i - 1], vs[i]
    return v_a + (v_b - v_a) * (t - t_a) / (t_b - t_a)


def trapezoid(ts: Sequence[int], ws: Sequence[float], t0: int, t1: int) -> float:
    """Joules of a piecewise-linear power curve (W at ns timestamps) between t0 and t1."""
    lo, hi = bisect_right(ts, t0), bisect_left(ts, t1)
    points = [(t0, value_at(ts, ws, t0))] + list(zip(ts[lo:hi], ws[lo:hi], strict=True)) + [(t1, value_at(ts, ws, t1))]
    return sum((tb - ta) * (wa + wb) / 2 for (ta, wa), (tb, wb) in zip(points, points[1:], strict=False)) / 1e9


def window_energy_j(readings: Sequence[Reading], cumulative: bool, t0: int, t1: int) -> float | None:
    if not readings or t1 < t0:
        return None
    ts = [r.t_ns for r in readings]
    vs = [r.value for r in readings]
    if cumulative:
        return value_at(ts, vs, t1) - value_at(ts, vs, t0)
    return trapezoid(ts, vs, t0, t1)


def cpu_delta_s(readings: Sequence[Reading], field: str, t0: int, t1: int) -> float | None:
    """Increase of ``proc_cpu_s`` or ``busy_cpu_s`` over the window (interpolated)."""
    pairs = [(r.t_ns, getattr(r, field)) for r in readings if getattr(r, field) is not None]
    if len(pairs) < 2:
        return None
    ts, vs = zip(*pairs, strict=True)
    return value_at(ts, vs, t1) - value_at(ts, vs, t0)


def covers(readings: Sequence[Reading], t0: int, t1: int) -> bool:
    return bool(readings) and readings[0].t_ns <= t0 and t1 <= readings[-1].t_ns


def mean_power_w(readings: Sequence[Reading], cumulative: bool) -> float | None:
    """Average power over the whole sampled span."""
    if len(readings) < 2 or readings[-1].t_ns <= readings[0].t_ns:
        return readings[0].value if readings and not cumulative else None
    t0, t1 = readings[0].t_ns, readings[-1].t_ns
    energy = window_energy_j(readings, cumulative, t0, t1)
    return energy / ((t1 - t0) / 1e9) if energy is not None else None


def parts_mean_w(readings: Sequence[Reading], spans: Sequence[tuple[int, int]]) -> dict[str, float]:
    """Mean watts of each named group (``Reading.parts``) over the spans: the same trapezoid as the
    total, over the readings that carry that group; a group seen in fewer than two readings is left out."""
    names = sorted({name for r in readings if r.parts for name in r.parts})
    total_ns = sum(t1 - t0 for t0, t1 in spans)
    found = {}
    for name in names:
        series = [(r.t_ns, r.parts[name]) for r in readings if r.parts and name in r.parts]
        if len(series) < 2 or total_ns <= 0:
            continue
        ts, ws = zip(*series, strict=True)
        found[name] = sum(trapezoid(ts, ws, t0, t1) for t0, t1 in spans) / (total_ns / 1e9)
    return found
