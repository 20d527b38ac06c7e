"""`profiler run -r auto` against llama-bench: the same confidence interval in less time?

For each test of the default sweep (pp512, tg128) on the default catalogue model, each round
runs three sides, alternating their order:

- **auto**: ``profiler run MODEL -r auto --ci-target 1%`` (the user's command: a fresh
  process, the model's worker child, calibrated warm-up, as many repetitions as the rule wants);
- **lb r5**: ``llama-bench -r 5``, its usual setting;
- **lb rN**: ``llama-bench -r N`` where N is the repetition count llama-bench would need for
  the CI that auto achieved, planned from llama-bench's own samples as a user would plan it
  from earlier runs: the within-run spread pooled over every llama-bench run of this test so
  far (each run's samples about its own mean, weighted by degrees of freedom), then the smallest
  N with t(N-1) x sd / sqrt(N) <= that CI x mean, at least 3, at most ``--max-lb-reps``. One r5
  run alone under-states the spread on this VM (its speed moves between plateaus a few seconds
  long, and five repetitions usually sit on one), so N from it alone reached 1.7-2.7% instead
  of 1%. A side that needs this round's estimates but runs before them uses the previous round's.

Every side uses llama-bench's settings: same threads, uniform random tokens, n_batch 2048,
n_ubatch 512, f16 KV cache. llama-bench comes from the installed llama-cpp-python's own
source (llamacpp_tools.py), so both sides run the same kernels.

Two wall times are compared:

- **test time**: for auto, the row's ``test_wall_s`` (warm-up and every pass, measured inside the
  worker); for llama-bench, its process time less its start-up and model load, measured each
  round by a ``llama-bench -p 1 -n 0 -r 1`` run;
- **process time**: the whole command as a user waits for it (ours includes the Python start,
  imports, the device fingerprint and the worker process; llama-bench is one C++ process).

The goal: auto's median CI no wider than lb rN's (within 10%, since N is chosen to just reach
it) in <= 0.7x lb rN's test time. Each round line also says how
many CPUs *other* processes kept busy (a shared machine makes the figures noisy). Raw results go
to results/adaptive_reps.json, the printout to results/adaptive_reps.txt.

    .venv/bin/python benchmarks/adaptive_reps.py [--rounds 3] [--budget 540] [--threads 2]

Run time: on a quiet 2-core machine 2-5 minutes. No round starts that the previous round's
length says would overrun ``--budget`` (default 9 min), but the first round always runs whole:
with both cores busy with other work a tg128 repetition took 60 s instead of 1 s here and the
first round alone took 15 minutes; its figures then say nothing about either tool.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from llama_bench_ratio import CpuClock, load_average  # noqa: E402
from llamacpp_tools import ToolBuildError, build_tool, tool_system_info  # noqa: E402

from profiler import api, atomic  # noqa: E402
from profiler.errors import UserError  # noqa: E402
from profiler.measure import adaptive  # noqa: E402
from profiler.models import catalog
from profiler.sources import resolve_models  # noqa: E402
from profiler.stats import mean, stdev, t_critical  # noqa: E402

GOAL_TIME_RATIO = 0.7
# "the same CI": N is chosen to just reach auto's CI, so lb rN lands on either side of it by
# chance; medians within 10% count as the same
SAME_CI_TOLERANCE = 0.10
TESTS = {"pp512": (512, 0), "tg128": (0, 128)}
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class SideRun:
    """One run of one side."""

    side: str
    reps: int
    ci95_rel: float | None
    process_s: float
    test_s: float  # see the module docstring
    other_cpus: float | None
    avg_ts: float
    samples_ts: list[float]
    stop_reason: str | None = None
    warmup_passes: int | None = None


@dataclass
class Round:
    test: str
    order: list[str]
    lb_startup_s: float
    runs: dict[str, SideRun] = field(default_factory=dict)
    n_needed: int | None = None  # llama-bench repetitions for auto's CI, before the caps
    n_cap: int | None = None
    planned_cv: float | None = None  # llama-bench's pooled within-run spread that N was planned from


def pooled_cv(runs: list[list[float]]) -> float:
    """Within-run relative spread pooled over runs: each run's samples about its own mean, so a
    shift between runs (another load, another plateau) does not count as repetition noise."""
    squares, dof = 0.0, 0
    for samples in runs:
        if len(samples) >= 2:
            squares += (len(samples) - 1) * (stdev(samples) / mean(samples)) ** 2
            dof += len(samples) - 1
    if not dof:
        raise ValueError("no llama-bench run with two samples to plan N from")
    return math.sqrt(squares / dof)


def reps_needed(cv: float, ci_rel: float, cap: int) -> int:
    """Smallest N >= 3 whose 95% CI half-width, with relative spread cv, is within ci_rel."""
    # t(n-1) > 1.96 for every n, so no N below (1.96 cv / ci)^2 can do: start the search there
    start = max(adaptive.MIN_REPS, int((1.96 * cv / ci_rel) ** 2) if ci_rel > 0 else cap)
    for n in range(start, cap + 1):
        if t_critical(n - 1) * cv / math.sqrt(n) <= ci_rel:
            return n
    return cap


def run_auto(model: str, n_prompt: int, n_gen: int, threads: int, ci_target: float, max_time_s: float,
             work: Path) -> tuple[dict, float]:
    argv = [sys.executable, "-m", "profiler", "run", model, "-p", str(n_prompt), "-n", str(n_gen), "-t", str(threads),
            "-r", "auto", "--ci-target", f"{ci_target:g}", "--max-time", f"{max_time_s:g}", "--random-tokens",
            "--no-bandwidth", "--idle", "0", "-o", "json"]
    start = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, cwd=work,
                          env={**os.environ, "PROFILER_REPORTS": str(work / "reports")})
    elapsed = time.monotonic() - start
    if done.returncode != 0:
        raise RuntimeError(f"profiler run failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    (row,) = json.loads(done.stdout)
    return row, elapsed


def run_bench(bench: Path, model: Path, n_prompt: int, n_gen: int, threads: int, reps: int) -> tuple[dict, float]:
    argv = [str(bench), "-m", str(model), "-p", str(n_prompt), "-n", str(n_gen), "-t", str(threads), "-r", str(reps),
            "-b", "2048", "-ub", "512", "-ctk", "f16", "-ctv", "f16", "-o", "json"]
    start = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True)
    elapsed = time.monotonic() - start
    if done.returncode != 0:
        raise RuntimeError(f"llama-bench failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    rows = json.loads(done.stdout)
    return rows[0], elapsed


def bench_startup_s(bench: Path, model: Path, threads: int) -> float:
    """llama-bench's start-up and model load: a run whose measurement is one 1-token prompt."""
    return run_bench(bench, model, 1, 0, threads, 1)[1]


