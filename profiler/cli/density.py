"""``profiler density``: active parameters, effective size, relative density and its trend."""

from __future__ import annotations

import json
from pathlib import Path

import click

from profiler import paths
from profiler.analysis import density
from profiler.analysis.density import fmt_interval, fmt_params


def _rho(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def render(report: density.DensityReport, console) -> None:
    from rich.table import Table

    fam, fit = report.family, report.fit
    console.print(f"reference family [bold]{fam.name}[/bold] ({fam.provenance}): {fam.setting.label()}, sizes "
                  + ", ".join(f"{fmt_params(p.n_params_active)} {p.accuracy_pct:g}%" for p in fam.points))
    console.print(f"fit: A = {fit.chance_pct:g} + {100 - fit.chance_pct:g} / (1 + exp(-({fit.a:.3f} + {fit.b:.4f} ln N))), "
                  f"residual sd {fit.residual_sd_logit:.3f} (logit, {fit.df} degree(s) of freedom)")
    console.print(f"N̂ and ρ intervals (95%): {density.INTERVAL_METHOD}")
    table = Table(title="knowledge density", title_justify="left")
    for name in ("configuration", "active", "total", "accuracy", "setting", "%/active B", "N̂ [95%]", "ρ [95%]",
                 "released"):
        table.add_column(name, justify="left" if name in ("configuration", "setting", "released") else "right")
    for r in report.rows:
        acc = r.accuracy
        table.add_row(
            r.key, fmt_params(r.n_params_active), fmt_params(r.n_params_total),
            f"{acc.value_pct:.1f}%" + fmt_interval(acc.ci95_pct, lambda v: f"{v:.1f}") if acc else "none",
            (r.setting or "") + (f", {acc.provenance}" if acc else ""),
            "n/a" if r.accuracy_pct_per_active_b is None else f"{r.accuracy_pct_per_active_b:.0f}",
            fmt_params(r.n_hat) + fmt_interval(r.n_hat_ci95, fmt_params) + (" extrapolated" if r.extrapolated else ""),
            _rho(r.rho) + fmt_interval(r.rho_ci95, _rho), r.released or "missing",
        )
    console.print(table)
    for r in report.rows:
        for note in r.notes:
            console.print(f"  {r.key}: {note}")
    _render_trend(report, console)
    if report.cost:
        console.print("cost of equal capability:")
        for line in report.cost:
            console.print(f"  {line}")
    for note in report.notes:
        console.print(f"[dim]note:[/dim] {note}")


def _render_trend(report: density.DensityReport, console) -> None:
    t = report.trend
    if t is None:
        console.print(f"trend: {report.trend_note}")
        return
    if t.doubling_months is None:
        console.print(f"trend ({t.n_points} models, one point each): ρ does not grow with release date here "
                      f"(slope {t.slope_per_month:.3f}/month); {report.trend_note}")
    else:
        console.print(f"trend ({t.n_points} models, one point each): ρ doubles every {t.doubling_months:.1f} months"
                      f"{fmt_interval(t.doubling_ci95_months, lambda v: f'{v:.1f}')} (95%); {report.trend_note}")
    for line in t.comparisons:
        console.print(f"  {line}")


@click.command("density")
@click.option("--run", "runs", multiple=True, help="A run id, folder or results.json (repeatable; default: the latest run).")
@click.option("--family", help="Reference family: a shipped name (default smollm2-hellaswag), one in --families, "
                               "or catalog:FAMILY for your own profiler eval measurements of each size.")
@click.option("--families", "families_file", type=click.Path(path_type=Path), help="A TOML file of reference families.")
@click.option("--catalog", "from_catalog", is_flag=True, help="Use the catalogue's models, not a run.")
@click.option("--models-file", "catalogs", multiple=True, type=click.Path(path_type=Path),
              help="Catalogue(s) to read accuracy and release dates from (default ./models.toml).")
@click.option("--lm-eval", "lm_eval", multiple=True, help="MODEL=results.json from lm_eval --output_path (repeatable).")
@click.option("--reports-dir", type=click.Path(path_type=Path), help="Where runs are saved (default ./reports).")
@click.option("--list-families", is_flag=True, help="List the reference families and their sources.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def density_command(runs, family, families_file, from_catalog, catalogs, lm_eval, reports_dir, list_families,
                    as_json) -> None:
    """Knowledge density: N̂ and ρ = N̂ / active parameters against a reference family, and its trend."""
    from profiler import api
    from profiler.analysis import density_io
    from profiler.report.console import out_console

    if list_families:
        _list_families(families_file, out_console)
        return
    reports = reports_dir or paths.reports_dir()
    report, loaded = api.density(runs, reports, family, families_file, catalogs, lm_eval, from_catalog)
    saved = [density_io.save(report, run, reports) for run in loaded]
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    render(report, out_console)
    for path in saved:
        out_console.print(f"saved to {path} and the results database")


def _list_families(families_file, console) -> None:
    families = density.load_families(families_file) if families_file else density.load_families()
    for fam in families.values():
        console.print(f"[bold]{fam.name}[/bold]: {fam.setting.label()} - {fam.note}")
        for p in fam.points:
            console.print(f"  {p.model}: {fmt_params(p.n_params_active)} params, {p.accuracy_pct:g}% ({p.source}; {p.url})")


def register(group: click.Group) -> None:
    group.add_command(density_command)
