"""Temperatures, CPU frequency and throttle state, sampled in the background during a test.

Sources (all through ``sysfs``): thermal zones and hwmon ``temp*_input`` (m°C), cpufreq
``scaling_cur_freq`` against ``cpuinfo_max_freq`` (kHz), Intel ``thermal_throttle``
event counters, and on a Raspberry Pi the firmware's ``get_throttled`` (through the mailbox,
else ``vcgencmd``; see ``sysfs.gencmd``). 'max °C' is the hottest CPU
zone where zones are named as a CPU's (a phone has dozens: PMICs, modem, battery, charger), and
the skin temperature is reported beside it where a zone is named as the skin sensor (phones
throttle on skin temperature, not die temperature). A test counts as
throttled when a throttle indicator says so; a lower clock alone is not throttling
(DVFS lowers it whenever a core waits) except in sustained mode, where a drop against
the first seconds is reported as the onset, labelled as such.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

from profiler.platform import sysfs
from profiler.platform.energy import cputime
from profiler.platform.poller import Poller

RATE_HZ = 2.0
VALID_C = (-40.0, 150.0)  # zones outside this range are broken sensors, not temperatures
PI_NOW_BITS = {0: "under-voltage", 1: "frequency capped", 2: "throttled", 3: "soft temperature limit"}
PI_OCCURRED_SHIFT = 16
FREQ_DROP = 0.9  # sustained mode: a clock below 90% of its early level marks the onset
# Zone types and hwmon chips that are CPU die sensors: Qualcomm TSENS ("cpu-1-7-usr", "cpuss-0-usr",
# "cpu0-gold-usr", "apc1-cpu0-usr", each "-usr" zone with a "-step" twin), Google Tensor ("BIG", "MID",
# "LITTLE"), MediaTek ("mtktscpu"), the Pi and other SoCs ("cpu-thermal"), Jetson Nano ("CPU-therm"),
# x86 ("x86_pkg_temp", coretemp, k10temp). A board thermistor near the SoC is not the die: Xiaomi's
# "cpu_therm" on the lisa board is such an NTC, so the pattern needs a digit or "thermal" after "cpu".
CPU_ZONE = re.compile(r"^(cpu(ss)?[-_]?\d|cpu[-_]thermal|CPU-therm|apc\d+-cpu\d|mtktscpu|x86_pkg_temp|coretemp|"
                      r"k10temp|zenpower|BIG|MID|LITTLE)([-_:]|$)")
# The skin sensor, in order of preference: the names Qualcomm's thermal HAL reads as SKIN
# (LineageOS android_hardware_qcom_thermal thermalConfig.cpp: quiet-therm, skin-msm-therm, xo-therm,
# sys-therm). quiet comes first: on the lisa board "msm-skin-therm-usr" is a modem-reported value that
# never moved while quiet_therm, the HAL's SKIN there, tracked the load.
SKIN_ZONES = (re.compile(r"^quiet[-_]therm"), re.compile(r"^(virtual-)?skin|[-_]skin[-_]therm", re.I),
              re.compile(r"^xo[-_]therm"), re.compile(r"^sys[-_]therm"))
# Zones registered as thermal zones that are not temperatures: Qualcomm's battery current limiter
# reports the battery voltage (mV, "vbat"), current (mA, "ibat") and levels ("bcl-lvl0", "socd").
# ("socd" is the state-of-charge delta; "soc" is left alone, as other boards name a temperature so)
NOT_TEMPERATURE = re.compile(r"(^|[-_])(vbat|ibat|bcl)([-_]|$)|^socd$|-lvl\d+$")


@dataclass
class ThermalReading:
    t_ns: int
    temps_c: dict[str, float]
    # current / maximum frequency: as read, the mean over every CPU; after ``on_busy_cpus``, over the
    # CPUs the test ran on, each weighted by its busy time in the test (``freq_basis`` says which)
    freq_ratio: float | None
    freq_mhz: float | None  # mean current frequency, over the same CPUs and weights
    throttle_count: int | None  # Intel core + package throttle events, all CPUs
    pi_throttled: int | None  # raw vcgencmd get_throttled bits
    read_errors: int = 0  # sensors found at discovery that gave no valid value in this reading
    cpu_freq_ratio: dict[str, float] = field(default_factory=dict)  # per CPU ("0", "1", ...)
    cpu_freq_mhz: dict[str, float] = field(default_factory=dict)
    cpu_busy_s: dict[str, float] = field(default_factory=dict)  # /proc/stat busy seconds since boot
    freq_basis: str | None = None  # which CPUs freq_ratio is over, and how they are weighted
    cpu_temp_c: float | None = None  # the hottest CPU zone (None: no zone is named as a CPU's)
    skin_temp_c: float | None = None  # the skin sensor (None: no zone is named as one)

    @property
    def temp_max_c(self) -> float | None:
        """The hottest CPU zone, or where none is named as a CPU's, the hottest zone of all."""
        if self.cpu_temp_c is not None:
            return self.cpu_temp_c
        return max(self.temps_c.values()) if self.temps_c else None