def side_run(side: str, row: dict, process_s: float, test_s: float, other: float | None) -> SideRun:
    samples = [float(v) for v in row["samples_ts"]]
    return SideRun(side, len(samples), adaptive.ci95_rel(samples), process_s, test_s, other, float(row["avg_ts"]),
                   samples, row.get("stop_reason"), row.get("warmup_passes"))


def one_round(test: str, order: list[str], ctx: dict, estimates: dict) -> Round:
    n_prompt, n_gen = TESTS[test]
    startup = bench_startup_s(ctx["bench"], ctx["model"], ctx["threads"])
    rnd = Round(test, order, startup)
    clock = ctx["clock"]
    for side in order:
        clock.start()
        if side == "auto":
            row, wall = run_auto(ctx["name"], n_prompt, n_gen, ctx["threads"], ctx["ci_target"], ctx["max_time"],
                                 ctx["work"])
            run = side_run(side, row, wall, row["test_wall_s"], clock.stop())
            estimates["auto_ci"] = run.ci95_rel
        else:
            if side == "lb5":
                reps = 5
            else:  # at most --max-lb-reps, and no more than --lb-max-time seconds by lb r5's pace
                per_rep_s = estimates["lb5_test_s"] / 6  # five repetitions and the warm-up
                cap = max(adaptive.MIN_REPS, min(ctx["max_lb_reps"], int(ctx["lb_max_time"] / max(per_rep_s, 1e-3))))
                rnd.planned_cv = pooled_cv(estimates["lb_runs"])
                rnd.n_needed = reps_needed(rnd.planned_cv, estimates["auto_ci"], 10_000)
                rnd.n_cap = cap
                reps = min(rnd.n_needed, cap)
            row, wall = run_bench(ctx["bench"], ctx["model"], n_prompt, n_gen, ctx["threads"], reps)
            run = side_run(side, row, wall, max(wall - startup, 0.0), clock.stop())
            estimates.setdefault("lb_runs", []).append(run.samples_ts)
            if side == "lb5":
                estimates["lb5_test_s"] = run.test_s
        rnd.runs[side] = run
    return rnd


