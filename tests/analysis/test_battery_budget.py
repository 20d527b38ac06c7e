"""The scoreboard's battery budget (issue #22.2): answers per charge per configuration from the
capacity stored with the run's device, and --min-answers-per-charge mirroring --max-j-per-token."""

from __future__ import annotations

import pytest

from profiler.analysis import accuracy as acc
from profiler.analysis import scoring
from profiler.report.terminal_views import scoreboard_columns
from support.battery import capacity, energy_row, phase


def _rows(name: str, decode_j: float, measured: bool = True) -> list:
    common = {"model_name": name, "model_filename": f"/m/{name}.gguf", "quant_type": "Q4_0"}
    rel = (0.04, 0.06) if measured else (None, None)
    return [energy_row("pp512", 512, 0, {"prefill": phase(0.02, 2560, 2.0, rel[0])}, measured, **common),
            energy_row("tg128", 0, 128, {"decode": phase(decode_j, 640, 64.0, rel[1])}, measured, avg_ts=10.0,
                       prefill_ts=None, **common)]


def _board(device):
    configs = (scoring.configurations(_rows("frugal", 0.5), "r1", device)
               + scoring.configurations(_rows("hungry", 2.0), "r1", device))
    published = acc.AccuracyScore(metric="hellaswag", value_pct=40.0, provenance="published", n_shot=0, source="card")
    return scoring.scoreboard([scoring.score(c, "hellaswag", published, 0.3) for c in configs], 0.3)


def test_configurations_carry_answers_per_charge_from_the_runs_battery():
    frugal = scoring.configurations(_rows("frugal", 0.5), "r1", {"battery": capacity(50.0).to_dict()})[0]
    assert frugal.answers_per_charge == pytest.approx(50 * 3600 / (512 * 0.02 + 256 * 0.5))
    assert frugal.answers_per_charge_ci95[0] < frugal.answers_per_charge < frugal.answers_per_charge_ci95[1]
    assert frugal.generation_hours == pytest.approx(10.0) and frugal.battery_measured


def test_min_answers_per_charge_excludes_with_the_figure_and_says_the_budget():
    board = _board({"battery": capacity(50.0).to_dict()})
    rec = scoring.recommend(board, min_answers_per_charge=1000)
    assert rec.best.config.model_name == "frugal"
    assert dict(rec.excluded)["hungry t2"] == "345 answers/charge < 1000"  # 180 kJ over 10.24 + 512 J
    assert ">= 1000 answers per charge" in rec.why


def test_without_a_battery_the_budget_excludes_with_the_reason_and_no_column_shows():
    board = _board({"battery": {"packs": [], "unavailable": "no battery"}})
    rec = scoring.recommend(board, min_answers_per_charge=10)
    assert rec.best is None
    assert dict(rec.excluded)["frugal t2"] == "battery life unavailable, because no battery"
    assert "answers/charge" not in [c.header for c in scoreboard_columns(board) if any(c.cell(s) for s in board.scores)]


def test_the_scoreboard_column_shows_the_interval_and_marks_an_estimate():
    device = {"battery": capacity(50.0).to_dict()}
    configs = scoring.configurations(_rows("est", 0.5, measured=False), "r1", device)
    board = scoring.scoreboard([scoring.score(c, "hellaswag", None, 0.3) for c in configs], 0.3)
    column = next(c for c in scoreboard_columns(board) if c.header == "answers/charge")
    assert column.cell(board.scores[0]) == "1,302 (est.)"
    measured = _board(device)
    assert next(c for c in scoreboard_columns(measured) if c.header == "answers/charge").cell(
        measured.scores[0]) == "1,302 (1,233-1,379)"


def test_a_fleet_row_carries_its_own_devices_battery():
    from profiler.fleet.device_task import FINGERPRINT_KEYS

    assert "battery" in FINGERPRINT_KEYS  # each device's rows bring their capacity to the hub
    rows = _rows("phone", 0.5)
    for row in rows:
        row.device_fingerprint = {"battery": capacity(15.0, measured=False).to_dict()}
    phone = scoring.configurations(rows, "fleet")[0]
    assert phone.answers_per_charge == pytest.approx(15 * 3600 / (512 * 0.02 + 256 * 0.5))
    assert phone.battery_measured is False  # a typical cell voltage: an estimate
