"""Profiler throughput vs llama-bench on the same model, build, threads and random tokens.

For each test (pp512, tg128) and thread count (1, 2) llama-bench and the profiler's Python
API are run alternately for several rounds, so the noise of a shared machine hits both
sides alike; the side that goes first alternates too. llama-bench is built from the
installed llama-cpp-python's own sdist (see llamacpp_tools.py) so both run the same
kernels. Both use llama-bench's defaults: n_batch 2048, n_ubatch 512, f16 KV cache,
flash-attn auto, 5 repetitions after one warm-up, uniform random tokens.

    .venv/bin/python benchmarks/llama_bench_ratio.py [--rounds 3] [--reps 5] [--threads 1,2]

The table shows each side's median over the rounds of its mean t/s, their ratio
(ours / llama-bench) and the per-round ratios. The target is ratio >= 0.98; a miss is
reported, not an error (the machine may be noisy); the exit status is non-zero only when
something failed to run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from llamacpp_tools import ToolBuildError, build_tool, tool_system_info  # noqa: E402

from profiler import api, catalog  # noqa: E402
from profiler.errors import UserError  # noqa: E402
from profiler.plan import Sweep  # noqa: E402

TARGET = 0.98
TESTS = {"pp512": (512, 0), "tg128": (0, 128)}


@dataclass
class Case:
    test: str
    threads: int
    bench_ts: list[float] = field(default_factory=list)
    ours_ts: list[float] = field(default_factory=list)

    @property
    def round_ratios(self) -> list[float]:
        return [o / b for o, b in zip(self.ours_ts, self.bench_ts, strict=False)]

    @property
    def ratio(self) -> float:
        return statistics.median(self.ours_ts) / statistics.median(self.bench_ts)


def run_llama_bench(bench: Path, model: Path, n_prompt: int, n_gen: int, threads: int, reps: int, sweep: Sweep) -> float:
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
    return float(rows[0]["avg_ts"])


def run_ours(model_name: str, n_prompt: int, n_gen: int, threads: int, reps: int) -> float:
    sweep = sweep_for(n_prompt, n_gen, threads, reps)
    run = api.profile([model_name], sweep, api.RunOptions(save=False, bandwidth_probe=False))
    if len(run.rows) != 1:
        raise RuntimeError(f"the profiler produced {len(run.rows)} rows, expected 1")
    return float(run.rows[0].avg_ts)


def sweep_for(n_prompt: int, n_gen: int, threads: int, reps: int) -> Sweep:
    return Sweep(n_prompt=[n_prompt], n_gen=[n_gen], n_threads=[threads], repetitions=reps, random_tokens=True)


def print_table(cases: list[Case], rounds: int) -> None:
    header = f"{'test':<7} {'threads':>7} {'llama-bench t/s':>16} {'ours t/s':>10} {'ratio':>7}  {'target':<7} per-round ratios"
    print(header)
    print("-" * len(header))
    for c in cases:
        verdict = "met" if c.ratio >= TARGET else "MISSED"
        per_round = " ".join(f"{r:.3f}" for r in c.round_ratios)
        print(
            f"{c.test:<7} {c.threads:>7} {statistics.median(c.bench_ts):>16.2f} {statistics.median(c.ours_ts):>10.2f} "
            f"{c.ratio:>7.3f}  {verdict:<7} {per_round}"
        )
    print(f"(medians over {rounds} rounds of each side's mean t/s; target: ratio >= {TARGET})")
    for c in cases:
        spread_b = (max(c.bench_ts) - min(c.bench_ts)) / statistics.median(c.bench_ts)
        spread_o = (max(c.ours_ts) - min(c.ours_ts)) / statistics.median(c.ours_ts)
        print(f"  noise {c.test} t={c.threads}: llama-bench spread {spread_b:.1%}, ours spread {spread_o:.1%} "
              f"(max-min over median across rounds)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per case (default 3)")
    parser.add_argument("--reps", type=int, default=5, help="repetitions per run, both sides (default 5)")
    parser.add_argument("--threads", default="1,2", help="comma list of thread counts (default 1,2)")
    parser.add_argument("--tests", default="pp512,tg128", help=f"comma list of {', '.join(TESTS)} (default both)")
    parser.add_argument("--model", default=None, help="catalogue name (default: the catalogue's default model)")
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
    try:
        for rnd in range(args.rounds):
            for index, case in enumerate(cases):
                n_prompt, n_gen = TESTS[case.test]
                bench_first = (rnd + index) % 2 == 0
                for side in ("bench", "ours") if bench_first else ("ours", "bench"):
                    if side == "bench":
                        ts = run_llama_bench(bench, model, n_prompt, n_gen, case.threads, args.reps, default)
                        case.bench_ts.append(ts)
                    else:
                        ts = run_ours(spec.name, n_prompt, n_gen, case.threads, args.reps)
                        case.ours_ts.append(ts)
                print(
                    f"round {rnd + 1}/{args.rounds} {case.test} t={case.threads}: llama-bench {case.bench_ts[-1]:.2f} t/s, "
                    f"ours {case.ours_ts[-1]:.2f} t/s, ratio {case.ours_ts[-1] / case.bench_ts[-1]:.3f} "
                    f"({'llama-bench' if bench_first else 'ours'} first) [{time.monotonic() - started:.0f} s]",
                    flush=True,
                )
    except (UserError, RuntimeError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    print()
    print_table(cases, args.rounds)
    missed = [f"{c.test} t={c.threads}" for c in cases if c.ratio < TARGET]
    print(f"target >= {TARGET}: " + (f"missed for {', '.join(missed)}" if missed else "met for every case"))
    print(f"total time {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
