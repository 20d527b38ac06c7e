"""Cross-device views of a fleet run: the device x model x test table and a scoreboard per device."""

from __future__ import annotations

from dataclasses import dataclass

from profiler.results.schema import RunResult, TestResult

COLUMNS = ("device", "model", "quant", "test", "t/s", "TTFT ms", "peak RSS MiB", "J/token", "energy")


def _num(value, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def energy_provenance(row: TestResult) -> str:
    """Where the J/token figure comes from, or why there is none."""
    if row.energy_source is None:
        return f"unavailable: {row.energy_unavailable}" if row.energy_unavailable else "unavailable"
    kind = "measured" if row.energy_measured else "estimated"
    return f"{kind} ({row.energy_source}{', ' + row.energy_method if row.energy_method else ''})"


def j_per_token(row: TestResult) -> float | None:
    return row.j_per_decode_token if row.n_gen else row.j_per_prefill_token


def table_rows(run: RunResult) -> list[list[str]]:
    """One line per row, by device; within a device in the order ``profiler run`` shows them: as
    measured, model by model in the order given, each model's tests in the sweep's order (pp, tg, pg)."""
    rows = sorted(run.rows, key=lambda r: r.device_name or "")  # stable: keeps each device's own order
    return [[r.device_name or "(this machine)", r.model_name, r.quant_type, r.test, _num(r.avg_ts, ".2f"),
             _num(r.ttft_ms, ".1f"), _num(r.peak_rss_bytes / 2**20 if r.peak_rss_bytes else None, ".0f"),
             _num(j_per_token(r), ".3g"), energy_provenance(r)] for r in rows]


def by_device(run: RunResult) -> dict[str, list[TestResult]]:
    groups: dict[str, list[TestResult]] = {}
    for row in run.rows:
        groups.setdefault(row.device_name or "(this machine)", []).append(row)
    return dict(sorted(groups.items()))


@dataclass
class DeviceChoice:
    device: str
    board: object  # scoring.Scoreboard
    recommendation: object  # scoring.Recommendation


def device_scoreboards(run: RunResult, metric: str = "hellaswag", max_memory_bytes: int | None = None,
                       min_tps: float | None = None, max_j_per_token: float | None = None,
                       catalog=None) -> list[DeviceChoice]:
    """For each device: its scoreboard and the best model and quant within the budget."""
    from profiler.analysis import scoring, scoring_io

    choices = []
    for device, rows in by_device(run).items():
        board = scoring_io.board(scoring.configurations(rows, run.run_id), metric, catalog=catalog)
        choices.append(DeviceChoice(device, board, scoring.recommend(board, max_memory_bytes, min_tps, max_j_per_token)))
    return choices


def device_label(name: str, info: dict) -> str:
    """The device's fleet name with its board and CPU, e.g. "pi5-kitchen [Raspberry Pi 5 Model B, Cortex-A76]"."""
    from profiler.report.terminal import short_device

    cpu = short_device({"cpu_model": info.get("cpu_model")}) if info.get("cpu_model") else "CPU not reported"
    board = short_device({"board": info["board"]}) if info.get("board") else None
    return f"{name} [{board}, {cpu}]" if board else f"{name} [{cpu}]"


def closing_lines(run: RunResult) -> list[str]:
    """One quotable line per (device, model): ``profiler run``'s closing line, naming the device."""
    from profiler.report.terminal_views import closing_lines as model_lines

    lines = []
    for device in by_device(run):
        part = device_run(run, device)
        lines.extend(model_lines(part.rows, part.device, where=device_label(device, part.device)))
    return lines


def warnings(run: RunResult) -> list[str]:
    """The run's warnings (each device's prefixed with its name) and the rows' own, once each."""
    found = list(run.warnings) + [f"{r.device_name}: {w}" if r.device_name else w for r in run.rows for w in r.warnings]
    return list(dict.fromkeys(found))


def device_run(run: RunResult, device: str) -> RunResult:
    """The part of a fleet run one device measured, as a run of its own."""
    fleet = (run.device or {}).get("fleet", {})
    info = fleet.get(device, {})
    return RunResult(run_id=f"{run.run_id}@{device}", created=run.created, command=run.command,
                     device=info.get("measured_device") or info.get("fingerprint") or {},
                     rows=[r for r in run.rows if r.device_name == device],
                     warnings=[w for w in run.warnings if w.startswith(f"{device}: ")],
                     failures=[f for f in run.failures if f.get("device") == device])
