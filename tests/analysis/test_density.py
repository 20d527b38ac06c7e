"""Knowledge density: the reference-family fit, effective size with intervals, the trend, bad inputs."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from profiler import paths
from profiler.analysis import density
from profiler.analysis.accuracy import AccuracyScore, Setting
from profiler.errors import UserError

CHANCE = 25.0
A_TRUE, B_TRUE = -13.0, 0.62  # a curve that goes from ~30% at 100M to ~75% at 10B


def _true_accuracy(n: float) -> float:
    return CHANCE + (100 - CHANCE) / (1 + math.exp(-(A_TRUE + B_TRUE * math.log(n))))


def _true_inverse(acc: float) -> float:
    p = (acc - CHANCE) / (100 - CHANCE)
    return math.exp((math.log(p / (1 - p)) - A_TRUE) / B_TRUE)


def _family(sizes, values=None, name="synthetic", setting=None) -> density.ReferenceFamily:
    values = values or [_true_accuracy(n) for n in sizes]
    points = [density.ReferencePoint(f"m{int(n)}", int(n), v, source="test") for n, v in zip(sizes, values, strict=True)]
    return density.ReferenceFamily(name, setting or Setting("hellaswag", 0, "acc_norm"), points)


def _score(value, ci=None, n_shot=0, variant="acc_norm", n_tasks=None, metric="hellaswag"):
    return AccuracyScore(metric=metric, value_pct=value, provenance="measured", n_shot=n_shot, source="profiler eval",
                         variant=variant, ci95_pct=ci, n_tasks=n_tasks)


# --------------------------------------------------------------------------- the fit


def test_fit_recovers_a_known_curve_within_5_percent():
    sizes = [135e6, 360e6, 1.7e9]
    # the published numbers are rounded to 0.1 point: the fit must still land within 5% of the curve's N̂
    fam = _family(sizes, [round(_true_accuracy(n), 1) for n in sizes])
    fit = density.fit_family(fam)
    for acc in (35.0, 45.0, 52.0, 60.0):
        n_true = _true_inverse(acc)
        assert fit.inverse(acc) == pytest.approx(n_true, rel=0.05), acc
    assert fit.accuracy(1e9) == pytest.approx(_true_accuracy(1e9), abs=0.1)


def test_fit_with_noisy_points_still_within_5_percent():
    rng = np.random.default_rng(3)
    sizes = [100e6, 200e6, 400e6, 800e6, 1.6e9, 3.2e9]
    values = [_true_accuracy(n) + rng.normal(0, 0.05) for n in sizes]
    fit = density.fit_family(_family(sizes, values))
    assert fit.inverse(50.0) == pytest.approx(_true_inverse(50.0), rel=0.05)
    assert fit.residual_sd_logit > 0


def test_effective_size_inside_and_outside_the_range():
    fit = density.fit_family(_family([135e6, 360e6, 1.7e9]))
    inside = density.effective_size(fit, _true_accuracy(500e6), None)
    assert not inside.extrapolated and inside.n_hat == pytest.approx(500e6, rel=1e-6)
    assert "interval from the family's scatter alone" in inside.note
    outside = density.effective_size(fit, _true_accuracy(5e9), None)
    assert outside.extrapolated and "extrapolated" in outside.note
    below = density.effective_size(fit, 24.0, [20.0, 28.0])
    assert below.n_hat is None and "at or below chance" in below.note


def test_interval_carries_the_familys_own_scatter():
    """Issue #19.1: the same accuracy and accuracy interval on a family that sits exactly on its curve
    and on one whose sizes scatter about it: the scattered family's N̂ interval is wider, by what the
    inverse-prediction interval says (Student's t on sizes - 2 df times the residual sd), not
    equal (the accuracy interval mapped through the curve alone, as before)."""
    sizes = [100e6, 200e6, 400e6, 800e6, 1.6e9, 3.2e9]
    exact = density.fit_family(_family(sizes))
    wobble = [0.15, -0.15, 0.15, -0.15, 0.15, -0.15]  # on the logit scale
    scattered = density.fit_family(_family(sizes, [
        CHANCE + (100 - CHANCE) / (1 + math.exp(-(A_TRUE + B_TRUE * math.log(n) + w))) for n, w in zip(sizes, wobble, strict=True)]))
    acc, ci = 48.0, [45.0, 51.0]
    narrow = density.effective_size(exact, acc, ci).n_hat_ci95
    wide = density.effective_size(scattered, acc, ci).n_hat_ci95
    assert wide[0] < narrow[0] and wide[1] > narrow[1]
    # at the upper end, the line misses the observed logit by the combined half-width, exactly: the
    # scatter's t (4 df) x its sd at that end and the accuracy's own 95% half-width on the logit scale,
    # combined in the L^p norm of stats.t_plus_known_half_width (p = 2 * 4 / 3)
    fit = scattered
    x, y0 = math.log(wide[1]), math.log((acc - CHANCE) / (100 - acc))
    known_half = math.log((ci[1] - CHANCE) / (100 - ci[1])) - y0
    from profiler.stats import t_critical

    scatter_half = t_critical(4) * fit.residual_sd_logit * math.sqrt(1 + 1 / 6 + (x - fit.ln_n_mean) ** 2 / fit.sxx)
    half = (scatter_half ** (8 / 3) + known_half ** (8 / 3)) ** (3 / 8)
    assert math.hypot(scatter_half, known_half) > half > max(scatter_half, known_half)
    assert abs(fit.a + fit.b * x - y0) == pytest.approx(half, rel=1e-9)


def test_shipped_family_members_hold_their_own_density_of_one():
    """Issue #19.1: each SmolLM2 size placed on its own family's fit (ρ 0.89, 1.22, 0.93 at the point)
    gets an interval that holds 1, though the card numbers have no interval of their own; before,
    they got no interval at all."""
    fam = density.load_families()["smollm2-hellaswag"]
    fit = density.fit_family(fam)
    for p in fam.points:
        score = AccuracyScore(metric="hellaswag", value_pct=p.accuracy_pct, provenance="published", n_shot=0,
                              source="card", variant="lighteval")
        row = density.place(fit, fam, density.ConfigDensity(p.model, p.model, p.n_params_active, p.n_params_active,
                                                            None, score, None))
        lo, hi = row.rho_ci95
        assert (lo is None or lo <= 1) and (hi is None or hi >= 1), (p.model, row.rho_ci95)
        assert row.extrapolated  # an unbounded interval reaches outside the family's sizes
        assert any("family's scatter alone" in n for n in row.notes)


def test_extrapolated_is_decided_from_the_interval():
    """N̂ inside the family's sizes but its interval reaching past them is extrapolated (said so)."""
    sizes = [100e6, 200e6, 400e6, 800e6, 1.6e9, 3.2e9]
    fit = density.fit_family(_family(sizes))
    near_top = density.effective_size(fit, _true_accuracy(3.0e9), [_true_accuracy(2.0e9), _true_accuracy(4.5e9)])
    assert fit.in_range(near_top.n_hat) and near_top.extrapolated
    assert "interval reaches outside the reference family's sizes" in near_top.note
    middle = density.effective_size(fit, _true_accuracy(500e6), [_true_accuracy(400e6), _true_accuracy(600e6)])
    assert not middle.extrapolated and middle.note == ""


def test_a_three_size_family_says_how_wide_one_degree_of_freedom_makes_the_interval():
    fam = density.load_families()["smollm2-hellaswag"]
    report = density.build_report([], fam)
    note = next(n for n in report.notes if "degree(s) of freedom" in n)
    assert "3 sizes: 1 degree(s) of freedom" in note and "t is 12.7" in note and "6.5x as wide" in note
    assert "cannot tell the curve's slope from flat" in note
    eight = _family([100e6 * 1.5**i for i in range(8)])
    assert not any("degree(s) of freedom" in n for n in density.build_report([], eight).notes)


def test_rho_and_interval_for_a_configuration():
    fam = _family([135e6, 360e6, 1.7e9])
    fit = density.fit_family(fam)
    acc = _true_accuracy(400e6)
    row = density.ConfigDensity("x t4", "x", 250_000_000, 200_000_000, "2025-01-01", _score(acc, n_tasks=1000),
                                None)
    density.place(fit, fam, row)
    assert row.rho == pytest.approx(2.0, rel=1e-6)  # scores like a 400M model with 200M active
    assert row.rho_ci95[0] < 2.0 < row.rho_ci95[1]  # the Wilson interval from 1000 tasks
    assert row.accuracy_pct_per_active_b == pytest.approx(acc / 0.2)


# --------------------------------------------------------------------------- the trend


def _dated(doubling_months: float, n: int, noise: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    start = dt.date(2023, 1, 1)
    out = []
    for i in range(n):
        day = start + dt.timedelta(days=int(i * 61))
        months = (day - start).days / density.DAYS_PER_MONTH
        out.append((day.isoformat(), 0.5 * 2 ** (months / doubling_months) * math.exp(rng.normal(0, noise))))
    return out


def test_trend_recovers_a_known_doubling_time():
    trend = density.fit_trend(_dated(6.0, 12, 0.05))
    assert trend.doubling_months == pytest.approx(6.0, rel=0.05)
    lo, hi = trend.doubling_ci95_months
    assert lo < 6.0 < hi
    text = " ".join(trend.comparisons)
    assert "3.3 months): faster than this data allows" in text
    assert "8 months): slower than this data allows" in text


def test_trend_without_growth_has_no_doubling_time():
    trend = density.fit_trend([("2024-01-01", 1.0), ("2024-06-01", 0.9), ("2025-01-01", 0.8)])
    assert trend.doubling_months is None
    assert "not comparable" in trend.comparisons[0]


# --------------------------------------------------------------------------- bad inputs: one line each


def test_family_of_fewer_than_three_sizes():
    with pytest.raises(UserError, match=r"has 2 size\(s\); the fit needs at least 3"):
        density.fit_family(_family([135e6, 360e6]))


def test_family_at_or_below_chance():
    with pytest.raises(UserError, match=r"m135000000 scores 25%, at or below chance \(25% for hellaswag\)"):
        density.fit_family(_family([135e6, 360e6, 1.7e9], [25.0, 40.0, 60.0]))


def test_family_that_does_not_rise_with_size():
    with pytest.raises(UserError, match="does not rise with size"):
        density.fit_family(_family([135e6, 360e6, 1.7e9], [60.0, 50.0, 40.0]))


def test_configuration_at_or_below_chance_gets_a_line():
    fam = _family([135e6, 360e6, 1.7e9])
    row = density.ConfigDensity("x", "x", 1, 100_000_000, None, _score(24.0), None)
    density.place(density.fit_family(fam), fam, row)
    assert row.rho is None and any("at or below chance" in n for n in row.notes)


def test_mixed_settings_are_never_placed():
    fam = _family([135e6, 360e6, 1.7e9])
    row = density.ConfigDensity("x", "x", 1, 100_000_000, None, _score(50.0, n_shot=10), None)
    density.place(density.fit_family(fam), fam, row)
    assert row.rho is None
    assert any("settings are never mixed" in n and "10-shot" in n for n in row.notes)


def test_a_task_subset_is_never_placed_on_a_full_benchmark_family():
    fam = _family([135e6, 360e6, 1.7e9])  # published full-benchmark numbers: no subset
    subset = AccuracyScore(metric="hellaswag", value_pct=50.0, provenance="lm-eval", n_shot=0, source="lm-eval",
                           variant="acc_norm", n_tasks=400, subset="first 400 documents (lm-eval --limit)")
    row = density.ConfigDensity("x", "x", 1, 100_000_000, None, subset, None)
    density.place(density.fit_family(fam), fam, row)
    assert row.rho is None and row.n_hat is None
    assert any("task subset (first 400 documents" in n and "full-benchmark" in n for n in row.notes), row.notes
    same_subset = _family([135e6, 360e6, 1.7e9], setting=subset.setting())  # a family measured on that subset
    placed = density.ConfigDensity("x", "x", 1, 100_000_000, None, subset, None)
    density.place(density.fit_family(same_subset), same_subset, placed)
    assert placed.rho is not None


def test_mixed_settings_inside_a_family_file(tmp_path):
    path = tmp_path / "fam.toml"
    path.write_text("""
[[families]]
name = "f"
metric = "hellaswag"
n_shot = 0
[[families.points]]
model = "a"
params = "100M"
value = 40.0
source = "card"
[[families.points]]
model = "b"
params = "300M"
value = 50.0
n_shot = 10
source = "card"
""")
    with pytest.raises(UserError, match=r"point #2: mixed settings: b has n_shot=10 but the family is n_shot=0"):
        density.load_families(path)


def test_missing_release_dates_get_a_line():
    fam = _family([135e6, 360e6, 1.7e9])
    fit = density.fit_family(fam)
    rows = []
    for i, released in enumerate(["2024-01-01", None, "2025-01-01"]):
        rows.append(density.place(fit, fam, density.ConfigDensity(
            f"m{i}", f"m{i}", 1, 200_000_000, released, _score(40.0 + 5 * i), None)))
    trend, note = density.trend_for(rows)
    assert trend is None
    assert "it needs ρ at 3 or more different release dates, this data has 2" in note
    assert "release date missing for m1" in note


def test_no_configuration_in_the_family_setting_is_said():
    fam = _family([135e6, 360e6, 1.7e9])
    report = density.build_report(
        [density.ConfigDensity("x", "x", 1, 100_000_000, None, _score(50.0, variant="acc"), None)], fam)
    assert any("no configuration has an accuracy in the family's setting" in n for n in report.notes)


# --------------------------------------------------------------------------- the shipped families


def test_shipped_families_are_sourced_and_fit():
    families = density.load_families()
    assert {"smollm2-hellaswag", "gemma3-hellaswag"} <= set(families)
    for fam in families.values():
        assert len(fam.points) >= 3
        for p in fam.points:
            assert p.url.startswith("https://huggingface.co/") and "card" in p.source
        fit = density.fit_family(fam)
        for p in fam.points:  # each size lands near itself (two parameters cannot hit three points exactly)
            assert 0.7 < fit.inverse(p.accuracy_pct) / p.n_params_active < 1.5, (fam.name, p.model)
    smol = families["smollm2-hellaswag"]
    assert smol.setting == Setting("hellaswag", 0, "lighteval")
    assert [p.accuracy_pct for p in smol.points] == [42.1, 54.5, 68.7]


def test_the_package_ships_the_families_file():
    from pathlib import Path

    import tomllib

    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    data = pyproject["tool"]["setuptools"]["package-data"]["profiler.analysis"]
    assert "data/*.toml" in data
    assert paths.reference_families_path().parent.parent.name == "analysis" and paths.reference_families_path().is_file()


def _catalog_family(n_shots):
    from profiler.models.catalog import Catalog, ModelSpec
    from profiler.quality import store

    specs = []
    for i, (n, shots) in enumerate(zip((135e6, 360e6, 1.7e9), n_shots, strict=True)):
        sha = f"{i:02d}" * 32
        store.record([{"model_sha256": sha, "metric": "hellaswag", "value_pct": round(_true_accuracy(n), 2),
                       "n_tasks": 400, "n_shot": shots, "ci95_pct": [30.0, 70.0]}])
        specs.append(ModelSpec(name=f"fam-{i}", format="gguf", sources=[f"m{i}.gguf"], sha256=sha, family="fam",
                               n_params=int(n)))
    return Catalog(path=None, models=specs)


def test_a_family_measured_with_profiler_eval(isolated_env):
    fam = density.family_from_catalog("fam", _catalog_family([0, 0, 0]))
    assert fam.provenance == "measured" and (fam.setting.metric, fam.setting.n_shot) == ("hellaswag", 0)
    assert [p.measured_on for p in fam.points] == ["this file"] * 3
    fit = density.fit_family(fam)
    assert fit.inverse(50.0) == pytest.approx(_true_inverse(50.0), rel=0.05)


def test_a_measured_family_with_mixed_settings_is_refused(isolated_env):
    with pytest.raises(UserError, match="mixes settings"):
        density.family_from_catalog("fam", _catalog_family([0, 0, 10]))
