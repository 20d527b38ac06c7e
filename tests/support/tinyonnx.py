"""Tiny random-weight ONNX decoders in both layouts, built with onnx.helper in well under a second.

Both layouts compute the same function from the same weights - embeddings, ``n_layer`` blocks
of grouped-query attention with rotary positions (rotate-half) and a ReLU MLP, then an LM head -
so a test can check that they agree:

* ``write_plain`` - the Optimum / transformers.js layout: plain ONNX ops, ``position_ids`` input,
  past and present KV tensors concatenated per step; ``config.json`` + ``tokenizer.json``.
* ``write_genai`` - the onnxruntime-genai layout: com.microsoft GroupQueryAttention with its
  rotary caches, seqlens from the attention mask (as the model builder does), and
  ``genai_config.json`` with past/present buffer sharing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SPECIALS = ["<s>", "</s>"]
MERGES = [("Ġ", "t"), ("Ġt", "h"), ("Ġth", "e"), ("t", "h"), ("th", "e")]


@dataclass(frozen=True)
class TinyConfig:
    n_layer: int = 2
    n_head: int = 4
    n_head_kv: int = 2
    head_dim: int = 16
    n_ff: int = 48
    max_pos: int = 256
    seed: int = 0

    @property
    def hidden(self) -> int:
        return self.n_head * self.head_dim


def _byte_chars() -> list[str]:
    """GPT-2's byte -> printable character table (bytes that print as themselves keep their char)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    chars = {}
    shift = 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + shift)
            shift += 1
    return [chars[b] for b in range(256)]


def vocabulary() -> list[str]:
    return _byte_chars() + SPECIALS + ["".join(m) for m in MERGES]


def write_tokenizer(folder: Path) -> None:
    """A byte-level BPE tokenizer.json (GPT-2 style) over the tiny vocabulary."""
    vocab = {tok: i for i, tok in enumerate(vocabulary())}
    added = [{"id": vocab[s], "content": s, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for s in SPECIALS]
    data = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "vocab": vocab, "merges": [f"{a} {b}" for a, b in MERGES]},
    }
    (folder / "tokenizer.json").write_text(json.dumps(data))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "GPT2Tokenizer", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "</s>",
        "add_bos_token": False, "model_max_length": 256,
    }))


def _weights(cfg: TinyConfig, n_vocab: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(cfg.seed)
    h, kvd = cfg.hidden, cfg.n_head_kv * cfg.head_dim

    def w(*shape, scale=0.3):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    weights = {"embed": w(n_vocab, h, scale=1.0), "lm_head": w(h, n_vocab)}
    for i in range(cfg.n_layer):
        weights.update({f"l{i}.wq": w(h, h), f"l{i}.wk": w(h, kvd), f"l{i}.wv": w(h, kvd), f"l{i}.wo": w(h, h),
                        f"l{i}.w1": w(h, cfg.n_ff), f"l{i}.w2": w(cfg.n_ff, h)})
    inv = 1.0 / (10000 ** (np.arange(0, cfg.head_dim, 2) / cfg.head_dim))
    angles = np.outer(np.arange(cfg.max_pos), inv)
    weights["cos_cache"] = np.cos(angles).astype(np.float32)
    weights["sin_cache"] = np.sin(angles).astype(np.float32)
    return weights


def _init(helper, numpy_helper, weights):
    return [numpy_helper.from_array(v, name=k) for k, v in weights.items()]


def _const(helper, numpy_helper, name, value, dtype=np.int64):
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name=name)


def _kv_io(helper, TensorProto, cfg: TinyConfig, past_len: str, total_len: str):
    inputs, outputs = [], []
    for i in range(cfg.n_layer):
        for kind in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(f"past_key_values.{i}.{kind}", TensorProto.FLOAT,
                                                        ["batch_size", cfg.n_head_kv, past_len, cfg.head_dim]))
            outputs.append(helper.make_tensor_value_info(f"present.{i}.{kind}", TensorProto.FLOAT,
                                                         ["batch_size", cfg.n_head_kv, total_len, cfg.head_dim]))
    return inputs, outputs


