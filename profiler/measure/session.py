"""What a run calls to wrap each test in energy/thermal tracking.

Open the session (choose the source, measure idle), pause between tests (--delay,
--cooldown-to), run a test (or a sustained decode) under the trackers, and give its row's
energy and thermal fields.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from profiler.backends.base import Backend
from profiler.errors import UserError
from profiler.measure import sustained as sustained_mod
from profiler.measure.adaptive import AutoReps
from profiler.measure.energy import EnergySession, TestTracker
from profiler.measure.plan import TestConfig
from profiler.measure.runner import TestTimings, TokenSource, run_test
from profiler.platform import thermal

COOLDOWN_TIMEOUT_S = 600.0


@dataclass
class EnergyOptions:
    idle_s: float = 5.0
    watts: float | None = None
    sustained_s: float | None = None
    delay_s: float = 0.0
    cooldown_to_c: float | None = None
    track: bool = True  # False (--no-energy): no energy or thermal reads at all during the tests
    # --energy-target: repeat each test until its J/token 95% interval is within this share of the mean
    energy_target: float | None = None


def check_options(opts: EnergyOptions) -> None:
    for flag, value in (("--idle", opts.idle_s), ("--delay", opts.delay_s)):
        if value is not None and value < 0:
            raise UserError(f"{flag} {value:g} is invalid: it must be >= 0 seconds")
    if opts.watts is not None and opts.watts <= 0:
        raise UserError(f"--watts {opts.watts:g} is invalid: give the device's power in watts, > 0")
    if opts.sustained_s is not None and opts.sustained_s <= 0:
        raise UserError(f"--sustained {opts.sustained_s:g} is invalid: give the decode time in seconds, > 0")
    if opts.energy_target is not None and not 0 < opts.energy_target < 1:
        raise UserError(f"--energy-target {opts.energy_target:g} is invalid: give a share of the mean J/token "
                        "such as 5% or 0.05")
    if opts.energy_target is not None and not opts.track:
        raise UserError("--energy-target needs energy tracking; drop --no-energy")
    if opts.energy_target is not None and opts.sustained_s is not None:
        raise UserError("--energy-target repeats a test and --sustained runs one continuous decode; use one of them")


def check_energy_target(opts: EnergyOptions, session: EnergySession) -> None:
    """An energy target needs a meter: an estimate has no interval to narrow."""
    source = session.choice.source
    if opts.energy_target is None or (source is not None and source.provenance.measured):
        return
    what = (f"{source.provenance.source} is an estimate" if source is not None
            else f"there is none ({session.choice.unavailable_reason})")
    raise UserError(f"--energy-target needs a measured energy source, and this device's {what}: "
                    "no J/token interval to narrow (profiler device lists the sources; docs/energy.md)")


def open_session(opts: EnergyOptions, cpu_model: str, board: str | None,
                 message: Callable[[str], None] = lambda text: None,
                 session: EnergySession | None = None) -> EnergySession:
    """Choose the energy source, check --cooldown-to can work, and measure the idle baseline."""
    check_options(opts)
    session = session or EnergySession.open(opts.watts, cpu_model, board, track=opts.track)
    if opts.cooldown_to_c is not None and not session.sensors.has_temperature:
        raise UserError("--cooldown-to needs a temperature sensor, and this device shows none "
                        "(no thermal zones or hwmon temperatures); use --delay instead")
    check_energy_target(opts, session)
    if opts.idle_s > 0 and session.choice.source is not None:
        message(f"measuring idle power for {opts.idle_s:g} s (--idle 0 skips it)")
    session.measure_idle(opts.idle_s)
    return session


def pause(session: EnergySession, opts: EnergyOptions, first: bool,
          message: Callable[[str], None] = lambda text: None,
          sleep: Callable[[float], None] = time.sleep) -> dict | None:
    """--delay between tests, then --cooldown-to before every test; returns the cool-down record."""
    if opts.delay_s and not first:
        sleep(opts.delay_s)
    if opts.cooldown_to_c is None:
        return None
    hottest = session.sensors.hottest_c()
    if hottest is not None and hottest >= opts.cooldown_to_c:
        message(f"cooling down: {hottest:.0f} °C, waiting for < {opts.cooldown_to_c:g} °C")
    return thermal.wait_for_cooldown(session.sensors, opts.cooldown_to_c, COOLDOWN_TIMEOUT_S, sleep=sleep)


def select_tests(tests: list[TestConfig], opts: EnergyOptions) -> list[TestConfig]:
    """Sustained mode keeps only the decode-only tests (one continuous decode each)."""
    if opts.sustained_s is None:
        return tests
    chosen = list(dict.fromkeys(t for t in tests if t.n_prompt == 0 and t.n_gen > 0))
    if not chosen:
        raise UserError("--sustained decodes continuously and needs a generation length: give -n (e.g. -n 128)")
    return chosen


def run_tracked(session: EnergySession, backend: Backend, test: TestConfig, tokens: TokenSource,
                repetitions: int | AutoReps, warmup: bool, opts: EnergyOptions,
                on_repetition: Callable[[int], None]) -> tuple[TestTimings, TestTracker]:
    with session.track() as tracker:
        if opts.sustained_s is not None:
            timings = sustained_mod.run_sustained(backend, test, tokens, opts.sustained_s, warmup)
            on_repetition(0)
        else:
            def check(timings: TestTimings) -> tuple[float | None, str | None]:
                return tracker.interval_now(timings.windows, test.n_prompt, test.n_gen)

            timings = run_test(backend, test, tokens, repetitions, warmup, on_repetition, check)
    return timings, tracker


def energy_target_record(fields: dict, target: float, stop: str, label: str) -> list[str]:
    """Put the energy target and how it ended into ``energy_detail.target``; warn when it was missed."""
    phases = (fields.get("energy_detail") or {}).get("phases") or {}
    rels = {name: p.get("j_per_token_ci95_rel") for name, p in phases.items()}
    widest = None if not rels or None in rels.values() else max(rels.values())
    met = widest is not None and widest <= target
    if "energy_detail" in fields:
        fields["energy_detail"]["target"] = {"energy_target_rel": target, "j_per_token_ci95_rel": widest,
                                             "met": met, "stop_reason": stop}
    if met:
        return []
    now = "n/a" if widest is None else f"±{widest:.1%}"
    why = {"energy-unresolved": "its windows are shorter than the meter resolves; use larger -n/-p",
           "time-cap": "raise --max-time", "rep-cap": "use larger -n/-p so each repetition is longer",
           "trend": "t/s drifted (see the trend warning)"}.get(stop, stop)
    return [f"{label}: J/token 95% interval {now} missed the --energy-target {target:.1%} (stopped: {stop}); {why}"]


def row_fields(model_name: str, test: TestConfig, tracker: TestTracker, timings: TestTimings, opts: EnergyOptions,
               cooldown: dict | None) -> dict:
    """A finished test's energy, thermal (and sustained) row fields, ``warnings`` among them; in
    sustained mode also ``test``, the row's test name with the decode time in it."""
    is_sustained = opts.sustained_s is not None
    test_name = f"{test.name} sustained {opts.sustained_s:g}s" if is_sustained else test.name
    label = f"{model_name} {test_name}"
    fields, warnings, summary = tracker.row_fields(timings.windows, test.n_prompt, test.n_gen, label,
                                                   sustained=is_sustained)
    if cooldown is not None:
        fields["thermal_detail"]["cooldown"] = cooldown
        if not cooldown["reached"]:
            warnings.append(f"{label}: started at {cooldown['end_c']:.0f} °C; it did not cool below "
                            f"{cooldown['target_c']:g} °C within {COOLDOWN_TIMEOUT_S:.0f} s")
    if opts.energy_target is not None and not is_sustained:
        warnings += energy_target_record(fields, opts.energy_target, timings.stop_reason, label)
    if is_sustained:
        fields["test"] = test_name
    if is_sustained and timings.windows:
        result = sustained_mod.summarize(timings, test.n_gen, opts.sustained_s, summary,
                                         tracker.session.sensors.has_throttle_indicator)
        t0 = next(a for phase, a, _ in timings.windows if phase == "decode")
        fields.update(sustained_mod.sustained_fields(result, tracker.thermal_readings, t0))
    return {**fields, "warnings": warnings}
