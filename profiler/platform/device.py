"""Device fingerprint (CPU, ISA, caches, RAM, OS, board) and a memory-bandwidth probe."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from profiler.platform import sysfs
from profiler.platform.cores import CoreClusters, detect
from profiler.platform.energy.capacity import read_capacity

# /proc/cpuinfo flag names (x86 "flags", ARM "Features") -> the ISA names we report.
ISA_FLAGS = {
    "avx": "AVX",
    "avx2": "AVX2",
    "fma": "FMA",
    "f16c": "F16C",
    "avx512f": "AVX512",
    "avx512_vnni": "AVX512_VNNI",
    "avx512_bf16": "AVX512_BF16",
    "avx_vnni": "AVX_VNNI",
    "amx_int8": "AMX_INT8",
    "neon": "NEON",
    "asimd": "NEON",
    "asimddp": "DOTPROD",
    "i8mm": "I8MM",
    "sve": "SVE",
    "sve2": "SVE2",
    "fphp": "FP16",
    "asimdhp": "FP16",
}
# Which instruction-set family each reported name belongs to: /proc/cpuinfo under qemu-user (or a
# container that bind-mounts the host's /proc) lists the host's flags, e.g. x86 AVX on aarch64.
ISA_FAMILY = {name: ("arm" if name in {"NEON", "DOTPROD", "I8MM", "SVE", "SVE2", "FP16"} else "x86")
              for name in ISA_FLAGS.values()}
ARCH_FAMILY = {"x86_64": "x86", "amd64": "x86", "i386": "x86", "i686": "x86",
               "aarch64": "arm", "arm64": "arm", "armv7l": "arm", "armv8l": "arm", "armv6l": "arm"}


@dataclass
class Device:
    cpu_model: str
    arch: str
    physical_cores: int
    logical_cores: int
    isa: list[str]
    caches: dict[str, int]  # "L1d", "L2", "L3" -> bytes (per instance)
    ram_total_bytes: int | None
    ram_available_bytes: int | None
    os: str
    kernel: str
    board: str | None
    python: str
    runtime: dict = field(default_factory=dict)
    memory_bandwidth: dict | None = None
    # None: a device stored before core clusters were read
    core_clusters: CoreClusters | None = None
    # What the fingerprint could not trust, e.g. /proc/cpuinfo describing another architecture
    notes: list[str] = field(default_factory=list)
    # The battery's capacity (energy/capacity.py BatteryCapacity.to_dict), so a run stored on a
    # phone can be turned into battery life elsewhere; None: a device stored before issue #22
    battery: dict | None = None

    def to_dict(self) -> dict:
        data = asdict(self)
        data["core_clusters"] = self.core_clusters.to_dict() if self.core_clusters else None
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Device:
        """From ``to_dict``'s output; keys that are not fields (a run's ``energy``) are left out."""
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if isinstance(fields.get("core_clusters"), dict):
            fields["core_clusters"] = CoreClusters.from_dict(fields["core_clusters"])
        return cls(**fields)

    def core_clusters_text(self) -> str:
        if self.core_clusters is None:
            return "unknown (recorded before core clusters were read)"
        return self.core_clusters.describe()

    def summary(self) -> str:
        ram = f"{self.ram_total_bytes / 2**30:.1f} GiB RAM" if self.ram_total_bytes else "RAM unknown"
        parts = [self.board or self.cpu_model, f"{self.physical_cores}C/{self.logical_cores}T", ram]
        if self.memory_bandwidth and self.memory_bandwidth.get("read_gbps"):
            parts.append(f"{self.memory_bandwidth['read_gbps']:.1f} GB/s read")
        parts.append(" ".join(self.isa) or ("ISA unknown" if self.notes else "no SIMD flags found"))
        return " | ".join(parts)


def _cpuinfo_blocks() -> list[dict[str, str]]:
    blocks, current = [], {}
    for line in (sysfs.read_text("/proc/cpuinfo") or "").splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
            current = {}
            continue
        key, _, value = line.partition(":")
        current[key.strip()] = value.strip()
    if current:
        blocks.append(current)
    return blocks


def _cpu_model(blocks: list[dict[str, str]]) -> str:
    for block in blocks:
        for key in ("model name", "Model", "Hardware", "cpu model"):
            if block.get(key):
                return block[key]
    part = blocks[0].get("CPU part") if blocks else None
    return f"ARM CPU part {part}" if part else (platform.processor() or "unknown CPU")


def _isa(blocks: list[dict[str, str]]) -> list[str]:
    flags = set()
    for key in ("flags", "Features"):
        if blocks and key in blocks[0]:
            flags.update(blocks[0][key].split())
    return sorted({ISA_FLAGS[f] for f in flags if f in ISA_FLAGS})


def foreign_isa(arch: str, isa: list[str]) -> tuple[list[str], list[str]]:
    """The ISA names that fit ``arch``, and a note when /proc/cpuinfo names another architecture's.

    Flags of the wrong family are dropped rather than printed as the device's: they describe the
    host that emulates it (qemu-user) or whose /proc a container sees.
    """
    family = ARCH_FAMILY.get(arch.lower())
    foreign = [name for name in isa if family and ISA_FAMILY[name] != family]
    if not foreign:
        return isa, []
    note = (f"/proc/cpuinfo lists {ISA_FAMILY[foreign[0]]} features ({' '.join(foreign)}) on an {arch} "
            "machine: this is emulation (qemu-user) or a container showing the host's /proc, so the CPU "
            "model, ISA and core clusters shown are the host's, not this device's")
    return [name for name in isa if name not in foreign], [note]


def emulation_note() -> str | None:
    """Why this machine looks emulated (qemu-user) or containerised, or None: the fingerprint's
    note on ISA flags that contradict the architecture."""
    notes = foreign_isa(platform.machine(), _isa(_cpuinfo_blocks()))[1]
    return notes[0] if notes else None


def _core_counts() -> tuple[int, int]:
    cpus = [p.name for p in sysfs.glob("/sys/devices/system/cpu/cpu[0-9]*")]
    logical = len(cpus) or os.cpu_count() or 1
    cores = set()
    for cpu in cpus:
        base = f"/sys/devices/system/cpu/{cpu}/topology"
        core = sysfs.read_int(f"{base}/core_id")
        package = sysfs.read_int(f"{base}/physical_package_id")
        if core is not None:
            cores.add((package, core))
    return (len(cores) or logical), logical


def _parse_size(text: str | None) -> int | None:
    if not text:
        return None
    text = text.strip().upper()
    scale = {"K": 1024, "M": 1024**2, "G": 1024**3}.get(text[-1:], 1)
    digits = text.rstrip("KMG")
    return int(digits) * scale if digits.isdigit() else None


def _caches() -> dict[str, int]:
    found = {}
    for index in sysfs.glob("/sys/devices/system/cpu/cpu0/cache/index*"):
        base = "/" + str(index.relative_to(sysfs.root()))
        level = sysfs.read_str(f"{base}/level")
        kind = sysfs.read_str(f"{base}/type") or ""
        size = _parse_size(sysfs.read_str(f"{base}/size"))
        if level and size:
            suffix = {"Data": "d", "Instruction": "i"}.get(kind, "")
            found[f"L{level}{suffix}"] = size
    return found


def _meminfo() -> tuple[int | None, int | None]:
    values = sysfs.read_kib_fields("/proc/meminfo", ("MemTotal", "MemAvailable"))
    return values.get("MemTotal"), values.get("MemAvailable")


def _os_name() -> str:
    for line in (sysfs.read_text("/etc/os-release") or "").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return platform.system()


def fingerprint(runtime: dict | None = None, bandwidth: dict | None = None) -> Device:
    blocks = _cpuinfo_blocks()
    physical, logical = _core_counts()
    total, available = _meminfo()
    arch = platform.machine()
    isa, notes = foreign_isa(arch, _isa(blocks))
    return Device(
        cpu_model=_cpu_model(blocks),
        arch=arch,
        physical_cores=physical,
        logical_cores=logical,
        isa=isa,
        caches=_caches(),
        ram_total_bytes=total,
        ram_available_bytes=available,
        os=_os_name(),
        kernel=(sysfs.read_str("/proc/sys/kernel/osrelease") or platform.release()),
        board=sysfs.read_str("/proc/device-tree/model") or None,
        python=platform.python_version(),
        runtime=runtime or {},
        memory_bandwidth=bandwidth,
        core_clusters=detect(blocks),
        notes=notes,
        battery=read_capacity().to_dict(),
    )


PROBE_MIN_BYTES = 256 * 2**20  # the README's promise: at least 256 MiB and 8x the last-level cache
PROBE_LLC_MULTIPLE = 8
PROBE_METHOD = "numpy int32 max-reduction, one slice per thread, best of repeats"


def probe_buffer_bytes(caches: dict | None = None, available_bytes: int | None = None) -> tuple[int, str | None]:
    """The probe's buffer size, and why it is below the promised size when it is.

    The promise keeps the read out of the caches; the probe never takes more than a quarter of
    the available RAM, so on a small board it can fall short, and then says so."""
    llc = max((caches or {}).values(), default=32 * 2**20)
    promised = max(PROBE_MIN_BYTES, PROBE_LLC_MULTIPLE * llc)
    if available_bytes and available_bytes // 4 < promised:
        size = available_bytes // 4
        return size, (f"probe buffer {size / 2**20:.0f} MiB, below the promised {promised / 2**20:.0f} MiB "
                      f"(256 MiB and {PROBE_LLC_MULTIPLE}x the last-level cache): only "
                      f"{available_bytes / 2**20:.0f} MiB RAM was available and the probe takes at most a quarter")
    return promised, None


def measure_bandwidth(
    buffer_bytes: int | None = None, threads: int | None = None, repeats: int = 5, caches: dict | None = None
) -> dict:
    """Best-of-``repeats`` read bandwidth over a buffer far larger than the last-level cache, in
    this process (``probe_bandwidth`` runs it in a child, the way a run uses it)."""
    threads = threads or os.cpu_count() or 1
    size, note = (buffer_bytes, None) if buffer_bytes else probe_buffer_bytes(caches or _caches(), _meminfo()[1])
    result = _read_rates(size, [threads], repeats)[threads]
    return {**result, "threads": threads, "repeats": repeats, "method": PROBE_METHOD, "note": note}


def _read_rates(size: int, thread_counts: list[int], repeats: int) -> dict[int, dict]:
    """One buffer, read at each thread count.

    The read is an int32 max-reduction: SIMD-vectorised and light enough that memory, not
    arithmetic, limits it; one slice per thread (numpy releases the GIL).
    """
    import numpy as np

    buf = np.ones(size // 4, dtype=np.int32)
    out = {}
    for threads in thread_counts:
        chunks = np.array_split(buf, threads)
        best = 0.0
        with ThreadPoolExecutor(threads) as pool:
            for _ in range(repeats):
                start = time.perf_counter()
                list(pool.map(np.max, chunks))
                best = max(best, buf.nbytes / (time.perf_counter() - start))
        out[threads] = {"read_gbps": best / 1e9, "buffer_bytes": int(buf.nbytes)}
    return out


# Rates already measured in this process, per (buffer size, thread count): a long-lived caller
# (the fleet's device worker, a notebook) probes each thread count of this device once.
_PROBED: dict[tuple[int, int], dict] = {}


def probe_bandwidth(
    thread_counts: list[int], caches: dict | None = None, available_bytes: int | None = None, repeats: int = 5
) -> dict:
    """Read bandwidth at each thread count, measured once each in a child process, so the
    probe's buffer never counts in a measured process's peak RSS.

    ``by_threads`` maps each count (as a string: the record is JSON) to its rate; the top-level
    ``read_gbps``/``threads`` are the largest count's. On failure ``read_gbps`` is None and
    ``unavailable`` says why. Counts probed before in this process are not probed again."""
    counts = sorted({int(t) for t in thread_counts if int(t) > 0}) or [os.cpu_count() or 1]
    size, note = probe_buffer_bytes(caches, available_bytes)
    base = {"buffer_bytes": size, "repeats": repeats, "method": PROBE_METHOD, "note": note, "by_threads": {}}
    missing = [t for t in counts if (size, t) not in _PROBED]
    if missing:
        request = json.dumps({"size": size, "threads": missing, "repeats": repeats})
        try:
            done = subprocess.run([sys.executable, "-m", "profiler.platform.device", request],
                                  capture_output=True, text=True, check=False)
        except OSError as exc:
            return {**base, "read_gbps": None, "threads": None,
                    "unavailable": f"the bandwidth probe did not start: {exc}"}
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
            return {**base, "read_gbps": None, "threads": None, "unavailable": f"the bandwidth probe failed: {tail}"}
        for threads, rate in json.loads(done.stdout).items():
            _PROBED[(size, int(threads))] = rate
    rates = {str(t): _PROBED[(size, t)] for t in counts}
    top = str(counts[-1])
    return {**base, "by_threads": rates, "read_gbps": rates[top]["read_gbps"], "threads": counts[-1],
            "buffer_bytes": rates[top]["buffer_bytes"]}


def bandwidth_at(bandwidth: dict | None, threads: int) -> tuple[dict | None, str | None]:
    """The probe result for ``threads`` from a run's bandwidth record, or why there is none."""
    if not bandwidth:
        return None, "no bandwidth probe in this run (--no-bandwidth)"
    if bandwidth.get("unavailable"):
        return None, bandwidth["unavailable"]
    rate = (bandwidth.get("by_threads") or {}).get(str(threads))
    if rate is None:
        return None, f"the bandwidth probe did not run at {threads} threads"
    return rate, None


if __name__ == "__main__":  # the child side of probe_bandwidth
    _request = json.loads(sys.argv[1])
    _rates = _read_rates(_request["size"], _request["threads"], _request["repeats"])
    print(json.dumps({str(t): r for t, r in _rates.items()}))