def _mlp_and_head(helper, nodes, cfg: TinyConfig, x: str, i: int) -> str:
    nodes += [
        helper.make_node("MatMul", [x, f"l{i}.w1"], [f"l{i}.ff1"]),
        helper.make_node("Relu", [f"l{i}.ff1"], [f"l{i}.ffa"]),
        helper.make_node("MatMul", [f"l{i}.ffa", f"l{i}.w2"], [f"l{i}.ff2"]),
        helper.make_node("Add", [x, f"l{i}.ff2"], [f"l{i}.out"]),
    ]
    return f"l{i}.out"


def _rope(helper, nodes, x: str, cos: str, sin: str, tag: str) -> str:
    """rotate-half RoPE on [b, heads, s, d] with cos/sin already [b, 1, s, d/2]."""
    nodes += [
        helper.make_node("Split", [x, "half_split"], [f"{tag}.x1", f"{tag}.x2"], axis=-1),
        helper.make_node("Mul", [f"{tag}.x1", cos], [f"{tag}.a"]),
        helper.make_node("Mul", [f"{tag}.x2", sin], [f"{tag}.b"]),
        helper.make_node("Sub", [f"{tag}.a", f"{tag}.b"], [f"{tag}.r1"]),
        helper.make_node("Mul", [f"{tag}.x2", cos], [f"{tag}.c"]),
        helper.make_node("Mul", [f"{tag}.x1", sin], [f"{tag}.d"]),
        helper.make_node("Add", [f"{tag}.c", f"{tag}.d"], [f"{tag}.r2"]),
        helper.make_node("Concat", [f"{tag}.r1", f"{tag}.r2"], [f"{tag}.rot"], axis=-1),
    ]
    return f"{tag}.rot"


