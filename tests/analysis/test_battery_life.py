"""Answers per charge and hours of generation from measured J/token (issue #22.2)."""

from __future__ import annotations

import math

import pytest

from profiler.analysis import battery_life as bl
from profiler.errors import UserError
from profiler.platform.energy.capacity import BatteryCapacity
from support.battery import capacity, energy_row, laptop_rows, phase


def test_answers_per_charge_and_hours_from_both_phases_with_intervals():
    life = bl.battery_life(laptop_rows(), capacity(50.0))
    energy = 512 * 0.02 + 256 * 0.5  # J per answer
    assert life.answer_energy_j == pytest.approx(energy)
    assert life.answers_per_charge == pytest.approx(50 * 3600 / energy)
    half = math.hypot(512 * 0.02 * 0.04, 256 * 0.5 * 0.06)
    assert life.answers_per_charge_ci95 == (pytest.approx(180000 / (energy + half)), pytest.approx(180000 / (energy - half)))
    assert life.generation_hours == pytest.approx(50 / 5.0)  # 0.5 J/token at 10 t/s is 5 W
    assert life.generation_hours_ci95[0] == pytest.approx(10 / 1.06)
    assert life.measured and "tg128" in life.provenance and "energy_full" in life.provenance


def test_the_battery_pays_for_the_whole_device_not_the_process_share():
    rows = [energy_row("pp512+tg128", 512, 128, {"prefill": phase(0.02, 2560, 2.0, 0.04, share=0.5),
                                                 "decode": phase(0.5, 640, 64.0, 0.06, share=0.5)})]
    life = bl.battery_life(rows, capacity(50.0))
    assert life.answer_energy_j == pytest.approx(512 * 0.02 + 256 * 0.5)  # domain J/token, not the halved share


def test_an_estimated_j_per_token_gives_an_estimated_life_without_interval():
    life = bl.battery_life(laptop_rows(measured=False), capacity(50.0))
    assert life.measured is False and life.answers_per_charge_ci95 is None
    assert "estimated" in life.interval_note


def test_without_a_battery_it_says_so_never_zero():
    life = bl.battery_life(laptop_rows(), BatteryCapacity(unavailable="no battery"))
    assert life.unavailable == bl.NO_BATTERY and life.answers_per_charge is None
    other = bl.battery_life(laptop_rows(), BatteryCapacity(unavailable="BAT0 reports no capacity"))
    assert "BAT0 reports no capacity" in other.unavailable


def test_a_prompt_without_a_prefill_figure_is_unavailable_but_a_bare_answer_is_not():
    rows = laptop_rows()[1:]
    assert "prefill" in bl.battery_life(rows, capacity()).unavailable
    assert bl.battery_life(rows, capacity(), (0, 256)).answers_per_charge == pytest.approx(180000 / 128)


def test_parse_answer():
    assert bl.parse_answer(None) == (512, 256)
    assert bl.parse_answer("128,64") == (128, 64)
    for bad in ("128", "a,b", "10,0"):
        with pytest.raises(UserError):
            bl.parse_answer(bad)
