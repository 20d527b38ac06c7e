"""Plain-text output of ``profiler fit``: per model the contexts table, the largest context that fits
and where the bytes go (docs/fit.md)."""

from __future__ import annotations

from profiler.analysis.fit import ContextPoint, FitReport

MIB = 2**20


def _mib(num_bytes: float) -> str:
    return f"{num_bytes / MIB:,.0f} MiB"


def _ctx(n: int) -> str:
    return f"{n // 1024}k" if n % 1024 == 0 else str(n)


def _row(p: ContextPoint, n_ctx_train: int) -> str:
    mark = "fits" if p.fits else "does not fit"
    trained = " (trained)" if p.n_ctx == n_ctx_train else ""
    over = " (beyond the trained context)" if n_ctx_train and p.n_ctx > n_ctx_train else ""
    return (f"  {_ctx(p.n_ctx) + trained:>14} {_mib(p.needed_bytes):>11} = weights {_mib(p.weights_bytes - p.reclaimable_bytes)}"
            f" + KV {_mib(p.kv_cache_bytes)} + compute {_mib(p.compute_bytes)} + llama.cpp {_mib(p.library_bytes)}"
            f" + Python {_mib(p.runtime_bytes)}"
            f"  {mark}{over}")


def _kv_lines(r: FitReport) -> list[str]:
    sliding = [k for k in r.kv_layers if k.sliding]
    full = [k for k in r.kv_layers if not k.sliding]
    per = r.kv_layers[0].bytes_per_token if r.kv_layers else 0
    lines = [f"  KV cache ({r.type_k}/{r.type_v}): {per:,.0f} bytes per token per layer; "
             f"{len(full)} global layers keep every token ({per * len(full) / 1024:,.1f} KiB per token)"]
    if sliding:
        lines.append(f"  {len(sliding)} sliding-window layers keep {sliding[0].max_cells} cells at most "
                     f"(window + ubatch): {_mib(per * len(sliding) * sliding[0].max_cells)} whatever the context")
    return lines


def model_text(r: FitReport) -> str:
    lines = [f"{r.model} ({r.architecture}, trained context {r.n_ctx_train or 'unknown'})",
             f"  budget {_mib(r.budget_bytes)} = RAM {_mib(r.ram_bytes)} ({r.ram_source}) - margin {_mib(r.margin_bytes)}"]
    lines += [_row(p, r.n_ctx_train) for p in r.points]
    largest = f"{r.max_ctx:,} tokens" if r.max_ctx else "none"
    lines.append(f"  largest context that fits: {largest} (limit: {r.limit})")
    weights = f"  weights: {_mib(r.tensor_bytes)}, {r.weights_mode}"
    if r.repacked_bytes:
        weights += (f"; {_mib(r.repacked_bytes)} repacked for the CPU at load" +
                    (" (their mapped pages also sit in RSS until the kernel drops them)" if r.use_mmap else ""))
    lines.append(weights)
    lines += _kv_lines(r)
    lines.append(f"  compute: one {r.n_ubatch}-token ubatch step's buffers; flash attention {r.flash_attn}")
    lines.append(f"  estimate: {r.method}; measured: {'yes' if r.measured else 'no'}")
    for v in r.verify:
        if v.measured_bytes is None:
            lines.append(f"  verify {_ctx(v.n_ctx)}: predicted {_mib(v.predicted_bytes)}; {v.why_not}")
        else:
            lines.append(f"  verify {_ctx(v.n_ctx)}: predicted {_mib(v.predicted_bytes)}, measured model peak "
                         f"{_mib(v.measured_bytes)}, predicted/measured {v.ratio:.3f}")
    return "\n".join(lines)


def fit_text(reports: list[FitReport], skipped: list[str]) -> str:
    parts = [model_text(r) for r in reports]
    if skipped:
        parts.append("left out:\n" + "\n".join(f"  {line}" for line in skipped))
    return "\n\n".join(parts)
