"""Model facts for result rows, whatever the format: GGUF headers or ONNX graphs.

Both info classes share the names run/row.build_row reads: ``path``, ``file_size_bytes``,
``n_params``, ``quant_type``, ``n_ctx_train``, ``weight_bytes_per_token``,
``kv_cache_bytes(n_ctx, type_k, type_v, n_ubatch)``, ``kv_bytes_per_cell(type_k, type_v)`` and
``kv_bytes_read(first_position, n_gen, type_k, type_v)`` (sliding-window layers read their window only).
An ONNX graph fixes its KV-cache type, so OnnxInfo also carries ``kv_type``.
"""

from __future__ import annotations

import os
from typing import Union

from profiler.models.ggufinfo import GGUFInfo
from profiler.models.onnxinfo import OnnxInfo

ModelInfo = Union[GGUFInfo, OnnxInfo]  # noqa: UP007 - a runtime alias must work on Python 3.10


def read_model_info(path: str | os.PathLike, fmt: str = "gguf") -> ModelInfo:
    """GGUF header or ONNX graph facts for ``path``; ``fmt`` is the catalogue's format."""
    if fmt == "onnx":
        from profiler.models.onnxinfo import cached_info

        return cached_info(path)
    from profiler.models.ggufinfo import read_info

    return read_info(path)


def fixed_kv_type(info: ModelInfo) -> str | None:
    """The KV-cache type a model's format fixes (ONNX graphs), or None when the runtime chooses."""
    return info.kv_type if isinstance(info, OnnxInfo) else None
