"""What a run says about placement on big/little fixtures: the default's line, the warning for more
threads than big cores, and the measured comparison when the run measured both."""

from __future__ import annotations

from profiler.measure.plan import Sweep, expand
from profiler.platform import device
from profiler.run import placement_advice
from support.core_trees import pi5, rk3588
from support.tests_support import make_row


def _clusters():
    return device.fingerprint().core_clusters


def test_the_default_placement_says_where_and_how_to_override(sysroot):
    rk3588(sysroot)
    note = placement_advice.default_note(Sweep(), _clusters())
    assert note == ("mixed cores (4× Cortex-A76 @ 2.4 GHz + 4× Cortex-A55 @ 1.8 GHz (mixed: big/little)): running on "
                    "the big cluster, CPUs 4-7 (4× Cortex-A76), with 4 threads; choose with -t, -C/--cpu-mask or "
                    "--cores big|little|all|N-M")
    assert placement_advice.default_note(Sweep(n_threads=[4]), _clusters()) is None
    assert placement_advice.default_note(Sweep(cores=["all"]), _clusters()) is None


def test_no_note_and_no_warning_on_one_cluster(sysroot):
    pi5(sysroot)
    tests = expand(Sweep(n_gen=[16], n_threads=[8]), 4, _clusters(), 4)
    assert placement_advice.default_note(Sweep(), _clusters()) is None
    assert placement_advice.thread_warnings(tests, _clusters()) == []


def test_more_threads_than_big_cores_names_the_faster_placement(sysroot):
    rk3588(sysroot)
    tests = expand(Sweep(n_gen=[16], n_threads=[4, 8]), 8, _clusters(), 8)
    assert placement_advice.thread_warnings(tests, _clusters()) == [
        "-t 8 is more threads than there are big cores (4× Cortex-A76 @ 2.4 GHz): threads also run on slower "
        "cores and every step waits for the slowest; --cores big -t 4 is usually faster"]


def _row(threads: int, affinity: list[int], cores: str, ts: float, mask: str):
    return make_row(model_name="m", test="tg16", n_prompt=0, n_gen=16, n_threads=threads, avg_ts=ts,
                    cpu_mask=mask, cpu_affinity=affinity, cpu_cores=cores)


def test_the_measured_figures_of_both_are_cited(sysroot):
    rk3588(sysroot)
    big = _row(4, [4, 5, 6, 7], "4× Cortex-A76", 25.04, "0xf0")
    wide = _row(8, list(range(8)), "4× Cortex-A76 + 4× Cortex-A55", 19.5, "0x0")
    assert placement_advice.measured_comparison([big, wide], _clusters()) == [
        "m tg16: 4 threads on 4× Cortex-A76 measured 25.0 t/s, faster than 8 threads on "
        "4× Cortex-A76 + 4× Cortex-A55 at 19.5 t/s"]
    wide.avg_ts = 30.0  # when the wide placement measured faster, the note says so
    assert placement_advice.measured_comparison([big, wide], _clusters())[0].startswith(
        "m tg16: 8 threads on 4× Cortex-A76 + 4× Cortex-A55 measured 30.0 t/s, faster than 4 threads")
    assert placement_advice.measured_comparison([big], _clusters()) == []  # only one of them measured