def median_ratio(pairs) -> float:
    """Median of a / b over the pairs whose b is positive; NaN when none is. llama-bench's test time
    is its wall minus its start-up, measured apart, and under load the start-up measured can exceed
    a short run's whole wall (clamped to 0): such a round has no time ratio, not a division by 0."""
    ratios = [a / b for a, b in pairs if b > 0]
    return statistics.median(ratios) if ratios else math.nan


def orders(index: int) -> list[str]:
    """Round 1: auto and r5 first (rN needs both); after that the three sides rotate."""
    if index == 0:
        return ["auto", "lb5", "lbN"]
    sides = ["lbN", "auto", "lb5"]
    shift = (index - 1) % 3
    return sides[shift:] + sides[:shift]


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def print_round(rnd: Round, number: int, elapsed: float) -> str:
    parts = []
    for side in ("auto", "lb5", "lbN"):
        r = rnd.runs[side]
        extra = f" {r.stop_reason}, warm-up {r.warmup_passes}" if side == "auto" else ""
        if side == "lbN":
            extra = f" (needed {rnd.n_needed} at pooled sd {_pct(rnd.planned_cv)}, cap {rnd.n_cap})"
        parts.append(f"{side}: {r.reps} reps{extra}, CI ±{_pct(r.ci95_rel)}, test {r.test_s:.1f} s, "
                     f"process {r.process_s:.1f} s, others {r.other_cpus if r.other_cpus is None else round(r.other_cpus, 1)} CPUs")
    line = (f"round {number} {rnd.test} (order {'>'.join(rnd.order)}; llama-bench start-up {rnd.lb_startup_s:.2f} s): "
            + " | ".join(parts) + f" [{elapsed:.0f} s]")
    print(line, flush=True)
    return line


def searched_time_s(run: SideRun, n_tokens: int, ci_rel: float | None) -> tuple[int | None, float]:
    """llama-bench's N found by search: the shortest start of its rN run whose CI is within ci_rel
    (what ``-r n`` would have given, as its first n repetitions are that run), and that prefix's
    time: its samples plus the run's untimed part (warm-up, clearing the cache). (None, the whole
    run's time) when even the whole run did not reach it: a lower bound."""
    untimed_s = max(0.0, run.test_s - sum(n_tokens / ts for ts in run.samples_ts))
    if ci_rel is not None:
        for n in range(adaptive.MIN_REPS, len(run.samples_ts) + 1):
            ci = adaptive.ci95_rel(run.samples_ts[:n])
            if ci is not None and ci <= ci_rel:
                return n, untimed_s + sum(n_tokens / ts for ts in run.samples_ts[:n])
    return None, run.test_s


