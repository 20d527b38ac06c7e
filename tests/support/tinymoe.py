"""A tiny random-weight mixture-of-experts GGUF (llama architecture with routed experts), and its
parameter counts worked out by hand from the shapes, for checking the header reader."""

from __future__ import annotations

from pathlib import Path

from support.tinymodel import _vocab, write_tiny_llama

SHAPE = dict(n_expert=8, n_expert_used=2, n_embd=64, n_layer=2, n_head=2, n_head_kv=1, n_ff=96)


def write_tiny_moe(path: str | Path, **overrides) -> Path:
    """8 experts, 2 used per token, F32 (tinymodel.write_tiny_llama's MoE layout)."""
    return write_tiny_llama(path, n_ctx=512, name="tiny-moe", **{**SHAPE, **overrides})


def expected_counts(n_expert: int = 8, n_expert_used: int = 2, n_embd: int = 64, n_layer: int = 2,
                    n_head: int = 2, n_head_kv: int = 1, n_ff: int = 96) -> dict:
    """Total and active parameters of write_tiny_moe's model, counted by hand from its shapes."""
    n_vocab = len(_vocab()[0])
    kv = n_head_kv * (n_embd // n_head)
    per_layer_dense = 2 * n_embd + 2 * n_embd * n_embd + 2 * kv * n_embd + n_expert * n_embd
    per_expert = 3 * n_ff * n_embd
    dense = 2 * n_vocab * n_embd + n_embd + n_layer * per_layer_dense
    experts = n_layer * n_expert * per_expert
    return {"total": dense + experts, "active": dense + n_layer * n_expert_used * per_expert,
            "expert": experts}
