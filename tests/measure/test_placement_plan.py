"""Placement as a sweep dimension: -C, --cores and --cpu-strict in the expansion, the big cluster
by default on big/little devices, and each placement its own row key."""

from __future__ import annotations

import pytest

from profiler.errors import UserError
from profiler.measure.plan import Sweep, expand
from profiler.platform import device
from profiler.results.store import row_key
from support.core_trees import pi5, rk3588, snapdragon_1_3_4, x86_hybrid


def _tests(sweep: Sweep):
    fp = device.fingerprint()
    return expand(sweep, fp.physical_cores, fp.core_clusters, fp.logical_cores)


def _placed(sweep: Sweep) -> list[tuple[str, int]]:
    return sorted({(t.cpu_mask, t.n_threads) for t in _tests(sweep)})


def test_rk3588_without_t_runs_on_the_big_cluster_one_thread_per_core(sysroot):
    rk3588(sysroot)
    assert _placed(Sweep(n_prompt=[64], n_gen=[16])) == [("0xf0", 4)]


def test_x86_hybrid_default_is_the_p_cores(sysroot):
    x86_hybrid(sysroot)
    assert _placed(Sweep(n_gen=[16])) == [("0xf", 4)]


def test_snapdragon_default_is_its_prime_and_big_cores(sysroot):
    snapdragon_1_3_4(sysroot)
    assert _placed(Sweep(n_gen=[16])) == [("0xf0", 4)]


def test_no_default_placement_with_t_or_on_one_cluster(sysroot):
    rk3588(sysroot)
    assert _placed(Sweep(n_gen=[16], n_threads=[8])) == [("0x0", 8)]


def test_pi5_keeps_the_old_default(sysroot):
    pi5(sysroot)
    fp = device.fingerprint()
    assert _placed(Sweep(n_gen=[16])) == [("0x0", fp.physical_cores)]


def test_masks_and_cores_are_sweep_values(sysroot):
    rk3588(sysroot)
    sweep = Sweep(n_prompt=[64], n_gen=[16], cpu_mask=["0x1", "0x3"], cores=["big", "little", "4-5"])
    assert _placed(sweep) == [("0x1", 1), ("0x3", 2), ("0x30", 2), ("0xf", 4), ("0xf0", 4)]
    assert len(_tests(sweep)) == 10  # 5 placements x 2 shapes
    both = Sweep(n_gen=[16], cores=["big", "all"], n_threads=[2, 4])
    assert _placed(both) == [("0xf0", 2), ("0xf0", 4), ("0xff", 2), ("0xff", 4)]


def test_a_repeated_placement_runs_once(sysroot):
    rk3588(sysroot)
    assert _placed(Sweep(n_gen=[16], cpu_mask=["0xf0"], cores=["big"])) == [("0xf0", 4)]


def test_cpu_strict_1_is_refused_with_the_reason(sysroot):
    rk3588(sysroot)
    with pytest.raises(UserError, match="--cpu-strict 1 is not available: .*(OpenMP|threadpool)"):
        _tests(Sweep(n_gen=[16], cpu_mask=["0xf0"], cpu_strict=[0, 1]))
    with pytest.raises(UserError, match="--cpu-strict 2 is invalid"):
        _tests(Sweep(n_gen=[16], cpu_strict=[2]))


def test_a_mask_naming_a_missing_cpu_is_refused(sysroot):
    rk3588(sysroot)
    with pytest.raises(UserError, match=r"-C/--cpu-mask 0x100: CPU 8 does not exist on this device"):
        _tests(Sweep(n_gen=[16], cpu_mask=["0x100"]))


def test_each_placement_has_its_own_row_key_and_unplaced_keys_are_unchanged(sysroot):
    rk3588(sysroot)
    tests = _tests(Sweep(n_prompt=[], n_gen=[16], cpu_mask=["0x0", "0xf0"], n_threads=[4]))
    keys = [row_key("m", t) for t in tests]
    assert keys == ["m|p0|n16|d0|t4|b2048|ub512|kf16|vf16|faauto", "m|p0|n16|d0|t4|b2048|ub512|kf16|vf16|faauto|C0xf0"]


def test_an_old_plan_without_placement_fields_still_loads():
    data = Sweep(n_gen=[16]).to_dict()
    for name in ("cpu_mask", "cores", "cpu_strict"):
        data.pop(name)
    assert Sweep.from_dict(data) == Sweep(n_gen=[16])
