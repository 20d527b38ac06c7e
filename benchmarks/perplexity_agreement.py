"""``profiler eval`` against ``llama-perplexity``: the same numbers, at least as fast.

On the same model file, text, context, chunks, batch, threads and task subset:

* perplexity (WikiText-2):        ours within 0.5% of llama-perplexity's "Final estimate";
* mean KL-divergence:             within 2% (reference = the F16 reconstruction of the model,
                                  candidate = the model itself, as ``profiler compare-quants``
                                  would pair them);
* HellaSwag accuracy (--tasks N): within 1 point;
* speed: end-to-end wall time of the two processes (load, tokenise, evaluate), run
  alternately for several rounds; ratio = llama-perplexity time / our time, target >= 0.95.

llama-perplexity is built from the installed llama-cpp-python's own sdist by
``llamacpp_tools.build_tool`` (same kernels on both sides).

    .venv/bin/python benchmarks/perplexity_agreement.py [--chunks 40] [--tasks 400] [--rounds 3] [--threads 2]

Results are printed and written to ``benchmarks/results/perplexity_agreement.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from llama_reference import parse_hellaswag, parse_kld, parse_ppl  # noqa: E402
from llamacpp_tools import build_tool  # noqa: E402

from profiler.models import catalog  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"
PROFILER = [sys.executable, "-m", "profiler"]
TARGETS = {"ppl_rel": 0.005, "kld_rel": 0.02, "hellaswag_points": 1.0, "speed_ratio": 0.95}


def _timed(argv: list[str], env: dict | None = None) -> tuple[float, str, str]:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **(env or {})})
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])}... failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds, done.stdout, done.stderr


def _llama(tool: Path, model: Path, threads: int, *args) -> tuple[float, str]:
    seconds, out, err = _timed([str(tool), "-m", str(model), "-t", str(threads), "-ngl", "0", *map(str, args)])
    return seconds, out + err


WORK = Path(tempfile.gettempdir()) / "profiler-agreement"


def _ours(model: Path, threads: int, *args) -> tuple[float, dict]:
    # Our side keeps its quality index and reports in WORK, away from the user's cache.
    env = {"PROFILER_REPORTS": str(WORK / "reports"), "PROFILER_CACHE": str(WORK / "cache")}
    seconds, out, _ = _timed([*PROFILER, "eval", str(model), "-t", str(threads), "--json", *map(str, args)], env=env)
    return seconds, json.loads(out)


def perplexity_case(tool, model, wiki, args) -> dict:
    common = ["-c", args.ctx, "-b", args.batch, "--chunks", args.chunks]
    theirs, ours, ppl_l, ppl_o, unc_l, unc_o, tps = [], [], None, None, None, None, []
    for r in range(args.rounds):
        order = ("llama", "ours") if r % 2 == 0 else ("ours", "llama")
        for side in order:
            if side == "llama":
                seconds, text = _llama(tool, model, args.threads, "-f", wiki, *common)
                theirs.append(seconds)
                parsed = parse_ppl(text)
                ppl_l, unc_l = parsed["ppl"], parsed["ppl_uncertainty"]
            else:
                seconds, data = _ours(model, args.threads, "-f", wiki, *common)
                ours.append(seconds)
                ppl_o, unc_o = data["perplexity"]["ppl"], data["perplexity"]["ppl_uncertainty"]
                tps.append(data["perplexity"]["eval_tokens_per_s"])
    return {
        "llama_ppl": ppl_l, "llama_ppl_uncertainty": unc_l, "our_ppl": ppl_o, "our_ppl_uncertainty": unc_o,
        "ppl_rel_diff": abs(ppl_o - ppl_l) / ppl_l,
        "llama_wall_s": theirs, "our_wall_s": ours, "our_eval_tokens_per_s": tps,
        "speed_ratio": statistics.median(theirs) / statistics.median(ours),
    }


def kld_case(tool, model, reference, wiki, args, work: Path) -> dict:
    common = ["-c", args.ctx, "-b", args.batch, "--chunks", args.kld_chunks]
    base = work / "llama-base.bin"
    _llama(tool, reference, args.threads, "-f", wiki, *common, "--kl-divergence-base", base)
    _, text = _llama(tool, model, args.threads, "--kl-divergence-base", base, "--kl-divergence", *common)
    ours_ref = work / "ours-ref.npz"
    _ours(reference, args.threads, "-f", wiki, *common, "--save-reference", ours_ref, "--top-k", args.top_k)
    _, data = _ours(model, args.threads, "--kld", ours_ref, "-b", args.batch)
    k, theirs = data["kld"], parse_kld(text)
    out = {
        "llama_mean_kld": theirs["mean_kld"], "our_mean_kld": k["mean_kld"],
        "llama_same_top_pct": theirs["same_top_pct"], "our_same_top_pct": k["same_top_pct"],
        "llama_ppl_q": theirs["ppl_q"], "our_ppl_q": k["ppl_q"],
        "llama_ppl_base": theirs["ppl_base"], "our_ppl_base": k["ppl_base"],
        "llama_median_kld": theirs["median_kld"], "our_median_kld": k["kld_percentiles"]["median"],
        "llama_rms_dp_pct": theirs["rms_dp_pct"], "our_rms_dp_pct": k["rms_dp_pct"],
        "top_k": args.top_k, "reference_note": data["kld"]["reference"].get("reconstructed_from"),
    }
    out["kld_rel_diff"] = abs(out["our_mean_kld"] - out["llama_mean_kld"]) / out["llama_mean_kld"]
    base.unlink(missing_ok=True)
    return out


def hellaswag_case(tool, model, hs, args) -> dict:
    theirs, ours, acc_l, acc_o = [], [], None, None
    for r in range(args.rounds):
        order = ("llama", "ours") if r % 2 == 0 else ("ours", "llama")
        for side in order:
            if side == "llama":
                seconds, text = _llama(tool, model, args.threads, "-f", hs, "--hellaswag", "--hellaswag-tasks", args.tasks)
                theirs.append(seconds)
                acc_l = parse_hellaswag(text, args.tasks)["accuracy_pct"]
            else:
                seconds, data = _ours(model, args.threads, "--hellaswag", hs, "--tasks", args.tasks)
                ours.append(seconds)
                acc_o = data["tasks"][0]["accuracy_pct"]
    return {"llama_acc_pct": acc_l, "our_acc_pct": acc_o, "points_diff": abs(acc_o - acc_l),
            "llama_wall_s": theirs, "our_wall_s": ours, "speed_ratio": statistics.median(theirs) / statistics.median(ours)}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="smollm2-135m-instruct-q4_1", help="catalogue name")
    p.add_argument("--ctx", type=int, default=512)
    p.add_argument("--batch", type=int, default=2048)
    p.add_argument("--chunks", type=int, default=40, help="perplexity chunks (speed and PPL)")
    p.add_argument("--kld-chunks", type=int, default=20)
    p.add_argument("--top-k", type=int, default=128)
    p.add_argument("--tasks", type=int, default=400, help="HellaSwag tasks")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--skip", default="", help="comma list of ppl,kld,hellaswag to skip")
    p.add_argument("--update", action="store_true", help="keep the sections of the results file this run skips")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    wiki, hs = DATASETS / "wikitext-2-raw-test.txt", DATASETS / "hellaswag_val_full.txt"
    if not wiki.exists() or not hs.exists():
        print(f"datasets not found in {DATASETS}", file=sys.stderr)
        return 2
    tool = build_tool("llama-perplexity")
    model = catalog.resolve(catalog.load_catalog().get(args.model))
    skip = set(filter(None, args.skip.split(",")))
    results: dict = {"model": args.model, "tool": str(tool), "settings": vars(args), "targets": TARGETS}
    with tempfile.TemporaryDirectory(prefix="ppl-agree-") as tmp:
        work = Path(tmp)
        if "ppl" not in skip:
            results["perplexity"] = perplexity_case(tool, model, wiki, args)
            print(json.dumps({"perplexity": results["perplexity"]}, indent=2), flush=True)
        if "kld" not in skip:
            from profiler.ladder.quantize import build_ladder

            ladder = build_ladder(args.model, [], out_dir=WORK / "ladder")
            results["kld"] = kld_case(tool, model, Path(ladder.reference.path), wiki, args, work)
            print(json.dumps({"kld": results["kld"]}, indent=2), flush=True)
        if "hellaswag" not in skip:
            results["hellaswag"] = hellaswag_case(tool, model, hs, args)
            print(json.dumps({"hellaswag": results["hellaswag"]}, indent=2), flush=True)
    for section in ("perplexity", "kld", "hellaswag"):
        if section in results:  # each section keeps the settings it ran with (--update merges runs)
            results[section]["settings"] = dict(vars(args))
    out = HERE / "results" / "perplexity_agreement.json"
    out.parent.mkdir(exist_ok=True)
    if args.update and out.exists():
        previous = json.loads(out.read_text())
        results = {**{k: v for k, v in previous.items() if k in ("perplexity", "kld", "hellaswag")}, **results}
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