def summarize(rounds: list[Round]) -> dict:
    out = {}
    for test in TESTS:
        mine = [r for r in rounds if r.test == test]
        if not mine:
            continue

        def med(side: str, attr: str, rows=mine) -> float:
            values = [getattr(r.runs[side], attr) for r in rows if getattr(r.runs[side], attr) is not None]
            return statistics.median(values) if values else math.nan

        n_tokens = sum(TESTS[test])
        searched = [searched_time_s(r.runs["lbN"], n_tokens, r.runs["auto"].ci95_rel) for r in mine]
        time_ratio = median_ratio((r.runs["auto"].test_s, r.runs["lbN"].test_s) for r in mine)
        process_ratio = median_ratio((r.runs["auto"].process_s, r.runs["lbN"].process_s) for r in mine)
        ci_ok = sum((r.runs["auto"].ci95_rel or math.inf) <= (r.runs["lbN"].ci95_rel or math.inf) for r in mine)
        same_ci = med("auto", "ci95_rel") <= (1 + SAME_CI_TOLERANCE) * med("lbN", "ci95_rel")
        out[test] = {
            "rounds": len(mine),
            "auto": {"reps": med("auto", "reps"), "ci95_rel": med("auto", "ci95_rel"), "test_s": med("auto", "test_s"),
                     "process_s": med("auto", "process_s"),
                     "stop_reasons": [r.runs["auto"].stop_reason for r in mine]},
            "lb5": {"ci95_rel": med("lb5", "ci95_rel"), "test_s": med("lb5", "test_s"), "process_s": med("lb5", "process_s")},
            "lbN": {"reps": med("lbN", "reps"), "ci95_rel": med("lbN", "ci95_rel"), "test_s": med("lbN", "test_s"),
                    "process_s": med("lbN", "process_s")},
            "test_time_ratio": time_ratio,
            "process_time_ratio": process_ratio,
            "rounds_auto_ci_le_lbN": ci_ok,
            "same_or_tighter_ci": same_ci,
            "lbN_capped": sum(r.n_needed > r.n_cap for r in mine),
            "lbN_needed": [r.n_needed for r in mine],
            "goal_met": time_ratio <= GOAL_TIME_RATIO and same_ci,
            # the same comparison against the N found by search in lb rN's own samples
            "search_n": [n for n, _ in searched],
            "search_test_s": [t for _, t in searched],
            "search_time_ratio": statistics.median(r.runs["auto"].test_s / t for r, (_, t) in zip(mine, searched, strict=True)),
            "search_reached": sum(n is not None for n, _ in searched),
        }
    return out


def print_summary(summary: dict, ci_target: float) -> list[str]:
    lines = ["", f"{'test':<6} {'side':<6} {'reps':>5} {'95% CI':>8} {'test s':>8} {'process s':>10}"]
    for test, s in summary.items():
        for side in ("auto", "lb5", "lbN"):
            v = s[side]
            reps = 5 if side == "lb5" else v["reps"]
            lines.append(f"{test:<6} {side:<6} {reps:>5.0f} {_pct(v['ci95_rel']):>8} {v['test_s']:>8.1f} {v['process_s']:>10.1f}")
    lines.append("(medians over rounds; CI = half-width of the 95% confidence interval of the mean t/s, over the mean)")
    for test, s in summary.items():
        verdict = "MET" if s["goal_met"] else "MISSED"
        capped = (f"; lb rN was capped below the N planned ({s['lbN_needed']}) in {s['lbN_capped']} rounds, "
                  "so it ran fewer repetitions than its plan asked for" if s["lbN_capped"] else "")
        lines.append(
            f"{test}: auto / llama-bench at the same CI: test time {s['test_time_ratio']:.2f}x, process time "
            f"{s['process_time_ratio']:.2f}x; median CI auto {_pct(s['auto']['ci95_rel'])} vs lb rN "
            f"{_pct(s['lbN']['ci95_rel'])} (auto's no wider in {s['rounds_auto_ci_le_lbN']}/{s['rounds']} rounds){capped}; "
            f"auto stopped by {', '.join(s['auto']['stop_reasons'])}; goal (median CI within {SAME_CI_TOLERANCE:.0%} "
            f"of lb rN's or tighter, test time <= {GOAL_TIME_RATIO}x): {verdict}")
    for test, s in summary.items():
        found = ", ".join("not reached" if n is None else str(n) for n in s["search_n"])
        lines.append(
            f"{test}: against N found by search (the shortest start of lb rN's own run reaching auto's CI: {found}): "
            f"test time {s['search_time_ratio']:.2f}x (reached in {s['search_reached']}/{s['rounds']} rounds; "
            "where not reached, lb rN's whole time is a lower bound)")
    lines.append(f"auto = profiler run -r auto --ci-target {ci_target:.0%}; lb r5 = llama-bench -r 5; lb rN = llama-bench "
                 "-r N, N planned for auto's achieved CI from llama-bench's within-run spread, pooled over its runs so far")
    for line in lines:
        print(line)
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="catalogue name (default: the catalogue's default model)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per test (default 3)")
    parser.add_argument("--threads", type=int, default=None, help="threads (default: physical cores)")
    parser.add_argument("--ci-target", type=float, default=0.01, help="auto's target (default 0.01)")
    parser.add_argument("--max-time", type=float, default=adaptive.DEFAULT_MAX_TIME_S, help="auto's --max-time per test")
    parser.add_argument("--max-lb-reps", type=int, default=40, help="cap on N for lb rN (default 40)")
    parser.add_argument("--lb-max-time", type=float, default=120.0,
                        help="seconds one lb rN run may take by lb r5's pace (default 120; caps N on a slow machine)")
    parser.add_argument("--budget", type=float, default=540.0, help="seconds; no round starts that would overrun it")
    parser.add_argument("--summarize", metavar="JSON", help="print the summary of a saved run (results/adaptive_reps.json) "
                        "again, with this version's analysis, without measuring")
    return parser.parse_args(argv)


