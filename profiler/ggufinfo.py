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

    def kv_cache_bytes(self, n_ctx: int, type_k: str = "f16", type_v: str = "f16", n_ubatch: int = 512) -> int:
        """KV-cache size llama.cpp allocates for ``n_ctx`` cells (SWA layers keep a window only)."""
        per_cell = self.n_head_kv * (self.head_dim_k * KV_TYPE_BYTES[type_k] + self.head_dim_v * KV_TYPE_BYTES[type_v])
        total = 0.0
        every = _SWA_GLOBAL_EVERY.get(self.architecture, 0)
        for layer in range(self.n_layer):
            is_swa = self.sliding_window > 0 and every > 0 and (layer + 1) % every != 0
            cells = min(n_ctx, self.sliding_window + n_ubatch) if is_swa else n_ctx
            total += cells * per_cell
        return int(total)

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


def _field_value(reader, key: str):
    f = reader.fields.get(key)
    if f is None:
        return None
    try:
        return f.contents()
    except Exception:  # older gguf versions: decode by hand
        if not f.data:
            return None
        part = f.parts[f.data[0]]
        if part.dtype.kind in "uS" or part.dtype == "uint8":
            return bytes(part).decode("utf-8", errors="replace")
        return part.tolist()[0] if len(part) == 1 else part.tolist()


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


def _largest(value) -> int:
    """Per-layer hyperparameters may be arrays (e.g. head counts); size buffers for the largest."""
    return int(max(value)) if isinstance(value, (list, tuple)) else int(value or 0)


def read_info(path: str | os.PathLike) -> GGUFInfo:
    """Parse the GGUF header of ``path``; UserError (one line) if it is not a usable GGUF file."""
    path = Path(path)
    check_header(path)
    import gguf

    try:
        reader = gguf.GGUFReader(str(path), "r")
    except Exception as exc:  # the reader raises many types on corrupt input
        raise UserError(f"{path} is not a valid GGUF file ({type(exc).__name__}: {exc})") from None

    arch = _field_value(reader, "general.architecture") or "unknown"

    def hp(key, default=0):
        value = _field_value(reader, f"{arch}.{key}")
        return default if value is None else value

    n_params = 0
    tensor_bytes = 0
    embd_bytes = 0
    has_output = False
    bytes_by_type: dict[str, int] = {}
    for t in reader.tensors:
        n_params += int(t.n_elements)
        tensor_bytes += int(t.n_bytes)
        tname = t.tensor_type.name
        bytes_by_type[tname] = bytes_by_type.get(tname, 0) + int(t.n_bytes)
        if t.name == "token_embd.weight":
            embd_bytes = int(t.n_bytes)
        elif t.name == "output.weight":
            has_output = True
    # A decode step reads every weight once, except the token-embedding table, which is
    # only indexed (one row) unless it doubles as the output projection (tied embeddings).
    per_token = tensor_bytes - embd_bytes if has_output else tensor_bytes

    n_embd = int(hp("embedding_length"))
    n_head = _largest(hp("attention.head_count"))
    n_head_kv = _largest(hp("attention.head_count_kv", n_head))
    head_dim = n_embd // n_head if n_head else 0
    return GGUFInfo(
        path=path,
        file_size_bytes=path.stat().st_size,
        architecture=str(arch),
        name=str(_field_value(reader, "general.name") or path.stem),
        n_params=n_params,
        tensor_bytes=tensor_bytes,
        weight_bytes_per_token=per_token,
        quant_type=_quant_name(_field_value(reader, "general.file_type"), bytes_by_type),
        n_layer=int(hp("block_count")),
        n_embd=n_embd,
        n_head=n_head,
        n_head_kv=n_head_kv,
        head_dim_k=int(hp("attention.key_length", head_dim)),
        head_dim_v=int(hp("attention.value_length", head_dim)),
        n_ctx_train=int(hp("context_length")),
        sliding_window=int(hp("attention.sliding_window", 0) or 0),
    )
