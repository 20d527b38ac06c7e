"""The energy/thermal part of the CLI: ``run``'s options and ``device``'s source listing."""

from __future__ import annotations

import functools

import click
from rich.console import Console
from rich.table import Table

from profiler.cli.reps import parse_fraction
from profiler.errors import UserError
from profiler.measure.session import EnergyOptions
from profiler.platform import thermal
from profiler.platform.energy import choose
from profiler.report.energy_text import source_rows

OPTIONS = [
    click.option("--idle", "idle_s", type=float, default=5.0, show_default=True,
                 help="Seconds of idle power measured before the sweep (0 skips; net energy then n/a)."),
    click.option("--watts", type=float, default=None,
                 help="Device power in W to use when no meter is found (labelled constant, not measured)."),
    click.option("--sustained", "sustained_s", type=float, default=None,
                 help="Decode continuously for S seconds per -n test: burst vs steady t/s, throttle onset."),
    click.option("--delay", "delay_s", type=float, default=0.0, show_default=True,
                 help="Seconds to wait between tests, as llama-bench's --delay."),
    click.option("--cooldown-to", "cooldown_to_c", type=float, default=None,
                 help="Before each test wait until the hottest thermal zone is below this many °C."),
    click.option("--no-energy", "no_energy", is_flag=True, default=False,
                 help="Read no energy or thermal sensor during the tests (rows say energy is not tracked)."),
    click.option("--energy-target", "energy_target_text", default=None, metavar="PCT",
                 help="Repeat each test until the 95% interval of its J/token is within PCT of the mean "
                      "(e.g. 5%), within --max-time; needs a measured energy source."),
]


def energy_options(fn):
    """Add the energy options to a click command and hand them over as one ``energy`` argument."""

    @functools.wraps(fn)
    def wrapper(*args, idle_s, watts, sustained_s, delay_s, cooldown_to_c, no_energy, energy_target_text, **kwargs):
        if sustained_s is not None:
            if kwargs.get("n_prompt") or kwargs.get("prompt_gen"):
                raise UserError("--sustained decodes only; drop -p/-pg (use -n for the chunk length)")
            kwargs["n_prompt"] = ("0",)  # no prompt tests: -p 0 is llama-bench's way to skip them
        target = parse_fraction(energy_target_text, "--energy-target") if energy_target_text is not None else None
        energy = EnergyOptions(idle_s, watts, sustained_s, delay_s, cooldown_to_c, track=not no_energy,
                               energy_target=target)
        return fn(*args, energy=energy, **kwargs)

    for option in reversed(OPTIONS):
        wrapper = option(wrapper)
    return wrapper


def probe(cpu_model: str, board: str | None, watts: float | None = None) -> dict:
    """Every energy source found (chosen / not used / skipped, with reasons) and the thermal sensors."""
    return {
        "sources": choose(watts, cpu_model, board).to_dict(),
        "thermal_sensors": thermal.ThermalSensors.discover().describe(),
    }


def print_energy(energy: dict, console: Console) -> None:
    table = Table(title="energy sources (tried in this order)", title_justify="left")
    for name in ("status", "source", "method/scope", "why"):
        table.add_column(name, overflow="fold")
    styles = {"chosen": "bold green", "not used": "yellow", "skipped": "dim"}
    for status, name, kind, reason in source_rows(energy["sources"]):
        table.add_row(f"[{styles.get(status, '')}]{status}[/]", name, kind, reason)
    console.print(table)
    chosen = energy["sources"].get("chosen")
    if chosen is None:
        console.print(f"energy: unavailable ({energy['sources'].get('unavailable_reason')})")
    else:
        kind = "measured" if chosen["measured"] else "ESTIMATED (not measured)"
        console.print(f"energy: using {chosen['source']}, {chosen['method']}, {chosen['scope']} scope, {kind}")
    sensors = energy["thermal_sensors"]
    temps = ", ".join(sensors["temperatures"]) or "none"
    console.print(f"thermal: temperatures {temps}; cpufreq on {sensors['cpufreq_cpus']} CPUs; "
                  f"throttle counters {sensors['throttle_counters']}; Pi get_throttled "
                  f"{'yes' if sensors['pi_get_throttled'] else 'no'}")
    for name, why in (sensors.get("rejected") or {}).items():
        console.print(f"[dim]thermal: {name} not used: {why}[/dim]")
    for missing in sensors["missing"]:
        console.print(f"[dim]thermal: {missing}[/dim]")
