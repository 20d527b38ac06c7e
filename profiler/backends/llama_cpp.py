"""llama.cpp through llama-cpp-python's low-level API, the way llama-bench drives it.

``llama_decode`` on token batches, the KV cache through ``llama_memory_*`` and logits read
straight from llama.cpp's buffer. The high-level ``Llama`` class is avoided on purpose: its
sampling and bookkeeping cost ~15% of decode speed.
"""

from __future__ import annotations

import collections
import ctypes
import re
import threading
from collections.abc import Sequence

import numpy as np

from profiler.backends.base import Backend, ContextParams, LoadParams, ModelFacts, SeqBatch
from profiler.errors import UserError

# ggml_type ids of the KV-cache types llama.cpp accepts (ggml.h).
GGML_TYPES = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q5_0": 6, "q5_1": 7, "q8_0": 8, "iq4_nl": 20, "bf16": 30}
FLASH_ATTN = {"auto": -1, "off": 0, "on": 1}

_init_lock = threading.Lock()
_initialised = False
_log_callback = None  # kept alive: llama.cpp holds the pointer
# llama.cpp's recent log lines, kept (not printed) so a failure can quote its reason.
_recent_log: collections.deque[str] = collections.deque(maxlen=50)


def _lib():
    try:
        import llama_cpp
    except ImportError as exc:  # a broken native build is a setup problem the user can fix
        raise UserError(f"llama-cpp-python is not importable ({exc}); reinstall with pip install llama-cpp-python") from None
    return llama_cpp


def _ensure_backend(verbose: bool) -> None:
    """Initialise llama.cpp once per process and silence its logging unless verbose."""
    global _initialised, _log_callback
    with _init_lock:
        if _initialised:
            return
        lc = _lib()
        if not verbose:

            @lc.llama_log_callback
            def _quiet(level, text, user_data):  # noqa: ARG001 - signature fixed by C
                line = text.decode("utf-8", errors="replace").strip() if text else ""
                if line and line != ".":
                    _recent_log.append(line)

            _log_callback = _quiet
            lc.llama_log_set(_log_callback, ctypes.c_void_p(0))
        lc.llama_backend_init()
        _initialised = True


def initialised_library(verbose: bool = False):
    """llama-cpp-python with llama.cpp initialised for this process: for callers that use its C API
    directly rather than through a backend (the quantizer)."""
    _ensure_backend(verbose)
    return _lib()


def _llama_reason() -> str:
    """llama.cpp's own reason for the last failure (its log), for one-line messages."""
    lines = list(reversed(_recent_log))
    for keywords in (("error",), ("requires", "not ", "invalid", "unsupported", "failed")):
        for line in lines:
            if any(k in line.lower() for k in keywords):
                # drop the C function prefixes ("llama_model_load: error loading model: ")
                reason = re.sub(r"^(\w+: )+(error loading model: )?", "", line)
                return f": {reason[:200]}"
    return " (run with --verbose for llama.cpp's log)"


def system_info() -> dict:
    """llama-cpp-python version and llama.cpp's own build/feature line."""
    lc = _lib()
    info = {"llama_cpp_python": getattr(lc, "__version__", "?")}
    try:
        info["system_info"] = lc.llama_print_system_info().decode(errors="replace").strip()
    except Exception as exc:  # the line is informational only
        info["system_info"] = f"unavailable ({exc})"
    return info


