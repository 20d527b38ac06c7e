"""Dequantize a GGUF to F16 with the gguf package: the input ONNX converters accept.

Metadata is copied unchanged except ``general.file_type`` (now MOSTLY_F16). Matrices become
F16; vectors (norms, biases) stay F32 as llama.cpp's own converter writes them. The values
are exactly what llama.cpp dequantizes to, rounded once to F16.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from profiler import atomic
from profiler.errors import UserError

# Header fields the writer produces itself, or that no longer hold after dequantizing.
_SKIP_KEYS = ("general.architecture", "general.file_type", "general.quantization_version")


def dequantize_to_f16(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Write an F16 copy of the GGUF ``src`` to ``dst`` (atomically: a partial file is renamed)."""
    import gguf

    src, dst = Path(src), Path(dst)
    try:
        reader = gguf.GGUFReader(str(src), "r")
    except Exception as exc:  # the reader raises many types on corrupt input
        raise UserError(f"{src} is not a readable GGUF file ({type(exc).__name__}: {exc})") from None
    arch = reader.fields["general.architecture"].contents()
    with atomic.replacing_path(dst) as partial:
        writer = gguf.GGUFWriter(str(partial), arch)
        for key, f in reader.fields.items():
            if key.startswith("GGUF.") or key in _SKIP_KEYS:
                continue
            vtype = f.types[0]
            sub = f.types[1] if vtype == gguf.GGUFValueType.ARRAY else None
            writer.add_key_value(key, f.contents(), vtype, sub)
        writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
        for t in reader.tensors:
            writer.add_tensor(t.name, _as_float(t, gguf))
        try:
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_tensors_to_file()
        finally:
            writer.close()
    return dst


def _as_float(tensor, gguf) -> np.ndarray:
    kind = tensor.tensor_type
    if kind in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
        data = np.array(tensor.data)
    else:
        try:
            data = gguf.quants.dequantize(tensor.data, kind)
        except NotImplementedError:
            raise UserError(f"the gguf package cannot dequantize {tensor.name} ({kind.name}); convert from an F16 GGUF") from None
    if data.ndim > 1:
        return data.astype(np.float16)
    return data.astype(np.float32)
