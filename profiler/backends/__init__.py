"""Inference backends. A backend loads a model, prefills, decodes one token and exposes logits.

Measurement, statistics, energy and reports never live here: they work for every backend.
"""

from __future__ import annotations

from profiler.backends.base import Backend, ContextParams, LoadParams

BACKENDS = ("llama.cpp", "onnxruntime", "onnxruntime-genai")
# "auto" picks by model format; "onnx" picks by ONNX layout (genai folder or plain export).
CHOICES = ("auto", "onnx", *BACKENDS)


def get_backend(name: str) -> type[Backend]:
    if name == "llama.cpp":
        from profiler.backends.llama_cpp import LlamaCppBackend

        return LlamaCppBackend
    if name == "onnxruntime":
        from profiler.backends.onnx_runtime import OnnxRuntimeBackend

        return OnnxRuntimeBackend
    if name == "onnxruntime-genai":
        from profiler.backends.onnx_genai import OnnxGenaiBackend

        return OnnxGenaiBackend
    from profiler.errors import UserError

    raise UserError(f"unknown backend '{name}' (available: {', '.join(CHOICES)})")


# The pip extra that brings each optional runtime (pyproject.toml), for the "missing" line.
RUNTIME_PACKAGES = {"onnxruntime": ("onnxruntime", "onnx"), "onnxruntime-genai": ("onnxruntime_genai", "onnx")}


def runtime_info(verbose: bool = False) -> dict:
    """Runtime versions, and for a runtime that cannot be used, ``{"missing": why}``: under Termux
    ONNX Runtime has no wheel and llama-cpp-python may not have built, and ``profiler device`` must
    still say what it can. ONNX Runtime's version comes from package metadata: importing it runs its
    CPU detection, which prints warnings on boards whose /sys it cannot read."""
    from profiler.backends.llama_cpp import system_info
    from profiler.errors import UserError
    from profiler.platform import native_noise

    info: dict[str, dict] = {}
    try:
        with native_noise.captured(verbose):
            info["llama.cpp"] = system_info()
    except UserError as exc:
        info["llama.cpp"] = {"missing": str(exc)}
    for package, (module, extra) in RUNTIME_PACKAGES.items():
        version = native_noise.package_version(package)
        if version and _findable(module):
            info[package] = {"version": version}
        else:
            why = "not importable" if version else "not installed"
            info[package] = {"missing": f"{why} (pip install 'profiler[{extra}]')"}
    return info


def missing_runtimes(info: dict) -> dict[str, str]:
    """The runtimes ``runtime_info`` found unusable, with why."""
    return {name: entry["missing"] for name, entry in info.items() if "missing" in entry}


def _findable(module: str) -> bool:
    """Whether ``module`` can be imported, found without running it."""
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def strict_cpu_refusal() -> str:
    """Why ``--cpu-strict 1`` (one thread pinned to each CPU of the mask in turn) cannot be honoured."""
    from profiler.backends.llama_cpp import openmp_build

    if openmp_build():
        return ("this llama-cpp-python build runs llama.cpp's threads through OpenMP (libgomp), which "
                "ignores the ggml threadpool's per-thread CPU mask, so no thread would be pinned; "
                "-C/--cores with --cpu-strict 0 confines every thread to the mask instead")
    return ("the profiler does not attach a ggml threadpool (llama_attach_threadpool) to its contexts, "
            "so no thread would be pinned; -C/--cores with --cpu-strict 0 confines every thread to the mask instead")


def backend_name_for(requested: str, path, fmt: str) -> str:
    """The concrete backend for a model: ``auto``/``onnx`` look at the format and the files."""
    from pathlib import Path

    from profiler.errors import UserError

    if requested not in CHOICES:
        raise UserError(f"unknown backend '{requested}' (available: {', '.join(CHOICES)})")
    if requested == "auto":
        requested = "onnx" if fmt == "onnx" else "llama.cpp"
    if requested == "onnx":
        if fmt != "onnx":
            raise UserError(f"--backend onnx needs an ONNX model; {path} is {fmt}")
        return "onnxruntime-genai" if Path(path).is_dir() and (Path(path) / "genai_config.json").is_file() else "onnxruntime"
    is_onnx = requested.startswith("onnxruntime")
    if is_onnx != (fmt == "onnx"):
        raise UserError(f"backend {requested} cannot run {path} ({fmt} model); use --backend auto")
    return requested


def create_backend(name: str, verbose: bool = False, onnx_options: dict | None = None) -> Backend:
    """An instance of backend ``name``; ONNX session options go to the ONNX backends only."""
    cls = get_backend(name)
    if name.startswith("onnxruntime"):
        return cls(verbose=verbose, **(onnx_options or {}))
    return cls(verbose=verbose)


__all__ = ["BACKENDS", "CHOICES", "Backend", "ContextParams", "LoadParams", "backend_name_for", "create_backend", "get_backend",
           "missing_runtimes", "runtime_info"]
