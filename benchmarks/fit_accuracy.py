"""``profiler fit``'s prediction against the measured model-own peak RSS (``model_peak_rss_bytes``).

For each case, ``profiler fit --verify`` runs the model here at three contexts (one pp512 test at
depth context - 512, in the usual measuring child) and sets the measured peak beside the predicted
one. Cases: SmolLM2 135M (30 global layers), Gemma 3 270M (15 of its 18 layers slide over a
512-token window, so every context here is larger than the window) with an f16 and a q8_0 KV cache.

Goal: predicted / measured within 0.90 .. 1.10 at every context. RSS does not depend on CPU speed,
so the figures hold on a loaded machine. Raw numbers go to ``benchmarks/results/fit_accuracy.json``.

    .venv/bin/python benchmarks/fit_accuracy.py [--contexts 1024,2048,4096]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

from profiler import api
from profiler.analysis.fit import FitSettings

RESULTS = Path(__file__).resolve().parent / "results" / "fit_accuracy.json"
GOAL = (0.90, 1.10)
CASES = [("smollm2-135m-instruct-q4_1", "f16"), ("gemma-3-270m-q4_k_m", "f16"), ("gemma-3-270m-q4_k_m", "q8_0")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contexts", default="1024,2048,4096")
    args = parser.parse_args(argv)
    contexts = [int(c) for c in args.contexts.split(",")]
    rows = []
    for model, kv in CASES:
        settings = FitSettings(type_k=kv, type_v=kv)
        (report,), _ = api.fit([model], settings, verify=True, verify_contexts=contexts)
        for v in report.verify:
            rows.append({"model": model, "kv": kv, "n_ctx": v.n_ctx, "predicted_bytes": v.predicted_bytes,
                         "measured_bytes": v.measured_bytes, "ratio": v.ratio, "why_not": v.why_not})
            shown = f"{v.ratio:.3f}" if v.ratio else v.why_not
            print(f"{model:28} KV {kv:5} ctx {v.n_ctx:6}: predicted {v.predicted_bytes / 2**20:7.1f} MiB, measured "
                  f"{(v.measured_bytes or 0) / 2**20:7.1f} MiB, predicted/measured {shown}", flush=True)
    ratios = [r["ratio"] for r in rows if r["ratio"] is not None]
    ok = len(ratios) == len(rows) and all(GOAL[0] <= r <= GOAL[1] for r in ratios)
    print(f"predicted/measured {min(ratios):.3f} .. {max(ratios):.3f} over {len(ratios)} of {len(rows)} contexts: "
          f"{'within' if ok else 'OUTSIDE'} the goal {GOAL[0]}..{GOAL[1]}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                                   "load_average": os.getloadavg()[0], "goal": GOAL, "rows": rows}, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
