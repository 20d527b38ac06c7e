"""Multi-sequence batches for llama.cpp, held in numpy arrays, decoded in n_batch pieces.

This is what llama-perplexity's ``common_batch`` + ``decode_helper`` do: every token carries a
position, the sequences it belongs to and an output flag; the batch is decoded in pieces of
at most n_batch tokens and the logits of the flagged tokens are gathered in batch order.
The arrays live in numpy (not ``llama_batch_init``) so filling 2048 tokens is vectorised.
"""

from __future__ import annotations

import ctypes

import numpy as np

from profiler.backends.base import SeqBatch


class LlamaBatchDecoder:
    """Reusable storage for llama_batch structs; grows to the largest batch seen."""

    def __init__(self, lc) -> None:
        self._lc = lc
        self._cap = 0
        self._width = 0

    def _reserve(self, n_tokens: int, width: int) -> None:
        if n_tokens <= self._cap and width <= self._width:
            return
        self._cap = max(n_tokens, self._cap)
        self._width = max(width, self._width, 1)
        self.token = np.zeros(self._cap, np.int32)
        self.pos = np.zeros(self._cap, np.int32)
        self.n_seq_id = np.zeros(self._cap, np.int32)
        self.seq_mat = np.zeros((self._cap, self._width), np.int32)
        # llama_batch.seq_id is an array of pointers, one per token, into seq_mat's rows.
        self.seq_ptr = (self.seq_mat.ctypes.data + np.arange(self._cap, dtype=np.uint64) * (4 * self._width)).astype(np.uint64)
        self.logits = np.zeros(self._cap, np.int8)

    def fill(self, batch: SeqBatch) -> int:
        """Copy ``batch`` into the arrays; returns the number of output rows."""
        n = len(batch)
        width = max((len(ids) for ids in batch.seq_ids), default=1)
        self._reserve(n, width)
        self.token[:n] = batch.tokens
        self.pos[:n] = batch.positions
        self.logits[:n] = batch.outputs
        if width == 1:
            self.n_seq_id[:n] = 1
            self.seq_mat[:n, 0] = [ids[0] for ids in batch.seq_ids]
        else:
            for i, ids in enumerate(batch.seq_ids):
                self.n_seq_id[i] = len(ids)
                self.seq_mat[i, : len(ids)] = ids
        return int(self.logits[:n].sum())

    def view(self, start: int, n: int):
        """A llama_batch struct over tokens ``start .. start+n`` of the filled arrays."""
        lc = self._lc

        def ptr(array: np.ndarray, ctype, item_bytes: int):
            return ctypes.cast(array.ctypes.data + start * item_bytes, ctypes.POINTER(ctype))

        batch = lc.llama_batch()
        batch.n_tokens = n
        batch.token = ptr(self.token, lc.llama_token, 4)
        batch.embd = ctypes.POINTER(ctypes.c_float)()
        batch.pos = ptr(self.pos, lc.llama_pos, 4)
        batch.n_seq_id = ptr(self.n_seq_id, ctypes.c_int32, 4)
        batch.seq_id = ptr(self.seq_ptr, ctypes.POINTER(lc.llama_seq_id), 8)
        batch.logits = ptr(self.logits, ctypes.c_int8, 1)
        return batch

    def n_outputs(self, start: int, n: int) -> int:
        return int(self.logits[start : start + n].sum())
