"""LocalScore (Mozilla Builders, localscore.ai): its nine test shapes and its score.

Source: github.com/Mozilla-Ocho/llamafile, ``localscore/localscore.cpp`` (the shapes in
``get_baseline_test_configs``, the warm-up in ``perform_warmup``, the score in
``getResultsSummary``) and ``localscore/benchmark.cpp`` (what one test times).

Per test and repetition LocalScore times the prompt (n_prompt random tokens in n_batch chunks),
then n_gen single-token decodes of random tokens. Its three figures per test are means over the
repetitions: prompt t/s = n_prompt / prompt time, generation t/s = n_gen / generation time, and
TTFT = from the test's start to the end of the first decode. The score averages each figure
over the nine tests (arithmetic means) and takes

    LocalScore = 10 x cube root(prompt t/s x generation t/s x 1000 / TTFT ms).

Our timings map onto these as: prompt time = our TTFT (prompt processing + choosing the first
token: a random draw of microseconds), generation time = the sum of the test's inter-token
latencies (each decode + choosing the next token, as LocalScore's loop also draws the next token
inside its timer), LocalScore's TTFT = our TTFT + the first inter-token latency (its first
decode). LocalScore warms up once with a pp1024+tg16 pass; we warm each test up (its whole prompt
and one decode), the first test being that same pp1024+tg16.
"""

from __future__ import annotations

import math

from profiler.measure.suites.base import Figure, Shape, ShapeSamples, Suite, SuiteScore
from profiler.stats import geometric_mean, log_delta_interval, mean

SOURCE = ("github.com/Mozilla-Ocho/llamafile localscore/localscore.cpp (get_baseline_test_configs, "
          "getResultsSummary) and localscore/benchmark.cpp")

SHAPES = (
    Shape(1024, 16, "64:1 title generation"),
    Shape(4096, 256, "16:1 content summarization"),
    Shape(2048, 256, "8:1 lots of code to fix"),
    Shape(2048, 768, "3:1 standard code chat"),
    Shape(1024, 1024, "1:1 code back and forth"),
    Shape(1280, 3072, "1:3 reasoning over code"),
    Shape(384, 1152, "1:3 code gen with back and forth"),
    Shape(64, 1024, "1:16 code gen/ideation"),
    Shape(16, 1536, "1:96 QA, storytelling, reasoning"),
)

ONE_REPETITION = "one repetition per test: no spread to estimate an interval from (use -r 2 or more)"


def localscore(prompt_tps: float, gen_tps: float, ttft_ms: float) -> float:
    """LocalScore's formula (getResultsSummary): 10 x (prompt t/s x generation t/s x 1000 / TTFT ms)^(1/3)."""
    return 10 * (prompt_tps * gen_tps * (1000 / ttft_ms)) ** (1 / 3)


def repetition_figures(s: ShapeSamples) -> tuple[list[float], list[float], list[float]]:
    """LocalScore's prompt t/s, generation t/s and TTFT (ms) of each repetition of one test."""
    prompt_tps = [s.n_prompt * 1000 / t for t in s.ttft_ms]
    gen_tps = [s.n_gen * 1000 / math.fsum(rep) for rep in s.itl_ms]
    ttft_ms = [t + rep[0] for t, rep in zip(s.ttft_ms, s.itl_ms, strict=True)]
    return prompt_tps, gen_tps, ttft_ms


def score(samples: list[ShapeSamples]) -> SuiteScore:
    """LocalScore and its three parts, each with its 95% interval (delta method on the log)."""
    k = len(samples)
    reps = [repetition_figures(s) for s in samples]
    per_test = [(mean(p), mean(g), mean(t)) for p, g, t in reps]
    prompt, gen, ttft = (mean([f[i] for f in per_test]) for i in range(3))
    value = localscore(prompt, gen, ttft)
    # d log(score) = (d log P + d log G - d log T) / 3, and P is the mean over k tests of each test's
    # mean over repetitions: a repetition's influence on log P is its prompt t/s / (k P)
    influences = {
        "score": [[(p / prompt + g / gen - t / ttft) / (3 * k) for p, g, t in zip(*r, strict=True)] for r in reps],
        "prompt": [[p / (k * prompt) for p in r[0]] for r in reps],
        "gen": [[g / (k * gen) for g in r[1]] for r in reps],
        "ttft": [[-t / (k * ttft) for t in r[2]] for r in reps],
    }
    few = None if min(s.repetitions for s in samples) >= 2 else ONE_REPETITION
    headline = [
        Figure("LocalScore", "", value, log_delta_interval(value, influences["score"]), few),
        Figure("prompt processing", "t/s", prompt, log_delta_interval(prompt, influences["prompt"]), few),
        Figure("token generation", "t/s", gen, log_delta_interval(gen, influences["gen"]), few),
        Figure("time to first token", "ms", ttft, log_delta_interval(ttft, influences["ttft"]), few),
    ]
    per_shape = [{"label": sh.label, "test": sh.test, "prompt_tps": p, "gen_tps": g, "ttft_ms": t}
                 for sh, (p, g, t) in zip(SHAPES, per_test, strict=True)]
    notes = [f"geometric mean of the three parts' shares: {geometric_mean([prompt, gen, 1000 / ttft]):.4g} "
             "(LocalScore = 10 x this)"]
    return SuiteScore("localscore", headline, per_shape, min(s.repetitions for s in samples), notes)


SUITE = Suite("localscore", "LocalScore", SHAPES, SOURCE, score)
