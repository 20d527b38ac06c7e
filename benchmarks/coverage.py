"""Coverage of the intervals the profiler prints (issue #19), by simulation on known truths.

Every section lives in ``benchmarks/coverage_sections/`` (one module per interval family: its
docstring says what is simulated). Each simulates the product's own code on data whose truth is
known and counts the runs whose printed 95% interval holds that truth. This script prints each
section's detail, then the summary table the README shows: interval, case, nominal level,
observed coverage, mean width. The goal for every row marked "goal": 93-97%.

    .venv/bin/python benchmarks/coverage.py [--runs 2000] [--seed 19] [--only NAME]

Printout: results/coverage_<date>.txt (by hand).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))

import coverage_sections  # noqa: E402


def sections(only: str | None) -> list:
    found = [importlib.import_module(f"coverage_sections.{m.name}") for m in pkgutil.iter_modules(coverage_sections.__path__)]
    found = [m for m in found if only is None or m.__name__.endswith("." + only)]
    return sorted(found, key=lambda m: m.ORDER)


def summary(all_rows) -> list[str]:
    header = f"{'interval':<38} {'case':<44} {'nominal':>7} {'coverage':>8} {'mean width':>11}  unit"
    lines = [header, "-" * len(header)]
    for r in all_rows:
        flag = "" if not r.goal else ("" if r.in_goal else "  << outside 93-97%")
        mark = "" if r.goal else " (limit)"
        lines.append(f"{r.interval[:38]:<38} {(r.case + mark)[:44]:<44} {r.nominal:>7.0%} {r.coverage:>8.1%} "
                     f"{r.mean_width:>11.3g}  {r.width_unit}{flag}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--only", help="one section module's name, e.g. auto_reps")
    args = parser.parse_args()
    all_rows = []
    for n, module in enumerate(sections(args.only), 1):
        start = time.perf_counter()
        rows = module.rows(args.runs, args.seed)
        print(f"Section {n}: {module.TITLE} ({args.runs} runs per line, seed {args.seed}, "
              f"{time.perf_counter() - start:.0f} s)")
        if getattr(module, "HEADER", None):
            print(module.HEADER)
        for r in rows:
            for line in r.detail:
                print(line)
        for note in getattr(module, "NOTES", []):
            print(note)
        print()
        all_rows.extend(rows)
    se = all_rows[0].standard_error() if all_rows else 0.0
    print(f"Summary: nominal 95%; a coverage figure's standard error at {args.runs} runs is +-{se:.1%}. "
          "Rows marked (limit) show what an interval does not cover and are outside the goal.")
    for line in summary(all_rows):
        print(line)
    missed = [r for r in all_rows if r.goal and not r.in_goal]
    print(f"\n{len(all_rows) - len(missed)} of {len(all_rows)} rows meet their goal"
          + ("" if not missed else f"; outside: {', '.join(r.interval + ' / ' + r.case for r in missed)}"))


if __name__ == "__main__":
    main()
