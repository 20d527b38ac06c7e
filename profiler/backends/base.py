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
        """Append one token and compute its logits."""

    @abstractmethod
    def logits(self) -> np.ndarray:
        """Logits of the last evaluated position (a view; copy it to keep it)."""

    @abstractmethod
    def tokenize(self, text: str, add_special: bool = True) -> list[int]: ...

    def n_past(self) -> int:
        """Tokens currently in the sequence."""
        return self._n_past

    @property
    def build_info(self) -> dict:
        """Runtime version and build details for the results."""
        return {}

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
