"""``run``'s repetition options: ``-r N|auto``, ``--ci-target`` and ``--max-time``."""

from __future__ import annotations

import functools

import click

from profiler.errors import UserError
from profiler.measure import adaptive

OPTIONS = [
    click.option("-r", "--repetitions", "repetitions_text", default="5", show_default=True, metavar="N|auto",
                 help="Repetitions per test, or auto: repeat until the 95% CI of the mean t/s is within "
                      "--ci-target (at least 3, calibrated warm-up, stops on a trend or at --max-time)."),
    click.option("--ci-target", "ci_target_text", default="1%", show_default=True,
                 help="-r auto: CI half-width to reach, as a share of the mean (1% or 0.01)."),
    click.option("--max-time", "max_time_s", type=float, default=adaptive.DEFAULT_MAX_TIME_S, show_default=True,
                 help="-r auto: seconds per test (warm-up included) before it stops short of the target."),
]


def parse_repetitions(text: str) -> int | str:
    """``auto`` or a whole number."""
    value = text.strip().lower()
    if value == "auto":
        return "auto"
    try:
        return int(value)
    except ValueError:
        raise UserError(f"-r/--repetitions '{text}' is invalid: give a count such as 5, or auto") from None


def parse_fraction(text: str, flag: str) -> float:
    """``1%`` or ``0.01``; a bare number of 1 or more is refused, as it is probably a percentage."""
    value = text.strip()
    try:
        if value.endswith("%"):
            return float(value[:-1]) / 100
        number = float(value)
    except ValueError:
        raise UserError(f"{flag} '{text}' is invalid: give a percentage such as 1% or a fraction such as 0.01") from None
    if number >= 1:
        raise UserError(f"{flag} {text} is ambiguous: write {number:g}% for a percentage")
    return number


def repetition_options(fn):
    """Add the repetition options to a click command; hand them over as one ``repetitions``
    argument, a dict of Sweep fields (repetitions, ci_target, max_time_s)."""

    @functools.wraps(fn)
    def wrapper(*args, repetitions_text, ci_target_text, max_time_s, **kwargs):
        repetitions = {
            "repetitions": parse_repetitions(repetitions_text),
            "ci_target": parse_fraction(ci_target_text, "--ci-target"),
            "max_time_s": max_time_s,
        }
        return fn(*args, repetitions=repetitions, **kwargs)

    for option in reversed(OPTIONS):
        wrapper = option(wrapper)
    return wrapper
