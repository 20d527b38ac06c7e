"""Where density's inputs come from and where its report goes: runs, the catalogue, the store.

``density_report`` is the Python entry point ``profiler density`` calls.
"""

from __future__ import annotations

import json
from pathlib import Path

from profiler import atomic, paths
from profiler.analysis import accuracy as acc_mod
from profiler.analysis import density, scoring, scoring_io
from profiler.analysis.accuracy import Setting
from profiler.errors import UserError
from profiler.models.catalog import merged_catalog

DEFAULT_FAMILY = "smollm2-hellaswag"


def resolve_family(ref: str | None, catalog, families_file: Path | None = None) -> density.ReferenceFamily:
    """A shipped family by name, a family in ``families_file``, or ``catalog:FAMILY`` (measured with
    profiler eval on each catalogue size)."""
    ref = ref or DEFAULT_FAMILY
    if ref.startswith("catalog:"):
        return density.family_from_catalog(ref.removeprefix("catalog:"), catalog)
    families = density.load_families(families_file) if families_file else density.load_families()
    if ref not in families:
        raise UserError(f"unknown reference family '{ref}' (known: {', '.join(families)}; or catalog:FAMILY for "
                        "your own profiler eval measurements of a catalogue family)")
    return families[ref]


def _row_for(config: scoring.Configuration, spec, scores, setting: Setting) -> density.ConfigDensity:
    acc = density.pick_accuracy(scores, setting)
    return density.ConfigDensity(
        key=config.key, model_name=config.model_name, n_params_total=config.n_params,
        n_params_active=config.n_params_active or config.n_params, released=spec.released if spec else None,
        accuracy=acc, setting=acc.setting().label() if acc else None,
        j_per_decode_token=config.j_per_decode_token, energy_measured=config.energy_measured,
        peak_rss_bytes=config.peak_rss_bytes,
        notes=[] if acc else [f"no {setting.metric} score; measure it with profiler eval {config.model_name} "
                              f"--{setting.metric} {setting.metric}"],
    )


def rows_from_runs(runs, catalog, setting: Setting, lm_eval=None) -> list[density.ConfigDensity]:
    rows = []
    for run in runs:
        configs = scoring_io.identified(scoring.configurations(run.rows, run.run_id), catalog)
        for config in configs:
            scores = scoring_io.known_accuracy(config, catalog, lm_eval)
            rows.append(_row_for(config, catalog.find(config.model_name), scores, setting))
    return rows


def rows_from_catalog(catalog, setting: Setting) -> list[density.ConfigDensity]:
    """Without a run: every catalogue model with a parameter count, its published (and any stored
    measured) scores; parameters are the catalogue's ``params`` (the total: dense assumed)."""
    from profiler.quality import store

    rows = []
    for spec in catalog.models:
        if not spec.n_params:
            continue
        config = scoring.Configuration(key=spec.name, model_name=spec.name, model_file="", quant=spec.quant or "",
                                       n_params=spec.n_params, file_size_bytes=spec.size_bytes or 0, n_threads=0,
                                       runtime="", n_params_active=spec.n_params, model_sha256=spec.sha256)
        scores = (acc_mod.from_store(store.measurements(spec.sha256)) if spec.sha256 else []) + \
            acc_mod.from_catalog(spec.accuracy)
        row = _row_for(config, spec, scores, setting)
        row.notes.append("from the catalogue (no run): parameters are its params field, costs unmeasured")
        rows.append(row)
    return rows


def density_report(run_refs: list[str] | None = None, reports_dir: Path | None = None, family: str | None = None,
                   families_file: Path | None = None, catalog_paths: list[Path] | None = None,
                   lm_eval: dict[str, list[str]] | None = None, from_catalog: bool = False):
    """The density report over saved runs (the latest by default), or over the catalogue alone when
    there is no run yet (or ``from_catalog``). Returns (report, runs)."""
    from profiler.results.schema import find_run, load_run

    reports_dir = Path(reports_dir) if reports_dir else paths.reports_dir()
    catalog = merged_catalog(catalog_paths)
    fam = resolve_family(family, catalog, families_file)
    runs = []
    if not from_catalog:
        has_runs = run_refs or any(reports_dir.glob("*/results.json"))
        runs = [load_run(find_run(ref, reports_dir)) for ref in (run_refs or [None])] if has_runs else []
    if runs:
        rows = rows_from_runs(runs, catalog, fam.setting, lm_eval)
    else:
        rows = rows_from_catalog(catalog, fam.setting)
    report = density.build_report(rows, fam)
    if not runs:
        report.notes.insert(0, f"no run in {reports_dir}: configurations are the catalogue's models "
                               "(measure with profiler run for active parameters, J/token and memory)")
    return report, runs


def report_for_run(run, family: str | None = None, catalog_paths: list[Path] | None = None) -> density.DensityReport:
    """The density report of one loaded run (what the HTML report shows when none is stored)."""
    catalog = merged_catalog(catalog_paths)
    fam = resolve_family(family, catalog)
    return density.build_report(rows_from_runs([run], catalog, fam.setting), fam)


def save(report: density.DensityReport, run, reports_dir: Path) -> Path:
    """density.json in the run's folder and a copy in the results database."""
    from profiler.results.store import Store

    data = report.to_dict()
    path = Path(reports_dir) / run.run_id / "density.json"
    atomic.write_user_file(path, json.dumps(data, indent=2) + "\n")
    store = Store(paths.db_path(reports_dir))
    try:
        store.save_density(run.run_id, report.family.name, data)
    finally:
        store.close()
    return path


def stored(run_id: str, reports_dir: Path) -> dict | None:
    """The newest density report stored for a run, if any."""
    from profiler.results.store import Store

    path = paths.db_path(reports_dir)
    if not path.exists():
        return None
    store = Store(path)
    try:
        return store.density(run_id)
    finally:
        store.close()
