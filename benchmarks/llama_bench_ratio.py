"""Profiler throughput vs llama-bench on the same model, build, threads and random tokens.

For each test (pp512, tg128) and thread count (1, 2) three sides run in turn for several
rounds: llama-bench; the profiler's Python API as ``profiler run`` uses it (each model's
sweep in a worker process); and the same API in-process (``RunOptions(isolate=False)``).
The order rotates every round so each side goes first, second and third equally often, and
the noise of a shared machine hits all sides alike. llama-bench is built from the installed
llama-cpp-python's own sdist (see llamacpp_tools.py), so all sides run the same kernels. All
use llama-bench's defaults: n_batch 2048, n_ubatch 512, f16 KV cache, flash-attn auto, one
warm-up, uniform random tokens; ``--reps`` repetitions per run.

    .venv/bin/python benchmarks/llama_bench_ratio.py [--rounds 10] [--reps 3] [--threads 1,2] [--append]

The headline ratio is the geometric mean of the per-round ratios (neighbours in time share
the machine's state, so pairing removes the slow part of the noise) with a 95% confidence
interval; the pooled line does the same over the rounds of every case. Child / in-process
shows whether crash isolation changes the numbers (it must not). Also printed: the ratio of
medians, the ratio of the fastest repetitions and the round-to-round spread. Every round line
says how many CPUs *other* processes kept busy during each side's run (from /proc/stat less
this process tree's own CPU time): on a shared 2-core machine a 2-thread run next to one busy
process is dominated by OpenMP oversubscription, and its ratio says nothing about the
profiler. The target is ratio >= 0.98; a miss is reported, not an error; the exit status is
non-zero only when something failed to run. Raw samples go to results/llama_bench_ratio.json;
``--append`` adds a run's rounds to the saved ones, for tighter intervals over several sittings.

Run time: about 20 minutes with the defaults on an idle 2-core machine once llama-bench is
cached (the first call builds it, see llamacpp_tools.py).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

from llamacpp_tools import ToolBuildError, build_tool, tool_system_info  # noqa: E402

from profiler import api, catalog  # noqa: E402
from profiler.compare import student_t_two_sided_p  # noqa: E402
from profiler.errors import UserError  # noqa: E402
from profiler.measure.session import EnergyOptions  # noqa: E402
from profiler.plan import Sweep  # noqa: E402

TARGET = 0.98
QUIET_CPUS = 0.25  # a round counts as busy when other processes kept this many CPUs busy
TESTS = {"pp512": (512, 0), "tg128": (0, 128)}


class Sample(NamedTuple):
    """One run of one side: its mean t/s (llama-bench's avg_ts) and the per-repetition t/s."""

    avg_ts: float
    samples_ts: list[float]


SIDES = ("bench", "child", "inproc")  # llama-bench; the profiler in its worker process; in-process
SIDE_LABEL = {"bench": "llama-bench", "child": "ours (child)", "inproc": "ours (in-process)"}


@dataclass
class Case:
    test: str
    threads: int
    samples: dict[str, list[Sample]] = field(default_factory=lambda: {side: [] for side in SIDES})
    # per round and side: CPUs kept busy by other processes during that side's run
    others: list[dict[str, float | None]] = field(default_factory=list)

    def ts(self, side: str) -> list[float]:
        return [s.avg_ts for s in self.samples[side]]

    def round_ratios(self, side: str, base: str = "bench") -> list[float]:
        return [o / b for o, b in zip(self.ts(side), self.ts(base), strict=False)]

    def ratio(self, side: str, base: str = "bench") -> float:
        """Median of one side's means over the median of the base's (a cross-check of ``paired``)."""
        return statistics.median(self.ts(side)) / statistics.median(self.ts(base))

    def paired(self, side: str, base: str = "bench") -> tuple[float, float, float]:
        """Geometric mean of the per-round ratios with its 95% confidence interval (t on log ratios).

        Neighbours in time share the machine's state, so pairing removes the slow part of
        the noise; the interval says how well the rounds pin the ratio down.
        """
        return geometric_mean_ci(self.round_ratios(side, base))

    def best_ratio(self, side: str, base: str = "bench") -> float:
        """Fastest repetition over fastest repetition: less sensitive to other load on the machine."""
        def best(name: str) -> float:
            return max(v for s in self.samples[name] for v in s.samples_ts)
        return best(side) / best(base)

    def busy_rounds(self) -> int:
        """Rounds in which other processes kept at least QUIET_CPUS busy during some side's run."""
        return sum(any(v is not None and v >= QUIET_CPUS for v in busy.values()) for busy in self.others)

    def as_dict(self) -> dict:
        return {
            "test": self.test, "threads": self.threads,
            "avg_ts": {side: self.ts(side) for side in SIDES},
            "samples_ts": {side: [s.samples_ts for s in self.samples[side]] for side in SIDES},
            "other_cpus": self.others,
            "ratio_child": self.ratio("child"), "ratio_inproc": self.ratio("inproc"),
            "paired_child_ci95": self.paired("child"), "paired_inproc_ci95": self.paired("inproc"),
            "paired_child_over_inproc_ci95": self.paired("child", "inproc"),
            "child_over_inproc": self.ratio("child", "inproc"),
            "best_ratio_child": self.best_ratio("child"), "best_ratio_inproc": self.best_ratio("inproc"),
        }


def geometric_mean_ci(ratios: list[float]) -> tuple[float, float, float]:
    """Geometric mean of ratios and its 95% confidence interval (Student's t on the logs)."""
    logs = [math.log(r) for r in ratios]
    centre = statistics.mean(logs)
    if len(logs) < 2:
        return math.exp(centre), float("nan"), float("nan")
    half = t_quantile_975(len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs))
    return math.exp(centre), math.exp(centre - half), math.exp(centre + half)


