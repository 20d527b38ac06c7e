"""Core clusters (big.LITTLE, P/E cores) as the kernel reports them.

Each CPU's speed class comes from ``/sys/devices/system/cpu/cpuN/cpu_capacity`` (the scheduler's
relative capacity, 1024 = the fastest core) and ``cpufreq/cpuinfo_max_freq`` (kHz), whichever
are present; its core type from /proc/cpuinfo (the ARM MIDR implementer/part, or x86's model
name). CPUs with the same core type and the same capacity and max frequency form one cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from profiler.platform import sysfs

# ARM Ltd (implementer 0x41) MIDR part numbers -> core names.
ARM_PARTS = {
    "0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd05": "Cortex-A55", "0xd07": "Cortex-A57",
    "0xd08": "Cortex-A72", "0xd09": "Cortex-A73", "0xd0a": "Cortex-A75", "0xd0b": "Cortex-A76",
    "0xd0c": "Neoverse-N1", "0xd0d": "Cortex-A77", "0xd40": "Neoverse-V1", "0xd41": "Cortex-A78",
    "0xd44": "Cortex-X1", "0xd46": "Cortex-A510", "0xd47": "Cortex-A710", "0xd48": "Cortex-X2",
    "0xd49": "Neoverse-N2", "0xd4d": "Cortex-A715", "0xd4e": "Cortex-X3", "0xd4f": "Neoverse-V2",
    "0xd80": "Cortex-A520", "0xd81": "Cortex-A720", "0xd82": "Cortex-X4",
}
# x86 hybrids report one model name for every core: the clusters are named by speed rank.
X86_RANKS = {2: ("P-core", "E-core"), 3: ("P-core", "E-core", "LP E-core")}
# Cores of one type whose max frequency (or capacity) differ by less than this are one cluster:
# Intel's favoured cores and AMD's preferred cores differ by a few percent, a real
# big/little split (P 5.0 vs E 3.8 GHz, A77 prime 3.1 vs 2.4 GHz) by 20% or more.
SAME_CLASS_TOLERANCE = 0.10
# A chroot (scripts/arm64-root mounts no /sys on purpose) or a container started without /sys.
NO_SYS = ("/sys is not mounted here (a chroot or a container without /sys), so the kernel's list of CPUs "
          "cannot be read")
# Arm's efficiency designs: the little cores of big.LITTLE and DynamIQ boards and phones. On a
# phone's 1+3+4 the prime and big clusters are both performance cores (llama.cpp users run on all
# four), so "big" means every cluster that is not one of these, not only the fastest.
EFFICIENCY_CORES = frozenset({"Cortex-A35", "Cortex-A53", "Cortex-A55", "Cortex-A510", "Cortex-A520"})


@dataclass
class CoreCluster:
    cpu_ids: list[int]
    core_name: str
    max_freq_ghz: float | None  # cpufreq's cpuinfo_max_freq of the cluster's fastest CPU; None: not exposed
    capacity: int | None  # the kernel's cpu_capacity (1024 = fastest core); None: not exposed

    @property
    def count(self) -> int:
        return len(self.cpu_ids)

    def describe(self) -> str:
        text = f"{self.count}× {self.core_name}"
        if self.max_freq_ghz is not None:
            return f"{text} @ {_ghz(self.max_freq_ghz)} GHz"
        return f"{text} (capacity {self.capacity})" if self.capacity is not None else text

    def to_dict(self) -> dict:
        return {"cpu_ids": list(self.cpu_ids), "count": self.count, "core_name": self.core_name,
                "max_freq_ghz": self.max_freq_ghz, "capacity": self.capacity}

    @classmethod
    def from_dict(cls, data: dict) -> CoreCluster:
        return cls(cpu_ids=list(data["cpu_ids"]), core_name=data["core_name"],
                   max_freq_ghz=data.get("max_freq_ghz"), capacity=data.get("capacity"))


@dataclass
class CoreGroup:
    """One or more clusters taken together (a phone's prime + big cores)."""

    clusters: list[CoreCluster]

    @property
    def cpu_ids(self) -> list[int]:
        return sorted(cpu for c in self.clusters for cpu in c.cpu_ids)

    @property
    def count(self) -> int:
        return len(self.cpu_ids)

    def describe(self) -> str:
        return " + ".join(c.describe() for c in self.clusters)


@dataclass
class CoreClusters:
    clusters: list[CoreCluster] = field(default_factory=list)  # fastest first
    unavailable: str | None = None  # why there are no clusters

    @property
    def mixed(self) -> bool:
        """Big/little: the clusters differ in capacity or in max frequency."""
        return len({(c.capacity, c.max_freq_ghz) for c in self.clusters}) > 1

    def big(self) -> CoreGroup | None:
        """The performance cores of a big/little device (None when the cores are all alike): the
        clusters that are not Arm efficiency designs, or else the fastest cluster (x86 P-cores)."""
        if not self.mixed:
            return None
        fast = [c for c in self.clusters if c.core_name not in EFFICIENCY_CORES]
        return CoreGroup(fast if 0 < len(fast) < len(self.clusters) else self.clusters[:1])

    def little(self) -> CoreGroup | None:
        """The efficiency cores: the Arm efficiency clusters, or else the slowest cluster."""
        if not self.mixed:
            return None
        slow = [c for c in self.clusters if c.core_name in EFFICIENCY_CORES]
        return CoreGroup(slow if 0 < len(slow) < len(self.clusters) else self.clusters[-1:])

    def describe(self) -> str:
        if not self.clusters:
            return f"unavailable, because {self.unavailable}"
        text = " + ".join(c.describe() for c in self.clusters)
        return f"{text} (mixed: big/little)" if self.mixed else text

    def to_dict(self) -> dict:
        return {"clusters": [c.to_dict() for c in self.clusters], "mixed": self.mixed,
                "description": self.describe(), "unavailable": self.unavailable}

    @classmethod
    def from_dict(cls, data: dict) -> CoreClusters:
        return cls([CoreCluster.from_dict(c) for c in data.get("clusters") or []], data.get("unavailable"))


def _ghz(value: float) -> str:
    text = f"{value:.2f}"
    return text[:-1] if text.endswith("0") else text


def _core_names(blocks: list[dict[str, str]]) -> dict[int, str]:
    """CPU id -> core type, from the per-processor blocks of /proc/cpuinfo."""
    names = {}
    for block in blocks:
        number = block.get("processor", "")
        if not number.isdigit():
            continue
        part = block.get("CPU part", "").lower()
        implementer = block.get("CPU implementer", "").lower()
        if part and implementer == "0x41":
            names[int(number)] = ARM_PARTS.get(part, f"ARM part {part}")
        elif part:
            names[int(number)] = f"CPU part {part} (implementer {implementer or 'unknown'})"
        elif block.get("model name"):
            names[int(number)] = " ".join(block["model name"].split())
    return names


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= SAME_CLASS_TOLERANCE * max(a, b)


def _group(cpus: list[tuple[int, str, float | None, int | None]]) -> list[CoreCluster]:
    """Fastest first; a CPU joins the first cluster of its type within the tolerance."""
    ranked = sorted(cpus, key=lambda c: (-(c[3] or 0), -(c[2] or 0.0), c[0]))
    clusters: list[CoreCluster] = []
    for cpu, name, ghz, capacity in ranked:
        home = next((c for c in clusters if c.core_name == name and _close(c.max_freq_ghz, ghz)
                     and _close(c.capacity, capacity)), None)
        if home is None:
            clusters.append(CoreCluster([cpu], name, ghz, capacity))
        else:
            home.cpu_ids = sorted([*home.cpu_ids, cpu])
    return clusters


def _name_x86_ranks(clusters: list[CoreCluster], blocks: list[dict[str, str]]) -> None:
    """An x86 hybrid's clusters all carry the model name: call them P-core/E-core by rank."""
    is_x86 = any("vendor_id" in b for b in blocks)
    ranks = X86_RANKS.get(len(clusters))
    if is_x86 and ranks and len({c.core_name for c in clusters}) == 1:
        for cluster, rank in zip(clusters, ranks, strict=True):
            cluster.core_name = rank


def detect(blocks: list[dict[str, str]]) -> CoreClusters:
    """The clusters of this machine; ``blocks`` are /proc/cpuinfo's per-processor key/value blocks."""
    ids = sorted(int(p.name[3:]) for p in sysfs.glob("/sys/devices/system/cpu/cpu[0-9]*") if p.name[3:].isdigit())
    if not ids and not sysfs.exists("/sys/devices/system/cpu"):
        return CoreClusters([], NO_SYS)
    if not ids:
        return CoreClusters([], "no /sys/devices/system/cpu/cpuN directories were found")
    names = _core_names(blocks)
    cpus = []
    for cpu in ids:
        base = f"/sys/devices/system/cpu/cpu{cpu}"
        khz = sysfs.read_int(f"{base}/cpufreq/cpuinfo_max_freq")
        cpus.append((cpu, names.get(cpu, "unknown core"), khz / 1e6 if khz else None,
                     sysfs.read_int(f"{base}/cpu_capacity")))
    clusters = _group(cpus)
    _name_x86_ranks(clusters, blocks)
    return CoreClusters(clusters)
