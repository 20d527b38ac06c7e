"""What we need to know about an ONNX decoder, read from its graph and the files beside it.

Two layouts are understood:

* **genai** - an onnxruntime-genai model folder: ``genai_config.json`` names the decoder file,
  the tokenizer files sit beside it. The builder's graphs use GroupQueryAttention, whose KV
  cache is one buffer of the full context length shared by the past input and present output.
* **plain** - an Optimum / transformers.js export: ``model.onnx`` (or ``onnx/model*.onnx``)
  with ``input_ids``, ``attention_mask``, optional ``position_ids`` and
  ``past_key_values.N.key/value`` inputs, ``logits`` and ``present.N.key/value`` outputs;
  ``config.json`` and ``tokenizer.json`` in the folder or its parent.

Sizes come from initializer metadata only (external data is never read), so this is cheap even
for large models. Parameter counts are estimates: quantization scales and rotary caches are left
out, and an export that duplicates tied embeddings counts them twice.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from profiler.errors import UserError

GENAI_CONFIG = "genai_config.json"
PAST_NAME = re.compile(r"^past_key_values\.(\d+)\.(key|value)$")
# ONNX TensorProto element types -> (our name, bytes per element)
ELEM_TYPES = {
    1: ("f32", 4), 2: ("u8", 1), 3: ("i8", 1), 4: ("u16", 2), 5: ("i16", 2), 6: ("i32", 4), 7: ("i64", 8),
    9: ("bool", 1), 10: ("f16", 2), 11: ("f64", 8), 12: ("u32", 4), 13: ("u64", 8), 16: ("bf16", 2),
    21: ("u4", 0.5), 22: ("i4", 0.5),
}
KV_TYPE_BYTES = {"f32": 4, "f16": 2, "bf16": 2}
ROTARY_CACHES = ("cos_cache", "sin_cache")
INDEX_TYPES = {6, 7, 9}  # int32, int64, bool initializers: shapes, axes, masks


@dataclass
class OnnxLayout:
    """Where the pieces of an ONNX model are."""

    path: Path  # what the user gave (folder or file)
    decoder: Path  # the decoder graph
    kind: str  # "genai" or "plain"
    genai_config: dict | None = None
    hf_config: dict | None = None
    tokenizer_dir: Path | None = None

    @property
    def folder(self) -> Path:
        return self.decoder.parent


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from None


def _pick_decoder(folder: Path) -> Path:
    for candidate in (folder / "model.onnx", folder / "onnx" / "model.onnx", folder / "decoder_model_merged.onnx"):
        if candidate.is_file():
            return candidate
    found = sorted(folder.glob("*.onnx")) + sorted(folder.glob("onnx/*.onnx"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise UserError(f"{folder} has no .onnx model (expected genai_config.json, model.onnx or onnx/model.onnx)")
    names = ", ".join(str(p.relative_to(folder)) for p in found[:6])
    raise UserError(f"{folder} holds several ONNX models ({names}); give the path of the one to use")


def _beside(decoder: Path, name: str) -> Path | None:
    """``name`` next to the decoder or one folder up (Optimum keeps onnx/ under the model root)."""
    for folder in (decoder.parent, decoder.parent.parent):
        if (folder / name).is_file():
            return folder / name
    return None


def find_layout(path: str | os.PathLike) -> OnnxLayout:
    """Locate the decoder graph, configs and tokenizer of the ONNX model at ``path``."""
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"model not found: {path}")
    if path.is_dir():
        genai = _read_json(path / GENAI_CONFIG)
        if genai is not None:
            try:
                filename = genai["model"]["decoder"]["filename"]
            except (KeyError, TypeError):
                raise UserError(f"{path / GENAI_CONFIG} has no model.decoder.filename") from None
            decoder = path / filename
            if not decoder.is_file():
                raise UserError(f"{path / GENAI_CONFIG} names {filename}, which is missing")
            return OnnxLayout(path, decoder, "genai", genai, _read_json(path / "config.json"), path)
        decoder = _pick_decoder(path)
    elif path.suffix == ".onnx":
        decoder = path
    else:
        raise UserError(f"{path} is not an ONNX model (.onnx file or a model folder)")
    genai_path = _beside(decoder, GENAI_CONFIG)
    genai = _read_json(genai_path) if genai_path and genai_path.parent == decoder.parent else None
    hf_path = _beside(decoder, "config.json")
    tok = _beside(decoder, "tokenizer.json")
    return OnnxLayout(path, decoder, "plain", genai, _read_json(hf_path) if hf_path else None, tok.parent if tok else None)


# --------------------------------------------------------------------------- the graph


@dataclass
class OnnxInfo:
    """Model facts for result rows, with the same names as GGUFInfo where they mean the same."""

    path: Path
    layout: OnnxLayout
    file_size_bytes: int
    architecture: str
    name: str
    n_params: int  # estimate: see the module docstring
    tensor_bytes: int
    weight_bytes_per_token: int
    quant_type: str
    n_layer: int
    n_head_kv: int
    head_dim_k: int
    head_dim_v: int
    n_ctx_train: int
    kv_type: str  # the graph's KV-cache element type; -ctk/-ctv cannot change it
    shared_kv_buffer: bool  # GroupQueryAttention: past and present share one full-length buffer
    has_position_ids: bool
    op_counts: dict = field(default_factory=dict)
    n_vocab: int = 0  # from the logits output or the configs; 0 when neither says
    # Mixture of experts, when the graph shows it (com.microsoft MoE / QMoE nodes): a token runs
    # through k of the experts, so only that share of the expert weights is active and streamed.
    n_expert: int = 0
    n_expert_used: int = 0
    n_params_active: int = 0  # equals n_params for a dense graph

    def kv_bytes_per_cell(self, type_k: str = "", type_v: str = "") -> float:
        """Bytes of K+V for one token over all layers (the graph fixes the type; arguments ignored)."""
        return self.n_layer * self.n_head_kv * (self.head_dim_k + self.head_dim_v) * KV_TYPE_BYTES.get(self.kv_type, 4)

    def kv_cache_bytes(self, n_ctx: int, type_k: str = "", type_v: str = "", n_ubatch: int = 0) -> int:
        """KV-cache bytes at ``n_ctx`` tokens (what a shared buffer allocates up front)."""
        return int(self.kv_bytes_per_cell() * n_ctx)

    def kv_bytes_read(self, first_position: int, n_gen: int, type_k: str = "", type_v: str = "") -> float:
        """Mean KV bytes one decode step reads over the test's decode positions (every layer global)."""
        return self.kv_bytes_per_cell() * (first_position + (n_gen + 1) / 2) if n_gen > 0 else 0.0


