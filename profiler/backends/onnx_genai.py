"""onnxruntime-genai model folders (genai_config.json + model.onnx + tokenizer).

A Generator holds the KV cache (one full-context buffer when the config shares past and
present). ``append_tokens`` runs the model on the tokens given: a prompt chunk for prefill,
one token for a decode step. That call is the whole timed decode step, as llama_decode +
llama_synchronize is llama.cpp's: genai's own greedy step (``generate_next_token``) is not used,
because it chooses the next token inside the same call, and copying the logits out
(``get_logits``) and choosing the next token stay with the shared runner, outside the timer.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from profiler.backends.base import Backend, ContextParams, LoadParams, ModelFacts, SeqBatch
from profiler.backends.onnx_common import (
    SessionSettings,
    bos_facts,
    check_context,
    default_threads,
    json_overlay,
    logits_by_sequence,
    make_facts,
    model_info,
    special_ids,
    vocab_from_configs,
)
from profiler.errors import UserError


def _og():
    try:
        import onnxruntime_genai
    except ImportError:
        raise UserError("onnxruntime-genai folders need the onnx extra: pip install 'profiler[onnx]'") from None
    return onnxruntime_genai


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


class OnnxGenaiBackend(Backend):
    name = "onnxruntime-genai"
    decode_step = "Generator.append_tokens of one token (logits kept in the generator)"

    def __init__(self, verbose: bool = False, execution_provider: str = "cpu", graph_optimization: str = "all") -> None:
        self._og = _og()
        self.settings = SessionSettings(execution_provider, graph_optimization)
        self._model = None
        self._tokenizer = None
        self._generator = None
        self._info = None
        self._threads = 0
        self._ctx: ContextParams | None = None
        self._n_past = 0
        self._one = np.zeros(1, dtype=np.int32)
        self._bos_added: bool | None = None
        self._logits: np.ndarray | None = None  # the last position's logits, once read

    # ----------------------------------------------------------------- model
    def load(self, path: str, params: LoadParams) -> ModelFacts:
        self._info = model_info(path)
        if self._info.layout.kind != "genai":
            raise UserError(f"{path} is not an onnxruntime-genai folder (no genai_config.json); use --backend onnxruntime")
        self._threads = default_threads()
        self._model = self._new_model(self._threads)
        try:
            self._tokenizer = self._og.Tokenizer(self._model)
        except Exception:  # a folder without tokenizer files still profiles with --random-tokens
            self._tokenizer = None
        n_vocab = vocab_from_configs(self._info.layout)
        if not n_vocab:
            raise UserError(f"{self._info.layout.path}/genai_config.json has no model.vocab_size")
        ids = special_ids(self._info.layout)
        add_bos, bos = bos_facts(self.tokenize, ids["bos"]) if self._tokenizer else (False, ids["bos"])
        self._n_vocab = int(n_vocab)
        return make_facts(self._info, self.name, self._n_vocab, add_bos, bos)

    def _new_model(self, threads: int):
        og = self._og
        folder = str(self._info.layout.path if self._info.layout.path.is_dir() else self._info.layout.folder)
        try:
            config = og.Config(folder)
            config.overlay(json_overlay(self.settings, threads))
            config.clear_providers()
            if self.settings.execution_provider != "cpu":
                config.append_provider(self.settings.execution_provider)
            return og.Model(config)
        except Exception as exc:  # genai raises RuntimeError with the JSON or ORT message
            raise UserError(f"onnxruntime-genai could not load {folder}: {_first_line(exc)}") from None

    def configure(self, params: ContextParams) -> None:
        check_context(self._info, params)
        if self._generator is not None and params == self._ctx:
            return
        self._ctx = params
        self._new_generator()

    def _new_generator(self) -> None:
        self._generator = None  # free the old KV cache before allocating the new one
        gp = self._og.GeneratorParams(self._model)
        # Plain greedy, so a model's own search defaults (repetition penalty, min length) touch
        # nothing; only max_length matters, as we never ask genai to choose a token.
        gp.set_search_options(max_length=self._ctx.n_ctx, do_sample=False, min_length=0, repetition_penalty=1.0)
        self._generator = self._og.Generator(self._model, gp)
        self._n_past = 0
        self._logits = None

    def set_threads(self, n_threads: int) -> None:
        # Threads are a session option of the model: a new count needs a new model (untimed).
        if n_threads != self._threads:
            self._generator = None
            self._model = None
            self._model = self._new_model(n_threads)
            self._threads = n_threads
            if self._tokenizer is not None:
                self._tokenizer = self._og.Tokenizer(self._model)
            if self._ctx is not None:
                self._new_generator()

    # ----------------------------------------------------------------- inference
    def reset(self) -> None:
        # A fresh generator, as a genai application makes per request: decoding after
        # rewind_to(0) measured ~3% slower per token. Allocating it is outside every timer.
        if self._n_past:
            self._new_generator()
        self._n_past = 0
        self._logits = None

    def _append(self, tokens: np.ndarray) -> None:
        end = self._n_past + len(tokens)
        if end > self._ctx.n_ctx:
            raise UserError(f"sequence of {end} tokens exceeds the context size {self._ctx.n_ctx}")
        self._generator.append_tokens(tokens)
        self._n_past = end
        self._logits = None

    def prefill(self, tokens: Sequence[int]) -> None:
        ids = np.asarray(tokens, dtype=np.int32)
        step = self._ctx.n_batch
        for start in range(0, len(ids), step):
            self._append(ids[start : start + step])

    def decode_one(self, token: int) -> None:
        # append_tokens alone: the model run. Not generate_next_token: it chooses a token in the
        # same call, and the model run on that token happens only in the get_logits copy after it.
        self._one[0] = token
        self._append(self._one)

    def logits(self) -> np.ndarray:
        if self._logits is None:  # get_logits copies genai's buffer out: once per position
            self._logits = self._generator.get_logits().reshape(-1, self._n_vocab)[-1]
        return self._logits

    def logits_all(self, tokens: Sequence[int], first_output: int = 0) -> np.ndarray:
        """Every position's logits: the decoder's full ``logits`` output of each chunk."""
        return self._sequence_logits(tokens)[first_output:]

    def logits_batch(self, batch: SeqBatch) -> np.ndarray:
        return logits_by_sequence(batch, self._sequence_logits)

    def _sequence_logits(self, tokens: Sequence[int]) -> np.ndarray:
        self.reset()
        ids = np.asarray(tokens, dtype=np.int32)
        rows = []
        step = self._ctx.n_batch
        for start in range(0, len(ids), step):
            chunk = ids[start : start + step]
            self._append(chunk)
            out = np.array(self._generator.get_output("logits"), dtype=np.float32).reshape(-1, self._n_vocab)
            if len(out) != len(chunk):  # a graph that prunes the LM head keeps the last row only
                raise UserError(f"{self._info.layout.path} computes last-token logits only; use --backend onnxruntime")
            rows.append(out)
        self.reset()
        return np.concatenate(rows) if rows else np.zeros((0, self._n_vocab), np.float32)

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        if self._tokenizer is None:
            raise UserError(f"{self._info.layout.path} has no tokenizer files; use --random-tokens")
        ids = [int(t) for t in self._tokenizer.encode(text)]
        # genai always applies the tokenizer's own special-token rule; strip the BOS it adds.
        if not add_special and ids and self._adds_bos():
            return ids[1:]
        return ids

    def _adds_bos(self) -> bool:
        if self._bos_added is None:
            bos = special_ids(self._info.layout)["bos"]
            probe = [int(t) for t in self._tokenizer.encode("a")]
            self._bos_added = bool(probe) and bos is not None and probe[0] == bos
        return self._bos_added

    @property
    def build_info(self) -> dict:
        import onnxruntime

        version = getattr(self._og, "__version__", "?")
        return {"build_commit": f"onnxruntime-genai {version}", "onnxruntime_genai": version, "onnxruntime": onnxruntime.__version__}

    @property
    def session_options(self) -> dict:
        return {**super().session_options, **self.settings.describe(self._threads),
                "kv_cache": "genai generator (past/present shared buffer)"}

    # ----------------------------------------------------------------- teardown
    def close(self) -> None:
        self._generator = None
        self._tokenizer = None
        self._model = None
