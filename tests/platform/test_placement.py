"""Placement: llama-bench's CPU masks, --cores by cluster on fixture trees, and this process's affinity."""

from __future__ import annotations

import os
import threading

import pytest

from profiler.errors import UserError
from profiler.platform import device, placement
from support.core_trees import pi5, rk3588, snapdragon_1_3_4, x86_hybrid


@pytest.mark.parametrize(("text", "cpus"), [
    ("0x1", [0]), ("1", [0]), ("0x3", [0, 1]), ("0xF0", [4, 5, 6, 7]), ("0xf0", [4, 5, 6, 7]), ("0X5", [0, 2]),
    ("0x0", []),  # llama-bench's default: no placement
    ("0x100000000", [32]), ("8" + "0" * 127, [511]),  # 128 digits: llama.cpp's 512 CPUs
])
def test_masks_mean_what_llama_bench_reads(text, cpus):
    assert placement.parse_cpu_mask(text) == cpus


@pytest.mark.parametrize(("text", "fragment"), [
    ("", "is not a hex CPU mask"), ("0x", "is not a hex CPU mask"), ("0xg1", "is not a hex CPU mask"),
    ("big", "is not a hex CPU mask"), ("1" * 129, "at most 128"),
])
def test_bad_masks_are_user_errors(text, fragment):
    with pytest.raises(UserError, match=fragment) as info:
        placement.parse_cpu_mask(text)
    assert info.value.exit_code == 2


def test_mask_and_cpu_list_formats_round_trip():
    assert placement.format_cpu_mask([4, 5, 6, 7]) == "0xf0"
    assert placement.format_cpu_mask([]) == "0x0"
    assert placement.parse_cpu_mask(placement.format_cpu_mask([0, 9, 63])) == [0, 9, 63]
    assert placement.cpu_list_text([0, 1, 2, 3, 6, 8, 9]) == "0-3,6,8-9"


def test_cores_values_split_names_but_keep_a_cpu_list_whole():
    assert placement.split_cores("big,little") == ["big", "little"]
    assert placement.split_cores("0-3,6") == ["0-3,6"]
    assert placement.split_cores("big, 0-3,6") == ["big", "0-3,6"]


def _resolve(spec: str) -> list[int]:
    fp = device.fingerprint()
    return placement.resolve_cores(spec, fp.core_clusters, fp.logical_cores)


def test_rk3588_big_is_the_a76_cluster_little_the_a55(sysroot):
    rk3588(sysroot)
    assert _resolve("big") == [4, 5, 6, 7] and _resolve("little") == [0, 1, 2, 3]
    assert _resolve("all") == list(range(8)) and _resolve("4-5") == [4, 5] and _resolve("0-1,6") == [0, 1, 6]
    clusters = device.fingerprint().core_clusters
    assert placement.describe_cpus([4, 5, 6, 7], clusters) == "4× Cortex-A76"
    assert placement.describe_cpus([3, 4], clusters) == "1× Cortex-A76 + 1× Cortex-A55"
    with pytest.raises(UserError, match=r"CPU 8-9 does not exist on this device \(its CPUs are 0-7\)"):
        _resolve("6-9")
    with pytest.raises(UserError, match="runs backwards"):
        _resolve("7-4")
    with pytest.raises(UserError, match="not big, little, all or a CPU list"):
        _resolve("prime")


def test_snapdragon_big_is_the_prime_and_big_cores_little_the_a55s(sysroot):
    snapdragon_1_3_4(sysroot)
    assert _resolve("big") == [4, 5, 6, 7] and _resolve("little") == [0, 1, 2, 3] and _resolve("4-7") == [4, 5, 6, 7]
    assert placement.describe_cpus([4, 5, 6, 7], device.fingerprint().core_clusters) == "1× Cortex-X1 + 3× Cortex-A78"


def test_pi5_has_no_little_cores(sysroot):
    pi5(sysroot)
    assert _resolve("big") == _resolve("all") == [0, 1, 2, 3]
    with pytest.raises(UserError, match=r"no little cores \(4× Cortex-A76 @ 2.4 GHz\); use all"):
        _resolve("little")


def test_x86_hybrid_big_is_the_p_cores(sysroot):
    x86_hybrid(sysroot)
    assert _resolve("big") == [0, 1, 2, 3] and _resolve("little") == list(range(4, 12))
    assert placement.describe_cpus(list(range(12)), device.fingerprint().core_clusters) == "4× P-core + 8× E-core"


def test_affinity_is_set_on_every_thread_and_read_back():
    """On this machine: every thread of the process, and a thread started afterwards, runs on CPU 0 only."""
    before = sorted(os.sched_getaffinity(0))
    started = threading.Event()
    stop = threading.Event()
    seen: dict[str, set[int]] = {}

    def worker() -> None:  # a thread alive before the placement: it must be moved too
        started.set()
        stop.wait()
        seen["old"] = os.sched_getaffinity(0)

    old = threading.Thread(target=worker)
    old.start()
    started.wait()
    try:
        placement.set_process_affinity([0])
        late = threading.Thread(target=lambda: seen.setdefault("new", os.sched_getaffinity(0)))
        late.start()
        late.join()
        assert placement.process_affinity() == [0]
    finally:
        stop.set()
        old.join()
        placement.set_process_affinity(before)
    assert seen == {"old": {0}, "new": {0}}
    assert placement.process_affinity() == before


def test_a_cpu_the_process_may_not_use_is_a_user_error():
    with pytest.raises(UserError, match="cannot run on CPUs 4000"):
        placement.set_process_affinity([4000])