def parse_get_throttled(text: str | None) -> int | None:
    match = re.search(r"throttled=(0x[0-9a-fA-F]+|\d+)", text or "")
    return int(match.group(1), 0) if match else None


def decode_throttled(bits: int) -> dict[str, list[str]]:
    """The Pi firmware's bits: 0-3 happening now, 16-19 the same conditions since boot."""
    return {
        "now": [name for bit, name in PI_NOW_BITS.items() if bits & (1 << bit)],
        "occurred": [f"{name} has occurred" for bit, name in PI_NOW_BITS.items()
                     if bits & (1 << (bit + PI_OCCURRED_SHIFT))],
    }


def _valid(value_mc: int | None) -> float | None:
    if value_mc is None:
        return None
    celsius = value_mc / 1000
    return celsius if VALID_C[0] < celsius < VALID_C[1] else None


@dataclass
class ThermalSensors:
    temp_files: dict[str, str] = field(default_factory=dict)  # name -> absolute path
    freq_files: list[tuple[str, str]] = field(default_factory=list)  # (current, max)
    freq_cpus: list[str] = field(default_factory=list)  # the CPU number of each freq_files entry
    throttle_files: list[str] = field(default_factory=list)
    pi_throttle: bool = False
    pi_transport: str | None = None  # how get_throttled is read: "mailbox" (no process) or "vcgencmd"
    # sensors found but not used, with why (unreadable, or outside -40..150 °C): shown, not hidden
    rejected: dict[str, str] = field(default_factory=dict)
    cpu_zones: list[str] = field(default_factory=list)  # temp_files names that are CPU die sensors
    skin_zone: str | None = None  # the temp_files name of the skin sensor

    @classmethod
    def discover(cls) -> ThermalSensors:
        found = cls()
        for zone in sysfs.glob("/sys/class/thermal/thermal_zone*"):
            base = f"/sys/class/thermal/{zone.name}"
            kind = sysfs.read_str(f"{base}/type") or "?"
            name = f"{zone.name}:{kind}"
            if NOT_TEMPERATURE.search(kind):
                found.rejected[name] = "not a temperature (a battery current limiter's voltage, current or level)"
            elif found._accept(name, f"{base}/temp"):
                found.temp_files[name] = f"{base}/temp"
                found._classify(name, kind)
        for temp in sysfs.glob("/sys/class/hwmon/hwmon*/temp*_input"):
            base = f"/sys/class/hwmon/{temp.parent.name}"
            chip = sysfs.read_str(f"{base}/name") or temp.parent.name
            label = sysfs.read_str(f"{base}/{temp.name.replace('_input', '_label')}") or temp.name
            if found._accept(f"{chip}:{label}", f"{base}/{temp.name}"):
                found.temp_files[f"{chip}:{label}"] = f"{base}/{temp.name}"
                found._classify(f"{chip}:{label}", chip)
        for cpu in sysfs.glob("/sys/devices/system/cpu/cpu[0-9]*"):
            base = f"/sys/devices/system/cpu/{cpu.name}"
            cur, top = f"{base}/cpufreq/scaling_cur_freq", f"{base}/cpufreq/cpuinfo_max_freq"
            if sysfs.read_int(cur) and sysfs.read_int(top):
                found.freq_files.append((cur, top))
                found.freq_cpus.append(cpu.name[3:])
            for kind in ("core", "package"):
                counter = f"{base}/thermal_throttle/{kind}_throttle_count"
                if sysfs.read_int(counter) is not None:
                    found.throttle_files.append(counter)
        reply = sysfs.gencmd("get_throttled")
        found.pi_throttle = parse_get_throttled(reply.text) is not None
        found.pi_transport = reply.transport if found.pi_throttle else None
        return found

    def _classify(self, name: str, kind: str) -> None:
        """Note a CPU zone, and the skin zone by preference (the first match of the best pattern)."""
        if CPU_ZONE.match(kind):
            self.cpu_zones.append(name)
        rank = next((i for i, pattern in enumerate(SKIN_ZONES) if pattern.search(kind)), None)
        if rank is not None and (self.skin_zone is None or rank < self._skin_rank):
            self.skin_zone, self._skin_rank = name, rank

    _skin_rank = len(SKIN_ZONES)  # the chosen skin zone's place in SKIN_ZONES (not a dataclass field)

    def _accept(self, name: str, path: str) -> bool:
        raw = sysfs.read_int(path)
        if raw is None:
            self.rejected[name] = "unreadable"
        elif _valid(raw) is None:
            self.rejected[name] = f"reads {raw / 1000:g} °C, outside {VALID_C[0]:g}..{VALID_C[1]:g} °C (a broken sensor)"
        return name not in self.rejected

    @property
    def has_temperature(self) -> bool:
        return bool(self.temp_files)

    @property
    def empty(self) -> bool:
        """Nothing to sample: no temperature, clock or throttle indicator (a VM, say)."""
        return not (self.temp_files or self.freq_files or self.throttle_files or self.pi_throttle)

    @property
    def has_throttle_indicator(self) -> bool:
        return bool(self.throttle_files) or self.pi_throttle

    def read(self, t_ns: int) -> ThermalReading:
        temps = {name: _valid(sysfs.read_int(path)) for name, path in self.temp_files.items()}
        ratios, mhz = {}, {}
        for cpu, (cur_path, max_path) in zip(self.freq_cpus or map(str, range(len(self.freq_files))),
                                             self.freq_files, strict=True):
            cur, top = sysfs.read_int(cur_path), sysfs.read_int(max_path)
            if cur and top:
                ratios[cpu] = cur / top
                mhz[cpu] = cur / 1000
        counts = [sysfs.read_int(f) for f in self.throttle_files]
        pi = parse_get_throttled(sysfs.gencmd("get_throttled").text) if self.pi_throttle else None
        failed = (sum(v is None for v in temps.values()) + len(self.freq_files) - len(ratios)
                  + sum(c is None for c in counts) + (self.pi_throttle and pi is None))
        return ThermalReading(
            t_ns=t_ns,
            temps_c={k: v for k, v in temps.items() if v is not None},
            freq_ratio=sum(ratios.values()) / len(ratios) if ratios else None,
            freq_mhz=sum(mhz.values()) / len(mhz) if mhz else None,
            throttle_count=sum(c for c in counts if c is not None) if self.throttle_files else None,
            pi_throttled=pi,
            read_errors=int(failed),
            cpu_freq_ratio=ratios, cpu_freq_mhz=mhz,
            cpu_busy_s=cputime.per_cpu_busy_s() if ratios else {},
            cpu_temp_c=max((temps[n] for n in self.cpu_zones if temps.get(n) is not None), default=None),
            skin_temp_c=temps.get(self.skin_zone) if self.skin_zone else None,
        )

    def hottest_c(self) -> float | None:
        return self.read(0).temp_max_c

    def describe(self) -> dict:
        missing = []
        if not self.temp_files:
            missing.append("no thermal zones or hwmon temperatures")
        if not self.freq_files:
            missing.append("no cpufreq (a VM, or the driver is not loaded)")
        if not self.has_throttle_indicator:
            missing.append("no thermal_throttle counters and no Pi get_throttled (firmware mailbox or vcgencmd)")
        return {
            "temperatures": sorted(self.temp_files),
            "cpufreq_cpus": len(self.freq_files),
            "throttle_counters": len(self.throttle_files),
            "pi_get_throttled": self.pi_throttle,
            "pi_get_throttled_via": self.pi_transport,
            "rejected": dict(self.rejected),
            "cpu_zones": list(self.cpu_zones),
            "skin_zone": self.skin_zone,
            "temp_basis": self.temp_basis(),
            "missing": missing,
        }

    def temp_basis(self) -> str:
        """What 'max °C' is the maximum of."""
        if self.cpu_zones:
            return f"the hottest of {len(self.cpu_zones)} CPU zone(s)"
        return f"the hottest of all {len(self.temp_files)} zone(s): none is named as a CPU's"

    def poller(self, clock: Callable[[], int] = time.perf_counter_ns) -> Poller[ThermalReading]:
        return Poller(self.read, 1 / RATE_HZ, clock, name="thermal-sampler")


