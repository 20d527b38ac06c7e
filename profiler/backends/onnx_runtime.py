"""Plain ONNX Runtime with our own decode loop, for Optimum / transformers.js exports and for
the decoder graph of an onnxruntime-genai folder.

Every tensor crosses into the session through IO binding, so the KV cache never round-trips
through numpy:

* graphs with GroupQueryAttention (the genai builder's) read and write one full-context
  buffer per layer: past input and present output are bound to the same memory once, at
  ``configure``, and the attention mask's length tells the kernel where the sequence ends;
* other graphs concatenate: each step's ``present`` OrtValues become the next step's
  ``past`` inputs as they are, without a copy.

Logits land in buffers we own, so ``logits()`` is a view.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from profiler.backends.base import Backend, ContextParams, LoadParams, ModelFacts, SeqBatch
from profiler.backends.onnx_common import (
    OPT_LEVELS,
    HFTokenizer,
    SessionSettings,
    bos_facts,
    check_context,
    default_threads,
    logits_by_sequence,
    make_facts,
    model_info,
    special_ids,
    vocab_from_configs,
)
from profiler.errors import UserError
from profiler.models.onnxinfo import PAST_NAME

KV_NUMPY = {"f32": np.float32, "f16": np.float16}


def _ort():
    try:
        import onnxruntime
    except ImportError:
        raise UserError("ONNX models need the onnx extra: pip install 'profiler[onnx]'") from None
    return onnxruntime


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    decode_step = "binding one token's inputs + run_with_iobinding (logits into a buffer we bound)"

    def __init__(self, verbose: bool = False, execution_provider: str = "cpu", graph_optimization: str = "all") -> None:
        self._ort = _ort()
        self._verbose = verbose
        self.settings = SessionSettings(execution_provider, graph_optimization)
        if self.settings.provider_name not in self._ort.get_available_providers():
            raise UserError(
                f"execution provider {self.settings.provider_name} is not in this onnxruntime build "
                f"(available: {', '.join(self._ort.get_available_providers())})"
            )
        self._session = None
        self._io = None
        self._info = None
        self._tokenizer: HFTokenizer | None = None
        self._threads = 0
        self._ctx: ContextParams | None = None
        self._n_past = 0
        self._pasts: list[str] = []
        self._kv: dict[str, object] = {}  # past input name -> OrtValue
        self._last: np.ndarray | None = None

    # ----------------------------------------------------------------- model
    def load(self, path: str, params: LoadParams) -> ModelFacts:
        self._info = model_info(path)
        self._threads = default_threads()
        self._session = self._new_session(self._threads)
        outputs = {o.name: o for o in self._session.get_outputs()}
        if "logits" not in outputs:
            raise UserError(f"{self._info.layout.decoder} has no 'logits' output: not a causal language model")
        self._pasts = sorted((i.name for i in self._session.get_inputs() if PAST_NAME.match(i.name)),
                             key=lambda n: (int(PAST_NAME.match(n).group(1)), n))
        inputs = {i.name for i in self._session.get_inputs()}
        self._has_mask = "attention_mask" in inputs
        self._has_positions = "position_ids" in inputs
        shape = outputs["logits"].shape
        self._n_vocab = shape[-1] if isinstance(shape[-1], int) else vocab_from_configs(self._info.layout)
        if not self._n_vocab:
            raise UserError(f"cannot tell the vocabulary size of {self._info.layout.decoder}; add config.json beside it")
        ids = special_ids(self._info.layout)
        add_bos, bos = bos_facts(self.tokenize, ids["bos"]) if self._info.layout.tokenizer_dir else (False, ids["bos"])
        return make_facts(self._info, self.name, int(self._n_vocab), add_bos, bos)

    def _new_session(self, threads: int):
        ort = self._ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPT_LEVELS[self.settings.graph_optimization][0])
        so.log_severity_level = 0 if self._verbose else 3
        try:
            return ort.InferenceSession(str(self._info.layout.decoder), so, providers=[self.settings.provider_name])
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph types for bad models
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"onnxruntime could not load {self._info.layout.decoder}: {first[:300]}") from None

    def configure(self, params: ContextParams) -> None:
        check_context(self._info, params)
        if self._ctx is not None and params == self._ctx:
            return
        self._ctx = params
        n = params.n_ctx
        self._ones = np.ones((1, n), dtype=np.int64)
        self._positions = np.arange(n, dtype=np.int64)[None, :]
        self._logits_one = np.zeros((1, 1, self._n_vocab), dtype=np.float32)
        self._logits_many = np.zeros((1, 0, self._n_vocab), dtype=np.float32)
        info = self._info
        dtype = KV_NUMPY.get(info.kv_type)
        if dtype is None:
            raise UserError(f"{info.layout.decoder}: KV-cache type {info.kv_type} is not supported by this backend")
        self._kv_dtype = dtype
        if info.shared_kv_buffer:
            # One buffer per past input, the full context long, written in place by the kernel.
            self._kv_arrays = {p: np.zeros((1, info.n_head_kv, n, info.head_dim_k), dtype=dtype) for p in self._pasts}
        self._bind_session()

    def _bind_session(self) -> None:
        """A fresh IO binding on the current session, with the KV cache empty."""
        ort = self._ort
        self._io = self._session.io_binding()
        self._ov_one = ort.OrtValue.ortvalue_from_numpy(self._logits_one)
        if self._info.shared_kv_buffer:
            for past, array in self._kv_arrays.items():
                value = ort.OrtValue.ortvalue_from_numpy(array)
                self._io.bind_ortvalue_input(past, value)
                self._io.bind_ortvalue_output(past.replace("past_key_values", "present"), value)
                self._kv[past] = value
        self.reset()

    def set_threads(self, n_threads: int) -> None:
        # intra-op threads are a session option: a new count needs a new session (untimed).
        if n_threads != self._threads:
            self._session = self._new_session(n_threads)
            self._threads = n_threads
            if self._ctx is not None:
                self._bind_session()

    # ----------------------------------------------------------------- inference
    def reset(self) -> None:
        self._n_past = 0
        self._last = None
        if not self._info.shared_kv_buffer:
            info = self._info
            empty = np.zeros((1, info.n_head_kv, 0, info.head_dim_k), dtype=self._kv_dtype)
            self._kv = {p: self._ort.OrtValue.ortvalue_from_numpy(empty) for p in self._pasts}

    def prefill(self, tokens: Sequence[int]) -> None:
        step = self._ctx.n_batch
        for start in range(0, len(tokens), step):
            self._run(tokens[start : start + step])

    def decode_one(self, token: int) -> None:
        self._run((token,))

    def _logits_buffer(self, n: int) -> np.ndarray:
        if n == 1:
            return self._logits_one
        if self._logits_many.shape[1] < n:  # grown, never shrunk: repetitions reuse it
            self._logits_many = np.zeros((1, n, self._n_vocab), dtype=np.float32)
        return self._logits_many[:, :n]

    def _run(self, tokens: Sequence[int]) -> np.ndarray:
        n = len(tokens)
        end = self._n_past + n
        if end > self._ctx.n_ctx:
            raise UserError(f"sequence of {end} tokens exceeds the context size {self._ctx.n_ctx}")
        io = self._io
        io.bind_cpu_input("input_ids", np.asarray(tokens, dtype=np.int64).reshape(1, n))
        if self._has_mask:
            io.bind_cpu_input("attention_mask", self._ones[:, :end])
        if self._has_positions:
            io.bind_cpu_input("position_ids", self._positions[:, self._n_past : end])
        logits = self._logits_buffer(n)
        shared = self._info.shared_kv_buffer
        if not shared:
            io.clear_binding_outputs()
            for past in self._pasts:
                io.bind_ortvalue_input(past, self._kv[past])
                io.bind_output(past.replace("past_key_values", "present"), "cpu")
        io.bind_ortvalue_output("logits", self._ov_one if n == 1 else self._ort.OrtValue.ortvalue_from_numpy(logits))
        self._session.run_with_iobinding(io)
        if not shared:
            # Outputs come back in binding order: the presents, then logits.
            for past, value in zip(self._pasts, io.get_outputs(), strict=False):
                self._kv[past] = value
        self._n_past = end
        self._last = logits[0, -1]
        return logits[0]

    def logits(self) -> np.ndarray:
        if self._last is None:
            raise RuntimeError("logits() before any prefill or decode")
        return self._last

    def logits_all(self, tokens: Sequence[int], first_output: int = 0) -> np.ndarray:
        """Every position's logits from batched passes (the graph computes them all anyway)."""
        return self._sequence_logits(tokens)[first_output:]

    def logits_batch(self, batch: SeqBatch) -> np.ndarray:
        return logits_by_sequence(batch, self._sequence_logits)

    def _sequence_logits(self, tokens: Sequence[int]) -> np.ndarray:
        self.reset()
        step = self._ctx.n_batch
        rows = [np.array(self._run(tokens[start : start + step])) for start in range(0, len(tokens), step)]
        self.reset()
        return np.concatenate(rows) if rows else np.zeros((0, self._n_vocab), np.float32)

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        if self._tokenizer is None:
            folder = self._info.layout.tokenizer_dir
            if folder is None:
                raise UserError(f"{self._info.layout.path} has no tokenizer.json; use --random-tokens or add one")
            self._tokenizer = HFTokenizer(folder)
        return self._tokenizer.encode(text, add_special)

    @property
    def build_info(self) -> dict:
        return {"build_commit": f"onnxruntime {self._ort.__version__}", "onnxruntime": self._ort.__version__}

    @property
    def session_options(self) -> dict:
        kv = "shared full-context buffer (GroupQueryAttention)" if self._info and self._info.shared_kv_buffer else "concatenated per step"
        return {**super().session_options, **self.settings.describe(self._threads), "io_binding": True, "kv_cache": kv}

    # ----------------------------------------------------------------- teardown
    def close(self) -> None:
        self._io = None
        self._kv = {}
        self._session = None
