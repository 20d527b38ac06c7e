"""Terminal rendering with rich: live progress, the results table, the device summary."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from profiler.analysis import battery_life
from profiler.measure import adaptive
from profiler.platform.device import Device
from profiler.report import energy_text, terminal, terminal_views
from profiler.results.schema import RunResult
from profiler.run.options import Callbacks

err_console = Console(stderr=True)
# Piped output has no terminal width: 200 columns unless COLUMNS says otherwise (the tables fit it).
out_console = Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS", "").isdigit() else 200)


def _mib(value) -> str:
    return "n/a" if value is None else f"{value / 2**20:.0f} MiB"


def _fmt(value, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


class EventStatus:
    """A one-line status on stderr, redrawn only when the text changes.

    rich's own ``console.status`` animates a spinner from a thread at 12 Hz; that thread would
    wake during every measured test (on a busy 2-core machine each wake-up can preempt one of
    the measured process's OpenMP workers), so nothing here redraws on a timer."""

    def __init__(self, text: str, console: Console = err_console) -> None:
        self.live = Live(Text(text), console=console, auto_refresh=False, transient=True)

    def __enter__(self) -> EventStatus:
        self.live.start(refresh=True)
        return self

    def __exit__(self, *exc) -> None:
        self.live.stop()

    def update(self, text: str) -> None:
        self.live.update(Text(text), refresh=True)


class RunDisplay:
    """A progress bar on stderr while a run goes; the results table on stdout at the end.

    The bar is redrawn at each event (a test starting, a repetition done), never on a timer, so
    no thread of ours wakes while a test is measured (see ``EventStatus``)."""

    def __init__(self, quiet_stdout: bool = False) -> None:
        self.quiet_stdout = quiet_stdout
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
            auto_refresh=False,
        )
        self.task = None

    def __enter__(self) -> RunDisplay:
        self.progress.start()
        self.task = self.progress.add_task("preparing", total=None)
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def callbacks(self) -> Callbacks:
        progress, task = self.progress, self.task

        def redrawn(change):
            def event(*args) -> None:
                change(*args)
                progress.refresh()
            return event

        return Callbacks(
            message=redrawn(lambda text: progress.console.print(f"[dim]{text}[/dim]")),
            tests_planned=redrawn(lambda total: progress.update(task, total=total)),
            test_started=redrawn(
                lambda model, test: progress.update(task, description=f"{model} {test.name} t={test.n_threads}"
                                                                      + ("" if test.cpu_mask == "0x0" else f" C={test.cpu_mask}"))),
            repetition_done=redrawn(lambda: progress.advance(task)),
            row_done=lambda row: None,
        )

    def final(self, run: RunResult, reports_dir: Path, wide: bool = False,
              answer: tuple[int, int] = battery_life.DEFAULT_ANSWER) -> None:
        print_results(run, wide=wide, answer=answer)
        out_console.print(f"\nsaved to {reports_dir / run.run_id}/ (results.json, results.csv, results.md)")


def print_results(run: RunResult, console: Console = out_console, wide: bool = False,
                  answer: tuple[int, int] = battery_life.DEFAULT_ANSWER) -> None:
    """The results table fitted to the console (``wide``: every column), then device, warnings and
    one quotable line per model (with its battery life for ``answer`` where the device has a battery)."""
    threads = {r.n_threads for r in run.rows}
    title = "profiler results (llama-bench tests" + (f", {threads.pop()} threads)" if len(threads) == 1 else ")")
    terminal.print_table(console, title, terminal_views.run_columns(run.rows), run.rows, wide)
    if any(adaptive.missed_target(r) for r in run.rows):
        console.print(adaptive.MARK_LEGEND)
    device = run.device
    bw = device.get("memory_bandwidth") or {}
    if "fleet" in device:  # a fleet run: one fingerprint per device (profiler fleet report)
        names = ", ".join(f"{name} ({(info.get('fingerprint') or {}).get('cpu_model', '?')})"
                          for name, info in device["fleet"].items())
        console.print(f"devices: {names}")
    else:
        console.print(
            f"device: {device.get('board') or device.get('cpu_model')} | {device.get('physical_cores')}C/"
            f"{device.get('logical_cores')}T | {_mib(device.get('ram_total_bytes'))} RAM | "
            f"read bandwidth {_fmt(bw.get('read_gbps'), '.1f')} GB/s (measured) | {' '.join(device.get('isa', []))}"
        )
    llama = (device.get("runtime") or {}).get("llama.cpp", {})
    if llama.get("llama_cpp_python"):
        console.print(f"runtime: llama-cpp-python {llama['llama_cpp_python']}")
    console.print(energy_text.provenance_line(device.get("energy")))
    capacity = battery_life.capacity_of(device)
    if capacity.packs:  # a machine without a battery prints nothing more (results.json says why)
        console.print(energy_text.capacity_line(capacity))
    for line in filter(None, (energy_text.sustained_line(r) for r in run.rows)):
        console.print(line)
    warnings = list(run.warnings) + list(device.get("notes") or []) + [w for r in run.rows for w in r.warnings]
    for w in dict.fromkeys(warnings):
        console.print(f"[yellow]warning:[/yellow] {w}")
    for line in terminal_views.closing_lines(run.rows, device, answer=answer):
        console.print(Text(line, style="bold"))


def print_device(fp: Device, console: Console = out_console) -> None:
    table = Table(show_header=False, title="device", title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value")
    caches = ", ".join(f"{k} {v // 1024} KiB" for k, v in fp.caches.items()) or "unknown"
    rows = [
        ("CPU", fp.cpu_model),
        ("arch", fp.arch),
        ("cores", f"{fp.physical_cores} physical, {fp.logical_cores} logical"),
        ("core clusters", fp.core_clusters_text()),
        ("ISA", " ".join(fp.isa) or ("unknown (see the note below)" if fp.notes else "none found")),
        ("caches", caches),
        ("RAM", f"{_mib(fp.ram_total_bytes)} total, {_mib(fp.ram_available_bytes)} available"),
        ("OS", f"{fp.os}, kernel {fp.kernel}"),
        ("board", fp.board or "n/a (not an ARM board with a device tree)"),
        ("Python", fp.python),
    ]
    capacity = battery_life.capacity_of(fp.to_dict())
    # the capacity battery life is computed from, or why a battery gives none; a machine without a
    # battery gets no row (its JSON says "no battery")
    if capacity.packs:
        rows.append(("battery", energy_text.capacity_line(capacity).removeprefix("battery: ")))
    elif capacity.unavailable != "no battery":
        rows.append(("battery", f"capacity unavailable, because {capacity.unavailable}"))
    rows += [("note", note) for note in fp.notes]
    for name, info in fp.runtime.items():
        for key, value in info.items():
            rows.append((f"{name} {key}", str(value)))
    if fp.memory_bandwidth:
        bw = fp.memory_bandwidth
        if bw.get("read_gbps") is None:
            rows.append(("read bandwidth", f"unavailable: {bw.get('unavailable')}"))
        else:
            note = f"; {bw['note']}" if bw.get("note") else ""
            rows.append((
                "read bandwidth",
                f"{bw['read_gbps']:.2f} GB/s (measured: {bw['method']}, {bw['buffer_bytes'] // 2**20} MiB, "
                f"{bw['threads']} threads{note})",
            ))
    for name, value in rows:
        table.add_row(name, Text(value))  # as text: "pip install 'profiler[onnx]'" is not markup
    console.print(table)