@dataclass
class ThermalSummary:
    temp_max_c: float | None
    temp_start_c: float | None
    temp_end_c: float | None
    freq_ratio: float | None  # mean over the test
    freq_ratio_min: float | None
    throttled: bool | None  # None: this device has no throttle indicator
    reasons: list[str]
    onset_ns: int | None  # first reading that showed throttling
    onset_basis: str | None
    unavailable: list[str]
    freq_basis: str | None = None  # the CPUs freq_ratio is over and their weights (on_busy_cpus)
    skin_temp_max_c: float | None = None  # the skin sensor's highest reading (phones throttle on it)

    def to_dict(self) -> dict:
        return asdict(self)


def _cpu_list(cpus) -> str:
    """``0-3,6`` for CPUs 0, 1, 2, 3 and 6."""
    nums, parts = sorted(int(c) for c in cpus), []
    for n in nums:
        if parts and n == parts[-1][1] + 1:
            parts[-1][1] = n
        else:
            parts.append([n, n])
    return ",".join(f"{a}-{b}" if b > a else f"{a}" for a, b in parts)


def busy_weights(readings: list[ThermalReading], allowed: set[int] | None) -> dict[str, float]:
    """Each allowed CPU's busy seconds between the test's first and last reading (CPUs with a clock only)."""
    first = next((r for r in readings if r.cpu_busy_s), None)
    last = next((r for r in reversed(readings) if r.cpu_busy_s), None)
    if first is None or last is first:
        return {}
    cpus = {c for r in readings for c in r.cpu_freq_ratio}
    cpus = {c for c in cpus if allowed is None or int(c) in allowed}
    return {c: max(last.cpu_busy_s[c] - first.cpu_busy_s[c], 0.0) for c in cpus
            if c in first.cpu_busy_s and c in last.cpu_busy_s}