def t_quantile_975(df: int) -> float:
    """Student's t 97.5% quantile (two-sided 95%): the t at which profiler.compare's two-sided
    p-value, the one its Welch test uses, falls to 0.05 (bisection; p falls as t grows)."""
    low, high = 0.0, 1000.0
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if student_t_two_sided_p(middle, df) > 0.05 else (low, middle)
    return (low + high) / 2


class CpuClock:
    """How busy the machine was between ``start()`` and ``stop()``, from /proc/stat and our own CPU times.

    ``others`` is the average number of CPUs that processes other than this one and its
    finished children (llama-bench, the profiler's worker) kept busy: the noise measure.
    """

    TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def __init__(self) -> None:
        self.first = self._stat()

    @staticmethod
    def _stat() -> list[int] | None:
        try:
            with open("/proc/stat") as fh:
                return [int(v) for v in fh.readline().split()[1:9]]
        except (OSError, ValueError):
            return None

    @staticmethod
    def _own() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def start(self) -> None:
        self._t0, self._stat0, self._own0 = time.monotonic(), self._stat(), self._own()

    def stop(self) -> float | None:
        """CPUs used by other processes during the interval (None where /proc/stat is missing)."""
        end, stat, own = time.monotonic(), self._stat(), self._own()
        if self._stat0 is None or stat is None or end <= self._t0:
            return None
        delta = [b - a for a, b in zip(self._stat0, stat, strict=False)]
        busy = (sum(delta) - delta[3] - delta[4]) / self.TICK  # all but idle and iowait
        return max(0.0, busy - (own - self._own0)) / (end - self._t0)

    def steal_fraction(self) -> float | None:
        last = self._stat()
        if self.first is None or last is None:
            return None
        delta = [b - a for a, b in zip(self.first, last, strict=False)]
        total = sum(delta)
        return delta[7] / total if total else None


