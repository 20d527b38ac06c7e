"""What the two ONNX Runtime backends share: session settings, tokenizer, model facts."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from profiler.backends.base import ContextParams, ModelFacts, SeqBatch
from profiler.errors import UserError
from profiler.models.onnxinfo import OnnxInfo
from profiler.models.onnxinfo import cached_info as model_info  # noqa: F401 - re-exported for the backends

# --onnx-ep short names -> ONNX Runtime provider names
PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "dml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "qnn": "QNNExecutionProvider",
    "xnnpack": "XnnpackExecutionProvider",
    "webgpu": "WebGpuExecutionProvider",
}
# --onnx-opt values -> (onnxruntime GraphOptimizationLevel attribute, genai_config string)
OPT_LEVELS = {
    "disable": ("ORT_DISABLE_ALL", "ORT_DISABLE_ALL"),
    "basic": ("ORT_ENABLE_BASIC", "ORT_ENABLE_BASIC"),
    "extended": ("ORT_ENABLE_EXTENDED", "ORT_ENABLE_EXTENDED"),
    "all": ("ORT_ENABLE_ALL", "ORT_ENABLE_ALL"),
}


@dataclass(frozen=True)
class SessionSettings:
    """ONNX Runtime session options a run can choose; recorded in every row."""

    execution_provider: str = "cpu"
    graph_optimization: str = "all"

    def __post_init__(self) -> None:
        if self.execution_provider not in PROVIDERS:
            raise UserError(f"--onnx-ep '{self.execution_provider}' is unknown (use one of {', '.join(PROVIDERS)})")
        if self.graph_optimization not in OPT_LEVELS:
            raise UserError(f"--onnx-opt '{self.graph_optimization}' is unknown (use one of {', '.join(OPT_LEVELS)})")

    @property
    def provider_name(self) -> str:
        return PROVIDERS[self.execution_provider]

    def describe(self, threads: int) -> dict:
        return {
            "execution_provider": self.provider_name,
            "intra_op_num_threads": threads,
            "inter_op_num_threads": 1,
            "graph_optimization_level": self.graph_optimization,
        }


def default_threads() -> int:
    """ONNX Runtime's own default: one intra-op thread per physical core."""
    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def check_context(info: OnnxInfo, params: ContextParams) -> None:
    """The graph fixes its KV-cache type; reject -ctk/-ctv values it cannot honour."""
    for flag, kind in (("--cache-type-k", params.type_k), ("--cache-type-v", params.type_v)):
        if kind not in ("f16", info.kv_type):  # f16 is the sweep default, not a user choice
            raise UserError(f"{flag} {kind}: an ONNX model's KV-cache type is fixed by its graph ({info.kv_type} here)")
    if params.n_ctx < 1:
        raise UserError(f"context size {params.n_ctx} is invalid")


class HFTokenizer:
    """A Hugging Face tokenizer.json through the ``tokenizers`` package."""

    def __init__(self, folder: Path) -> None:
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise UserError("tokenizing for plain ONNX models needs the tokenizers package: pip install 'profiler[onnx]'") from None
        try:
            self._tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as exc:  # the Rust side raises a generic Exception on bad files
            raise UserError(f"cannot read {folder / 'tokenizer.json'}: {exc}") from None

    def encode(self, text: str, add_special: bool) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=add_special).ids)

    def vocab_size(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=True)


def bos_facts(encode, bos_config: int | None) -> tuple[bool, int | None]:
    """Whether tokenizing adds a BOS (and which id): the difference between encoding with and
    without special tokens is more reliable than any one config key."""
    try:
        plain, special = encode("a", False), encode("a", True)
    except UserError:
        return False, bos_config
    if len(special) > len(plain) and special[1:] == plain[: len(special) - 1]:
        return True, special[0]
    return False, bos_config


def special_ids(layout) -> dict:
    """bos/eos ids from genai_config.json or config.json."""
    genai_model = (layout.genai_config or {}).get("model") or {}
    hf = layout.hf_config or {}
    return {"bos": genai_model.get("bos_token_id", hf.get("bos_token_id")), "eos": genai_model.get("eos_token_id", hf.get("eos_token_id"))}


def make_facts(info: OnnxInfo, runtime: str, n_vocab: int, add_bos: bool, bos: int | None) -> ModelFacts:
    return ModelFacts(
        description=f"{info.architecture} {info.quant_type} ({runtime}, {info.layout.kind} layout)",
        size_bytes=info.tensor_bytes,
        n_params=info.n_params,
        n_vocab=n_vocab,
        add_bos=add_bos,
        bos_token=bos if isinstance(bos, int) else None,
        extra={"onnx_layout": info.layout.kind, "decoder": str(info.layout.decoder), "kv_type": info.kv_type},
    )


def vocab_from_configs(layout) -> int | None:
    genai_model = (layout.genai_config or {}).get("model") or {}
    return genai_model.get("vocab_size") or (layout.hf_config or {}).get("vocab_size")


def json_overlay(settings: SessionSettings, threads: int) -> str:
    """genai_config overlay applying our session settings to the decoder session."""
    options = {
        "intra_op_num_threads": threads,
        "inter_op_num_threads": 1,
        "graph_optimization_level": OPT_LEVELS[settings.graph_optimization][1],
    }
    return json.dumps({"model": {"decoder": {"session_options": options}}})


def logits_by_sequence(batch: SeqBatch, run_sequence) -> np.ndarray:
    """Logits of ``batch``'s output tokens, each sequence evaluated on its own from an empty
    cache by ``run_sequence(tokens) -> [n, n_vocab]`` (our ONNX sessions run batch size 1)."""
    rows: dict[int, np.ndarray] = {}
    for seq in sorted({s for ids in batch.seq_ids for s in ids}):
        members = sorted((batch.positions[i], i) for i in range(len(batch)) if seq in batch.seq_ids[i])
        if [pos for pos, _ in members] != list(range(len(members))):
            raise ValueError(f"sequence {seq} is not contiguous from position 0")
        wanted = [i for _, i in members if batch.outputs[i] and i not in rows]
        if not wanted:
            continue
        logits = run_sequence([batch.tokens[i] for _, i in members])
        for pos, i in members:
            if i in wanted:
                rows[i] = logits[pos]
    out = [rows[i] for i in range(len(batch)) if batch.outputs[i]]
    return np.stack(out).astype(np.float32, copy=False) if out else np.zeros((0, 0), np.float32)