def affinity(pid: int = 0) -> set[int] | None:
    """The CPUs ``pid`` (0: this process) may run on; None where the OS does not say (macOS)."""
    try:
        return set(os.sched_getaffinity(pid))
    except (AttributeError, OSError):
        return None


def on_busy_cpus(readings: list[ThermalReading], allowed: set[int] | None = None) -> list[ThermalReading]:
    """The readings with freq_ratio and freq_mhz over the CPUs the test ran on: those in ``allowed``
    (the measured process's affinity), each weighted by its busy time in the test. A mean over every
    CPU would count idle ones, which DVFS parks at a low clock: one busy thread of eight reads
    about 0.4 without any throttling. Busy time is the machine's (/proc/stat per CPU), as no cheaper
    per-process per-CPU figure exists; the weights are over the whole test so that every sample is
    over the same CPUs. Without per-CPU busy time, the mean over the allowed CPUs, and the basis says so."""
    if not any(r.cpu_freq_ratio for r in readings):
        return readings
    weights = busy_weights(readings, allowed)
    total = sum(weights.values())
    cpus = {c for r in readings for c in r.cpu_freq_ratio if allowed is None or int(c) in allowed}
    where = "every CPU" if allowed is None else f"CPUs {_cpu_list(cpus) or 'none'} (the process's affinity)"
    if total > 0:
        used = {c: w for c, w in weights.items() if w > 0}
        basis = (f"weighted by each CPU's busy time in the test, over {where}; "
                 f"busiest: {', '.join(f'cpu{c} {w:.2f} s' for c, w in sorted(used.items(), key=lambda x: -x[1])[:4])}")
    else:
        used = {c: 1.0 for c in cpus}
        basis = f"mean over {where}: no per-CPU busy time (/proc/stat) over the test to weight by"
    return [_weighted(r, used, basis) for r in readings]


def _weighted(reading: ThermalReading, weights: dict[str, float], basis: str) -> ThermalReading:
    present = {c: w for c, w in weights.items() if c in reading.cpu_freq_ratio}
    total = sum(present.values())
    if total <= 0:
        return replace(reading, freq_ratio=None, freq_mhz=None, freq_basis=basis)
    ratio = sum(reading.cpu_freq_ratio[c] * w for c, w in present.items()) / total
    mhz = sum(reading.cpu_freq_mhz.get(c, 0.0) * w for c, w in present.items()) / total
    return replace(reading, freq_ratio=ratio, freq_mhz=mhz, freq_basis=basis)


UNDER_VOLTAGE_ADVICE = ("the supply dropped below about 4.63 V (under-voltage), so the firmware capped the "
                        "clocks: use a stronger power supply (a Pi 5 wants the 27 W 5 V / 5 A USB-C supply) and a "
                        "short cable, and power USB disks separately; cooling will not help")
THERMAL_ADVICE = "add --delay or --cooldown-to, or improve cooling"