def load_rounds(path: Path) -> tuple[dict, list[Round]]:
    document = json.loads(path.read_text())
    rounds = []
    for data in document["rounds"]:
        runs = {side: SideRun(**run) for side, run in data.pop("runs").items()}
        rounds.append(Round(**data, runs=runs))
    return document, rounds


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.summarize:
        document, rounds = load_rounds(Path(args.summarize))
        print_summary(summarize(rounds), document["args"]["ci_target"])
        return 0
    started = time.monotonic()
    try:
        spec = resolve_models([args.model] if args.model else [])[0]
        model = catalog.resolve(spec, progress=lambda text: print(text, file=sys.stderr))
        bench = build_tool("llama-bench")
    except (UserError, ToolBuildError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    threads = args.threads or api.describe_device(bandwidth_probe=False).physical_cores
    with tempfile.TemporaryDirectory(prefix="adaptive-reps-") as tmp:  # auto's reports and store
        return measure(args, spec, model, bench, threads, Path(tmp), started)


def measure(args, spec, model: Path, bench: Path, threads: int, work: Path, started: float) -> int:
    ctx = {"bench": bench, "model": model, "name": spec.name, "threads": threads, "ci_target": args.ci_target,
           "max_time": args.max_time, "max_lb_reps": args.max_lb_reps, "lb_max_time": args.lb_max_time, "work": work,
           "clock": CpuClock()}
    header = [f"model: {spec.name} ({model}); threads {threads}; llama-bench {bench}",
              f"llama-bench features: {tool_system_info()}",
              f"load average at start: {load_average()}; {os.cpu_count()} CPUs"]
    for line in header:
        print(line)
    rounds: list[Round] = []
    round_lines: list[str] = []
    estimates = {test: {} for test in TESTS}
    last_round_s = 0.0
    try:
        for index in range(args.rounds):
            if index and time.monotonic() - started + last_round_s > args.budget:
                print(f"stopping after {index} rounds: another would overrun the {args.budget:.0f} s budget")
                break
            round_start = time.monotonic()
            for test in TESTS:
                if index and time.monotonic() - started > args.budget:
                    break
                rnd = one_round(test, orders(index), ctx, estimates[test])
                rounds.append(rnd)
                round_lines.append(print_round(rnd, index + 1, time.monotonic() - started))
            last_round_s = time.monotonic() - round_start
    except (RuntimeError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    summary = summarize(rounds)
    lines = print_summary(summary, args.ci_target)
    others = [r.other_cpus for rnd in rounds for r in rnd.runs.values() if r.other_cpus is not None]
    load_line = (f"machine: {os.cpu_count()} CPUs; other processes kept {statistics.mean(others):.1f} CPUs busy on "
                 f"average during the runs (max {max(others):.1f}); load average now {load_average()}; "
                 f"total {time.monotonic() - started:.0f} s") if others else "machine load: unknown"
    print(load_line)
    save(args, header + round_lines, lines + [load_line], rounds, summary)
    return 0


def save(args, header: list[str], lines: list[str], rounds: list[Round], summary: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    document = {"args": vars(args), "header": header, "summary": summary,
                "rounds": [{**asdict(r), "runs": {k: asdict(v) for k, v in r.runs.items()}} for r in rounds]}
    for name, text in (("adaptive_reps.json", json.dumps(document, indent=1)), ("adaptive_reps.txt", "\n".join(header + lines) + "\n")):
        atomic.write_text(RESULTS / name, text)


if __name__ == "__main__":
    sys.exit(main())