def _tensor_bytes(init) -> float:
    """Bytes of an initializer from its metadata (external data is not read)."""
    for entry in init.external_data:
        if entry.key == "length":
            return int(entry.value)
    if init.raw_data:
        return len(init.raw_data)
    width = ELEM_TYPES.get(init.data_type, ("?", 4))[1]
    return math.prod(init.dims) * width


def _attr(node, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            return a.i if a.type == 2 else a.f if a.type == 1 else a.s
    return default


@dataclass
class _GraphStats:
    n_params: int = 0
    tensor_bytes: float = 0
    indexed_bytes: float = 0  # tables a decode step only indexes (embeddings, rotary caches)
    bytes_by_kind: dict = field(default_factory=dict)
    op_counts: dict = field(default_factory=dict)
    n_expert: int = 0
    n_expert_used: int = 0
    unused_expert_params: float = 0  # expert parameters a token does not run through
    unused_expert_bytes: float = 0


def _graph_stats(model) -> _GraphStats:
    """Parameter count, weight bytes and which bytes one decode step actually streams."""
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    consumers: dict[str, list[tuple[object, int]]] = {}
    st = _GraphStats()
    for node in graph.node:
        st.op_counts[node.op_type] = st.op_counts.get(node.op_type, 0) + 1
        for index, name in enumerate(node.input):
            if name in inits:
                consumers.setdefault(name, []).append((node, index))
    aux: set[str] = set()  # quantization scales / zero points: bytes but not parameters
    packed: dict[str, int] = {}  # packed n-bit weights -> their logical element count
    kinds: dict[str, str] = {}
    for node in graph.node:
        if node.op_type == "MatMulNBits":
            bits = int(_attr(node, "bits", 4))
            packed[node.input[1]] = int(_attr(node, "K", 0)) * int(_attr(node, "N", 0))
            kinds[node.input[1]] = f"int{bits}"
            aux.update(node.input[2:])
        elif node.op_type == "GatherBlockQuantized":
            kinds[node.input[0]] = f"int{int(_attr(node, 'bits', 4))}"
            aux.update(node.input[2:])
        elif node.op_type in ("MatMulInteger", "DynamicQuantizeMatMul"):
            kinds[node.input[1]] = "int8"
            aux.update(node.input[2:])
        elif node.op_type == "DequantizeLinear":
            aux.update(node.input[1:])
    for name, init in inits.items():
        size = _tensor_bytes(init)
        st.tensor_bytes += size
        uses = consumers.get(name, [])
        indexed = any(k in name for k in ROTARY_CACHES) or bool(uses) and all(
            n.op_type.startswith("Gather") and i == 0 for n, i in uses
        )
        if indexed:
            st.indexed_bytes += size
        if name in aux or any(k in name for k in ROTARY_CACHES) or init.data_type in INDEX_TYPES or not init.dims:
            continue  # scales, zero points, rotary tables, shape constants and scalars are not parameters
        st.n_params += packed.get(name, math.prod(init.dims))
        if len(init.dims) >= 2 and not indexed:  # the label describes the matrices a decode streams
            kind = kinds.get(name) or ELEM_TYPES.get(init.data_type, ("?", 0))[0]
            st.bytes_by_kind[kind] = st.bytes_by_kind.get(kind, 0) + size
    _expert_stats(graph, inits, st)
    return st


# ONNX Runtime's fused mixture-of-experts ops (com.microsoft): the inputs holding the stacked expert
# weights and biases ([num_experts, ...]) of fc1, fc2, fc3; attribute k is the experts per token.
_MOE_EXPERT_INPUTS = {"MoE": (2, 3, 4, 5, 6, 7), "QMoE": (2, 4, 5, 7, 8, 10)}


def _expert_stats(graph, inits: dict, st: _GraphStats) -> None:
    """Count the expert weights a token skips: (1 - k / num_experts) of each MoE node's experts,
    counted the way n_params counts them (a packed QMoE weight by its stored elements)."""
    for node in graph.node:
        slots = _MOE_EXPERT_INPUTS.get(node.op_type)
        if not slots:
            continue
        experts = [inits[node.input[i]] for i in slots if i < len(node.input) and node.input[i] in inits]
        if not experts or not experts[0].dims:
            continue
        n_expert, k = int(experts[0].dims[0]), int(_attr(node, "k", 1))
        if n_expert <= 1 or not 0 < k <= n_expert:
            continue
        unused = 1 - k / n_expert
        st.n_expert, st.n_expert_used = max(st.n_expert, n_expert), k
        st.unused_expert_params += unused * sum(math.prod(w.dims) for w in experts)
        st.unused_expert_bytes += unused * sum(_tensor_bytes(w) for w in experts)


def _quant_label(bytes_by_kind: dict) -> str:
    if not bytes_by_kind:
        return "unknown"
    kind = max(bytes_by_kind, key=bytes_by_kind.get)
    return {"f32": "fp32", "f16": "fp16", "bf16": "bf16", "i8": "int8", "u8": "int8", "i4": "int4", "u4": "int4"}.get(kind, kind)


def _dim(value) -> int | None:
    return value.dim_value if value.HasField("dim_value") and value.dim_value > 0 else None


def _kv_shape(model, layout: OnnxLayout) -> tuple[int, int, int, str]:
    """(n_layer, n_head_kv, head_dim, kv element type) from the past_key_values inputs."""
    pasts = [i for i in model.graph.input if PAST_NAME.match(i.name)]
    if not pasts:
        raise UserError(f"{layout.decoder} has no past_key_values.N.key/value inputs: not a decoder with a KV cache")
    layers = {int(PAST_NAME.match(i.name).group(1)) for i in pasts}
    first = next(i for i in pasts if i.name.endswith(".key"))
    tensor = first.type.tensor_type
    dims = [_dim(d) for d in tensor.shape.dim]
    kv_type = ELEM_TYPES.get(tensor.elem_type, ("f32", 4))[0]
    n_head_kv = dims[1] if len(dims) == 4 else None
    head_dim = dims[3] if len(dims) == 4 else None
    dec = ((layout.genai_config or {}).get("model") or {}).get("decoder") or {}
    hf = layout.hf_config or {}
    n_head = hf.get("num_attention_heads") or dec.get("num_attention_heads")
    n_head_kv = n_head_kv or dec.get("num_key_value_heads") or hf.get("num_key_value_heads") or n_head
    head_dim = head_dim or dec.get("head_size") or hf.get("head_dim")
    if not head_dim and hf.get("hidden_size") and n_head:
        head_dim = hf["hidden_size"] // n_head
    if not n_head_kv or not head_dim:
        raise UserError(
            f"cannot tell the KV-cache shape of {layout.decoder}: its past inputs have symbolic sizes and there is "
            "no genai_config.json or config.json beside it"
        )
    return len(layers), int(n_head_kv), int(head_dim), kv_type


def load_graph(decoder: Path):
    """The decoder's graph without its external weights."""
    try:
        import onnx
    except ImportError:
        raise UserError("ONNX models need the onnx extra: pip install 'profiler[onnx]'") from None
    try:
        return onnx.load(str(decoder), load_external_data=False)
    except Exception as exc:  # protobuf raises several types on corrupt input
        raise UserError(f"{decoder} is not a readable ONNX model ({type(exc).__name__}: {exc})") from None


def _files_size(decoder: Path, model) -> int:
    """The decoder file plus every external-data file it references."""
    names = {e.value for i in model.graph.initializer for e in i.external_data if e.key == "location"}
    return decoder.stat().st_size + sum((decoder.parent / n).stat().st_size for n in names if (decoder.parent / n).is_file())


def read_info(path: str | os.PathLike) -> OnnxInfo:
    """Facts about the ONNX model at ``path``; UserError (one line) if it is not a usable decoder."""
    layout = find_layout(path)
    model = load_graph(layout.decoder)
    st = _graph_stats(model)
    n_layer, n_head_kv, head_dim, kv_type = _kv_shape(model, layout)
    genai_model = (layout.genai_config or {}).get("model") or {}
    hf = layout.hf_config or {}
    arch = genai_model.get("type") or hf.get("model_type") or "unknown"
    name = layout.decoder.parent.name if layout.kind == "genai" or layout.decoder.name == "model.onnx" else layout.decoder.stem
    return OnnxInfo(
        path=layout.path,
        layout=layout,
        file_size_bytes=_files_size(layout.decoder, model),
        architecture=str(arch),
        name=name,
        n_params=int(st.n_params),
        n_params_active=int(st.n_params - st.unused_expert_params),
        n_expert=st.n_expert,
        n_expert_used=st.n_expert_used,
        tensor_bytes=int(st.tensor_bytes),
        weight_bytes_per_token=int(st.tensor_bytes - st.indexed_bytes - st.unused_expert_bytes),
        quant_type=_quant_label(st.bytes_by_kind),
        n_layer=n_layer,
        n_head_kv=n_head_kv,
        head_dim_k=head_dim,
        head_dim_v=head_dim,
        n_ctx_train=int(genai_model.get("context_length") or hf.get("max_position_embeddings") or 0),
        kv_type=kv_type,
        shared_kv_buffer=st.op_counts.get("GroupQueryAttention", 0) > 0,
        has_position_ids=any(i.name == "position_ids" for i in model.graph.input),
        op_counts=st.op_counts,
        n_vocab=_vocab_size(model, genai_model, hf),
    )


def _vocab_size(model, genai_model: dict, hf: dict) -> int:
    """The logits output's last dimension, else the configs' vocab_size."""
    for output in model.graph.output:
        if output.name == "logits":
            dims = output.type.tensor_type.shape.dim
            if dims and _dim(dims[-1]):
                return int(_dim(dims[-1]))
    return int(genai_model.get("vocab_size") or hf.get("vocab_size") or 0)


@functools.lru_cache(maxsize=8)
def _cached(path: str, stamp: tuple) -> OnnxInfo:
    return read_info(path)


def cached_info(path: str | os.PathLike) -> OnnxInfo:
    """read_info, remembered per file version: the run and the backend both need it."""
    p = Path(path).expanduser()
    files = [p] if p.is_file() else sorted([*p.glob("*.onnx"), *p.glob("*.json"), *p.glob("onnx/*.onnx")])
    try:
        stamp = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    except OSError:
        stamp = ()
    return _cached(str(p), stamp)