def _plain_graph(cfg: TinyConfig, n_vocab: int, weights: dict):
    from onnx import TensorProto, helper, numpy_helper

    h, d, H, KV = cfg.hidden, cfg.head_dim, cfg.n_head, cfg.n_head_kv
    group = H // KV
    nodes = [
        helper.make_node("Gather", ["embed", "input_ids"], ["x0"]),
        # rotary tables at each query position: [b, s, d/2] -> [b, 1, s, d/2]
        helper.make_node("Gather", ["cos_cache", "position_ids"], ["cos_g"]),
        helper.make_node("Gather", ["sin_cache", "position_ids"], ["sin_g"]),
        helper.make_node("Unsqueeze", ["cos_g", "axis1"], ["cos"]),
        helper.make_node("Unsqueeze", ["sin_g", "axis1"], ["sin"]),
        # causal + padding mask [b, 1, s, t]: key position <= query position and mask == 1
        helper.make_node("Shape", ["attention_mask"], ["mask_shape"]),
        helper.make_node("Gather", ["mask_shape", "one"], ["total_len"]),
        helper.make_node("Range", ["zero", "total_len", "one"], ["key_pos"]),
        helper.make_node("Unsqueeze", ["position_ids", "axis_neg1"], ["q_pos"]),
        helper.make_node("LessOrEqual", ["key_pos", "q_pos"], ["causal"]),
        helper.make_node("Unsqueeze", ["causal", "axis1"], ["causal4"]),
        helper.make_node("Cast", ["attention_mask"], ["pad_bool"], to=TensorProto.BOOL),
        helper.make_node("Unsqueeze", ["pad_bool", "axes12"], ["pad4"]),
        helper.make_node("And", ["causal4", "pad4"], ["allowed"]),
    ]
    x = "x0"
    for i in range(cfg.n_layer):
        t = f"l{i}"
        nodes += [
            helper.make_node("MatMul", [x, f"{t}.wq"], [f"{t}.q2"]),
            helper.make_node("MatMul", [x, f"{t}.wk"], [f"{t}.k2"]),
            helper.make_node("MatMul", [x, f"{t}.wv"], [f"{t}.v2"]),
            helper.make_node("Reshape", [f"{t}.q2", "q_shape"], [f"{t}.q3"]),
            helper.make_node("Reshape", [f"{t}.k2", "kv_shape"], [f"{t}.k3"]),
            helper.make_node("Reshape", [f"{t}.v2", "kv_shape"], [f"{t}.v3"]),
            helper.make_node("Transpose", [f"{t}.q3"], [f"{t}.q4"], perm=[0, 2, 1, 3]),
            helper.make_node("Transpose", [f"{t}.k3"], [f"{t}.k4"], perm=[0, 2, 1, 3]),
            helper.make_node("Transpose", [f"{t}.v3"], [f"{t}.v4"], perm=[0, 2, 1, 3]),
        ]
        q = _rope(helper, nodes, f"{t}.q4", "cos", "sin", f"{t}.rq")
        k = _rope(helper, nodes, f"{t}.k4", "cos", "sin", f"{t}.rk")
        nodes += [
            helper.make_node("Concat", [f"past_key_values.{i}.key", k], [f"present.{i}.key"], axis=2),
            helper.make_node("Concat", [f"past_key_values.{i}.value", f"{t}.v4"], [f"present.{i}.value"], axis=2),
        ]
        for kind in ("key", "value"):  # repeat each KV head for its group of query heads
            nodes += [
                helper.make_node("Unsqueeze", [f"present.{i}.{kind}", "axis2"], [f"{t}.{kind}5"]),
                helper.make_node("Expand", [f"{t}.{kind}5", "group_shape"], [f"{t}.{kind}e"]),
                helper.make_node("Reshape", [f"{t}.{kind}e", "heads_shape"], [f"{t}.{kind}h"]),
            ]
        nodes += [
            helper.make_node("Transpose", [f"{t}.keyh"], [f"{t}.kT"], perm=[0, 1, 3, 2]),
            helper.make_node("MatMul", [q, f"{t}.kT"], [f"{t}.s"]),
            helper.make_node("Mul", [f"{t}.s", "scale"], [f"{t}.ss"]),
            helper.make_node("Where", ["allowed", f"{t}.ss", "neg_inf"], [f"{t}.sm"]),
            helper.make_node("Softmax", [f"{t}.sm"], [f"{t}.p"], axis=-1),
            helper.make_node("MatMul", [f"{t}.p", f"{t}.valueh"], [f"{t}.o4"]),
            helper.make_node("Transpose", [f"{t}.o4"], [f"{t}.o3"], perm=[0, 2, 1, 3]),
            helper.make_node("Reshape", [f"{t}.o3", "hidden_shape"], [f"{t}.o2"]),
            helper.make_node("MatMul", [f"{t}.o2", f"{t}.wo"], [f"{t}.attn"]),
            helper.make_node("Add", [x, f"{t}.attn"], [f"{t}.res"]),
        ]
        x = _mlp_and_head(helper, nodes, cfg, f"{t}.res", i)
    nodes.append(helper.make_node("MatMul", [x, "lm_head"], ["logits"]))
    consts = [
        _const(helper, numpy_helper, "axis1", [1]), _const(helper, numpy_helper, "axis2", [2]),
        _const(helper, numpy_helper, "axis_neg1", [-1]), _const(helper, numpy_helper, "axes12", [1, 2]),
        _const(helper, numpy_helper, "zero", 0), _const(helper, numpy_helper, "one", 1),
        _const(helper, numpy_helper, "q_shape", [0, 0, H, d]), _const(helper, numpy_helper, "kv_shape", [0, 0, KV, d]),
        _const(helper, numpy_helper, "group_shape", [1, 1, group, 1, 1]),
        _const(helper, numpy_helper, "heads_shape", [0, H, -1, d]), _const(helper, numpy_helper, "hidden_shape", [0, 0, h]),
        _const(helper, numpy_helper, "half_split", [d // 2, d // 2]),
        _const(helper, numpy_helper, "scale", 1.0 / np.sqrt(d), np.float32),
        _const(helper, numpy_helper, "neg_inf", -1e9, np.float32),
    ]
    kv_in, kv_out = _kv_io(helper, TensorProto, cfg, "past_sequence_length", "total_sequence_length")
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch_size", "sequence_length"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch_size", "total_sequence_length"]),
        helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["batch_size", "sequence_length"]),
    ] + kv_in
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch_size", "sequence_length", n_vocab])] + kv_out
    graph = helper.make_graph(nodes, "tiny-plain", inputs, outputs, _init(helper, numpy_helper, weights) + consts)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _genai_graph(cfg: TinyConfig, n_vocab: int, weights: dict):
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("Gather", ["embed", "input_ids"], ["x0"]),
        # seqlens_k = sum(mask) - 1 and total length = mask width: the model builder's recipe
        helper.make_node("ReduceSum", ["attention_mask", "axis1"], ["mask_sum"], keepdims=0),
        helper.make_node("Sub", ["mask_sum", "one"], ["seqlens64"]),
        helper.make_node("Cast", ["seqlens64"], ["seqlens_k"], to=TensorProto.INT32),
        helper.make_node("Shape", ["attention_mask"], ["mask_shape"]),
        helper.make_node("Gather", ["mask_shape", "one"], ["total64"]),
        helper.make_node("Cast", ["total64"], ["total_len"], to=TensorProto.INT32),
    ]
    x = "x0"
    for i in range(cfg.n_layer):
        t = f"l{i}"
        nodes += [
            helper.make_node("MatMul", [x, f"{t}.wq"], [f"{t}.q"]),
            helper.make_node("MatMul", [x, f"{t}.wk"], [f"{t}.k"]),
            helper.make_node("MatMul", [x, f"{t}.wv"], [f"{t}.v"]),
            helper.make_node(
                "GroupQueryAttention",
                [f"{t}.q", f"{t}.k", f"{t}.v", f"past_key_values.{i}.key", f"past_key_values.{i}.value",
                 "seqlens_k", "total_len", "cos_cache", "sin_cache"],
                [f"{t}.o2", f"present.{i}.key", f"present.{i}.value"],
                domain="com.microsoft", num_heads=cfg.n_head, kv_num_heads=cfg.n_head_kv, do_rotary=1,
                rotary_interleaved=0,
            ),
            helper.make_node("MatMul", [f"{t}.o2", f"{t}.wo"], [f"{t}.attn"]),
            helper.make_node("Add", [x, f"{t}.attn"], [f"{t}.res"]),
        ]
        x = _mlp_and_head(helper, nodes, cfg, f"{t}.res", i)
    nodes.append(helper.make_node("MatMul", [x, "lm_head"], ["logits"]))
    consts = [_const(helper, numpy_helper, "axis1", [1]), _const(helper, numpy_helper, "one", 1)]
    kv_in, kv_out = _kv_io(helper, TensorProto, cfg, "past_sequence_length", "total_sequence_length")
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch_size", "sequence_length"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch_size", "total_sequence_length"]),
    ] + kv_in
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch_size", "sequence_length", n_vocab])] + kv_out
    graph = helper.make_graph(nodes, "tiny-genai", inputs, outputs, _init(helper, numpy_helper, weights) + consts)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=8)


