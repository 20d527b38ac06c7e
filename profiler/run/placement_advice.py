"""What a run says about placement on a big/little device (docs/measurement.md, "Placement").

* Without -t, -C or --cores the tests run on the big cluster, one thread per big core
  (measure/plan.py ``default_placement``); ``default_note`` is the line that says so.
* More threads than there are big cores put threads on the little cores too, and every
  step waits at a barrier for the slowest thread: ``thread_warnings`` names the placement that
  is usually faster, and ``measured_comparison`` cites both figures when the run measured both.
"""

from __future__ import annotations

from profiler.measure.plan import Sweep, TestConfig, default_placement
from profiler.platform import placement
from profiler.platform.cores import CoreClusters

OVERRIDE = "choose with -t, -C/--cpu-mask or --cores big|little|all|N-M"


def _big(clusters: CoreClusters | None):
    return clusters.big() if clusters is not None else None


def default_note(sweep: Sweep, clusters: CoreClusters | None) -> str | None:
    """The line a run prints when it placed its tests on the big cluster by itself."""
    cpus = default_placement(sweep, clusters)
    if cpus is None:
        return None
    return (f"mixed cores ({clusters.describe()}): running on the big cluster, CPUs "
            f"{placement.cpu_list_text(cpus)} ({placement.describe_cpus(cpus, clusters)}), with {len(cpus)} "
            f"thread{'s' if len(cpus) != 1 else ''}; {OVERRIDE}")


def thread_warnings(tests: list[TestConfig], clusters: CoreClusters | None) -> list[str]:
    """One warning per thread count above the big cluster's core count."""
    big = _big(clusters)
    if big is None:
        return []
    over = sorted({t.n_threads for t in tests if t.n_threads > big.count})
    return [f"-t {n} is more threads than there are big cores ({big.describe()}): threads also run on "
            f"slower cores and every step waits for the slowest; --cores big -t {big.count} is usually faster"
            for n in over]


def _label(row) -> str:
    return f"{row.n_threads} thread{'s' if row.n_threads != 1 else ''} on {row.cpu_cores or 'any CPU'}"


def measured_comparison(rows, clusters: CoreClusters | None) -> list[str]:
    """Per model and test: the big-cluster row (at most one thread per big core, only big CPUs)
    beside the fastest row with more threads than big cores, when the run measured both."""
    big = _big(clusters)
    if big is None:
        return []
    groups: dict[tuple, list] = {}
    for row in rows:
        groups.setdefault((row.model_name, row.test), []).append(row)
    notes = []
    for (model, test), members in groups.items():
        on_big = [r for r in members if r.cpu_affinity and set(r.cpu_affinity) <= set(big.cpu_ids)
                  and r.n_threads <= big.count]
        wide = [r for r in members if r.n_threads > big.count]
        if not on_big or not wide:
            continue
        a, b = max(on_big, key=lambda r: r.avg_ts), max(wide, key=lambda r: r.avg_ts)
        faster, slower = (a, b) if a.avg_ts >= b.avg_ts else (b, a)
        notes.append(f"{model} {test}: {_label(faster)} measured {faster.avg_ts:.1f} t/s, faster than "
                     f"{_label(slower)} at {slower.avg_ts:.1f} t/s")
    return notes