def openmp_build() -> bool:
    """Whether llama-cpp-python's CPU backend (libggml-cpu) runs its threads through OpenMP: such a
    build ignores ggml_threadpool_params' cpumask and strict_cpu (ggml-cpu.c keeps no per-thread
    mask under GGML_USE_OPENMP). Read from the shared libraries' imports, without loading them."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return False
    libs = [p for base in spec.submodule_search_locations for p in sorted((Path(base) / "lib").glob("libggml-cpu*.so*"))]
    return any(b"GOMP_parallel" in p.read_bytes() for p in libs if p.is_file() and not p.is_symlink())


class LlamaCppBackend(Backend):
    name = "llama.cpp"
    decode_step = "llama_decode of one token + llama_synchronize (logits into llama.cpp's buffer), as llama-bench's tg"
    _batcher = None  # LlamaBatchDecoder, made on the first logits_batch

    def __init__(self, verbose: bool = False) -> None:
        self._lc = _lib()
        _ensure_backend(verbose)
        self._model = None
        self._ctx = None
        self._ctx_params: ContextParams | None = None
        self._vocab = None
        self._n_vocab = 0
        self._n_past = 0
        self._threads = 0
        self._one = (self._lc.llama_token * 1)()

    # ----------------------------------------------------------------- model
    def load(self, path: str, params: LoadParams) -> ModelFacts:
        lc = self._lc
        _recent_log.clear()
        mparams = lc.llama_model_default_params()
        # 0.3.36 replaced use_mmap with load_mode; ctypes would accept a use_mmap attribute silently.
        mparams.load_mode = lc.LLAMA_LOAD_MODE_MMAP if params.use_mmap else lc.LLAMA_LOAD_MODE_NONE
        mparams.n_gpu_layers = 0
        model = lc.llama_model_load_from_file(str(path).encode(), mparams)
        if not model:
            raise UserError(f"llama.cpp could not load {path}{_llama_reason()}")
        self._model = model
        self._vocab = lc.llama_model_get_vocab(model)
        self._n_vocab = lc.llama_vocab_n_tokens(self._vocab)
        buf = ctypes.create_string_buffer(256)
        lc.llama_model_desc(model, buf, len(buf))
        add_bos = bool(lc.llama_vocab_get_add_bos(self._vocab))
        bos = lc.llama_vocab_bos(self._vocab)
        return ModelFacts(
            description=buf.value.decode(errors="replace"),
            size_bytes=int(lc.llama_model_size(model)),
            n_params=int(lc.llama_model_n_params(model)),
            n_vocab=self._n_vocab,
            add_bos=add_bos,
            bos_token=bos if bos >= 0 else None,
        )

    def configure(self, params: ContextParams) -> None:
        if self._ctx is not None and params == self._ctx_params:
            return
        self._free_context()
        lc = self._lc
        for label, kind in (("--cache-type-k", params.type_k), ("--cache-type-v", params.type_v)):
            if kind not in GGML_TYPES:
                raise UserError(f"unknown {label} '{kind}' (use one of {', '.join(GGML_TYPES)})")
        _recent_log.clear()
        cparams = lc.llama_context_default_params()
        cparams.n_ctx = params.n_ctx
        cparams.n_batch = params.n_batch
        cparams.n_ubatch = params.n_ubatch
        cparams.type_k = GGML_TYPES[params.type_k]
        cparams.type_v = GGML_TYPES[params.type_v]
        cparams.flash_attn_type = FLASH_ATTN[params.flash_attn]
        cparams.n_seq_max = params.n_seq_max
        cparams.kv_unified = params.kv_unified
        cparams.no_perf = True
        cparams.swa_full = False  # as llama-bench: sliding-window layers keep only their window
        ctx = lc.llama_init_from_model(self._model, cparams)
        if not ctx:
            raise UserError(
                f"llama.cpp could not create a context (n_ctx={params.n_ctx}, cache {params.type_k}/{params.type_v}, "
                f"flash-attn {params.flash_attn}){_llama_reason()}"
            )
        self._ctx = ctx
        self._ctx_params = params
        self._threads = 0
        self._n_past = 0

    def set_threads(self, n_threads: int) -> None:
        if n_threads != self._threads:
            self._lc.llama_set_n_threads(self._ctx, n_threads, n_threads)
            self._threads = n_threads

    # ----------------------------------------------------------------- inference
    def reset(self) -> None:
        self._lc.llama_memory_clear(self._lc.llama_get_memory(self._ctx), False)
        self._n_past = 0

    def prefill(self, tokens: Sequence[int]) -> None:
        lc = self._lc
        n_batch = self._ctx_params.n_batch
        arr = (lc.llama_token * len(tokens))(*tokens)
        base = ctypes.addressof(arr)
        size = ctypes.sizeof(lc.llama_token)
        for start in range(0, len(tokens), n_batch):
            n = min(n_batch, len(tokens) - start)
            ptr = ctypes.cast(base + start * size, ctypes.POINTER(lc.llama_token))
            self._decode(lc.llama_batch_get_one(ptr, n), n)
        lc.llama_synchronize(self._ctx)

    def decode_one(self, token: int) -> None:
        self._one[0] = token
        self._decode(self._lc.llama_batch_get_one(self._one, 1), 1)
        self._lc.llama_synchronize(self._ctx)

    def _decode(self, batch, n: int) -> None:
        if self._n_past + n > self._ctx_params.n_ctx:
            raise UserError(f"sequence of {self._n_past + n} tokens exceeds the context size {self._ctx_params.n_ctx}")
        status = self._lc.llama_decode(self._ctx, batch)
        if status != 0:
            raise RuntimeError(f"llama_decode failed with status {status} at position {self._n_past}")
        self._n_past += n

    def logits(self) -> np.ndarray:
        ptr = self._lc.llama_get_logits_ith(self._ctx, -1)
        return np.ctypeslib.as_array(ptr, shape=(self._n_vocab,))

    def logits_batch(self, batch: SeqBatch) -> np.ndarray:
        """One multi-sequence batch from an empty cache, decoded in n_batch pieces (llama-perplexity's
        decode_helper). When a single llama_decode covers it the result is a view of llama.cpp's
        logits buffer, valid until the next decode; otherwise a copy."""
        from profiler.backends.llama_batch import LlamaBatchDecoder

        lc, params = self._lc, self._ctx_params
        if self._batcher is None:
            self._batcher = LlamaBatchDecoder(lc)
        n_out = self._batcher.fill(batch)
        top_seq = max((s for ids in batch.seq_ids for s in ids), default=0)
        if top_seq >= params.n_seq_max:
            raise ValueError(f"sequence id {top_seq} needs a context with n_seq_max > {top_seq} (it has {params.n_seq_max})")
        self.reset()
        self._n_past = max(batch.positions, default=-1) + 1
        out, done = None, 0
        for start in range(0, len(batch), params.n_batch):
            count = min(params.n_batch, len(batch) - start)
            status = lc.llama_decode(self._ctx, self._batcher.view(start, count))
            if status != 0:
                raise UserError(f"llama_decode failed (status {status}) on a {len(batch)}-token batch with n_ctx={params.n_ctx}; "
                                "the sequences do not fit the context - raise --ctx or lower --batch")
            k = self._batcher.n_outputs(start, count)
            if k == 0:
                continue
            rows = np.ctypeslib.as_array(lc.llama_get_logits(self._ctx), shape=(k, self._n_vocab))
            if k == n_out:
                return rows
            if out is None:
                out = np.empty((n_out, self._n_vocab), np.float32)
            out[done : done + k] = rows
            done += k
        return out if out is not None else np.zeros((0, self._n_vocab), np.float32)

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        raw = text.encode("utf-8")
        capacity = len(raw) + 16
        buf = (self._lc.llama_token * capacity)()
        n = self._lc.llama_tokenize(self._vocab, raw, len(raw), buf, capacity, add_special, False)
        if n < 0:  # buffer too small: llama.cpp returns the size it needs, negated
            capacity = -n
            buf = (self._lc.llama_token * capacity)()
            n = self._lc.llama_tokenize(self._vocab, raw, len(raw), buf, capacity, add_special, False)
        return list(buf[:n])

    def token_text(self, token: int) -> str:
        buf = ctypes.create_string_buffer(64)
        n = self._lc.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, False)
        return buf.raw[: max(n, 0)].decode("utf-8", errors="replace")

    @property
    def build_info(self) -> dict:
        return system_info()

    # ----------------------------------------------------------------- teardown
    def _free_context(self) -> None:
        if self._ctx is not None:
            self._lc.llama_free(self._ctx)
            self._ctx = None
            self._ctx_params = None

    def close(self) -> None:
        self._free_context()
        if self._model is not None:
            self._lc.llama_model_free(self._model)
            self._model = None
