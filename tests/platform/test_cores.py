"""Core clusters (big.LITTLE, P/E cores) from fixture /proc/cpuinfo and /sys cpu trees."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from profiler.platform import device
from profiler.platform.cores import CoreClusters
from profiler.platform.device import Device

REPO = Path(__file__).resolve().parents[2]


def _arm_cpuinfo(parts: list[str]) -> str:
    return "".join(f"processor\t: {i}\nBogoMIPS\t: 48.00\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\n"
                   f"CPU part\t: {part}\n\n" for i, part in enumerate(parts))


def _x86_cpuinfo(count: int, model: str) -> str:
    return "".join(f"processor\t: {i}\nvendor_id\t: GenuineIntel\nmodel name\t: {model}\nflags\t\t: avx2\n\n"
                   for i in range(count))


def _cpus(write, specs: list[tuple[int | None, int | None]]) -> None:
    """One /sys cpu directory per (max kHz, capacity); None leaves that file out."""
    for cpu, (khz, capacity) in enumerate(specs):
        base = f"/sys/devices/system/cpu/cpu{cpu}"
        write(f"{base}/topology/core_id", f"{cpu}\n")
        if khz is not None:
            write(f"{base}/cpufreq/cpuinfo_max_freq", f"{khz}\n")
        if capacity is not None:
            write(f"{base}/cpu_capacity", f"{capacity}\n")


def rk3588(write) -> None:
    write("/proc/cpuinfo", _arm_cpuinfo(["0xd05"] * 4 + ["0xd0b"] * 4))
    _cpus(write, [(1800000, 530)] * 4 + [(2400000, 1024)] * 4)


def _clusters(fp: Device) -> list[dict]:
    return [c.to_dict() for c in fp.core_clusters.clusters]


def test_rk3588_is_4_a76_plus_4_a55_fastest_first(sysroot):
    rk3588(sysroot)
    fp = device.fingerprint()
    assert fp.core_clusters_text() == "4× Cortex-A76 @ 2.4 GHz + 4× Cortex-A55 @ 1.8 GHz (mixed: big/little)"
    assert fp.core_clusters.mixed
    assert _clusters(fp) == [
        {"cpu_ids": [4, 5, 6, 7], "count": 4, "core_name": "Cortex-A76", "max_freq_ghz": 2.4, "capacity": 1024},
        {"cpu_ids": [0, 1, 2, 3], "count": 4, "core_name": "Cortex-A55", "max_freq_ghz": 1.8, "capacity": 530},
    ]


def test_snapdragon_phone_1_plus_3_plus_4(sysroot):
    sysroot("/proc/cpuinfo", _arm_cpuinfo(["0xd05"] * 4 + ["0xd41"] * 3 + ["0xd44"]))
    _cpus(sysroot, [(1804800, 250)] * 4 + [(2419200, 870)] * 3 + [(2841600, 1024)])
    fp = device.fingerprint()
    assert fp.core_clusters_text() == ("1× Cortex-X1 @ 2.84 GHz + 3× Cortex-A78 @ 2.42 GHz + "
                                       "4× Cortex-A55 @ 1.8 GHz (mixed: big/little)")
    assert [(c.cpu_ids, c.count, c.capacity) for c in fp.core_clusters.clusters] == [
        ([7], 1, 1024), ([4, 5, 6], 3, 870), ([0, 1, 2, 3], 4, 250)]


def test_raspberry_pi_5_is_one_cluster_not_mixed(sysroot):
    sysroot("/proc/cpuinfo", _arm_cpuinfo(["0xd0b"] * 4))
    _cpus(sysroot, [(2400000, 1024)] * 4)
    fp = device.fingerprint()
    assert fp.core_clusters_text() == "4× Cortex-A76 @ 2.4 GHz"
    assert not fp.core_clusters.mixed
    assert _clusters(fp) == [{"cpu_ids": [0, 1, 2, 3], "count": 4, "core_name": "Cortex-A76",
                              "max_freq_ghz": 2.4, "capacity": 1024}]


def test_unknown_arm_part_is_named_by_number(sysroot):
    sysroot("/proc/cpuinfo", _arm_cpuinfo(["0xd99"] * 2))
    _cpus(sysroot, [(2000000, None)] * 2)
    assert device.fingerprint().core_clusters_text() == "2× ARM part 0xd99 @ 2.0 GHz"


def test_x86_hybrid_by_max_frequency_names_p_and_e_cores(sysroot):
    model = "13th Gen Intel(R) Core(TM) i7-1360P"
    sysroot("/proc/cpuinfo", _x86_cpuinfo(12, model))
    # cpu0-3 P-cores (cpu1 a favoured core 4% faster: still the same cluster), cpu4-11 E-cores
    _cpus(sysroot, [(5000000, None), (5200000, None), (5000000, None), (5000000, None)] + [(3700000, None)] * 8)
    fp = device.fingerprint()
    assert fp.core_clusters_text() == "4× P-core @ 5.2 GHz + 8× E-core @ 3.7 GHz (mixed: big/little)"
    assert _clusters(fp) == [
        {"cpu_ids": [0, 1, 2, 3], "count": 4, "core_name": "P-core", "max_freq_ghz": 5.2, "capacity": None},
        {"cpu_ids": list(range(4, 12)), "count": 8, "core_name": "E-core", "max_freq_ghz": 3.7, "capacity": None},
    ]


def test_x86_hybrid_by_capacity_without_cpufreq(sysroot):
    sysroot("/proc/cpuinfo", _x86_cpuinfo(6, "Intel(R) Core(TM) Ultra 7 155H"))
    _cpus(sysroot, [(None, 1024)] * 2 + [(None, 600)] * 2 + [(None, 300)] * 2)
    fp = device.fingerprint()
    assert fp.core_clusters_text() == ("2× P-core (capacity 1024) + 2× E-core (capacity 600) + "
                                       "2× LP E-core (capacity 300) (mixed: big/little)")


def test_this_machine_has_clusters_covering_every_cpu():
    fp = device.fingerprint()
    ids = sorted(i for c in fp.core_clusters.clusters for i in c.cpu_ids)
    assert ids and ids == list(range(len(ids))) and len(ids) == fp.logical_cores
    assert fp.core_clusters_text() == fp.core_clusters.describe() and "unavailable" not in fp.core_clusters_text()


def test_no_cpu_directories_say_why(sysroot):
    sysroot("/proc/cpuinfo", _arm_cpuinfo(["0xd0b"]))
    clusters = device.fingerprint().core_clusters
    assert clusters.clusters == []
    assert clusters.describe() == "unavailable, because no /sys/devices/system/cpu/cpuN directories were found"


def test_round_trip_and_old_devices_still_load(sysroot):
    rk3588(sysroot)
    fp = device.fingerprint()
    data = json.loads(json.dumps(fp.to_dict()))
    assert Device.from_dict(data) == fp
    assert data["core_clusters"]["description"] == fp.core_clusters_text()
    assert CoreClusters.from_dict(data["core_clusters"]) == fp.core_clusters
    old = {k: v for k, v in data.items() if k != "core_clusters"}
    assert Device.from_dict(old).core_clusters_text() == "unknown (recorded before core clusters were read)"


def test_profiler_device_prints_the_clusters(sysroot, tmp_path):
    rk3588(sysroot)
    env = {**os.environ, "PROFILER_SYSFS_ROOT": str(sysroot.root), "COLUMNS": "200",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "profiler", "device", "--no-bandwidth"], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "core clusters" in done.stdout
    assert "4× Cortex-A76 @ 2.4 GHz + 4× Cortex-A55 @ 1.8 GHz (mixed: big/little)" in done.stdout
