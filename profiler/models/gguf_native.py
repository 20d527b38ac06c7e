"""Read a GGUF header with llama.cpp's own C reader (libggml-base, shipped with llama-cpp-python).

Walking a 262k-token vocabulary string by string in Python takes ~0.1 s per file, so listing a
hundred real models took seconds; the C reader does the same walk in a few milliseconds. Tensor
data is never read (``no_alloc``, no ggml context).

Everything here is optional: ``read_header`` returns None when the library is missing, lacks a
symbol, or rejects the file, and the caller falls back to the Python parser (which also words the
error for a malformed file). The library is loaded straight from llama_cpp's ``lib`` folder, the
way llama_cpp's loader finds it, without importing llama_cpp (that costs ~0.2 s and loads
libllama). Its log lines go to fd 2, so every call runs inside ``native_noise.captured``.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import mmap
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from profiler.platform import native_noise

# enum gguf_type (ggml/include/gguf.h)
_U8, _I8, _U16, _I16, _U32, _I32, _F32, _BOOL, _STRING, _ARRAY, _U64, _I64, _F64 = range(13)
_SCALAR_CTYPES = {
    _U8: ctypes.c_uint8, _I8: ctypes.c_int8, _U16: ctypes.c_uint16, _I16: ctypes.c_int16,
    _U32: ctypes.c_uint32, _I32: ctypes.c_int32, _F32: ctypes.c_float, _BOOL: ctypes.c_bool,
    _U64: ctypes.c_uint64, _I64: ctypes.c_int64, _F64: ctypes.c_double,
}
_GETTERS = {
    _U8: "u8", _I8: "i8", _U16: "u16", _I16: "i16", _U32: "u32", _I32: "i32", _F32: "f32",
    _BOOL: "bool", _U64: "u64", _I64: "i64", _F64: "f64",
}
_MAX_DIMS = 4  # GGML_MAX_DIMS


class _InitParams(ctypes.Structure):
    # struct gguf_init_params { bool no_alloc; struct ggml_context ** ctx; }
    _fields_ = [("no_alloc", ctypes.c_bool), ("ctx", ctypes.c_void_p)]


@dataclass
class NativeTensor:
    name: str
    ne: tuple[int, ...]  # ggml order, trailing 1s dropped (GGUF keeps no dimension count in C)
    type_id: int
    n_bytes: int


@dataclass
class NativeHeader:
    metadata: dict  # scalars, strings, and arrays of at most ``keep_array`` elements
    array_lengths: dict[str, int] = field(default_factory=dict)  # longer arrays: their length only
    tensors: list[NativeTensor] = field(default_factory=list)


_lib: ctypes.CDLL | None = None
_load_failed = False
_batch_depth = 0  # inside quiet_batch(): fd 2 is already captured for every thread


@contextlib.contextmanager
def quiet_batch() -> Iterator[None]:
    """Capture native stderr once around many ``read_header`` calls, so threads can run them
    (redirecting fd 2 per call from several threads would race)."""
    global _batch_depth
    with native_noise.captured():
        _batch_depth += 1
        try:
            yield
        finally:
            _batch_depth -= 1


def _library_names() -> list[str]:
    """The file names llama_cpp's loader tries for ``ggml-base`` on this platform."""
    if sys.platform == "win32":
        return ["ggml-base.dll", "libggml-base.dll"]
    if sys.platform == "darwin":
        return ["libggml-base.so", "libggml-base.dylib"]
    return ["libggml-base.so"]


def _library_dir() -> Path | None:
    override = os.environ.get("LLAMA_CPP_LIB_PATH")  # llama_cpp honours it too
    if override:
        return Path(override)
    try:
        spec = importlib.util.find_spec("llama_cpp")  # locates the package without importing it
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "lib"


def _declare(lib: ctypes.CDLL) -> None:
    c_ctx, i64, c_str = ctypes.c_void_p, ctypes.c_int64, ctypes.c_char_p
    lib.gguf_init_from_file.argtypes = [c_str, _InitParams]
    lib.gguf_init_from_file.restype = c_ctx
    if hasattr(lib, "gguf_init_from_buffer"):  # newer libraries only; read_header checks for it
        lib.gguf_init_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_size_t, _InitParams]
        lib.gguf_init_from_buffer.restype = c_ctx
    lib.gguf_free.argtypes = [c_ctx]
    lib.gguf_free.restype = None
    for name, restype in (("gguf_get_n_kv", i64), ("gguf_get_n_tensors", i64)):
        getattr(lib, name).argtypes = [c_ctx]
        getattr(lib, name).restype = restype
    by_key = {
        "gguf_get_key": c_str, "gguf_get_kv_type": ctypes.c_int, "gguf_get_arr_type": ctypes.c_int,
        "gguf_get_val_str": c_str, "gguf_get_arr_n": ctypes.c_size_t, "gguf_get_arr_data": ctypes.c_void_p,
        "gguf_get_tensor_name": c_str, "gguf_get_tensor_type": ctypes.c_int,
        "gguf_get_tensor_size": ctypes.c_size_t, "gguf_get_tensor_ne": ctypes.POINTER(ctypes.c_int64),
    }
    for code, suffix in _GETTERS.items():
        by_key[f"gguf_get_val_{suffix}"] = _SCALAR_CTYPES[code]
    for name, restype in by_key.items():
        getattr(lib, name).argtypes = [c_ctx, i64]
        getattr(lib, name).restype = restype
    lib.gguf_get_arr_str.argtypes = [c_ctx, i64, ctypes.c_size_t]
    lib.gguf_get_arr_str.restype = c_str


