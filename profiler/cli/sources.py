"""``profiler models`` and ``run --all-local``: the models already on this machine (profiler/sources)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from profiler.backends import missing_runtimes, runtime_info
from profiler.errors import UserError


def params_cell(row) -> str | None:
    """The models table's params: ``1.7 B``, or ``active/total`` for a mixture of experts."""
    from profiler.report.terminal import scaled

    if not row.n_params:
        return None
    units = [(1e9, "B"), (1e6, "M"), (1e3, "k"), (1, "")]
    total = scaled(row.n_params, units)
    if row.n_params_active and row.n_params_active != row.n_params:
        return f"{scaled(row.n_params_active, units)}/{total}"  # active/total (MoE)
    return total


def _joules(row) -> str | None:
    from profiler.report.terminal import joules

    if row.j_per_decode_token is None:
        return None
    return joules(row.j_per_decode_token) + ("" if row.j_per_decode_token_measured else " (est.)")


def model_columns():
    from profiler.report.terminal import Column, sig3, size

    never_run = lambda rows: "none of these models is in the results store yet"  # noqa: E731
    return [
        Column("name", lambda r: r.name, "left", core=True, shrink=True),
        Column("size", lambda r: size(r.size_bytes), core=True),
        Column("quant", lambda r: r.quant_type or (r.format if r.format != "gguf" else None), "left", core=True),
        Column("arch", lambda r: r.architecture, "left"),
        Column("params", params_cell, core=True, why_na=lambda rows: "no header read"),
        Column("ctx", lambda r: str(r.n_ctx_train) if r.n_ctx_train else None, core=True),
        Column("decode t/s", lambda r: None if r.decode_ts is None else sig3(r.decode_ts), core=True, why_na=never_run),
        Column("J/token", _joules, core=True, why_na=never_run),
        Column("runs?", lambda r: "yes" if r.runnable else "no", "left", core=True),
        Column("last run", lambda r: r.last_run_id, "left", why_na=never_run),
        Column("note", lambda r: r.note or None, "left", shrink=True),
        Column("path", lambda r: r.path, "left", shrink=True, why_na=lambda rows: "not on this machine yet"),
    ]


@click.command("models")
@click.argument("pattern", required=False)
@click.option("--source", type=click.Choice(["ollama", "hf", "lmstudio", "llamacpp", "catalog"]),
              help="Only this source (hf: the Hugging Face cache; catalog: models.toml).")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@click.option("--models-file", type=click.Path(path_type=Path), help="Model catalogue (default ./models.toml).")
@click.option("--db", type=click.Path(path_type=Path), help="Results store (default PROFILER_DB or reports/profiler.db).")
@click.option("--wide", is_flag=True, help="Every column, even past the terminal's width.")
def models_command(pattern, source, as_json, models_file, db, wide) -> None:
    """The catalogue and every model already on this machine (Ollama, Hugging Face cache, LM Studio,
    llama.cpp's cache), by the name to give `profiler run`; PATTERN filters names."""
    from profiler.sources.listing import list_models

    listing = list_models(source, pattern, models_file, db)
    missing = missing_runtimes(runtime_info())  # a listed model may need a runtime this machine lacks
    if as_json:
        click.echo(json.dumps({**listing.to_dict(), "missing_runtimes": missing}, indent=2))
        return
    from rich.text import Text

    from profiler.report import terminal
    from profiler.report.console import out_console

    terminal.print_table(out_console, f"{len(listing.rows)} model(s)", model_columns(), listing.rows, wide)
    for name, folders in listing.stores.items():
        where = ", ".join(folders) if folders else "no store on this machine"
        out_console.print(Text(f"{name}: {where}", style="dim"))
    for name, why in missing.items():
        out_console.print(Text(f"runtime {name} missing: {why}", style="yellow"))


all_local_option = click.option(
    "--all-local", is_flag=True,
    help="Also profile every model found on this machine (see profiler models); those that will not fit in "
         "memory are listed as skipped, with the estimate.")


def all_local_names(sweep, force: bool) -> tuple[list[str], list[str]]:
    """(the names --all-local profiles, run warnings naming the skipped ones); the skipped ones are
    also printed at once with the reason, before the run starts."""
    from profiler.run.all_local import plan_all_local, skipped_warnings

    names, skipped = plan_all_local(sweep, force)
    for line in skipped:
        click.echo(f"skipped: {line}", err=True)
    if not names:
        raise UserError("--all-local: every model found was skipped (see the lines above)")
    return names, skipped_warnings(skipped)


def register(group: click.Group) -> None:
    group.add_command(models_command)
