"""Pre-flight checks: will the model fit in memory, will the download fit on disk?

Users on 4 GB boards hit out-of-memory kills all the time; refusing up front with the estimate
shown (and ``--force`` to override) beats a kill half-way through a sweep.
"""

from __future__ import annotations

from dataclasses import dataclass

from profiler.errors import UserError
from profiler.models.ggufinfo import GGUFInfo
from profiler.models.onnxinfo import OnnxInfo

# Python, numpy, llama.cpp's runtime and our own bookkeeping before any model is loaded.
RUNTIME_OVERHEAD_BYTES = 150 * 2**20
# ONNX Runtime's footprint per byte of initializers, and logits copies per prompt step
# (fitted to measured peak RSS: see estimate_memory_onnx)
ONNX_WEIGHT_FACTOR = {"genai": 1.3, "plain": 1.6}
ONNX_LOGITS_COPIES = 1.3


# llama.cpp's own resident memory beside the tensors and buffers, in the measuring child after the
# load: the CPU backend and its threads, plus the vocabulary's tables (each token's text, score and
# lookup entries). Fitted to the measured model_peak_rss_bytes of SmolLM2 (49k tokens) and Gemma 3
# (262k tokens), checked by benchmarks/fit_accuracy.py (docs/fit.md).
LLAMA_FIXED_BYTES = 16_300_000
LLAMA_VOCAB_BYTES_PER_TOKEN = 135
# Flash attention needs no n_head x n_ubatch x n_ctx score matrix; llama.cpp's "auto" turns it on
# for the CPU backend.
FLASH_ATTN_ON = ("on", "auto")
# n_ubatch x n_ctx f32 matrices a step holds beside the scores (the KQ mask and llama.cpp's copies of
# it), with and without flash attention; fitted with LLAMA_FIXED_BYTES (docs/fit.md)
MASK_ROWS_FLASH = 1.2
MASK_ROWS_PLAIN = 3.0


@dataclass
class MemoryEstimate:
    weights_bytes: int
    kv_cache_bytes: int
    compute_bytes: int
    overhead_bytes: int = RUNTIME_OVERHEAD_BYTES  # Python and our modules: before the model loads
    library_bytes: int = 0  # llama.cpp's own after the load (LLAMA_FIXED_BYTES + vocabulary tables)

    @property
    def model_bytes(self) -> int:
        """What the model itself adds to the process (what model_peak_rss_bytes measures)."""
        return self.weights_bytes + self.kv_cache_bytes + self.compute_bytes + self.library_bytes

    @property
    def total_bytes(self) -> int:
        return self.model_bytes + self.overhead_bytes

    def describe(self) -> str:
        mib = 2**20
        library = f" + llama.cpp {self.library_bytes / mib:.0f}" if self.library_bytes else ""
        return (
            f"{self.total_bytes / mib:.0f} MiB (weights {self.weights_bytes / mib:.0f} + KV cache "
            f"{self.kv_cache_bytes / mib:.0f} + compute {self.compute_bytes / mib:.0f}{library} + runtime "
            f"{self.overhead_bytes / mib:.0f})"
        )


def estimate_memory(info: GGUFInfo, n_ctx: int, n_ubatch: int, type_k: str = "f16", type_v: str = "f16",
                    flash_attn: str = "off", use_mmap: bool = True) -> MemoryEstimate:
    """Memory a benchmark run touches: weights (+ their repacked copies when mapped), the KV cache
    for ``n_ctx`` and llama.cpp's compute buffers for one ``n_ubatch`` step.

    Weights: mapped (``use_mmap``), a tensor the CPU backend repacks is read from its mapped pages
    into the repacked copy, and both stay resident; read into memory (``--no-mmap``), it is read
    straight into the repacked buffer, so every weight counts once.
    """
    repacked = info.repackable_bytes if use_mmap else 0
    return MemoryEstimate(
        weights_bytes=info.tensor_bytes + repacked,
        kv_cache_bytes=info.kv_cache_bytes(n_ctx, type_k, type_v, n_ubatch),
        compute_bytes=compute_bytes(info, n_ctx, n_ubatch, flash_attn),
        library_bytes=library_bytes(info),
    )


