"""Device fingerprint (CPU, ISA, caches, RAM, OS, board) and a memory-bandwidth probe."""

from __future__ import annotations

import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from profiler.platform import sysfs

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

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        ram = f"{self.ram_total_bytes / 2**30:.1f} GiB RAM" if self.ram_total_bytes else "RAM unknown"
        parts = [self.board or self.cpu_model, f"{self.physical_cores}C/{self.logical_cores}T", ram]
        if self.memory_bandwidth:
            parts.append(f"{self.memory_bandwidth['read_gbps']:.1f} GB/s read")
        parts.append(" ".join(self.isa) or "no SIMD flags found")
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
    values = {}
    for line in (sysfs.read_text("/proc/meminfo") or "").splitlines():
        key, _, rest = line.partition(":")
        if key in ("MemTotal", "MemAvailable"):
            values[key] = int(rest.split()[0]) * 1024
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
    return Device(
        cpu_model=_cpu_model(blocks),
        arch=platform.machine(),
        physical_cores=physical,
        logical_cores=logical,
        isa=_isa(blocks),
        caches=_caches(),
        ram_total_bytes=total,
        ram_available_bytes=available,
        os=_os_name(),
        kernel=(sysfs.read_str("/proc/sys/kernel/osrelease") or platform.release()),
        board=sysfs.read_str("/proc/device-tree/model") or None,
        python=platform.python_version(),
        runtime=runtime or {},
        memory_bandwidth=bandwidth,
    )


def measure_bandwidth(
    buffer_bytes: int | None = None, threads: int | None = None, repeats: int = 5, caches: dict | None = None
) -> dict:
    """Best-of-``repeats`` read bandwidth over a buffer far larger than the last-level cache.

    The read is an int32 max-reduction: SIMD-vectorised and light enough that memory, not
    arithmetic, limits it; one slice per thread (numpy releases the GIL).
    """
    import numpy as np

    llc = max((caches or _caches()).values(), default=32 * 2**20)
    size = buffer_bytes or max(256 * 2**20, 8 * llc)
    _, available = _meminfo()
    if available:
        size = min(size, available // 4)
    threads = threads or os.cpu_count() or 1
    buf = np.ones(size // 4, dtype=np.int32)
    chunks = np.array_split(buf, threads)
    best = 0.0
    with ThreadPoolExecutor(threads) as pool:
        for _ in range(repeats):
            start = time.perf_counter()
            list(pool.map(np.max, chunks))
            elapsed = time.perf_counter() - start
            best = max(best, buf.nbytes / elapsed)
    return {
        "read_gbps": best / 1e9,
        "buffer_bytes": int(buf.nbytes),
        "threads": threads,
        "repeats": repeats,
        "method": "numpy int32 max-reduction, best of repeats",
    }
