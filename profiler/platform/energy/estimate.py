"""Estimates for devices with no meter: utilisation models and a user-given constant.

Both utilisation models are linear in CPU utilisation u (busy CPU-seconds per CPU per
second, 0..1), so over any interval ``E = base_w * dt + k * d(busy CPU-seconds)``. They
are written as counters of modelled joules, integrated from /proc/stat exactly like a
hardware counter: no sampling error on top of the model's own.

* Raspberry Pi boards: PowerJoular's published linear regressions, fitted against a wall
  power meter (PowerSpy2): Pi 5 P = 3.458 u + 4.403 W, Pi 4B P = 4.534 u + 2.286 W, and the
  400, 3B+, 3B, 2B, 1B+, 1B rev 2 and Zero W (``PI_MODELS``).
* Any other CPU: Cloud Carbon Footprint's per-vCPU coefficients (from SPECpower results),
  P = n_cpu * (min_w + u * (max_w - min_w)). A CPU the table does not name gets CCF's
  average over all CPU types, 0.74 W idle and 3.5 W busy per vCPU.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from profiler.platform.energy import cputime
from profiler.platform.energy.base import Candidate, EnergySource, Provenance, skipped, usable

RATE_HZ = 10.0
JIFFY_S = 0.01


@dataclass(frozen=True)
class LinearModel:
    name: str
    idle_w: float  # at u = 0, whole board or all CPUs
    busy_w: float  # added at u = 1 (all CPUs busy)
    scope: str
    reference: str


# Device-tree model prefix -> PowerJoular linear model (slope W per unit utilisation, intercept W),
# from PowerJoular's src/raspberry_pi_cpu_formula.adb (github.com/joular/powerjoular). The Pi 5, 4B and
# 400 fits are on a 64-bit OS; the older boards' were fitted on the 32-bit OS they shipped with.
# Matched by the longest prefix, so "Raspberry Pi 3 Model B Plus" is not taken for the 3 Model B.
PI_MODELS = {
    "Raspberry Pi 5": (3.457855981342954, 4.403192179893827),  # rbp5b1.0-64
    "Raspberry Pi 4 Model B": (4.534426720546654, 2.2856926184722672),  # rbp4b1.2-64
    "Raspberry Pi 400": (5.025368568347057, 1.8221330203847232),  # rbp4001.0-64
    "Raspberry Pi 3 Model B Plus": (3.298332817557656, 2.002229902630705),  # rbp3b+1.3
    "Raspberry Pi 3 Model B": (3.477373034437569, 1.078203625009793),  # rbp3b1.2
    "Raspberry Pi 2 Model B": (1.1488378157140957, 1.2902541858404697),  # rbp2b1.1
    "Raspberry Pi Model B Plus": (0.12201084670300544, 1.3142771210514672),  # rbp1b+1.2
    "Raspberry Pi Model B Rev 2": (0.1423962237746236, 2.911666160370786),  # rbp1b2
    "Raspberry Pi Zero W": (0.47328964159919246, 0.9200829295923802),  # rbpzw1.1
}
POWERJOULAR = "PowerJoular linear regression (wall meter)"

# CPU model pattern -> Cloud Carbon Footprint min/max watts per vCPU (AWS table).
CPU_TABLE = [
    (r"EPYC 7\d\d1\b", "AMD EPYC 1st gen", 0.82, 2.55),
    (r"EPYC 7\d\d2\b", "AMD EPYC 2nd gen", 0.47, 1.69),
    (r"(Platinum|Gold|Silver|Bronze) [3-9]2\d\d", "Intel Cascade Lake", 0.64, 3.97),
    (r"(Platinum|Gold|Silver|Bronze) [3-9]1\d\d", "Intel Skylake", 0.65, 4.26),
    (r"E5-\d{4}\w? v4", "Intel Broadwell", 0.71, 3.69),
    (r"E5-\d{4}\w? v3", "Intel Haswell", 1.00, 4.74),
    (r"E-21\d\d|i[3579]-[89]\d{3}", "Intel Coffee Lake", 1.14, 5.42),
]
CPU_DEFAULT = ("average of all CPU types", 0.74, 3.5)
CCF = "Cloud Carbon Footprint per-vCPU coefficients (SPECpower)"


def pi_model(board: str | None) -> LinearModel | None:
    """The published fit for this board (the longest matching model prefix), or None."""
    matches = [prefix for prefix in PI_MODELS if board and board.startswith(prefix)]
    if not matches:
        return None
    prefix = max(matches, key=len)
    slope, intercept = PI_MODELS[prefix]
    return LinearModel(prefix, intercept, slope, "wall", POWERJOULAR)


def cpu_table_model(cpu_model: str, n_cpus: int) -> tuple[LinearModel, str]:
    """The table row for this CPU (or the documented default) for ``n_cpus`` vCPUs."""
    row = next((r for r in CPU_TABLE if re.search(r[0], cpu_model or "")), None)
    if row is not None:
        _, family, min_w, max_w = row
        why = f"'{cpu_model}' is {family}"
    else:
        family, min_w, max_w = CPU_DEFAULT
        why = f"'{cpu_model}' is not in the table, so the default ({family})"
    model = LinearModel(family, n_cpus * min_w, n_cpus * (max_w - min_w), "package", CCF)
    return model, f"{why}: {min_w} W idle to {max_w} W busy per vCPU x {n_cpus} vCPUs"


class UtilisationModel(EnergySource):
    """Modelled joules since open(): idle_w * dt + busy_w * d(busy CPU-s) / n_cpus."""

    cumulative = True

    def __init__(self, model: LinearModel, n_cpus: int, source: str, note: str):
        self.model = model
        self.n_cpus = n_cpus
        self.provenance = Provenance(
            source=source, method="model", scope=model.scope, measured=False, rate_hz=RATE_HZ,
            # read at window edges, but /proc/stat moves in 10 ms ticks per CPU: a window of
            # 10 ticks keeps the rounding near 10%
            system_wide=True, resolution_s=10 * JIFFY_S,
            notes=[f"{model.reference}: P = {model.idle_w:.3f} W + {model.busy_w:.3f} W x utilisation", note],
        )
        self._start: tuple[int, float] | None = None

    def open(self) -> None:
        self._start = None

    def read(self, t_ns: int) -> float | None:
        busy = cputime.busy_cpu_s()
        if busy is None:
            return None
        if self._start is None:
            self._start = (t_ns, busy)
        t0, busy0 = self._start
        return self.model.idle_w * (t_ns - t0) / 1e9 + self.model.busy_w * (busy - busy0) / self.n_cpus


class ConstantPower(EnergySource):
    """``--watts``: what the user says the device draws while it runs the model."""

    cumulative = False

    def __init__(self, watts: float):
        self.watts = watts
        self.provenance = Provenance(
            source="constant:--watts", method="constant", scope="wall", measured=False, rate_hz=RATE_HZ,
            system_wide=False, resolution_s=0.0,
            notes=[f"{watts:g} W given with --watts, assumed constant; it has no idle level and is not attributed"],
        )

    def read(self, t_ns: int) -> float | None:
        return self.watts


def probe_models(cpu_model: str, board: str | None) -> list[Candidate]:
    n_cpus = cputime.cpu_count()
    if n_cpus is None or cputime.busy_cpu_s() is None:
        reason = "/proc/stat is unreadable, so CPU utilisation (the models' input) is unknown"
        return [skipped("model:powerjoular-pi", reason, "model", "wall"),
                skipped("model:cpu-table", reason, "model", "package")]
    found = []
    pi = pi_model(board)
    if pi is None:
        found.append(skipped("model:powerjoular-pi", f"board '{board or 'none'}' has no published regression "
                             f"(known: {', '.join(PI_MODELS)})", "model", "wall"))
    else:
        found.append(usable(UtilisationModel(pi, n_cpus, "model:powerjoular-pi", f"board '{board}'"),
                            f"published regression for {pi.name}"))
    table, why = cpu_table_model(cpu_model, n_cpus)
    found.append(usable(UtilisationModel(table, n_cpus, "model:cpu-table", why), why))
    return found
