"""Tiny random-weight llama GGUF models, written with the gguf package, for fast tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

WORDS = "the of and to in is was for on as with by at from that this it are be an or".split()


def _vocab() -> tuple[list[str], list[float], list[int]]:
    import gguf

    tokens = ["<unk>", "<s>", "</s>"]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [gguf.TokenType.BYTE] * 256
    pieces = [chr(c) for c in range(33, 127)] + ["\u2581"] + ["\u2581" + w for w in WORDS]
    tokens += pieces
    types += [gguf.TokenType.NORMAL] * len(pieces)
    scores = [0.0] * 259 + [-float(i) for i in range(len(pieces))]
    return tokens, scores, [int(t) for t in types]


def finish_gguf(writer) -> None:
    """Write a GGUFWriter's header, metadata and tensors to its file, and close it."""
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def write_tiny_llama(
    path: str | Path,
    n_embd: int = 64,
    n_layer: int = 2,
    n_head: int = 2,
    n_head_kv: int = 1,
    n_ff: int = 128,
    n_ctx: int = 1024,
    seed: int = 0,
    tied_embeddings: bool = False,
    name: str = "tiny-llama",
    n_expert: int = 0,
    n_expert_used: int = 0,
    sliding_window: int = 0,
    swa_pattern: list[bool] | None = None,
) -> Path:
    """Write a valid llama-architecture GGUF with random F32 weights and an SPM vocabulary.

    With ``n_expert`` > 0 it is a mixture of experts (Mixtral's layout, which llama.cpp runs for the
    llama architecture): each layer has a router ``ffn_gate_inp`` and stacked ``ffn_*_exps`` experts
    of width ``n_ff`` instead of the dense FFN, and ``n_expert_used`` of them run per token.

    ``sliding_window`` / ``swa_pattern`` (one bool per layer, true = sliding window) write the
    sliding-window keys Gemma 3 files carry; llama.cpp's llama architecture ignores them, the header
    reader (and so ``profiler fit``) does not."""
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
    if n_expert:
        writer.add_expert_count(n_expert)
        writer.add_expert_used_count(n_expert_used)
    if sliding_window:
        writer.add_uint32("llama.attention.sliding_window", sliding_window)
        writer.add_array("llama.attention.sliding_window_pattern", list(swa_pattern or []))
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)

    def tensor(name: str, *shape: int, scale: float = 0.05) -> None:
        writer.add_tensor(name, (rng.standard_normal(shape) * scale).astype(np.float32))

    tensor("token_embd.weight", n_vocab, n_embd, scale=0.5)
    for i in range(n_layer):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        tensor(f"blk.{i}.attn_q.weight", n_embd, n_embd)
        tensor(f"blk.{i}.attn_k.weight", n_head_kv * head_dim, n_embd)
        tensor(f"blk.{i}.attn_v.weight", n_head_kv * head_dim, n_embd)
        tensor(f"blk.{i}.attn_output.weight", n_embd, n_embd)
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        if n_expert:  # numpy (n_expert, rows, cols) is ggml's {cols, rows, n_expert}
            tensor(f"blk.{i}.ffn_gate_inp.weight", n_expert, n_embd)
            tensor(f"blk.{i}.ffn_gate_exps.weight", n_expert, n_ff, n_embd)
            tensor(f"blk.{i}.ffn_up_exps.weight", n_expert, n_ff, n_embd)
            tensor(f"blk.{i}.ffn_down_exps.weight", n_expert, n_embd, n_ff)
            continue
        tensor(f"blk.{i}.ffn_gate.weight", n_ff, n_embd)
        tensor(f"blk.{i}.ffn_up.weight", n_ff, n_embd)
        tensor(f"blk.{i}.ffn_down.weight", n_embd, n_ff)
    writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    if not tied_embeddings:
        tensor("output.weight", n_vocab, n_embd, scale=0.5)

    finish_gguf(writer)
    return path
