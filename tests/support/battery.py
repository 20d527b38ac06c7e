"""Rows with per-phase energy, and stored battery capacities, for the battery-life tests."""

from __future__ import annotations

from profiler.platform.energy.capacity import BatteryCapacity, PackCapacity
from support.tests_support import make_row


def phase(j_per_token: float, tokens: int, seconds: float, rel: float | None, share: float = 1.0) -> dict:
    """A phase of ``energy_detail.phases``: whole-device energy over its windows, its interval."""
    domain = j_per_token * tokens
    return {"domain_j": domain, "energy_j": domain * share, "tokens": tokens, "duration_s": seconds,
            "unavailable": None, "j_per_token": domain * share / tokens,
            "j_per_token_ci95_rel": rel, "j_per_token_ci95_j": rel * domain * share / tokens if rel else None,
            "interval": {"unavailable": None if rel is not None else "estimated, not measured"}}


def energy_row(test: str, n_prompt: int, n_gen: int, phases: dict, measured: bool = True, **more):
    return make_row(test=test, n_prompt=n_prompt, n_gen=n_gen, energy_measured=measured,
                    energy_source="battery:BAT0" if measured else "cpu-time-tdp", energy_scope="battery-system",
                    energy_method="sampled" if measured else "model",
                    j_per_prefill_token=phases["prefill"]["j_per_token"] if "prefill" in phases else None,
                    j_per_decode_token=phases["decode"]["j_per_token"] if "decode" in phases else None,
                    decode_ts=(phases["decode"]["tokens"] / phases["decode"]["duration_s"]) if "decode" in phases else None,
                    energy_detail={"phases": phases}, **more)


def laptop_rows(measured: bool = True) -> list:
    """pp512 at 20 mJ/token ±4%, tg128 at 0.5 J/token ±6% and 10 t/s (5 W)."""
    return [energy_row("pp512", 512, 0, {"prefill": phase(0.02, 512 * 5, 2.0, 0.04 if measured else None)}, measured),
            energy_row("tg128", 0, 128, {"decode": phase(0.5, 128 * 5, 64.0, 0.06 if measured else None)}, measured,
                       avg_ts=10.0, prefill_ts=None)]


def capacity(wh: float = 50.0, measured: bool = True) -> BatteryCapacity:
    return BatteryCapacity([PackCapacity("BAT0", wh, wh * 1.1, "energy_full (µWh)", measured)])