def _genai_config(cfg: TinyConfig, n_vocab: int) -> dict:
    return {
        "model": {
            "bos_token_id": 256, "eos_token_id": 257, "pad_token_id": 257, "context_length": cfg.max_pos,
            "type": "llama", "vocab_size": n_vocab,
            "decoder": {
                "session_options": {"log_id": "onnxruntime-genai", "provider_options": []},
                "filename": "model.onnx", "head_size": cfg.head_dim, "hidden_size": cfg.hidden,
                "num_attention_heads": cfg.n_head, "num_hidden_layers": cfg.n_layer, "num_key_value_heads": cfg.n_head_kv,
                "inputs": {"input_ids": "input_ids", "attention_mask": "attention_mask",
                           "past_key_names": "past_key_values.%d.key", "past_value_names": "past_key_values.%d.value"},
                "outputs": {"logits": "logits", "present_key_names": "present.%d.key", "present_value_names": "present.%d.value"},
            },
        },
        "search": {"do_sample": False, "max_length": cfg.max_pos, "num_beams": 1, "past_present_share_buffer": True},
    }


def _hf_config(cfg: TinyConfig, n_vocab: int) -> dict:
    return {"model_type": "tiny", "architectures": ["TinyForCausalLM"], "vocab_size": n_vocab,
            "hidden_size": cfg.hidden, "num_attention_heads": cfg.n_head, "num_key_value_heads": cfg.n_head_kv,
            "num_hidden_layers": cfg.n_layer, "max_position_embeddings": cfg.max_pos,
            "bos_token_id": 256, "eos_token_id": 257}


