"""The model's own peak memory against llama-bench's whole-process maximum RSS.

``profiler run`` reports ``model_peak_rss_bytes``: the peak RSS during a test minus the RSS the
measuring process had just before the model was loaded (the interpreter, numpy and our modules
are not the model's). llama-bench is a small C++ program, so its maximum RSS is close to what
the model itself needs. This script runs both on the same tests, alternated round by round:

* llama-bench ``-p 512 -n 128 -t 2`` as a child; its maximum RSS from ``wait4``'s rusage
  (``ru_maxrss``, what ``/usr/bin/time -v`` prints as "Maximum resident set size");
* ``profiler run`` on the same tests in its usual child process; the figure compared is the
  largest ``model_peak_rss_bytes`` of the two tests (llama-bench's maximum covers both).

Goal: ratio (ours / llama-bench) within 0.90 .. 1.10. The process peak (``peak_rss_bytes``) is
printed beside it, to show what the interpreter adds. Raw numbers go to
``benchmarks/results/model_memory.json``.

    .venv/bin/python benchmarks/model_memory.py [--model smollm2-135m-instruct-q4_1] [--rounds 3]

llama-bench is built from the installed llama-cpp-python's source by ``llamacpp_tools.py``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from llamacpp_tools import build_tool  # noqa: E402

from profiler.models import catalog  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "model_memory.json"
GOAL = (0.90, 1.10)


def llama_bench_max_rss(bench: Path, model: Path, n_prompt: int, n_gen: int, threads: int, reps: int) -> int:
    """llama-bench's maximum RSS in bytes (the kernel's account of the child, via wait4)."""
    argv = [str(bench), "-m", str(model), "-p", str(n_prompt), "-n", str(n_gen), "-t", str(threads),
            "-r", str(reps), "-o", "json"]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        child = subprocess.Popen(argv, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"llama-bench failed ({child.returncode}): {err.read().decode()[-500:]}")
        out.seek(0)
        rows = json.loads(out.read())
    if len(rows) != 2:
        raise RuntimeError(f"llama-bench printed {len(rows)} results, expected 2")
    max_rss = usage.ru_maxrss * 1024  # KiB on Linux
    # Linux carries the pre-exec image's peak (a copy of this driver's RSS) into ru_maxrss across
    # execve, so the figure is llama-bench's own only while this driver stays smaller.
    if max_rss <= _own_rss_bytes():
        raise RuntimeError("llama-bench's ru_maxrss is no larger than this driver's RSS: it may be the driver's")
    return max_rss


def _own_rss_bytes() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))


def ours(model_name: str, n_prompt: int, n_gen: int, threads: int, reps: int) -> dict:
    """Our model peak and process peak over the two tests, from a real ``profiler run``."""
    argv = [sys.executable, "-m", "profiler", "run", model_name, "-p", str(n_prompt), "-n", str(n_gen),
            "-t", str(threads), "-r", str(reps), "--idle", "0", "--no-bandwidth", "--no-energy", "-o", "json"]
    with tempfile.TemporaryDirectory() as reports:
        done = subprocess.run(argv + ["--reports-dir", reports], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"profiler run failed ({done.returncode}): {done.stderr[-500:]}")
    rows = json.loads(done.stdout)
    return {
        "model_peak_rss_bytes": max(r["model_peak_rss_bytes"] for r in rows),
        "peak_rss_bytes": max(r["peak_rss_bytes"] for r in rows),
        "rss_before_load_bytes": rows[0]["rss_before_load_bytes"],
        "peak_rss_method": rows[0]["peak_rss_method"],
        "by_test": {r["test"]: r["model_peak_rss_bytes"] for r in rows},
    }


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct-q4_1")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reps", type=int, default=2, help="repetitions per test, both sides")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    model = catalog.resolve(catalog.load_catalog().get(args.model))
    bench = build_tool("llama-bench")
    rounds = []
    for index in range(args.rounds):
        load = load_average()
        bench_bytes = llama_bench_max_rss(bench, model, 512, 128, args.threads, args.reps)
        mine = ours(args.model, 512, 128, args.threads, args.reps)
        ratio = mine["model_peak_rss_bytes"] / bench_bytes
        rounds.append({"llama_bench_max_rss_bytes": bench_bytes, **mine, "ratio": ratio, "load_average": load})
        print(f"round {index + 1}: llama-bench max RSS {bench_bytes / 2**20:.1f} MiB | ours: model peak "
              f"{mine['model_peak_rss_bytes'] / 2**20:.1f} MiB (process peak {mine['peak_rss_bytes'] / 2**20:.1f} MiB,"
              f" before load {mine['rss_before_load_bytes'] / 2**20:.1f} MiB) | ratio {ratio:.3f} | load {load}")
    ratios = [r["ratio"] for r in rounds]
    median = statistics.median(ratios)
    verdict = "within" if GOAL[0] <= min(ratios) and max(ratios) <= GOAL[1] else "OUTSIDE"
    print(f"model peak / llama-bench max RSS: median {median:.3f}, range {min(ratios):.3f}..{max(ratios):.3f} "
          f"({verdict} the goal {GOAL[0]}..{GOAL[1]})")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "model": args.model,
        "tests": ["pp512", "tg128"], "threads": args.threads, "reps": args.reps, "rounds": rounds,
        "median_ratio": median, "goal": GOAL,
    }, indent=2) + "\n")
    return 0 if verdict == "within" else 1


if __name__ == "__main__":
    sys.exit(main())
