"""MLPerf Client's LLM categories as token-length shapes, scored by its definitions.

Not an MLPerf result: the tokens are random ids instead of MLPerf Client's prompts, there is no
accuracy gate (MLPerf Client checks the output against expected tokens), generation never stops
early at an end-of-sequence token, and nothing here is a submission or reviewed.

Sources, github.com/mlcommons/mlperf_client at tag v1.5:
- the required categories: ``src/CIL/benchmark_result.h`` (kLLMRequiredCategories: Content
  Generation, Creative Writing, Summarization Light, Summarization Moderate, Code Analysis);
- the lengths: the Llama 3.1 8B prompt files ``data/llama3/prompts/<category>/*.json``: output
  = ``max_length``, input = ``max_total_length - max_length`` (the prompt budget each file sets;
  the real prompts fit within it), averaged over the category's two files;
- the metrics: ``src/CIL/llm/txt2txt_executor.cpp``: per prompt, TTFT = first token time - start
  and TPS = 1 / the mean over runs of (end - first token time) / (tokens - 1), so the first token is
  not counted; per category the mean over its prompts; overall the geometric mean over the
  required categories of TTFT and of TPS, separately.

Our TTFT is MLPerf's (prompt processing + choosing the first token, profiler/measure/runner.py);
``n_gen`` is the output length less one, as the first token comes from the prompt's logits.
"""

from __future__ import annotations

from profiler.measure.suites.base import Figure, Shape, ShapeSamples, Suite, SuiteScore
from profiler.stats import geometric_mean, log_delta_interval, mean

SOURCE = ("github.com/mlcommons/mlperf_client v1.5: src/CIL/benchmark_result.h, "
          "data/llama3/prompts/*/*.json, src/CIL/llm/txt2txt_executor.cpp")

# (category, [(max_total_length, max_length) of each prompt file])
PROMPT_FILES = (
    ("Content Generation", [(448, 256), (448, 256)]),
    ("Creative Writing", [(1088, 512), (960, 512)]),
    ("Summarization, Light", [(1024, 128), (1024, 128)]),
    ("Summarization, Moderate", [(1792, 256), (1664, 256)]),
    ("Code Analysis", [(2368, 128), (2304, 128)]),
)

NOT_MLPERF = ("not an MLPerf result: random token ids instead of MLPerf Client's prompts, no accuracy gate, "
              "no early stop at end of sequence, not a submission")
ONE_REPETITION = "one repetition per test: no spread to estimate an interval from (use -r 2 or more)"


def _shape(category: str, files: list[tuple[int, int]]) -> Shape:
    n_in = round(mean([total - out for total, out in files]))
    n_out = round(mean([out for _, out in files]))
    return Shape(n_in, n_out - 1, category)


SHAPES = tuple(_shape(c, f) for c, f in PROMPT_FILES)


def repetition_latency_ms(s: ShapeSamples) -> list[float]:
    """Each repetition's (end - first token time) / (tokens - 1): the mean time per token after the first."""
    return [mean(rep) for rep in s.itl_ms]


def score(samples: list[ShapeSamples]) -> SuiteScore:
    """Per category TTFT (s) and TPS, and their geometric means, each with a 95% interval."""
    c = len(samples)
    few = None if min(s.repetitions for s in samples) >= 2 else ONE_REPETITION
    ttft_s = [mean(s.ttft_ms) / 1000 for s in samples]
    latencies = [repetition_latency_ms(s) for s in samples]
    tps = [1000 / mean(lat) for lat in latencies]
    ttft_infl = [[t / (c * mean(s.ttft_ms)) for t in s.ttft_ms] for s in samples]
    tps_infl = [[-v / (c * mean(lat)) for v in lat] for lat in latencies]
    geo_ttft, geo_tps = geometric_mean(ttft_s), geometric_mean(tps)
    headline = [
        Figure("TTFT, geometric mean", "s", geo_ttft, log_delta_interval(geo_ttft, ttft_infl), few),
        Figure("TPS, geometric mean", "t/s", geo_tps, log_delta_interval(geo_tps, tps_infl), few),
    ]
    per_shape = []
    for sh, t, r, ti, ri in zip(SHAPES, ttft_s, tps, ttft_infl, tps_infl, strict=True):
        per_shape.append({
            "label": sh.label, "test": sh.test,
            "ttft": Figure("TTFT", "s", t, log_delta_interval(t, [[v * c for v in ti]]), few),
            "tps": Figure("TPS", "t/s", r, log_delta_interval(r, [[v * c for v in ri]]), few),
        })
    return SuiteScore("mlperf-client", headline, per_shape, min(s.repetitions for s in samples), [NOT_MLPERF])


SUITE = Suite("mlperf-client", "MLPerf Client categories (shapes only)", SHAPES, SOURCE, score)
