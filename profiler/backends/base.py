"""The Backend ABC: the smallest surface the measurement loop needs."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class LoadParams:
    """Parameters that need a model reload when they change."""

    use_mmap: bool = True


@dataclass(frozen=True)
class ContextParams:
    """Parameters of an inference context (a KV cache and its compute buffers)."""

    n_ctx: int
    n_batch: int = 2048
    n_ubatch: int = 512
    type_k: str = "f16"
    type_v: str = "f16"
    flash_attn: str = "auto"  # "on" / "off" / "auto", as llama-bench's -fa
    # Several sequences in one batch (quality evaluation, as llama-perplexity): a unified
    # cache shares cells between sequences; separate streams keep attention per sequence small.
    n_seq_max: int = 1
    kv_unified: bool = False


@dataclass
class SeqBatch:
    """Tokens of one or more sequences decoded together from an empty cache (llama.cpp's llama_batch).

    ``seq_ids[i]`` lists every sequence token i belongs to (a shared prefix belongs to several);
    ``outputs[i]`` says whether its logits are wanted.
    """

    tokens: list[int] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    seq_ids: list[tuple[int, ...]] = field(default_factory=list)
    outputs: list[bool] = field(default_factory=list)

    def add(self, token: int, position: int, seq_ids: tuple[int, ...], output: bool) -> None:
        self.tokens.append(token)
        self.positions.append(position)
        self.seq_ids.append(seq_ids)
        self.outputs.append(output)

    def __len__(self) -> int:
        return len(self.tokens)


@dataclass
class ModelFacts:
    """What the runtime itself reports about a loaded model."""

    description: str
    size_bytes: int
    n_params: int
    n_vocab: int
    add_bos: bool
    bos_token: int | None
    extra: dict = field(default_factory=dict)


class Backend(ABC):
    """load -> (configure -> [reset, prefill, decode_one, logits]*)* -> close.

    ``prefill`` and ``decode_one`` return only when the work is finished (synchronised),
    so a caller may time them.
    """

    name: str = "?"
    # What one timed ``decode_one`` covers on this runtime, in its own calls; recorded in each
    # row's session_options so a reader can see that every backend times the same step.
    decode_step: str = "decode_one (not described by this backend)"

    @abstractmethod
    def load(self, path: str, params: LoadParams) -> ModelFacts: ...

    @abstractmethod
    def configure(self, params: ContextParams) -> None:
        """Make a context with these parameters current (reusing the existing one if equal)."""

    @abstractmethod
    def set_threads(self, n_threads: int) -> None: ...

    @abstractmethod
    def reset(self) -> None:
        """Empty the KV cache."""

    @abstractmethod
    def prefill(self, tokens: Sequence[int]) -> None:
        """Append ``tokens`` to the sequence in n_batch chunks; logits are kept for the last one."""

    @abstractmethod
    def decode_one(self, token: int) -> None:
        """Append one token and compute its logits: the timed decode step.

        On every backend it is what llama-bench times per generated token (llama_decode of one
        token + llama_synchronize): the runtime runs the model on ``token`` and returns when that
        position's logits sit in memory the runtime fills. Nothing else: reading the logits out
        and choosing the next token are the caller's, outside the timer.
        """

    @abstractmethod
    def logits(self) -> np.ndarray:
        """Logits of the last evaluated position (a view; copy it to keep it)."""

    @abstractmethod
    def tokenize(self, text: str, add_special: bool = True) -> list[int]: ...

    def n_past(self) -> int:
        """Tokens currently in the sequence."""
        return self._n_past

    def logits_all(self, tokens: Sequence[int], first_output: int = 0) -> np.ndarray:
        """Evaluate ``tokens`` as one sequence from an empty cache; logits of positions
        ``first_output..`` as float32 [n, n_vocab] (llama-perplexity's all-logits pass)."""
        batch = SeqBatch()
        for pos, token in enumerate(tokens):
            batch.add(token, pos, (0,), pos >= first_output)
        return self.logits_batch(batch)

    def logits_batch(self, batch: SeqBatch) -> np.ndarray:
        """Decode ``batch`` from an empty cache; logits of its output tokens, in batch order.

        This generic version replays each sequence token by token through ``decode_one``;
        backends override it with a real batched decode.
        """
        rows: dict[int, np.ndarray] = {}
        for seq in sorted({s for ids in batch.seq_ids for s in ids}):
            members = sorted((batch.positions[i], i) for i in range(len(batch)) if seq in batch.seq_ids[i])
            self.reset()
            for expected, (pos, i) in enumerate(members):
                if pos != expected:
                    raise ValueError(f"sequence {seq} is not contiguous from position 0")
                self.decode_one(batch.tokens[i])
                if batch.outputs[i] and i not in rows:
                    rows[i] = np.array(self.logits(), dtype=np.float32)
        self.reset()
        return np.stack([rows[i] for i in range(len(batch)) if batch.outputs[i]]) if rows else np.zeros((0, 0), np.float32)

    @property
    def build_info(self) -> dict:
        """Runtime version and build details for the results."""
        return {}

    @property
    def session_options(self) -> dict:
        """Runtime settings that shape the numbers (ONNX Runtime's session options) and what the
        timed decode step covers; recorded in each row."""
        return {"decode_step": self.decode_step}

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