def _cpus(value: float | None) -> str:
    return "?" if value is None else f"{value:.1f}"


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def run_llama_bench(bench: Path, model: Path, n_prompt: int, n_gen: int, threads: int, reps: int, sweep: Sweep) -> Sample:
    argv = [
        str(bench), "-m", str(model), "-p", str(n_prompt), "-n", str(n_gen), "-t", str(threads), "-r", str(reps),
        "-b", str(sweep.n_batch[0]), "-ub", str(sweep.n_ubatch[0]), "-ctk", sweep.type_k[0], "-ctv", sweep.type_v[0],
        "-fa", sweep.flash_attn[0], "-o", "json",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"llama-bench failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    rows = json.loads(done.stdout)
    if len(rows) != 1:
        raise RuntimeError(f"llama-bench printed {len(rows)} results, expected 1")
    return Sample(float(rows[0]["avg_ts"]), [float(v) for v in rows[0]["samples_ts"]])


def run_ours(model_name: str, n_prompt: int, n_gen: int, threads: int, reps: int, isolate: bool) -> Sample:
    sweep = sweep_for(n_prompt, n_gen, threads, reps)
    # idle_s=0: no idle-power baseline (5 s per call) - energy is not compared here
    options = api.RunOptions(save=False, bandwidth_probe=False, energy=EnergyOptions(idle_s=0.0), isolate=isolate)
    run = api.profile([model_name], sweep, options)
    if len(run.rows) != 1:
        failures = "; ".join(str(f.get("error")) for f in getattr(run, "failures", []))
        raise RuntimeError(f"the profiler produced {len(run.rows)} rows, expected 1 {failures}".strip())
    row = run.rows[0]
    return Sample(float(row.avg_ts), [float(v) for v in row.samples_ts])


def sweep_for(n_prompt: int, n_gen: int, threads: int, reps: int) -> Sweep:
    return Sweep(n_prompt=[n_prompt], n_gen=[n_gen], n_threads=[threads], repetitions=reps, random_tokens=True)


def _ci(values: tuple[float, float, float]) -> str:
    centre, low, high = values
    return f"{centre:.3f} [{low:.3f}, {high:.3f}]"


def print_table(cases: list[Case], rounds: int) -> None:
    header = (f"{'test':<7} {'threads':>7} {'llama-bench t/s':>16} {'child t/s':>10} {'in-proc t/s':>11}  "
              f"{'child / llama-bench':<22} {'in-process / llama-bench':<24} {'child / in-process':<22} target")
    print(header)
    print("-" * len(header))
    for c in cases:
        verdict = "met" if min(c.paired("child")[0], c.paired("inproc")[0]) >= TARGET else "MISSED"
        print(
            f"{c.test:<7} {c.threads:>7} {statistics.median(c.ts('bench')):>16.2f} {statistics.median(c.ts('child')):>10.2f} "
            f"{statistics.median(c.ts('inproc')):>11.2f}  {_ci(c.paired('child')):<22} {_ci(c.paired('inproc')):<24} "
            f"{_ci(c.paired('child', 'inproc')):<22} {verdict}"
        )
    print(f"ratios: geometric mean over {rounds} alternating rounds of the per-round ratio of mean t/s, with its 95% "
          f"confidence interval; target >= {TARGET}")
    print("child: api.profile as `profiler run` uses it (one worker process per model); in-process: RunOptions(isolate=False);")
    print("child / in-process near 1.0 shows that crash isolation does not change the numbers")
    if len(cases) > 1:
        pooled = {side: geometric_mean_ci([r for c in cases for r in c.round_ratios(side)]) for side in ("child", "inproc")}
        pooled["child/inproc"] = geometric_mean_ci([r for c in cases for r in c.round_ratios("child", "inproc")])
        print(f"pooled over all {sum(len(c.ts('bench')) for c in cases)} rounds of every case: child / llama-bench "
              f"{_ci(pooled['child'])}, in-process / llama-bench {_ci(pooled['inproc'])}, child / in-process "
              f"{_ci(pooled['child/inproc'])}")
    for c in cases:
        spreads = ", ".join(
            f"{SIDE_LABEL[side]} {(max(c.ts(side)) - min(c.ts(side))) / statistics.median(c.ts(side)):.1%}" for side in SIDES)
        print(f"  {c.test} t={c.threads}: ratio of medians child {c.ratio('child'):.3f}, in-process {c.ratio('inproc'):.3f}; "
              f"best-rep ratio child {c.best_ratio('child'):.3f}, in-process {c.best_ratio('inproc'):.3f}; "
              f"round-to-round spread (max-min)/median: {spreads}; rounds with other processes using "
              f">= {QUIET_CPUS} CPUs: {c.busy_rounds()}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds per case (default 10)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per run, every side (default 3)")
    parser.add_argument("--threads", default="1,2", help="comma list of thread counts (default 1,2)")
    parser.add_argument("--tests", default="pp512,tg128", help=f"comma list of {', '.join(TESTS)} (default both)")
    parser.add_argument("--model", default=None, help="catalogue name (default: the catalogue's default model)")
    parser.add_argument("--append", action="store_true",
                        help="add this run's rounds to those saved in results/llama_bench_ratio.json (same model, reps, cases)")
    args = parser.parse_args(argv)
    args.threads = [int(t) for t in args.threads.split(",") if t.strip()]
    args.tests = [t.strip() for t in args.tests.split(",") if t.strip()]
    unknown = [t for t in args.tests if t not in TESTS]
    if unknown or args.rounds < 1 or args.reps < 1 or not args.threads or min(args.threads) < 1:
        parser.error(f"bad arguments (unknown tests: {unknown})" if unknown else "rounds, reps and threads must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    try:
        spec = api.resolve_models([args.model] if args.model else [])[0]
        model = catalog.resolve(spec, progress=lambda text: print(text, file=sys.stderr))
        bench = build_tool("llama-bench")
    except (UserError, ToolBuildError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    ours_info = api.runtime_info()["llama.cpp"]
    bench_info = tool_system_info()
    print(f"model:        {spec.name} ({model})")
    print(f"llama-bench:  {bench}")
    print(f"  features:   {bench_info}")
    print(f"profiler:     llama-cpp-python {ours_info.get('llama_cpp_python')}")
    print(f"  features:   {ours_info.get('system_info')}")
    if bench_info != ours_info.get("system_info"):
        print("WARNING: the two builds report different CPU features; the comparison is not like for like")

    default = Sweep()
    cases = [Case(test, t) for test in args.tests for t in args.threads]
    earlier = load_earlier(cases, spec.name, args.reps) if args.append else []
    first_new = len(cases[0].others)  # rounds before this run's (with --append)
    clock = CpuClock()
    try:
        for rnd in range(args.rounds):
            for index, case in enumerate(cases):
                n_prompt, n_gen = TESTS[case.test]
                shift = (first_new + rnd + index) % len(SIDES)  # each side goes first, second and third in turn
                order = SIDES[shift:] + SIDES[:shift]
                others: dict[str, float | None] = {}
                for side in order:
                    clock.start()
                    if side == "bench":
                        sample = run_llama_bench(bench, model, n_prompt, n_gen, case.threads, args.reps, default)
                    else:
                        sample = run_ours(spec.name, n_prompt, n_gen, case.threads, args.reps, isolate=side == "child")
                    case.samples[side].append(sample)
                    others[side] = clock.stop()
                case.others.append(others)
                b = case.ts("bench")[-1]
                line = ", ".join(f"{SIDE_LABEL[side]} {case.ts(side)[-1]:.2f}" for side in SIDES)
                print(
                    f"round {first_new + rnd + 1}/{first_new + args.rounds} {case.test} t={case.threads}: {line} t/s; ratios child "
                    f"{case.ts('child')[-1] / b:.3f}, in-process {case.ts('inproc')[-1] / b:.3f} (order {'>'.join(order)}; "
                    f"other processes used {' / '.join(_cpus(others[side]) for side in SIDES)} CPUs) "
                    f"[{time.monotonic() - started:.0f} s]",
                    flush=True,
                )
    except (UserError, RuntimeError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    steal = clock.steal_fraction()

    print()
    print_table(cases, len(cases[0].ts("bench")))
    missed = [f"{c.test} t={c.threads}" for c in cases if min(c.paired("child")[0], c.paired("inproc")[0]) < TARGET]
    print(f"target >= {TARGET}: " + (f"missed for {', '.join(missed)}" if missed else "met for every case"))
    cores = os.cpu_count() or 1
    busy = [v for c in cases for per_side in c.others[first_new:] for v in per_side.values() if v is not None]
    load = load_average()
    print(f"machine: {cores} CPUs; other processes kept {_cpus(statistics.mean(busy) if busy else None)} CPUs busy "
          f"on average during the runs (max {_cpus(max(busy) if busy else None)}); load average now "
          f"{load if load is not None else float('nan'):.1f}; CPU steal {steal if steal is not None else float('nan'):.1%}")
    print(f"total time {time.monotonic() - started:.0f} s")
    save_results(args, spec.name, cases, busy, steal, earlier)
    return 0


RESULTS = Path(__file__).resolve().parent / "results" / "llama_bench_ratio.json"


def load_earlier(cases: list[Case], model_name: str, reps: int) -> list[dict]:
    """--append: put the rounds of the saved results in front of this run's (same model, reps and
    cases, or an error); returns the earlier runs' descriptions."""
    try:
        document = json.loads(RESULTS.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"error: --append needs {RESULTS} ({exc})") from None
    saved = {(c["test"], c["threads"]): c for c in document.get("cases", [])}
    if document.get("model") != model_name or document.get("reps") != reps or set(saved) != {(c.test, c.threads) for c in cases}:
        raise SystemExit(f"error: --append: {RESULTS} holds another model, --reps or set of cases")
    for case in cases:
        old = saved[(case.test, case.threads)]
        for side in SIDES:
            case.samples[side] = [Sample(a, s) for a, s in zip(old["avg_ts"][side], old["samples_ts"][side], strict=True)]
        case.others = list(old["other_cpus"])
    return document.get("runs") or [{"date": document.get("date"), "rounds": document.get("rounds")}]


def save_results(args: argparse.Namespace, model_name: str, cases: list[Case], busy: list[float], steal: float | None,
                 earlier: list[dict]) -> None:
    """Keep the raw per-round samples beside the printed table (benchmarks/results/llama_bench_ratio.json)."""
    out = RESULTS
    out.parent.mkdir(exist_ok=True)
    runs = [*earlier, {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "rounds": args.rounds,
                       "other_cpus_mean": statistics.mean(busy) if busy else None, "cpu_steal": steal}]
    document = {
        "model": model_name, "rounds": len(cases[0].ts("bench")), "reps": args.reps, "target": TARGET, "runs": runs,
        "cases": [c.as_dict() for c in cases],
    }
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    tmp.replace(out)
    print(f"raw samples written to {out}")


if __name__ == "__main__":
    sys.exit(main())