def compute_bytes(info: GGUFInfo, n_ctx: int, n_ubatch: int, flash_attn: str = "off") -> int:
    """llama.cpp's compute buffers for one ``n_ubatch`` step at ``n_ctx``.

    One output row of logits (a benchmark asks for the last token's only), FFN activations, the
    KQ mask and, without flash attention, the attention scores of one layer (n_head x n_ubatch x
    n_ctx f32); llama.cpp reuses these buffers across layers, so one layer's worth is the peak.
    Pages llama.cpp allocates but never touches cost no RSS and are not counted.
    """
    ffn = info.n_ff or 4 * info.n_embd  # the header's n_ff, else the usual 4 x n_embd
    attention = MASK_ROWS_FLASH * n_ctx if flash_attn in FLASH_ATTN_ON else (info.n_head + MASK_ROWS_PLAIN) * n_ctx
    return int(4 * (info.n_vocab + n_ubatch * (attention + 3 * ffn + 4 * info.n_embd)))


def library_bytes(info: GGUFInfo) -> int:
    """llama.cpp's own resident memory with this model loaded (LLAMA_FIXED_BYTES + the vocabulary)."""
    return LLAMA_FIXED_BYTES + LLAMA_VOCAB_BYTES_PER_TOKEN * info.n_vocab


def estimate_memory_onnx(info: OnnxInfo, n_ctx: int, n_prompt: int) -> MemoryEstimate:
    """Memory an ONNX Runtime run touches: the initializers as loaded, the KV cache and the
    largest step's logits.

    ONNX Runtime holds more than the initializers' bytes: external data read into memory plus
    the CPU provider's prepacked copies. Measured peak RSS on SmolLM2-135M (genai int4 and fp32
    folders, an Optimum fp32 export; pp16 and pp512) is matched by 150 MiB + 1.3x the
    initializers for genai folders and 1.6x for plain exports (ONNX_WEIGHT_FACTOR): this
    estimate came out 1-15% above every measured peak, never below. A graph whose past and present KV
    are separate tensors (Optimum exports) holds both during a step, so its KV counts twice;
    GroupQueryAttention graphs (the genai builder's) share one buffer of the full context. A
    prompt step returns logits for every prompt token (n_prompt x n_vocab f32), which ONNX
    Runtime and the runtime's output copy hold at once (ONNX_LOGITS_COPIES).
    """
    kv = info.kv_cache_bytes(n_ctx) * (1 if info.shared_kv_buffer else 2)
    return MemoryEstimate(
        weights_bytes=int(info.tensor_bytes * ONNX_WEIGHT_FACTOR[info.layout.kind]),
        kv_cache_bytes=kv,
        compute_bytes=int(4 * info.n_vocab * max(n_prompt, 1) * ONNX_LOGITS_COPIES),
    )


def check_memory(name: str, estimate: MemoryEstimate, available_bytes: int | None, force: bool) -> str | None:
    """Raise if the estimate exceeds available memory (unless forced); return a warning when forced."""
    if available_bytes is None or estimate.total_bytes <= available_bytes:
        return None
    message = (
        f"{name} needs about {estimate.describe()}, but only {available_bytes / 2**20:.0f} MiB is available"
    )
    if force:
        return message + " (--force given: running anyway)"
    raise UserError(message + "; use a smaller model, context (-p/-n/-d) or --force")


def worst_estimate(info: GGUFInfo | OnnxInfo, tests: list, use_mmap: bool = True) -> MemoryEstimate:
    """The largest estimate over the contexts ``tests`` need (a test longer than the model's
    training context is refused here, by plan.context_groups); ``use_mmap``: the sweep's."""
    from profiler.measure.plan import context_groups

    groups = context_groups(tests, info.n_ctx_train or None)
    return max((_group_estimate(info, params, group, use_mmap) for params, group in groups), key=lambda e: e.total_bytes)


def _group_estimate(info: GGUFInfo | OnnxInfo, params, group: list, use_mmap: bool) -> MemoryEstimate:
    if isinstance(info, GGUFInfo):
        return estimate_memory(info, params.n_ctx, params.n_ubatch, params.type_k, params.type_v, params.flash_attn,
                               use_mmap)
    # the longest single step: the prompt, or the depth fill before it
    return estimate_memory_onnx(info, params.n_ctx, max(max(t.n_prompt, t.n_depth) for t in group))


def check_models(models: list, tests: list, available_bytes: int | None, force: bool,
                 use_mmap: bool = True) -> list[str]:
    """Refuse tests longer than a model's context, and (unless forced) models whose estimated
    memory exceeds what is available; ``models`` holds (spec, path, info). Returns the warnings
    of the forced ones."""
    warnings = []
    for spec, _, info in models:
        worst = worst_estimate(info, tests, use_mmap)  # refuses a test longer than the model's context
        warning = check_memory(spec.name, worst, available_bytes, force)
        if warning:
            warnings.append(warning)
    return warnings
