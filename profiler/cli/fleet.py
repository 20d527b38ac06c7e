"""Thin click commands for the fleet: up, join, devices, run, report (profiler/fleet, docs/fleet.md)."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click

from profiler import atomic
from profiler.errors import UserError


@click.group("fleet")
def fleet() -> None:
    """Profile many devices from this machine over a Ray cluster (trusted networks only)."""


@fleet.command("up")
@click.option("--address", "bind_address", required=True,
              help="This machine's address on the devices' network; Ray binds there (never 0.0.0.0).")
@click.option("--port", type=int, default=6379, show_default=True, help="Ray's cluster (GCS) port.")
@click.option("--device", "device_name", help="Also profile this machine, as a device with this name.")
def up(bind_address: str, port: int, device_name: str | None) -> None:
    """Start the coordinator (a Ray head with token authentication) and print the join command."""
    from profiler.fleet import cluster

    state, join = cluster.up(bind_address, port, device_name)
    click.echo(f"fleet coordinator at {state.address} (token in {state.token_path}, readable by you only)")
    click.echo("on each device, run (the token lets it run code here: keep it to your trusted network):")
    click.echo(f"  {join}")


@fleet.command("down")
@click.option("--port", type=int, default=6379, show_default=True, help="The port 'fleet up' used.")
def down(port: int) -> None:
    """Stop the coordinator's Ray head (and this machine's device node), by process id."""
    from profiler.fleet import cluster

    click.echo(f"stopped {cluster.down(port)} Ray processes of the fleet on port {port}")


@fleet.command("join")
@click.argument("head")
@click.option("--name", required=True, help="This device's name in the fleet, e.g. pi5-kitchen.")
@click.option("--address", "own_address", help="This device's address towards the coordinator (default: Ray's guess).")
def join(head: str, name: str, own_address: str | None) -> None:
    """Join the fleet at HEAD (IP:PORT) as a device; the token comes from PROFILER_FLEET_TOKEN."""
    from profiler.fleet import cluster

    cluster.join(head, name, None, own_address)
    click.echo(f"joined the fleet at {head} as '{name}'; leave it with: ray stop")


@fleet.command("devices")
@click.option("--address", help="Coordinator IP:PORT (default: the one 'fleet up' saved here).")
@click.option("--all", "every", is_flag=True, help="Also list dead nodes (a device that rejoined leaves its old one).")
@click.option("--json", "as_json", is_flag=True, help="Print the devices as JSON.")
def devices(address: str | None, every: bool, as_json: bool) -> None:
    """List the live devices: name, Ray node, fingerprint summary, status (--all: dead nodes too)."""
    from profiler.fleet import connection, registry

    ray = connection.connect(address)
    try:
        nodes = registry.device_nodes(ray)
        found = registry.probe(ray, registry.listed(nodes, every))
    finally:
        connection.disconnect()
    if as_json:
        click.echo(json.dumps([{"name": d.name, "node_id": d.node_id, "ip": d.ip, "status": d.status, "ray_log": d.log,
                                **d.info} for d in found], indent=2))
        return
    from rich.table import Table

    from profiler.report.console import out_console

    table = Table(title="fleet devices", title_justify="left")
    for column in ("device", "node", "address", "fingerprint", "versions", "status"):
        table.add_column(column, overflow="fold")
    live = {d.name: d.node_id for d in found if d.alive}
    for d in found:
        versions = d.info.get("versions", {})
        status = f"dead, replaced by node {live[d.name][:12]}" if not d.alive and d.name in live else d.status
        table.add_row(d.name, d.node_id[:12], d.ip, registry.summary(d.info.get("fingerprint", {})),
                      f"profiler {versions.get('profiler', '?')}, ray {versions.get('ray', '?')}", status)
    out_console.print(table)
    dead = sum(not d.alive for d in nodes)
    if dead and not every:
        out_console.print(f"{dead} dead node(s) not shown (a device that left or rejoined); list them with --all")
    if not found:
        out_console.print("no device has joined yet: run 'profiler fleet join HEAD:PORT --name NAME' on each device")


def _budget_options(fn):
    fn = click.option("--max-memory", help="Budget for the per-device choice: peak memory, e.g. 1GB.")(fn)
    fn = click.option("--min-tps", type=float, help="Budget for the per-device choice: decode tokens per second.")(fn)
    return click.option("--max-j-per-token", type=float, help="Budget for the per-device choice: J per decode token.")(fn)


def print_fleet_run(run, max_memory: str | None, min_tps: float | None, max_j: float | None,
                    metric: str = "hellaswag", models_file: Path | None = None) -> None:
    """The device x model x test table, its warnings, for each device the best configuration in the
    budget, the failures, then one quotable line per (device, model)."""
    from rich.table import Table
    from rich.text import Text

    from profiler.analysis import scoring
    from profiler.fleet import output
    from profiler.models.catalog import merged_catalog
    from profiler.report.console import out_console
    from profiler.results.schema import failure_label

    table = Table(title=f"fleet run {run.run_id}: device x model x test", title_justify="left")
    for column in output.COLUMNS:
        table.add_column(column, justify="right" if column in ("t/s", "TTFT ms", "peak RSS MiB", "J/token") else "left")
    for line in output.table_rows(run):
        table.add_row(*line)
    out_console.print(table)
    for warning in output.warnings(run):
        out_console.print(f"[yellow]warning:[/yellow] {warning}")
    limit = scoring.parse_bytes(max_memory) if max_memory else None
    catalog = merged_catalog([models_file] if models_file else None)
    for choice in output.device_scoreboards(run, metric, limit, min_tps, max_j, catalog=catalog):
        rec = choice.recommendation
        best = f"{rec.best.config.key} ({rec.best.config.quant})" if rec.best else "none"
        out_console.print(f"[bold]{choice.device}[/bold]: best {best} - {rec.why}")
        for key, reason in rec.excluded:
            out_console.print(f"  [dim]excluded {key}: {reason}[/dim]")
    for failure in run.failures:
        label = failure_label(failure)
        colour = "green" if label == "recovered" else "red"
        out_console.print(f"[{colour}]{label}[/{colour}] on {failure.get('device', '?')}: {failure['model']} "
                          f"({failure.get('test') or 'setup'}): {failure['error']}"
                          + (f"; recovered {failure['recovered']}" if failure.get("recovered") else ""))
    for line in output.closing_lines(run):
        out_console.print(Text(line, style="bold"))


def _run_command(run_cmd: click.Command) -> click.Command:
    """``fleet run``: every option of ``profiler run`` (same meaning), plus the devices and a budget."""

    @click.pass_context
    def callback(ctx, devices, address, max_memory, min_tps, max_j_per_token, **run_kwargs):
        from profiler.fleet import dispatch

        if run_kwargs.get("in_process"):
            raise UserError("the fleet always measures in a child process (so the Ray worker is never counted); "
                            "drop --in-process")
        fleet_options = dispatch.FleetOptions(devices=[d for text in devices for d in text.split(",") if d] or ["all"],
                                              address=address)
        ctx.meta["profiler.profile"] = functools.partial(dispatch.fleet_profile, fleet=fleet_options)
        ctx.meta["profiler.resume_command"] = dispatch.FleetInterrupted.resume_command
        # in place of profiler run's own table: one device-aware output (profiler run uses it when not -o)
        ctx.meta["profiler.final"] = functools.partial(
            _final, budget=(max_memory, min_tps, max_j_per_token), models_file=run_kwargs.get("models_file"))
        run_kwargs["no_score"] = True  # one scoreboard per device follows instead of one over all devices
        code = 0
        try:
            ctx.invoke(run_cmd.callback, **run_kwargs)
        except SystemExit as exc:  # profiler run exits 1 when a model failed; the table still follows
            code = exc.code or 0
        finally:
            from profiler.fleet import connection

            connection.disconnect()
        if code:
            sys.exit(code)

    params = [p for p in run_cmd.params]
    params.append(click.Option(["--devices"], multiple=True, help="Device names, comma list, or 'all' (default)."))
    params.append(click.Option(["--address"], help="Coordinator IP:PORT (default: the one 'fleet up' saved here)."))
    for option in _budget_options(lambda: None).__click_params__:
        params.append(option)
    return click.Command("run", callback=callback, params=params,
                         help="Measure MODELS on the fleet's devices; takes every 'profiler run' option.")


def _final(run, reports_dir: Path, wide: bool = False, *, budget, models_file) -> None:
    """What 'fleet run' prints at the end instead of profiler run's table (``wide`` has no use here)."""
    print_fleet_run(run, *budget, models_file=models_file)
    click.echo(f"\nsaved to {reports_dir / run.run_id}/ (results.json, results.csv, results.md)")