def write_plain(folder: str | Path, cfg: TinyConfig = TinyConfig(), tokenizer: bool = True) -> Path:
    """An Optimum-layout folder: config.json, tokenizer.json and onnx/model.onnx."""
    import onnx

    folder = Path(folder)
    (folder / "onnx").mkdir(parents=True, exist_ok=True)
    n_vocab = len(vocabulary())
    onnx.save(_plain_graph(cfg, n_vocab, _weights(cfg, n_vocab)), folder / "onnx" / "model.onnx")
    (folder / "config.json").write_text(json.dumps(_hf_config(cfg, n_vocab)))
    if tokenizer:
        write_tokenizer(folder)
    return folder


def write_genai(folder: str | Path, cfg: TinyConfig = TinyConfig(), tokenizer: bool = True) -> Path:
    """An onnxruntime-genai folder: genai_config.json, model.onnx and the tokenizer files."""
    import onnx

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n_vocab = len(vocabulary())
    onnx.save(_genai_graph(cfg, n_vocab, _weights(cfg, n_vocab)), folder / "model.onnx")
    (folder / "genai_config.json").write_text(json.dumps(_genai_config(cfg, n_vocab)))
    if tokenizer:
        write_tokenizer(folder)
    return folder


def reference_logits(cfg: TinyConfig, tokens: list[int]) -> np.ndarray:
    """The tiny model's logits for ``tokens`` computed in numpy (what both graphs must produce)."""
    n_vocab = len(vocabulary())
    w = _weights(cfg, n_vocab)
    d, H, KV = cfg.head_dim, cfg.n_head, cfg.n_head_kv
    n = len(tokens)
    x = w["embed"][tokens]
    cos, sin = w["cos_cache"][:n][None], w["sin_cache"][:n][None]  # [1, n, d/2]

    def rope(t):  # t: [heads, n, d]
        a, b = t[..., : d // 2], t[..., d // 2 :]
        return np.concatenate([a * cos - b * sin, b * cos + a * sin], axis=-1)

    causal = np.tril(np.ones((n, n), dtype=bool))
    for i in range(cfg.n_layer):
        q = rope((x @ w[f"l{i}.wq"]).reshape(n, H, d).transpose(1, 0, 2))
        k = rope((x @ w[f"l{i}.wk"]).reshape(n, KV, d).transpose(1, 0, 2))
        v = (x @ w[f"l{i}.wv"]).reshape(n, KV, d).transpose(1, 0, 2)
        k, v = np.repeat(k, H // KV, axis=0), np.repeat(v, H // KV, axis=0)
        s = np.where(causal, q @ k.transpose(0, 2, 1) / np.sqrt(d), -1e9)
        p = np.exp(s - s.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        o = (p @ v).transpose(1, 0, 2).reshape(n, H * d)
        x = x + o @ w[f"l{i}.wo"]
        x = x + np.maximum(x @ w[f"l{i}.w1"], 0) @ w[f"l{i}.w2"]
    return x @ w["lm_head"]
