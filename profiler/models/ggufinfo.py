"""Read what we need from a GGUF file's header, with clear errors for bad files."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

from profiler.errors import UserError

GGUF_MAGIC = b"GGUF"
# Far above any real model; a header claiming more is corrupt, and trusting it would
# make the reader allocate or loop for minutes.
MAX_TENSORS = 1_000_000
MAX_KV = 1_000_000

# Bytes per element of the KV-cache types llama.cpp accepts for --cache-type-k/-v.
KV_TYPE_BYTES = {
    "f32": 4.0,
    "f16": 2.0,
    "bf16": 2.0,
    "q8_0": 34 / 32,
    "q4_0": 18 / 32,
    "q4_1": 20 / 32,
    "iq4_nl": 18 / 32,
    "q5_0": 22 / 32,
    "q5_1": 24 / 32,
}

# Tensor types the CPU backend repacks on x86 (AVX2/AVX-512) and ARM (NEON/dotprod/i8mm).
REPACKED_TYPES = {"Q4_0", "Q4_K", "IQ4_NL", "Q8_0"}

# Layers that use sliding-window attention, per architecture: every Nth layer is global.
_SWA_GLOBAL_EVERY = {"gemma3": 6, "gemma2": 2, "gemma3n": 5}


@dataclass
class GGUFInfo:
    path: Path
    file_size_bytes: int
    architecture: str
    name: str
    n_params: int
    tensor_bytes: int
    weight_bytes_per_token: int
    quant_type: str
    n_layer: int
    n_embd: int
    n_head: int
    n_head_kv: int
    head_dim_k: int
    head_dim_v: int
    n_ctx_train: int
    sliding_window: int = 0
    # {arch}.attention.sliding_window_pattern when the header has it: one bool per layer (true =
    # sliding window) or a period N (every Nth layer global); otherwise the architecture's default
    sliding_window_pattern: list | int | None = None
    n_vocab: int = 0
    n_ff: int = 0
    # Weights llama.cpp's CPU backend copies into a SIMD-friendly layout at load (CPU_REPACK):
    # they occupy memory twice (the mapped file pages and the repacked copy).
    repackable_bytes: int = 0
    # Mixture of experts ({arch}.expert_count / expert_used_count; 0 for a dense model). A token
    # runs through ``n_expert_used`` of the ``n_expert`` experts of each layer, so it touches only
    # that share of the expert tensors (``*_exps``); the router and shared experts run in full.
    n_expert: int = 0
    n_expert_used: int = 0
    expert_params: int = 0  # all experts, all layers
    expert_bytes: int = 0
    n_params_active: int = 0  # non-expert + expert x used / count; equals n_params for a dense model

    @property
    def is_moe(self) -> bool:
        return self.n_expert > 1 and self.expert_params > 0

    def kv_cache_bytes(self, n_ctx: int, type_k: str = "f16", type_v: str = "f16", n_ubatch: int = 512) -> int:
        """KV-cache size llama.cpp allocates for ``n_ctx`` cells (SWA layers keep a window only)."""
        per_cell = self.n_head_kv * (self.head_dim_k * KV_TYPE_BYTES[type_k] + self.head_dim_v * KV_TYPE_BYTES[type_v])
        total = 0.0
        for is_swa in self.swa_layers():
            cells = min(n_ctx, self.sliding_window + n_ubatch) if is_swa else n_ctx
            total += cells * per_cell
        return int(total)

    def swa_layers(self) -> list[bool]:
        """Per layer: does it use sliding-window attention (llama.cpp's swa_layers)?"""
        if self.sliding_window <= 0:
            return [False] * self.n_layer
        pattern = self.sliding_window_pattern
        if isinstance(pattern, list) and len(pattern) >= self.n_layer:
            return [bool(flag) for flag in pattern[: self.n_layer]]
        every = pattern if isinstance(pattern, int) and pattern > 0 else _SWA_GLOBAL_EVERY.get(self.architecture, 0)
        return [every > 0 and (layer + 1) % every != 0 for layer in range(self.n_layer)]

    def kv_bytes_read(self, first_position: int, n_gen: int, type_k: str = "f16", type_v: str = "f16") -> float:
        """Mean bytes of KV cache one decode step reads over positions ``first_position ..
        first_position + n_gen - 1``: a global layer reads every cached token, a sliding-window
        layer only the tokens inside its window."""
        if n_gen <= 0:
            return 0.0
        per_layer_cell = self.kv_bytes_per_cell(type_k, type_v) / max(self.n_layer, 1)
        positions = range(first_position + 1, first_position + n_gen + 1)  # cells attended, this token included
        full = sum(positions) / n_gen
        windowed = sum(min(p, self.sliding_window) for p in positions) / n_gen if self.sliding_window > 0 else full
        flags = self.swa_layers()
        return per_layer_cell * (flags.count(False) * full + flags.count(True) * windowed)

    def kv_bytes_per_cell(self, type_k: str = "f16", type_v: str = "f16") -> float:
        """Bytes of K+V for one token over all layers (what one decode step reads per cached token)."""
        return self.n_layer * self.n_head_kv * (
            self.head_dim_k * KV_TYPE_BYTES[type_k] + self.head_dim_v * KV_TYPE_BYTES[type_v]
        )


def check_header(path: Path) -> None:
    """Fail with a one-line UserError unless ``path`` is a readable, plausible GGUF file."""
    if not path.exists():
        raise UserError(f"model file not found: {path}")
    if path.is_dir():
        raise UserError(f"{path} is a directory, not a GGUF model file")
    if not os.access(path, os.R_OK):
        raise UserError(f"cannot read {path}: permission denied (fix with chmod +r)")
    size = path.stat().st_size
    if size == 0:
        raise UserError(f"{path} is empty (0 bytes); re-download the model")
    with path.open("rb") as fh:
        head = fh.read(24)
    if head[:4] != GGUF_MAGIC:
        raise UserError(f"{path} is not a GGUF file (magic {head[:4]!r}, expected b'GGUF')")
    if len(head) < 24:
        raise UserError(f"{path} is truncated: the GGUF header is incomplete ({size} bytes)")
    version, n_tensors, n_kv = struct.unpack("<IQQ", head[4:24])
    if version not in (2, 3):
        raise UserError(f"{path} has unsupported GGUF version {version}")
    if n_tensors > MAX_TENSORS or n_kv > MAX_KV:
        raise UserError(f"{path} is corrupt: header claims {n_tensors} tensors and {n_kv} metadata keys")


# GGUF metadata value types -> struct format (strings and arrays are handled separately).
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_U64 = struct.Struct("<Q")
# Arrays longer than this (token lists, merges, scores) are skipped, not materialised: the gguf
# package's reader builds one numpy object per element, ~600 MB for a 262k-token vocabulary.
KEEP_ARRAY = 64


@dataclass
class _Tensor:
    name: str
    shape: tuple[int, ...]  # ggml order: ne[0] first
    type_name: str
    n_elements: int
    n_bytes: int


class _HeaderReader:
    """A streaming GGUF header parser: metadata and tensor infos, never tensor data."""

    def __init__(self, fh, size: int) -> None:
        self.fh = fh
        self.size = size

    def read(self, fmt: str):
        n = struct.calcsize(fmt)
        data = self.fh.read(n)
        if len(data) != n:
            raise ValueError("unexpected end of file in the header")
        return struct.unpack(fmt, data)[0]

    def string(self) -> str:
        length = self.read("<Q")
        if length > self.size:
            raise ValueError(f"string length {length} exceeds the file size")
        return self.fh.read(length).decode("utf-8", errors="replace")

    def value(self, vtype: int):
        if vtype in _SCALARS:
            return self.read(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            return self.array()
        raise ValueError(f"unknown metadata value type {vtype}")

    def array(self):
        etype, count = self.read("<I"), self.read("<Q")
        if count > self.size:
            raise ValueError(f"array length {count} exceeds the file size")
        if count <= KEEP_ARRAY:
            return [self.value(etype) for _ in range(count)]
        if etype in _SCALARS:
            self.fh.seek(count * struct.calcsize(_SCALARS[etype]), os.SEEK_CUR)
        elif etype == _STRING:
            self._skip_strings(count)
        else:
            for _ in range(count):
                self.value(etype)  # nested arrays must be walked: each has its own length
        return SkippedArray(count)

    def _skip_strings(self, count: int) -> None:
        """Walk past ``count`` strings (a vocabulary) reading their lengths from blocks of up to
        1 MiB: two reads per string made listing a 262k-token model take half a second."""
        block, pos, end = b"", 0, 0
        unpack = _U64.unpack_from
        step = min(1 << 20, max(4096, count * 16))  # about the array's own size: never far past the header
        left = count
        while left:
            if pos + 8 > end:
                block, pos = block[pos:] + self.fh.read(step), 0
                end = len(block)
                if end < 8:
                    raise ValueError("unexpected end of file in the header")
            limit = end - 8
            while left and pos <= limit:  # the hot loop: strings whose length field is in the block
                pos += 8 + unpack(block, pos)[0]
                left -= 1
            if pos > end:  # a string longer than the block: seek past its rest
                if pos > self.size:
                    raise ValueError("a string runs past the end of the file")
                self.fh.seek(pos - end, os.SEEK_CUR)
                block, pos, end = b"", 0, 0
        self.fh.seek(pos - end, os.SEEK_CUR)  # back to just after the last string


class SkippedArray(list):
    """A long metadata array whose length is known but whose elements were not read."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count


def parse_header(path: Path) -> tuple[dict, list[_Tensor]]:
    """Metadata and tensor infos read by a streaming Python parser that skips long arrays (the
    vocabulary): header only, where gguf.GGUFReader would decode every array."""
    import gguf

    size = path.stat().st_size
    with path.open("rb") as fh:
        header = _HeaderReader(fh, size)
        fh.seek(8)
        n_tensors, n_kv = header.read("<Q"), header.read("<Q")
        metadata = {}
        for _ in range(n_kv):
            key = header.string()
            metadata[key] = header.value(header.read("<I"))
        tensors = []
        for _ in range(n_tensors):
            name = header.string()
            dims = header.read("<I")
            if dims > 8:
                raise ValueError(f"tensor {name} claims {dims} dimensions")
            shape = tuple(header.read("<Q") for _ in range(dims))
            type_id = header.read("<I")
            header.read("<Q")  # data offset
            try:
                qtype = gguf.GGMLQuantizationType(type_id)
            except ValueError:
                raise ValueError(f"tensor {name} has unknown type {type_id}") from None
            block, type_size = gguf.GGML_QUANT_SIZES[qtype]
            n_elements = 1
            for dim in shape:
                n_elements *= dim
            tensors.append(_Tensor(name, shape, qtype.name, n_elements, n_elements // block * type_size))
    _check_fits(path, tensors)
    return metadata, tensors


def _header(path: Path) -> tuple[dict, list[_Tensor]]:
    """Metadata and tensor infos: llama.cpp's C reader when it is installed and accepts the file,
    else the Python parser, which also explains a malformed file."""
    from profiler.models import gguf_native

    native = gguf_native.read_header(path, keep_array=KEEP_ARRAY)
    if native is None:
        return parse_header(path)
    return from_native_header(path, native)


def from_native_header(path: Path, native) -> tuple[dict, list[_Tensor]]:
    import gguf

    metadata = dict(native.metadata)
    for key, count in native.array_lengths.items():
        metadata[key] = SkippedArray(count)
    tensors = []
    for t in native.tensors:
        n_elements = 1
        for dim in t.ne:
            n_elements *= dim
        tensors.append(_Tensor(t.name, t.ne, gguf.GGMLQuantizationType(t.type_id).name, n_elements, t.n_bytes))
    _check_fits(path, tensors)
    return metadata, tensors


def _check_fits(path: Path, tensors: list[_Tensor]) -> None:
    tensor_bytes = sum(t.n_bytes for t in tensors)
    size = path.stat().st_size
    if tensor_bytes > size:
        raise ValueError(f"tensors need {tensor_bytes} bytes but the file has {size}: it is truncated")


def n_dims(shape: tuple[int, ...]) -> int:
    """Dimensions as ggml counts them (ggml_n_dims): trailing 1s do not count. The C reader keeps
    no dimension count, so both readers are compared on this."""
    n = len(shape)
    while n > 1 and shape[n - 1] == 1:
        n -= 1
    return n


def _quant_name(file_type: int | None, tensor_types: dict[str, int]) -> str:
    import gguf

    if file_type is not None:
        try:
            name = gguf.LlamaFileType(int(file_type)).name
            return name.removeprefix("MOSTLY_")
        except ValueError:
            pass
    if tensor_types:  # the most common type by bytes
        return max(tensor_types, key=tensor_types.get)
    return "unknown"


def _pattern(value) -> list | int | None:
    """The header's sliding-window pattern: a per-layer bool list, a period, or None."""
    if isinstance(value, list):
        return [bool(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None  # absent, or an array too long to keep (then the architecture default applies)


def _largest(value) -> int:
    """Per-layer hyperparameters may be arrays (e.g. head counts); size buffers for the largest."""
    return int(max(value)) if isinstance(value, (list, tuple)) else int(value or 0)


def read_info(path: str | os.PathLike, native: bool = False) -> GGUFInfo:
    """Parse the GGUF header of ``path``; UserError (one line) if it is not a usable GGUF file.

    ``native``: read it with llama.cpp's C reader when installed (profiler/models/gguf_native.py), as
    discovery does: from a memory map it takes ~22 ms of CPU for a 262k-token vocabulary against
    ~28 ms here (SmolLM2: ~4.5 against ~11), and it releases the GIL, so many headers are read at
    once on several cores. One file at a time the difference does not matter, so other callers
    keep the Python parser."""
    path = Path(path)
    check_header(path)
    try:
        metadata, tensors = _header(path) if native else parse_header(path)
    except (ValueError, struct.error, OSError) as exc:
        raise UserError(f"{path} is not a valid GGUF file ({exc})") from None

    arch = metadata.get("general.architecture") or "unknown"

    def hp(key, default=0):
        value = metadata.get(f"{arch}.{key}")
        return default if value is None else value

    n_params = 0
    tensor_bytes = 0
    expert_params = 0
    expert_bytes = 0
    embd_bytes = 0
    n_vocab = 0
    repackable = 0
    has_output = False
    bytes_by_type: dict[str, int] = {}
    for t in tensors:
        n_params += t.n_elements
        tensor_bytes += t.n_bytes
        if _is_expert_tensor(t.name):
            expert_params += t.n_elements
            expert_bytes += t.n_bytes
        tname = t.type_name
        bytes_by_type[tname] = bytes_by_type.get(tname, 0) + int(t.n_bytes)
        if tname in REPACKED_TYPES and t.name != "token_embd.weight" and n_dims(t.shape) == 2:
            repackable += t.n_bytes
        if t.name == "token_embd.weight":
            embd_bytes = t.n_bytes
            n_vocab = int(t.shape[-1])  # ggml order: [n_embd, n_vocab]
        elif t.name == "output.weight":
            has_output = True
    # A decode step reads every weight once, except the token-embedding table, which is
    # only indexed (one row) unless it doubles as the output projection (tied embeddings).
    per_token = tensor_bytes - embd_bytes if has_output else tensor_bytes
    n_expert, n_used = int(hp("expert_count", 0) or 0), int(hp("expert_used_count", 0) or 0)
    share = _used_share(n_expert, n_used, expert_params)
    # An MoE decode step reads only the experts the router picks: the unused share is not streamed.
    per_token -= int(round(expert_bytes * (1 - share)))
    n_params_active = n_params - int(round(expert_params * (1 - share)))

    n_embd = int(hp("embedding_length"))
    n_head = _largest(hp("attention.head_count"))
    n_head_kv = _largest(hp("attention.head_count_kv", n_head))
    head_dim = n_embd // n_head if n_head else 0
    return GGUFInfo(
        path=path,
        file_size_bytes=path.stat().st_size,
        architecture=str(arch),
        name=str(metadata.get("general.name") or path.stem),
        n_params=n_params,
        tensor_bytes=tensor_bytes,
        weight_bytes_per_token=per_token,
        quant_type=_quant_name(metadata.get("general.file_type"), bytes_by_type),
        n_layer=int(hp("block_count")),
        n_embd=n_embd,
        n_head=n_head,
        n_head_kv=n_head_kv,
        head_dim_k=int(hp("attention.key_length", head_dim)),
        head_dim_v=int(hp("attention.value_length", head_dim)),
        n_ctx_train=int(hp("context_length")),
        sliding_window=int(hp("attention.sliding_window", 0) or 0),
        sliding_window_pattern=_pattern(hp("attention.sliding_window_pattern", None)),
        n_vocab=n_vocab,
        n_ff=_largest(hp("feed_forward_length", 0)),
        repackable_bytes=repackable,
        n_expert=n_expert,
        n_expert_used=n_used,
        expert_params=expert_params,
        expert_bytes=expert_bytes,
        n_params_active=n_params_active,
    )


def _is_expert_tensor(name: str) -> bool:
    """Routed-expert weights (``blk.N.ffn_up_exps.weight``, and their biases); the router
    (``ffn_gate_inp``) and shared experts (``*_shexp``) are not: every token runs them."""
    return "_exps." in name or name.endswith("_exps")


def _used_share(n_expert: int, n_used: int, expert_params: int) -> float:
    """The fraction of expert weights one token runs through (1.0 for a dense model)."""
    if n_expert <= 1 or expert_params == 0:
        return 1.0
    if not 0 < n_used <= n_expert:
        return 1.0  # a header without a usable used-count: count every expert rather than guess
    return n_used / n_expert