@fleet.command("report")
@click.argument("run_id")
@click.option("--html", "html_path", type=click.Path(path_type=Path), help="Also write the HTML report here.")
@click.option("--metric", default="hellaswag", show_default=True, help="Accuracy metric for the scoreboards.")
@_budget_options
@click.option("--db", type=click.Path(path_type=Path), help="Results database (default reports/profiler.db).")
@click.option("--reports-dir", type=click.Path(path_type=Path), help="Where runs are saved (default ./reports).")
def report(run_id, html_path, metric, max_memory, min_tps, max_j_per_token, db, reports_dir) -> None:
    """The device x model x test table and the per-device choice for a stored fleet run."""
    from profiler.cli.store import open_store, scoreboard_of

    run = open_store(db, reports_dir).load_run(run_id)
    if "fleet" not in (run.device or {}):
        raise UserError(f"run {run_id} is not a fleet run; see profiler show {run_id}")
    print_fleet_run(run, max_memory, min_tps, max_j_per_token, metric)
    if html_path:
        from profiler.report.html import render_html

        atomic.write_user_file(html_path, render_html(run, scoreboard_of(run, metric)))
        click.echo(f"wrote {html_path}")


def register(cli: click.Group) -> None:
    fleet.add_command(_run_command(cli.commands["run"]))
    cli.add_command(fleet)
