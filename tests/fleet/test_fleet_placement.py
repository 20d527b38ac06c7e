"""The fleet plans each device's tests with that device's core clusters: --cores and the big-cluster
default name its CPUs, so the coordinator's test keys are the ones the device stores."""

from __future__ import annotations

from profiler.fleet.dispatch import planned_keys
from profiler.measure.plan import Sweep
from profiler.measure.session import EnergyOptions
from profiler.models.catalog import ModelSpec
from profiler.platform import device
from support.core_trees import pi5, rk3588


def _fingerprint(tree, sysroot) -> dict:
    tree(sysroot)
    return device.fingerprint().to_dict()


def _keys(fingerprint: dict, sweep: Sweep) -> set[str]:
    return planned_keys([ModelSpec(name="m", format="gguf", sources=["m.gguf"])], sweep, EnergyOptions(), fingerprint)


def test_each_device_gets_its_own_placement(sysroot):
    rk = _fingerprint(rk3588, sysroot)
    assert _keys(rk, Sweep(n_prompt=[], n_gen=[16])) == {"m|p0|n16|d0|t4|b2048|ub512|kf16|vf16|faauto|C0xf0"}
    assert _keys(rk, Sweep(n_prompt=[], n_gen=[16], cores=["little"])) == {
        "m|p0|n16|d0|t4|b2048|ub512|kf16|vf16|faauto|C0xf"}


def test_a_device_without_clusters_in_its_fingerprint_plans_as_before(sysroot):
    fp = _fingerprint(pi5, sysroot)
    fp.pop("core_clusters")  # a device registered before core clusters were read
    assert _keys(fp, Sweep(n_prompt=[], n_gen=[16])) == {f"m|p0|n16|d0|t{fp['physical_cores']}|b2048|ub512|kf16|vf16|faauto"}
