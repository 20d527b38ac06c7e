"""Core clusters (big.LITTLE, P/E cores) from fixture /proc/cpuinfo and /sys cpu trees."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from profiler.platform import device
from profiler.platform.cores import NO_SYS, CoreClusters
from profiler.platform.device import Device
from support.core_trees import arm_cpuinfo, cpus, pi5, rk3588, snapdragon_1_3_4, x86_cpuinfo, x86_hybrid

REPO = Path(__file__).resolve().parents[2]


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
    snapdragon_1_3_4(sysroot)
    fp = device.fingerprint()
    assert fp.core_clusters_text() == ("1× Cortex-X1 @ 2.84 GHz + 3× Cortex-A78 @ 2.42 GHz + "
                                       "4× Cortex-A55 @ 1.8 GHz (mixed: big/little)")
    assert [(c.cpu_ids, c.count, c.capacity) for c in fp.core_clusters.clusters] == [
        ([7], 1, 1024), ([4, 5, 6], 3, 870), ([0, 1, 2, 3], 4, 250)]


def test_raspberry_pi_5_is_one_cluster_not_mixed(sysroot):
    pi5(sysroot)
    fp = device.fingerprint()
    assert fp.core_clusters_text() == "4× Cortex-A76 @ 2.4 GHz"
    assert not fp.core_clusters.mixed
    assert _clusters(fp) == [{"cpu_ids": [0, 1, 2, 3], "count": 4, "core_name": "Cortex-A76",
                              "max_freq_ghz": 2.4, "capacity": 1024}]


def test_unknown_arm_part_is_named_by_number(sysroot):
    sysroot("/proc/cpuinfo", arm_cpuinfo(["0xd99"] * 2))
    cpus(sysroot, [(2000000, None)] * 2)
    assert device.fingerprint().core_clusters_text() == "2× ARM part 0xd99 @ 2.0 GHz"


def test_x86_hybrid_by_max_frequency_names_p_and_e_cores(sysroot):
    x86_hybrid(sysroot)  # cpu1 a favoured core 4% faster: still the same cluster as cpu0, 2, 3
    fp = device.fingerprint()
    assert fp.core_clusters_text() == "4× P-core @ 5.2 GHz + 8× E-core @ 3.7 GHz (mixed: big/little)"
    assert _clusters(fp) == [
        {"cpu_ids": [0, 1, 2, 3], "count": 4, "core_name": "P-core", "max_freq_ghz": 5.2, "capacity": None},
        {"cpu_ids": list(range(4, 12)), "count": 8, "core_name": "E-core", "max_freq_ghz": 3.7, "capacity": None},
    ]


def test_x86_hybrid_by_capacity_without_cpufreq(sysroot):
    sysroot("/proc/cpuinfo", x86_cpuinfo(6, "Intel(R) Core(TM) Ultra 7 155H"))
    cpus(sysroot, [(None, 1024)] * 2 + [(None, 600)] * 2 + [(None, 300)] * 2)
    fp = device.fingerprint()
    assert fp.core_clusters_text() == ("2× P-core (capacity 1024) + 2× E-core (capacity 600) + "
                                       "2× LP E-core (capacity 300) (mixed: big/little)")


def test_this_machine_has_clusters_covering_every_cpu():
    fp = device.fingerprint()
    if not Path("/sys/devices/system/cpu").is_dir():  # an emulated root (scripts/arm64-root) has no /sys
        assert fp.core_clusters_text() == f"unavailable, because {NO_SYS}"
        return
    ids = sorted(i for c in fp.core_clusters.clusters for i in c.cpu_ids)
    assert ids and ids == list(range(len(ids))) and len(ids) == fp.logical_cores
    assert fp.core_clusters_text() == fp.core_clusters.describe() and "unavailable" not in fp.core_clusters_text()


def test_no_cpu_directories_say_why(sysroot):
    sysroot("/proc/cpuinfo", arm_cpuinfo(["0xd0b"]))
    sysroot("/sys/devices/system/cpu/online", "0\n")  # the directory, without cpuN entries
    clusters = device.fingerprint().core_clusters
    assert clusters.clusters == []
    assert clusters.describe() == "unavailable, because no /sys/devices/system/cpu/cpuN directories were found"


def test_a_root_without_sys_says_so(sysroot):
    sysroot("/proc/cpuinfo", arm_cpuinfo(["0xd0b"]))
    sysroot("/sys/.keep", "")  # /sys itself may exist as an empty mount point
    clusters = device.fingerprint().core_clusters
    assert clusters.clusters == []
    assert clusters.describe() == ("unavailable, because /sys is not mounted here (a chroot or a container "
                                   "without /sys), so the kernel's list of CPUs cannot be read")


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
