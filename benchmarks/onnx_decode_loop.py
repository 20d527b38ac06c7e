"""Our ONNX decode loops against a minimal direct onnxruntime-genai generator loop.

On one converted model (default: the catalogue's default GGUF converted to genai-int4), with
the same threads, prompt and number of generated tokens, three loops run alternately for
several rounds (the order rotates each round, so a noisy shared machine hits all alike):

* ``genai-direct`` - onnxruntime-genai's own loop, as its benchmark_e2e.py times it:
  ``append_tokens(prompt)``, then ``generate_next_token()`` per token (greedy search in C++);
* ``ours-genai``   - our OnnxGenaiBackend: ``decode_one(argmax(logits()))`` per token;
* ``ours-ort``     - our OnnxRuntimeBackend (plain onnxruntime, IO binding, shared KV buffer)
  on the same folder's model.onnx: the same weights without onnxruntime-genai.

Our loops are timed wall-clock around the whole loop, argmax and logits copy included (the
profiler's runner leaves them outside its timer; that figure is shown too). Every loop
generates the same greedy tokens (checked). Targets: ours-genai / genai-direct >= 0.98 and
ours-ort / genai-direct >= 0.9 for decode tokens/s. A miss is reported, not an error.

    .venv/bin/python benchmarks/onnx_decode_loop.py [--model DIR] [--rounds 15] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from profiler.backends.base import ContextParams, LoadParams
from profiler.backends.onnx_genai import OnnxGenaiBackend
from profiler.backends.onnx_runtime import OnnxRuntimeBackend
from profiler.measure.plan import TestConfig
from profiler.measure.runner import TokenSource, run_test

TARGETS = {"ours-genai": 0.98, "ours-ort": 0.9}
now = time.perf_counter_ns


def default_model() -> Path:
    from profiler.convert import convert
    from profiler.models import catalog

    gguf = catalog.resolve(catalog.load_catalog().defaults()[0])
    return convert(gguf, ["int4"], ["genai"], progress=lambda t: print(t, file=sys.stderr))[0].path


class GenaiDirect:
    """The minimal generator loop: no profiler code at all."""

    def __init__(self, folder: Path, threads: int) -> None:
        import onnxruntime_genai as og

        self.og = og
        config = og.Config(str(folder))
        options = {"intra_op_num_threads": threads, "inter_op_num_threads": 1, "graph_optimization_level": "ORT_ENABLE_ALL"}
        config.overlay(json.dumps({"model": {"decoder": {"session_options": options}}}))
        self.model = og.Model(config)

    def run(self, prompt: list[int], n_gen: int, n_ctx: int) -> tuple[float, float, list[int]]:
        params = self.og.GeneratorParams(self.model)
        # min_length keeps EOS from ending the loop early: every loop decodes n_gen tokens.
        params.set_search_options(max_length=n_ctx, min_length=len(prompt) + n_gen + 1, do_sample=False)
        generator = self.og.Generator(self.model, params)
        start = now()
        generator.append_tokens(np.asarray(prompt, dtype=np.int32))
        mid = now()
        for _ in range(n_gen):
            generator.generate_next_token()
        end = now()
        tokens = [int(t) for t in generator.get_sequence(0)[len(prompt) :]]
        return mid - start, end - mid, tokens[:n_gen]


class Ours:
    """One of our backends, driven the way the profiler drives it."""

    def __init__(self, backend, path: Path, threads: int, n_ctx: int) -> None:
        self.backend = backend
        self.facts = backend.load(str(path), LoadParams())
        backend.configure(ContextParams(n_ctx=n_ctx, n_batch=2048))
        backend.set_threads(threads)

    def run(self, prompt: list[int], n_gen: int, n_ctx: int) -> tuple[float, float, list[int]]:
        b = self.backend
        b.reset()
        start = now()
        b.prefill(prompt)
        mid = now()
        tokens = []
        for _ in range(n_gen):
            token = int(np.argmax(b.logits()))
            tokens.append(token)
            b.decode_one(token)
        end = now()
        return mid - start, end - mid, tokens

    def runner_decode_ts(self, n_prompt: int, n_gen: int, threads: int) -> float:
        """Decode t/s as `profiler run` reports it (argmax outside the timer)."""
        test = TestConfig(n_prompt, n_gen, 0, threads, 2048, 512, "f16", "f16", "auto")
        timings = run_test(self.backend, test, TokenSource(self.backend, self.facts, False), 1, warmup=False)
        return n_gen * 1e9 / sum(timings.token_ns[0])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, help="A genai folder (default: convert the catalogue default to int4).")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt", type=int, default=128, help="Prompt tokens (from the built-in text).")
    ap.add_argument("--gen", type=int, default=32, help="Generated tokens per loop.")
    ap.add_argument("--json", type=Path, help="Also write the raw numbers here.")
    args = ap.parse_args()
    folder = args.model or default_model()
    n_ctx = args.prompt + args.gen + 8
    loops = {
        "genai-direct": GenaiDirect(folder, args.threads),
        "ours-genai": Ours(OnnxGenaiBackend(), folder, args.threads, n_ctx),
        "ours-ort": Ours(OnnxRuntimeBackend(), folder / "model.onnx", args.threads, n_ctx),
    }
    from profiler.models.textdata import builtin_text

    prompt = loops["ours-genai"].backend.tokenize(builtin_text()[0], add_special=False)[: args.prompt]
    for loop in loops.values():  # warm-up: first runs page weights in and size arenas
        loop.run(prompt, 8, n_ctx)
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in loops}
    sequences = {}
    names = list(loops)
    for r in range(args.rounds):
        for name in names[r % 3 :] + names[: r % 3]:
            prefill_ns, decode_ns, tokens = loops[name].run(prompt, args.gen, n_ctx)
            results[name].append((args.prompt * 1e9 / prefill_ns, args.gen * 1e9 / decode_ns))
            sequences[name] = tokens
        print(f"round {r + 1}/{args.rounds}: " + "  ".join(f"{n} {results[n][-1][1]:.1f} t/s" for n in names), file=sys.stderr)
    runner = {n: loops[n].runner_decode_ts(args.prompt, args.gen, args.threads) for n in ("ours-genai", "ours-ort")}

    base_pp = statistics.median(v[0] for v in results["genai-direct"])
    base_tg = statistics.median(v[1] for v in results["genai-direct"])
    print(f"model {folder}, {args.threads} threads, prompt {args.prompt}, {args.gen} generated, {args.rounds} rounds")
    print(f"{'loop':14} {'prefill t/s':>12} {'decode t/s':>11} {'ratio':>7} {'paired':>7} {'target':>7}  per-round decode ratios")
    for name in names:
        pp = statistics.median(v[0] for v in results[name])
        tg = statistics.median(v[1] for v in results[name])
        # paired: the median of per-round ratios; neighbours in time share the machine's load
        per_round = [v[1] / b[1] for v, b in zip(results[name], results["genai-direct"], strict=True)]
        paired = statistics.median(per_round)
        target = TARGETS.get(name)
        mark = "" if target is None else ("ok" if paired >= target else "MISS")
        print(f"{name:14} {pp:12.1f} {tg:11.1f} {tg / base_tg:7.3f} {paired:7.3f} {target or '':>7} {mark:4} "
              + " ".join(f"{x:.2f}" for x in per_round))
    print("prefill ratios vs genai-direct: " + ", ".join(
        f"{n} {statistics.median(v[0] for v in results[n]) / base_pp:.3f}" for n in names[1:]))
    print("runner-reported decode t/s (argmax outside the timer): " + ", ".join(f"{n} {v:.1f}" for n, v in runner.items()))
    same = all(seq == sequences["genai-direct"] for seq in sequences.values())
    print(f"same greedy tokens in every loop: {same}")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "runner": runner, "same_tokens": same}, indent=2))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
