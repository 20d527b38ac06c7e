"""Profiler throughput vs llama-bench, with our sampling on and off, on a quiet and a loaded machine.

Measuring must not slow what it measures (issue #10, 8b). For every case - catalogue model x
test x thread count x condition - the sides run in turn for several rounds:

* ``bench``: llama-bench, built from the installed llama-cpp-python's own sdist (llamacpp_tools.py),
  so every side runs the same kernels;
* ``child``: the profiler's Python API as ``profiler run`` uses it (each model's sweep in a worker
  process), energy and thermal tracking on;
* ``child-off``: the same with tracking off (``--no-energy``): child / child-off is what our
  sampling costs;
* ``inproc`` (optional): the API in-process (``RunOptions(isolate=False)``), tracking on;
* ``minimal`` (optional, tgN only): llama-bench's loop in plain Python over llama-cpp-python,
  no profiler code (minimal_decode.py): what calling llama.cpp per token from Python costs.

Conditions: ``quiet`` (nothing of ours running besides the side), ``loaded`` (one other process
busy on one core: a Python busy loop this script starts before the case's sides and stops after).
The order of the sides rotates every round so each goes first equally often, and the noise of a
shared machine hits all sides alike. All use llama-bench's defaults: n_batch 2048, n_ubatch 512,
f16 KV cache, flash-attn auto, one warm-up, uniform random tokens; ``--reps`` repetitions per run.

    .venv/bin/python benchmarks/llama_bench_ratio.py [--rounds 3] [--models a,b] [--tests tg128]
        [--threads 2] [--conditions quiet,loaded] [--sides bench,child,child-off] [--append]

The headline ratio is the geometric mean of the per-round ratios of mean t/s (neighbours in time
share the machine's state, so pairing removes the slow part of the noise) with a 95% confidence
interval. Targets: ours (child) / llama-bench >= 0.98 quiet and >= 0.95 loaded. Every round line
says how many CPUs *other* processes kept busy (from /proc/stat less this process tree's own CPU
time; the loaded condition's busy loop counts as other): the load other helpers put on a shared
machine shows there. A miss is reported, not an error; the exit status is non-zero only when
something failed to run. Raw samples go to results/llama_bench_ratio.json; ``--append`` adds a
run's rounds to the saved ones (same models, reps and cases).

Run time with the defaults (both catalogue models, tg128 at 2 threads, quiet and loaded, three
sides, 3 rounds, 3 repetitions): about 7 minutes on a 2-core machine once llama-bench is built.
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

from profiler import api, atomic  # noqa: E402
from profiler.backends import runtime_info  # noqa: E402
from profiler.errors import UserError  # noqa: E402
from profiler.measure.plan import Sweep  # noqa: E402
from profiler.measure.session import EnergyOptions  # noqa: E402
from profiler.models import catalog
from profiler.run.options import RunOptions  # noqa: E402
from profiler.sources import resolve_models  # noqa: E402
from profiler.stats import mean, mean_ci_half_width  # noqa: E402

TARGETS = {"quiet": 0.98, "loaded": 0.95}
QUIET_CPUS = 0.25  # a quiet round counts as disturbed when other processes kept this many CPUs busy
TESTS = {"pp512": (512, 0), "tg128": (0, 128)}  # the tests; any ppN or tgN is accepted


def test_shape(name: str) -> tuple[int, int] | None:
    """(n_prompt, n_gen) of ``ppN`` or ``tgN`` (a shorter tg32 makes a quick smoke run on a busy machine)."""
    kind, _, count = name.partition("pp") if name.startswith("pp") else name.partition("tg")
    if not count.isdigit() or int(count) < 1:
        return None
    return (int(count), 0) if name.startswith("pp") else (0, int(count))
DEFAULT_MODELS = ("smollm2-135m-instruct-q4_1", "gemma-3-270m-q4_k_m")
SIDES = ("bench", "child", "child-off", "inproc", "minimal")
SIDE_LABEL = {"bench": "llama-bench", "child": "ours", "child-off": "ours, no sampling", "inproc": "ours in-process",
              "minimal": "minimal Python loop"}
MINIMAL = Path(__file__).resolve().parent / "minimal_decode.py"
CONDITIONS = ("quiet", "loaded")
SCHEMA = 2


class Sample(NamedTuple):
    """One run of one side: its mean t/s (llama-bench's avg_ts) and the per-repetition t/s."""

    avg_ts: float
    samples_ts: list[float]


@dataclass
class Case:
    model: str
    test: str
    threads: int
    condition: str
    sides: tuple[str, ...]
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    # per round and side: CPUs kept busy by other processes during that side's run
    others: list[dict[str, float | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for side in self.sides:
            self.samples.setdefault(side, [])

    @property
    def key(self) -> tuple[str, str, int, str]:
        return self.model, self.test, self.threads, self.condition

    @property
    def label(self) -> str:
        return f"{self.model} {self.test} t={self.threads} {self.condition}"

    def ts(self, side: str) -> list[float]:
        return [s.avg_ts for s in self.samples[side]]

    def round_ratios(self, side: str, base: str = "bench") -> list[float]:
        return [o / b for o, b in zip(self.ts(side), self.ts(base), strict=False)]

    def paired(self, side: str, base: str = "bench") -> tuple[float, float, float]:
        return geometric_mean_ci(self.round_ratios(side, base))

    def as_dict(self) -> dict:
        pairs = {f"{a}/{b}": self.paired(a, b) for a, b in ratio_pairs(self.sides)}
        return {
            "model": self.model, "test": self.test, "threads": self.threads, "condition": self.condition,
            "avg_ts": {side: self.ts(side) for side in self.sides},
            "samples_ts": {side: [s.samples_ts for s in self.samples[side]] for side in self.sides},
            "other_cpus": self.others, "paired_ci95": pairs,
        }


def ratio_pairs(sides: tuple[str, ...]) -> list[tuple[str, str]]:
    """The ratios worth printing: every profiler side over llama-bench, and tracking on over off."""
    pairs = [(side, "bench") for side in sides if side != "bench" and "bench" in sides]
    if "child" in sides and "child-off" in sides:
        pairs.append(("child", "child-off"))
    return pairs


def geometric_mean_ci(ratios: list[float]) -> tuple[float, float, float]:
    """Geometric mean of ratios and its 95% confidence interval (Student's t on the logs)."""
    logs = [math.log(r) for r in ratios]
    centre = mean(logs)
    half = mean_ci_half_width(logs)
    if half is None:
        return math.exp(centre), float("nan"), float("nan")
    return math.exp(centre), math.exp(centre - half), math.exp(centre + half)


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


def run_minimal(model: Path, n_prompt: int, n_gen: int, threads: int, reps: int, sweep: Sweep) -> Sample:
    """llama-bench's tg loop written in plain Python over llama-cpp-python (minimal_decode.py)."""
    if n_prompt:
        raise RuntimeError("the minimal side runs tgN tests only")
    argv = [sys.executable, str(MINIMAL), str(model), str(n_gen), str(threads), str(reps), str(sweep.n_batch[0]),
            str(sweep.n_ubatch[0]), sweep.flash_attn[0]]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"minimal_decode.py failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    samples = json.loads(done.stdout.strip().splitlines()[-1])["samples_ts"]
    return Sample(statistics.mean(samples), samples)


def run_ours(model_name: str, n_prompt: int, n_gen: int, threads: int, reps: int, isolate: bool,
             track: bool) -> Sample:
    sweep = Sweep(n_prompt=[n_prompt], n_gen=[n_gen], n_threads=[threads], repetitions=reps, random_tokens=True)
    # idle_s=0: no idle-power baseline (5 s per call); track=False is --no-energy
    energy = EnergyOptions(idle_s=0.0, track=track)
    options = RunOptions(save=False, bandwidth_probe=False, energy=energy, isolate=isolate)
    run = api.profile([model_name], sweep, options)
    if len(run.rows) != 1:
        failures = "; ".join(str(f.get("error")) for f in getattr(run, "failures", []))
        raise RuntimeError(f"the profiler produced {len(run.rows)} rows, expected 1 {failures}".strip())
    row = run.rows[0]
    return Sample(float(row.avg_ts), [float(v) for v in row.samples_ts])


class BusyLoad:
    """The loaded condition: one other process, a Python busy loop, for the length of a case."""

    def __init__(self, active: bool) -> None:
        self.active = active
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> BusyLoad:
        if self.active:
            self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            time.sleep(0.5)  # let it reach the CPU before the first side starts
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()


def run_side(side: str, case: Case, bench: Path, paths: dict[str, Path], reps: int, default: Sweep) -> Sample:
    n_prompt, n_gen = test_shape(case.test)
    if side == "bench":
        return run_llama_bench(bench, paths[case.model], n_prompt, n_gen, case.threads, reps, default)
    if side == "minimal":
        return run_minimal(paths[case.model], n_prompt, n_gen, case.threads, reps, default)
    return run_ours(case.model, n_prompt, n_gen, case.threads, reps, isolate=side != "inproc", track=side != "child-off")


def _ci(values: tuple[float, float, float]) -> str:
    centre, low, high = values
    return f"{centre:.3f} [{low:.3f}, {high:.3f}]" if not math.isnan(low) else f"{centre:.3f} (1 round)"


def verdict(case: Case) -> str:
    """met / MISSED, or why the case cannot be judged: its condition did not hold (other processes
    kept CPUs busy in a quiet case, or more than the one busy process in a loaded case)."""
    if "child" not in case.sides or "bench" not in case.sides:
        return "-"
    busy = [v for per_side in case.others for v in per_side.values() if v is not None]
    allowed = QUIET_CPUS + (1.0 if case.condition == "loaded" else 0.0)  # the loaded case's own busy loop
    if busy and statistics.mean(busy) >= allowed:
        return f"not judged: {case.condition} did not hold ({statistics.mean(busy):.1f} CPUs busy elsewhere)"
    return "met" if case.paired("child")[0] >= TARGETS[case.condition] else "MISSED"


def print_table(cases: list[Case]) -> None:
    pairs = ratio_pairs(cases[0].sides)
    header = f"{'case':<46} " + " ".join(f"{SIDE_LABEL[s] + ' t/s':>18}" for s in cases[0].sides)
    header += "  " + "  ".join(f"{SIDE_LABEL[a] + ' / ' + SIDE_LABEL[b]:<30}" for a, b in pairs) + "  target"
    print(header)
    print("-" * len(header))
    for c in cases:
        rates = " ".join(f"{statistics.median(c.ts(s)):>18.2f}" for s in c.sides)
        ratios = "  ".join(f"{_ci(c.paired(a, b)):<30}" for a, b in pairs)
        print(f"{c.label:<46} {rates}  {ratios}  >= {TARGETS[c.condition]} {verdict(c)}")
    print(f"ratios: geometric mean over {len(cases[0].ts(cases[0].sides[0]))} alternating rounds of the per-round "
          "ratio of mean t/s, with its 95% confidence interval")
    if ("child", "child-off") in pairs:
        for condition in CONDITIONS:
            ratios = [r for c in cases if c.condition == condition for r in c.round_ratios("child", "child-off")]
            if ratios:
                print(f"sampling cost, {condition}: ours with tracking / without, pooled over every model: "
                      f"{_ci(geometric_mean_ci(ratios))} (1.0 = free)")
    for c in cases:
        spread = ", ".join(f"{SIDE_LABEL[s]} {(max(c.ts(s)) - min(c.ts(s))) / statistics.median(c.ts(s)):.1%}"
                           for s in c.sides)
        busy = [v for per_side in c.others for v in per_side.values() if v is not None]
        print(f"  {c.label}: round-to-round spread (max-min)/median: {spread}; other processes kept "
              f"{_cpus(statistics.mean(busy) if busy else None)} CPUs busy on average (max {_cpus(max(busy) if busy else None)})")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per case (default 3)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per run, every side (default 3)")
    parser.add_argument("--threads", default="2", help="comma list of thread counts (default 2)")
    parser.add_argument("--tests", default="tg128", help="comma list of ppN / tgN tests (default tg128)")
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help="catalogue names (default: both catalogue models)")
    parser.add_argument("--conditions", default="quiet,loaded", help="quiet, loaded or both (default both)")
    parser.add_argument("--sides", default="bench,child,child-off", help=f"comma list of {', '.join(SIDES)}")
    parser.add_argument("--results", type=Path, default=None,
                        help="where to write the raw samples (default results/llama_bench_ratio.json)")
    parser.add_argument("--append", action="store_true",
                        help="add this run's rounds to those saved in results/llama_bench_ratio.json (same cases and reps)")
    args = parser.parse_args(argv)
    split = lambda text: [t.strip() for t in text.split(",") if t.strip()]  # noqa: E731
    args.threads = [int(t) for t in split(args.threads)]
    args.tests, args.models, args.conditions = split(args.tests), split(args.models), split(args.conditions)
    args.sides = tuple(split(args.sides))
    bad = ([t for t in args.tests if test_shape(t) is None] + [c for c in args.conditions if c not in CONDITIONS]
           + [s for s in args.sides if s not in SIDES])
    if bad or args.rounds < 1 or args.reps < 1 or not args.threads or min(args.threads) < 1 or not args.models:
        parser.error(f"unknown: {', '.join(bad)}" if bad else "rounds, reps, threads and models must be given and >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    try:
        specs = resolve_models(args.models)
        paths = {spec.name: catalog.resolve(spec, progress=lambda text: print(text, file=sys.stderr)) for spec in specs}
        bench = build_tool("llama-bench") if "bench" in args.sides else Path("llama-bench")
    except (UserError, ToolBuildError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    ours_info = runtime_info()["llama.cpp"]
    print(f"models:       {', '.join(f'{name} ({path.name})' for name, path in paths.items())}")
    if "bench" in args.sides:
        bench_info = tool_system_info()
        print(f"llama-bench:  {bench}\n  features:   {bench_info}")
        if bench_info != ours_info.get("system_info"):
            print("WARNING: the two builds report different CPU features; the comparison is not like for like")
    print(f"profiler:     llama-cpp-python {ours_info.get('llama_cpp_python')}\n  features:   {ours_info.get('system_info')}")

    default = Sweep()
    cases = [Case(spec.name, test, t, condition, args.sides) for condition in args.conditions for spec in specs
             for test in args.tests for t in args.threads]
    global RESULTS
    RESULTS = args.results or RESULTS
    earlier = load_earlier(cases, args.reps) if args.append else []
    first_new = len(cases[0].others)
    clock = CpuClock()
    try:
        for rnd in range(args.rounds):
            for index, case in enumerate(cases):
                shift = (first_new + rnd + index) % len(case.sides)  # each side goes first in turn
                order = case.sides[shift:] + case.sides[:shift]
                others: dict[str, float | None] = {}
                with BusyLoad(case.condition == "loaded"):
                    for side in order:
                        clock.start()
                        case.samples[side].append(run_side(side, case, bench, paths, args.reps, default))
                        others[side] = clock.stop()
                case.others.append(others)
                line = ", ".join(f"{SIDE_LABEL[s]} {case.ts(s)[-1]:.2f}" for s in case.sides)
                ratios = ", ".join(f"{a}/{b} {case.ts(a)[-1] / case.ts(b)[-1]:.3f}" for a, b in ratio_pairs(case.sides))
                print(f"round {first_new + rnd + 1}/{first_new + args.rounds} {case.label}: {line} t/s; {ratios} "
                      f"(order {'>'.join(order)}; other processes used "
                      f"{' / '.join(_cpus(others[s]) for s in case.sides)} CPUs) [{time.monotonic() - started:.0f} s]",
                      flush=True)
    except (UserError, RuntimeError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    steal = clock.steal_fraction()
    print()
    print_table(cases)
    missed = [c.label for c in cases if verdict(c) == "MISSED"]
    unjudged = [c.label for c in cases if verdict(c).startswith("not judged")]
    print("targets (ours / llama-bench >= 0.98 quiet, >= 0.95 loaded): "
          + (f"missed for {', '.join(missed)}" if missed else "met for every judged case")
          + (f"; not judged (the machine was busier than the condition): {', '.join(unjudged)}" if unjudged else ""))
    quiet_busy = [v for c in cases if c.condition == "quiet" for per in c.others[first_new:] for v in per.values()
                  if v is not None]
    load = load_average()
    print(f"machine: {os.cpu_count()} CPUs; during the quiet cases other processes kept "
          f"{_cpus(statistics.mean(quiet_busy) if quiet_busy else None)} CPUs busy on average (max "
          f"{_cpus(max(quiet_busy) if quiet_busy else None)}; rounds above {QUIET_CPUS} are not quiet); load average now "
          f"{load if load is not None else float('nan'):.1f}; CPU steal {steal if steal is not None else float('nan'):.1%}")
    print(f"total time {time.monotonic() - started:.0f} s")
    save_results(args, cases, quiet_busy, steal, earlier)
    return 0


RESULTS = Path(__file__).resolve().parent / "results" / "llama_bench_ratio.json"


def load_earlier(cases: list[Case], reps: int) -> list[dict]:
    """--append: put the saved rounds of the same cases in front of this run's."""
    try:
        document = json.loads(RESULTS.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"error: --append needs {RESULTS} ({exc})") from None
    saved = {(c["model"], c["test"], c["threads"], c["condition"]): c for c in document.get("cases", [])
             if document.get("schema") == SCHEMA}
    if document.get("reps") != reps or set(saved) != {c.key for c in cases}:
        raise SystemExit(f"error: --append: {RESULTS} holds other cases or another --reps")
    for case in cases:
        old = saved[case.key]
        if set(old["avg_ts"]) != set(case.sides):
            raise SystemExit(f"error: --append: {RESULTS} holds other --sides")
        for side in case.sides:
            case.samples[side] = [Sample(a, s) for a, s in zip(old["avg_ts"][side], old["samples_ts"][side], strict=True)]
        case.others = list(old["other_cpus"])
    return document.get("runs") or []


def save_results(args: argparse.Namespace, cases: list[Case], quiet_busy: list[float], steal: float | None,
                 earlier: list[dict]) -> None:
    """Keep the raw per-round samples beside the printed table (benchmarks/results/llama_bench_ratio.json)."""
    RESULTS.parent.mkdir(exist_ok=True)
    runs = [*earlier, {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "rounds": args.rounds,
                       "quiet_other_cpus_mean": statistics.mean(quiet_busy) if quiet_busy else None, "cpu_steal": steal}]
    document = {"schema": SCHEMA, "rounds": len(cases[0].others), "reps": args.reps, "targets": TARGETS, "runs": runs,
                "cases": [c.as_dict() for c in cases]}
    atomic.write_text(RESULTS, json.dumps(document, indent=2) + "\n")
    print(f"raw samples written to {RESULTS}")


if __name__ == "__main__":
    sys.exit(main())
