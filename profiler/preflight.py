"""Pre-flight checks: will the model fit in memory, will the download fit on disk?

Users on 4 GB boards hit out-of-memory kills all the time; refusing up front with the estimate
shown (and ``--force`` to override) beats a kill half-way through a sweep.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from profiler.errors import UserError
from profiler.ggufinfo import GGUFInfo

# Python, numpy, llama.cpp's runtime and our own bookkeeping before any model is loaded.
RUNTIME_OVERHEAD_BYTES = 150 * 2**20


@dataclass
class MemoryEstimate:
    weights_bytes: int
    kv_cache_bytes: int
    compute_bytes: int
    overhead_bytes: int = RUNTIME_OVERHEAD_BYTES

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_cache_bytes + self.compute_bytes + self.overhead_bytes

    def describe(self) -> str:
        mib = 2**20
        return (
            f"{self.total_bytes / mib:.0f} MiB (weights {self.weights_bytes / mib:.0f} + KV cache "
            f"{self.kv_cache_bytes / mib:.0f} + compute {self.compute_bytes / mib:.0f} + runtime {self.overhead_bytes / mib:.0f})"
        )


def estimate_memory(info: GGUFInfo, n_ctx: int, n_ubatch: int, type_k: str = "f16", type_v: str = "f16") -> MemoryEstimate:
    """Memory a benchmark run touches: weights (+ their repacked copies), the KV cache for
    ``n_ctx`` and llama.cpp's compute buffers for one ``n_ubatch`` step.

    Compute: one output row of logits (a benchmark asks for the last token's only), the
    attention scores of one layer (n_head x n_ubatch x n_ctx f32, without flash attention) and
    FFN activations; llama.cpp reuses these buffers across layers, so one layer's worth is the
    peak. Pages llama.cpp allocates but never touches cost no RSS and are not counted.
    """
    ffn = info.n_ff or 4 * info.n_embd  # the header's n_ff, else the usual 4 x n_embd
    compute = 4 * (info.n_vocab + n_ubatch * (info.n_head * n_ctx + 3 * ffn + 4 * info.n_embd))
    return MemoryEstimate(
        weights_bytes=info.tensor_bytes + info.repackable_bytes,
        kv_cache_bytes=info.kv_cache_bytes(n_ctx, type_k, type_v, n_ubatch),
        compute_bytes=compute,
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


def check_disk(folder: Path, needed_bytes: int | None) -> None:
    """Refuse a download that cannot fit (a wheel and the extracted file both land on disk)."""
    if not needed_bytes:
        return
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < 2 * needed_bytes:
        raise UserError(
            f"not enough disk space in {folder}: the download needs about {2 * needed_bytes / 2**20:.0f} MiB, "
            f"{free / 2**20:.0f} MiB free; free space or set PROFILER_CACHE to another disk"
        )
