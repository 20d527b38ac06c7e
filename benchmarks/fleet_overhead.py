"""The fleet's own cost: the same sweep through ``profiler fleet run`` on one local device node and
through ``profiler run``, alternated (issue #13).

A one-machine fleet is started with the real commands (``profiler fleet up --device``, on a
loopback address, token authentication on); each round runs both sides as the user would, in an
order that alternates round by round, with ``-o json`` so the rows are read back exactly. Reported:

* per test, the ratio of mean t/s, fleet / plain (goal >= 0.98): the geometric mean of the
  per-round ratios, with the per-round values;
* the dispatch overhead per test: (fleet wall time - plain wall time) / tests, per round and mean
  (connecting to Ray, probing the device, starting the remote task and the hub, streaming rows).

The machine's load (1-minute load average before and after each side) is printed with every
round: on a shared machine, other work shows there. At the end ``profiler fleet down`` stops the
Ray processes of this fleet by process id (never ``ray stop``, which stops every Ray on the machine).

    .venv/bin/python benchmarks/fleet_overhead.py [--model smollm2-135m-instruct-q4_1] [--rounds 3]
        [-p 512] [-n 128] [-r 2] [--port 6391]

Raw results go to benchmarks/results/fleet_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROFILER = [sys.executable, "-m", "profiler"]
LOOPBACK = "127.0.0.2"  # Ray rewrites 127.0.0.1 to the network address; 127.0.0.2 stays local
DEVICE = "bench-local"


def load1() -> float:
    return os.getloadavg()[0]


def side(args: list[str], env: dict) -> tuple[list[dict], float, tuple[float, float]]:
    before = load1()
    start = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False, cwd=env["BENCH_DIR"])
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[2:5])}... failed ({done.returncode}): {done.stderr.strip()[-400:]}")
    return json.loads(done.stdout), wall, (before, load1())  # -o json prints the rows


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct-q4_1")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("-p", default="512")
    parser.add_argument("-n", default="128")
    parser.add_argument("-r", default="2")
    parser.add_argument("--port", type=int, default=6391)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    env = {**os.environ, "BENCH_DIR": str(work), "PROFILER_REPORTS": str(work / "reports"), "PYTHONPATH": str(ROOT)}
    up = subprocess.run([*PROFILER, "fleet", "up", "--address", LOOPBACK, "--port", str(args.port), "--device", DEVICE],
                        env=env, capture_output=True, text=True, check=False, cwd=work)
    try:
        if up.returncode != 0:
            raise SystemExit(f"fleet up failed: {up.stderr.strip()}")
        sweep = [args.model, "-p", args.p, "-n", args.n, "-r", args.r, "--no-score", "-o", "json",
                 "--models-file", str(ROOT / "models.toml")]
        plain = [*PROFILER, "run", *sweep]
        fleet = [*PROFILER, "fleet", "run", *sweep, "--devices", DEVICE, "--address", f"{LOOPBACK}:{args.port}"]
        rounds = []
        for index in range(args.rounds):
            order = [("plain", plain), ("fleet", fleet)] if index % 2 == 0 else [("fleet", fleet), ("plain", plain)]
            result = {}
            for name, argv in order:
                rows, wall, loads = side(argv, env)
                result[name] = {"wall_s": wall, "load1": loads, "rows": {r["test"]: r for r in rows}}
            tests = sorted(result["plain"]["rows"])
            ratios = {t: result["fleet"]["rows"][t]["avg_ts"] / result["plain"]["rows"][t]["avg_ts"] for t in tests}
            overhead = (result["fleet"]["wall_s"] - result["plain"]["wall_s"]) / len(tests)
            rounds.append({"order": [n for n, _ in order], "ratios": ratios, "overhead_per_test_s": overhead,
                           "walls_s": {n: result[n]["wall_s"] for n in result},
                           "load1": {n: result[n]["load1"] for n in result},
                           "samples_ts": {n: {t: result[n]["rows"][t]["samples_ts"] for t in tests} for n in result}})
            line = ", ".join(f"{t} {r:.3f}" for t, r in ratios.items())
            print(f"round {index + 1} ({' then '.join(n for n, _ in order)}): fleet/plain t/s {line}; "
                  f"overhead {overhead:+.2f} s/test; load1 plain {result['plain']['load1'][0]:.1f}->"
                  f"{result['plain']['load1'][1]:.1f}, fleet {result['fleet']['load1'][0]:.1f}->{result['fleet']['load1'][1]:.1f}",
                  flush=True)
    finally:
        subprocess.run([*PROFILER, "fleet", "down", "--port", str(args.port)], env=env, check=False, cwd=work)
    tests = sorted(rounds[0]["ratios"])
    summary = {t: geomean([r["ratios"][t] for r in rounds]) for t in tests}
    overheads = [r["overhead_per_test_s"] for r in rounds]
    for t in tests:
        verdict = "meets" if summary[t] >= 0.98 else "MISSES"
        print(f"{t}: fleet/plain t/s = {summary[t]:.3f} (geometric mean of {len(rounds)} rounds) - {verdict} the 0.98 goal")
    print(f"dispatch overhead: {sum(overheads) / len(overheads):+.2f} s per test (rounds: "
          f"{', '.join(f'{o:+.2f}' for o in overheads)})")
    out = ROOT / "benchmarks" / "results" / "fleet_overhead.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "cpus": os.cpu_count(), "summary_ratio": summary,
                               "overhead_per_test_s": overheads, "rounds": rounds}, indent=1))
    print(f"raw results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
