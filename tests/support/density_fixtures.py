"""A density report with release dates, for the HTML density plot's tests (test_density_html.py and
the browser checks in test_html_plots.py)."""

from __future__ import annotations

from profiler.analysis import density, density_io
from profiler.analysis.accuracy import AccuracyScore

# (model, release date, HellaSwag 0-shot lighteval %): three dates, two of them six weeks apart
DATED = [("smollm2-135m-instruct-q4_1", "2024-11-01", 42.1), ("qwen2.5-0.5b-instruct-q4_k_m", "2024-09-19", 47.0),
         ("gemma-3-270m-it-q4_k_m", "2025-08-14", 44.0)]


def dated_density_report(models=DATED, threads=(1, 2)) -> dict:
    """A density report on the shipped SmolLM2 family, each model run at every thread count (same
    accuracy, so the same ρ): the case that printed "... t1" over "... t2"."""
    family = density.load_families()[density_io.DEFAULT_FAMILY]
    setting = family.setting
    rows = []
    for name, released, value in models:
        for t in threads:
            acc = AccuracyScore(metric=setting.metric, value_pct=value, provenance="measured", n_shot=setting.n_shot,
                                source="test", variant=setting.variant, n_tasks=2000)
            rows.append(density.ConfigDensity(key=f"{name} t{t}", model_name=name, n_params_total=134_515_008,
                                              n_params_active=134_515_008, released=released, accuracy=acc,
                                              setting=setting.label()))
    return density.build_report(rows, family).to_dict()
