"""Render results as llama-bench does (json, jsonl, csv, md) and save run folders atomically."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable
from pathlib import Path

from profiler import atomic
from profiler.analysis import battery_life
from profiler.errors import UserError
from profiler.platform import placement
from profiler.report.energy_text import energy_cell
from profiler.results.schema import RunResult, TestResult, json_safe

FORMATS = ("json", "jsonl", "csv", "md")

# Columns of the Markdown table: llama-bench's, then ours.
MD_COLUMNS: list[tuple[str, Callable[[TestResult], str]]] = [
    ("model", lambda r: r.model_name),
    ("size", lambda r: f"{r.model_size / 2**20:.2f} MiB"),
    ("params", lambda r: _params(r)),
    ("backend", lambda r: r.backend),
    ("threads", lambda r: str(r.n_threads)),
    ("test", lambda r: r.test),
    ("t/s", lambda r: f"{r.avg_ts:.2f} ± {r.stddev_ts:.2f}"),
    ("TTFT ms", lambda r: _num(r.ttft_ms, ".1f")),
    ("ITL p50/p90/p99 ms", lambda r: _itl(r)),
    ("model peak", lambda r: _mib(r.model_peak_rss_bytes)),  # peak RSS minus the RSS before the load
    ("peak RSS", lambda r: _mib(r.peak_rss_bytes)),
    ("load s", lambda r: _num(r.load_s, ".2f")),
    ("bw frac", lambda r: _num(r.bw_fraction, ".2f")),
    ("J/token", lambda r: energy_cell(r)),
]

def _params(row: TestResult) -> str:
    """llama-bench's total, and the active count beside it when a token runs through fewer (MoE)."""
    total, active = row.model_n_params, row.model_n_params_active
    text = f"{total / 1e6:.1f} M"
    return text if not active or active == total else f"{text} ({active / 1e6:.1f} M active)"


CSV_SKIP = {"samples_ns", "samples_ts", "itl_ms_samples", "ttft_ms_samples", "warnings", "extra",
            "energy_detail", "thermal_detail", "sustained_detail", "throttle_reasons"}


def _missing(value) -> bool:
    """None, or a NaN, which the saved JSON writes as null: the table reads the same before and after a reload."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _num(value, fmt: str) -> str:
    return "n/a" if _missing(value) else format(value, fmt)


def _mib(value) -> str:
    return "n/a" if _missing(value) else f"{value / 2**20:.0f} MiB"


def _itl(row: TestResult) -> str:
    if _missing(row.itl_ms_p50):
        return "n/a"
    return f"{row.itl_ms_p50:.2f}/{row.itl_ms_p90:.2f}/{row.itl_ms_p99:.2f}"


def render(run: RunResult, fmt: str) -> str:
    rows = [r.to_dict() for r in run.rows]
    if fmt == "json":
        return json.dumps(rows, indent=2) + "\n"
    if fmt == "jsonl":
        return "".join(json.dumps(r) + "\n" for r in rows)
    if fmt == "csv":
        return _csv(rows)
    if fmt == "md":
        return _markdown(run)
    raise UserError(f"unknown output format '{fmt}' (use {', '.join(FORMATS)})")


def _csv(rows: list[dict]) -> str:
    out = io.StringIO()
    if not rows:
        return ""
    columns = [k for k in rows[0] if k not in CSV_SKIP]
    writer = csv.DictWriter(out, fieldnames=columns + ["samples_ns", "warnings"], extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        flat = dict(row)
        flat["samples_ns"] = ";".join(str(s) for s in row["samples_ns"])
        flat["warnings"] = " | ".join(row["warnings"])
        writer.writerow(flat)
    return out.getvalue()


def _md_columns(rows: list[TestResult]) -> list[tuple[str, Callable[[TestResult], str]]]:
    """MD_COLUMNS, plus llama-bench's cpu_mask after threads when some test was placed (as llama-bench
    prints it only when it is not the default) and the CPUs the kernel reported beside it."""
    if not any(placement.is_placed(r.cpu_mask) for r in rows):
        return MD_COLUMNS
    at = [name for name, _ in MD_COLUMNS].index("threads") + 1
    extra = [("cpu_mask", lambda r: r.cpu_mask or "n/a"),
             ("CPUs", lambda r: placement.cpu_list_text(r.cpu_affinity) if r.cpu_affinity else "n/a")]
    return MD_COLUMNS[:at] + extra + MD_COLUMNS[at:]


def _markdown(run: RunResult) -> str:
    rows = run.rows
    columns = _md_columns(rows)
    header = "| " + " | ".join(name for name, _ in columns) + " |"
    rule = "| " + " | ".join("---:" if name not in ("model", "backend", "test", "CPUs") else "---"
                             for name, _ in columns) + " |"
    lines = [header, rule]
    lines += ["| " + " | ".join(fn(r) for _, fn in columns) + " |" for r in rows]
    build = rows[0].build_commit if rows else "?"
    lines.append("")
    lines.append(f"build: {build}")
    if run.failures:
        lines.append("")
        lines.append("Failed:")
        lines += [f"- {f['model']} ({f['test'] or 'load'}): {f['error']}"
                  + (f" (recovered {f['recovered']})" if f.get("recovered") else "") for f in run.failures]
    warnings = list(run.warnings) + [w for r in rows for w in r.warnings]
    if warnings:
        lines.append("")
        lines.append("Warnings:")
        lines += [f"- {w}" for w in dict.fromkeys(warnings)]
    return "\n".join(lines) + "\n"


def run_json(run: RunResult, answer: tuple[int, int] = battery_life.DEFAULT_ANSWER) -> dict:
    """results.json: the run, and its battery life (answers per charge, hours of generation) or why
    there is none ("unavailable, because no battery")."""
    return {**run.to_dict(), "battery_life": json_safe(battery_life.run_battery_life(run.rows, run.device, answer))}


def save_run(run: RunResult, reports_dir: Path, answer: tuple[int, int] = battery_life.DEFAULT_ANSWER) -> Path:
    """(Re)write ``reports/<run-id>/results.{json,csv,md}``; called after every finished test.
    ``answer``: the (prompt, answer) token shape results.json's battery life is for."""
    folder = reports_dir / run.run_id
    atomic.write_user_file(folder / "results.json", json.dumps(run_json(run, answer), indent=2) + "\n")
    atomic.write_user_file(folder / "results.csv", render(run, "csv"))
    atomic.write_user_file(folder / "results.md", render(run, "md"))
    return folder