def throttle_advice(reasons: list[str]) -> str:
    """What to do about the throttling seen: power for under-voltage, cooling for heat. "throttled" and
    "frequency capped" follow either cause, so they alone point at neither and get the cooling advice."""
    power = any(r.startswith("under-voltage") for r in reasons)
    heat = any(not r.startswith(("under-voltage", "throttled", "frequency capped")) for r in reasons)
    if power:
        return f"{UNDER_VOLTAGE_ADVICE}; and {THERMAL_ADVICE}" if heat else UNDER_VOLTAGE_ADVICE
    return THERMAL_ADVICE


def _pi_reasons(reading: ThermalReading, first: ThermalReading) -> list[str]:
    """Pi conditions active now, plus "has occurred" bits that were not set at the start."""
    if reading.pi_throttled is None:
        return []
    decoded = decode_throttled(reading.pi_throttled)
    before = set(decode_throttled(first.pi_throttled or 0)["occurred"])
    return decoded["now"] + [o for o in decoded["occurred"] if o not in before]


def _counter_rise(reading: ThermalReading, first: ThermalReading) -> int:
    if reading.throttle_count is None or first.throttle_count is None:
        return 0
    return max(reading.throttle_count - first.throttle_count, 0)


def _indicator_onset(readings: list[ThermalReading]) -> tuple[int | None, list[str]]:
    """First reading with a throttle indicator set, and every reason seen in the test."""
    first = readings[0]
    onset, reasons = None, []
    for r in readings:
        now = _pi_reasons(r, first)
        if (now or _counter_rise(r, first)) and onset is None:
            onset = r.t_ns
        reasons += now
    rise = _counter_rise(readings[-1], first)
    if rise:
        reasons.append(f"CPU thermal_throttle events +{rise}")
    return onset, list(dict.fromkeys(reasons))


def freq_drop_onset(readings: list[ThermalReading], early_fraction: float = 0.1) -> int | None:
    """First reading whose clock is below FREQ_DROP x the best of the early readings."""
    with_freq = [r for r in readings if r.freq_ratio is not None]
    if len(with_freq) < 3:
        return None
    early = with_freq[: max(1, int(len(with_freq) * early_fraction))]
    reference = max(r.freq_ratio for r in early)
    return next((r.t_ns for r in with_freq[len(early):] if r.freq_ratio < FREQ_DROP * reference), None)


def summarize(readings: list[ThermalReading], has_indicator: bool, use_freq_drop: bool = False) -> ThermalSummary:
    temps = [r.temp_max_c for r in readings if r.temp_max_c is not None]
    skin = [r.skin_temp_c for r in readings if r.skin_temp_c is not None]
    ratios = [r.freq_ratio for r in readings if r.freq_ratio is not None]
    onset, reasons = _indicator_onset(readings) if readings else (None, [])
    basis = "throttle indicator" if onset is not None else None
    if onset is None and use_freq_drop:
        onset = freq_drop_onset(readings)
        basis = f"cpufreq below {FREQ_DROP:.0%} of its early level" if onset is not None else None
    unavailable = []
    if not temps:
        unavailable.append("temperature: no thermal zones or hwmon temperatures")
    if not ratios:
        unavailable.append("frequency: no cpufreq")
    if not has_indicator:
        unavailable.append("throttling: no thermal_throttle counters or vcgencmd get_throttled")
    return ThermalSummary(
        temp_max_c=max(temps) if temps else None,
        temp_start_c=temps[0] if temps else None,
        temp_end_c=temps[-1] if temps else None,
        freq_ratio=sum(ratios) / len(ratios) if ratios else None,
        freq_ratio_min=min(ratios) if ratios else None,
        throttled=bool(reasons) if has_indicator else None,
        reasons=reasons,
        onset_ns=onset,
        onset_basis=basis,
        unavailable=unavailable,
        freq_basis=next((r.freq_basis for r in readings if r.freq_basis), None),
        skin_temp_max_c=max(skin) if skin else None,
    )


def wait_for_cooldown(
    sensors: ThermalSensors,
    target_c: float,
    timeout_s: float = 600.0,
    poll_s: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict:
    """Wait until the hottest zone is below ``target_c`` (or the timeout); say how it went."""
    start = clock()
    first = current = sensors.hottest_c()
    while current is not None and current >= target_c and clock() - start < timeout_s:
        sleep(poll_s)
        current = sensors.hottest_c()
    return {
        "target_c": target_c,
        "start_c": first,
        "end_c": current,
        "waited_s": clock() - start,
        "reached": current is not None and current < target_c,
    }