def library() -> ctypes.CDLL | None:
    """libggml-base with its GGUF functions declared, or None (then the Python parser is used)."""
    global _lib, _load_failed
    if _lib is not None or _load_failed:
        return _lib
    folder = _library_dir()
    for name in _library_names() if folder else []:
        if not (folder / name).exists():
            continue
        try:
            lib = ctypes.CDLL(str(folder / name))
            _declare(lib)  # AttributeError: an older library without one of the functions
        except (OSError, AttributeError):
            continue
        _lib = lib
        return lib
    _load_failed = True
    return None


def read_header(path: str | os.PathLike, keep_array: int) -> NativeHeader | None:
    """The header of ``path`` read by llama.cpp, or None when the library is unavailable or the
    file is one it rejects (the caller's parser then reads it, and explains a malformed file)."""
    lib = library()
    if lib is None:
        return None
    # llama.cpp logs why it rejects a file; ctypes releases the GIL during the call
    with contextlib.nullcontext() if _batch_depth else native_noise.captured():
        tried, ctx = init_from_mapping(lib, path)
        if not tried:
            ctx = lib.gguf_init_from_file(os.fsencode(path), _InitParams(True, None))
    if not ctx:
        return None
    try:
        return _collect(lib, ctx, keep_array)
    except ValueError:
        return None
    finally:
        lib.gguf_free(ctx)


def init_from_mapping(lib: ctypes.CDLL, path: str | os.PathLike) -> tuple[bool, int | None]:
    """Parse the header from a memory map of the file: a quarter faster than llama.cpp's FILE
    reader (a 262k-token vocabulary: ~22 ms against ~30 ms of CPU), as no fread runs per string.
    Only the header's pages are touched. (False, None) when it cannot be tried: an older library
    without gguf_init_from_buffer, or a file that cannot be mapped."""
    init = getattr(lib, "gguf_init_from_buffer", None)
    if init is None:
        return False, None
    try:
        with open(path, "rb") as fh:
            # a private mapping, because ctypes only takes the address of a writable buffer;
            # nothing writes to it
            mapping = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_COPY)
    except (OSError, ValueError):
        return False, None
    try:
        view = ctypes.c_char.from_buffer(mapping)
        try:
            return True, init(ctypes.addressof(view), len(mapping), _InitParams(True, None))
        finally:
            del view  # the map cannot close while a ctypes object points into it
    finally:
        mapping.close()


def _collect(lib: ctypes.CDLL, ctx: int, keep_array: int) -> NativeHeader:
    header = NativeHeader(metadata={})
    for key_id in range(lib.gguf_get_n_kv(ctx)):
        key = lib.gguf_get_key(ctx, key_id).decode("utf-8", errors="replace")
        vtype = lib.gguf_get_kv_type(ctx, key_id)
        if vtype == _ARRAY:
            count = lib.gguf_get_arr_n(ctx, key_id)
            if count > keep_array:
                header.array_lengths[key] = count
            else:
                header.metadata[key] = _array(lib, ctx, key_id, count)
        else:
            header.metadata[key] = _scalar(lib, ctx, key_id, vtype)
    for tensor_id in range(lib.gguf_get_n_tensors(ctx)):
        ne = list(lib.gguf_get_tensor_ne(ctx, tensor_id)[:_MAX_DIMS])
        while len(ne) > 1 and ne[-1] == 1:
            ne.pop()
        header.tensors.append(NativeTensor(
            name=lib.gguf_get_tensor_name(ctx, tensor_id).decode("utf-8", errors="replace"),
            ne=tuple(ne),
            type_id=lib.gguf_get_tensor_type(ctx, tensor_id),
            n_bytes=lib.gguf_get_tensor_size(ctx, tensor_id),
        ))
    return header


def _scalar(lib: ctypes.CDLL, ctx: int, key_id: int, vtype: int):
    # The getters abort the process on a type mismatch, so each is called only for its own type.
    if vtype == _STRING:
        return lib.gguf_get_val_str(ctx, key_id).decode("utf-8", errors="replace")
    if vtype not in _GETTERS:
        raise ValueError(f"unknown metadata value type {vtype}")
    return getattr(lib, f"gguf_get_val_{_GETTERS[vtype]}")(ctx, key_id)


def _array(lib: ctypes.CDLL, ctx: int, key_id: int, count: int) -> list:
    etype = lib.gguf_get_arr_type(ctx, key_id)
    if etype == _STRING:
        return [lib.gguf_get_arr_str(ctx, key_id, i).decode("utf-8", errors="replace") for i in range(count)]
    if etype not in _SCALAR_CTYPES:  # llama.cpp's reader refuses nested arrays; never reached
        raise ValueError(f"unsupported array element type {etype}")
    if count == 0:
        return []
    # bool arrays are stored as int8 (gguf.h), which c_bool reads the same way
    data = ctypes.cast(lib.gguf_get_arr_data(ctx, key_id), ctypes.POINTER(_SCALAR_CTYPES[etype]))
    return list(data[:count])
