"""Commands over stored runs: history, show, compare, report."""

from __future__ import annotations

from pathlib import Path

import click

from profiler import atomic
from profiler.errors import UserError


def open_store(db: Path | None, reports_dir: Path | None):
    """The results database ``profiler run`` writes (``--db``, else beside ``--reports-dir``); one line if absent."""
    from profiler.results.store import Store
    from profiler.run.options import RunOptions

    options = RunOptions(db=db)
    if reports_dir is not None:
        options.reports_dir = reports_dir
    path = options.db_path
    if not path.exists():
        raise UserError(f"no results database at {path}: run profiler run first, or set PROFILER_DB / --db")
    return Store(path)


db_option = click.option("--db", type=click.Path(path_type=Path), help="Results database (default reports/profiler.db).")
reports_option = click.option("--reports-dir", type=click.Path(path_type=Path), help="Where runs are saved (default ./reports).")
wide_option = click.option("--wide", is_flag=True, help="Every column, even past the terminal's width (default: fit it).")
answer_option = click.option(
    "--answer", metavar="PROMPT,ANSWER",
    help="Answer shape for battery life (answers per charge), in tokens (default 512,256); only where a battery exists.")


@click.command()
@click.option("-n", "--limit", type=int, default=30, show_default=True)
@db_option
@reports_option
@wide_option
def history(limit: int, db: Path | None, reports_dir: Path | None, wide: bool) -> None:
    """List stored runs, newest first."""
    from profiler.report import terminal, terminal_views
    from profiler.report.console import out_console

    runs = open_store(db, reports_dir).list_runs(limit)
    terminal.print_table(out_console, "runs", terminal_views.history_columns(runs), runs, wide)


@click.command()
@click.argument("run_id")
@click.option("-o", "--output", type=click.Choice(["json", "jsonl", "csv", "md"]), help="Print in this format.")
@db_option
@reports_option
@wide_option
@answer_option
def show(run_id: str, output: str | None, db: Path | None, reports_dir: Path | None, wide: bool,
         answer: str | None) -> None:
    """Print one stored run."""
    from profiler.analysis.battery_life import parse_answer
    from profiler.report import render
    from profiler.report.console import print_results
    from profiler.results.schema import failure_label

    shape = parse_answer(answer)
    run = open_store(db, reports_dir).load_run(run_id)
    if output:
        click.echo(render(run, output), nl=False)
        return
    print_results(run, wide=wide, answer=shape)
    for f in run.failures:
        where = f" on {f['device']}" if f.get("device") else ""  # a fleet run's failures name their device
        click.echo(f"{failure_label(f)}{where}: {f['model']} ({f.get('test') or 'load'}): {f['error']}")


@click.command()
@click.argument("a")
@click.argument("b")
@db_option
@reports_option
@wide_option
def compare(a: str, b: str, db: Path | None, reports_dir: Path | None, wide: bool) -> None:
    """Compare run B against run A (run ids, results.json, llama-bench JSON or SQLite)."""
    from profiler import api
    from profiler.report import terminal, terminal_views
    from profiler.report.console import out_console
    from profiler.stats import geometric_mean

    store = None
    if not (Path(a).exists() and Path(b).exists()):
        store = open_store(db, reports_dir)
    results = api.compare(a, b, store)
    terminal.print_table(out_console, f"{b} against {a}", terminal_views.compare_columns(results), results, wide)
    out_console.print(f"geometric mean speedup: {geometric_mean([c.speedup for c in results]):.3f}x over {len(results)} tests")


@click.command()
@click.argument("run_id")
@click.option("--html", "html_path", type=click.Path(path_type=Path), required=True, help="Write the HTML page here.")
@click.option("--metric", default="hellaswag", show_default=True, help="Accuracy metric for the quality plot.")
@answer_option
@db_option
@reports_option
def report(run_id: str, html_path: Path, metric: str, answer: str | None, db: Path | None,
           reports_dir: Path | None) -> None:
    """Write a self-contained HTML report (no network) for a stored run."""
    from profiler.analysis.battery_life import parse_answer
    from profiler.report.html import render_html
    from profiler.report.html_density import density_section

    store = open_store(db, reports_dir)
    run = store.load_run(run_id)
    density = density_section(run, store.density(run_id))  # the stored report, else the default family's
    atomic.write_user_file(html_path, render_html(run, scoreboard_of(run, metric), sections=[density],
                                                  answer=parse_answer(answer)))
    click.echo(f"wrote {html_path}")


def scoreboard_of(run, metric: str):
    """The run's scoreboard when accuracy data exists; the page says so when it does not."""
    from profiler.analysis import scoring, scoring_io
    from profiler.models.catalog import merged_catalog

    if not run.rows:
        return None
    return scoring_io.board(scoring.configurations(run.rows, run.run_id, run.device), metric, catalog=merged_catalog(None))


def register(group: click.Group) -> None:
    for command in (history, show, compare, report):
        group.add_command(command)
