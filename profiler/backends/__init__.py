"""Inference backends. A backend loads a model, prefills, decodes one token and exposes logits.

Measurement, statistics, energy and reports never live here: they work for every backend.
"""

from __future__ import annotations

from profiler.backends.base import Backend, ContextParams, LoadParams


def get_backend(name: str) -> type[Backend]:
    if name == "llama.cpp":
        from profiler.backends.llama_cpp import LlamaCppBackend

        return LlamaCppBackend
    from profiler.errors import UserError

    raise UserError(f"unknown backend '{name}' (available: llama.cpp)")


__all__ = ["Backend", "ContextParams", "LoadParams", "get_backend"]
