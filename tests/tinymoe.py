"""A tiny random-weight mixture-of-experts GGUF (llama architecture with routed experts).

llama.cpp runs the llama architecture as an MoE (Mixtral's layout) when the header has
``llama.expert_count``: each layer then has a router ``ffn_gate_inp`` and the stacked expert
weights ``ffn_{gate,up,down}_exps`` instead of the dense ``ffn_{gate,up,down}``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tinymodel import _vocab


def write_tiny_moe(
    path: str | Path,
    n_expert: int = 8,
    n_expert_used: int = 2,
    n_embd: int = 64,
    n_layer: int = 2,
    n_head: int = 2,
    n_head_kv: int = 1,
    n_ff: int = 96,
    n_ctx: int = 512,
    seed: int = 0,
    name: str = "tiny-moe",
) -> Path:
    """Write a valid llama MoE GGUF with F32 weights; returns the path."""
    import gguf

    path = Path(path)
    rng = np.random.default_rng(seed)
    tokens, scores, types = _vocab()
    n_vocab = len(tokens)
    head_dim = n_embd // n_head

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(name)
    writer.add_context_length(n_ctx)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    writer.add_rope_dimension_count(head_dim)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_expert_count(n_expert)
    writer.add_expert_used_count(n_expert_used)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)

    def tensor(tname: str, *shape: int, scale: float = 0.05) -> None:
        writer.add_tensor(tname, (rng.standard_normal(shape) * scale).astype(np.float32))

    tensor("token_embd.weight", n_vocab, n_embd, scale=0.5)
    for i in range(n_layer):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        tensor(f"blk.{i}.attn_q.weight", n_embd, n_embd)
        tensor(f"blk.{i}.attn_k.weight", n_head_kv * head_dim, n_embd)
        tensor(f"blk.{i}.attn_v.weight", n_head_kv * head_dim, n_embd)
        tensor(f"blk.{i}.attn_output.weight", n_embd, n_embd)
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        tensor(f"blk.{i}.ffn_gate_inp.weight", n_expert, n_embd)  # the router
        # numpy (n_expert, rows, cols) is ggml's {cols, rows, n_expert}
        tensor(f"blk.{i}.ffn_gate_exps.weight", n_expert, n_ff, n_embd)
        tensor(f"blk.{i}.ffn_up_exps.weight", n_expert, n_ff, n_embd)
        tensor(f"blk.{i}.ffn_down_exps.weight", n_expert, n_embd, n_ff)
    writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    tensor("output.weight", n_vocab, n_embd, scale=0.5)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


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
