"""Cross-runtime parity: how far an ONNX model's next-token distributions are from llama.cpp's.

Both runtimes evaluate exactly the same token ids (tokenised once, by the reference) with
all-position logits; the per-token KL-divergence KL(P_reference || Q_candidate) is computed over
the full vocabulary in float64. Greedy decoding from one prompt through both shows whether
the first generated tokens agree. The result prices what changing runtime and format costs in
quality - with the weights converted from the same GGUF, it is the conversion and the runtime
alone.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from profiler.backends import backend_name_for, create_backend
from profiler.backends.base import Backend, ContextParams, LoadParams
from profiler.errors import UserError

DEFAULT_PROMPT = "The capital of France is"
BLOCK_ROWS = 64


def _log_softmax(rows: np.ndarray) -> np.ndarray:
    x = rows.astype(np.float64)
    x -= x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def kl_divergence(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Per-row KL(softmax(reference) || softmax(candidate)) in nats; inputs [n, n_vocab] logits."""
    if reference.shape != candidate.shape:
        raise UserError(f"logit shapes differ: reference {reference.shape}, candidate {candidate.shape}")
    out = np.empty(len(reference), dtype=np.float64)
    for lo in range(0, len(reference), BLOCK_ROWS):
        lp, lq = _log_softmax(reference[lo : lo + BLOCK_ROWS]), _log_softmax(candidate[lo : lo + BLOCK_ROWS])
        out[lo : lo + BLOCK_ROWS] = np.maximum((np.exp(lp) * (lp - lq)).sum(axis=-1), 0.0)
    return out


@dataclass
class KldStats:
    n_tokens: int
    kld_mean: float
    kld_mean_stderr: float  # standard error of the mean: an estimate from this text's tokens
    kld_median: float
    kld_p99: float
    kld_max: float
    same_top_fraction: float  # candidate argmax == reference argmax


def kld_stats(reference: np.ndarray, candidate: np.ndarray) -> KldStats:
    """KL-divergence summary of two [n, n_vocab] logit arrays over the same tokens."""
    kld = kl_divergence(reference, candidate)
    n = len(kld)
    stderr = float(kld.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    same = float(np.mean(reference.argmax(axis=1) == candidate.argmax(axis=1))) if n else float("nan")
    return KldStats(n, float(kld.mean()), stderr, float(np.median(kld)), float(np.percentile(kld, 99)), float(kld.max()), same)


@dataclass
class ParityResult:
    reference: dict  # model path, backend, description
    candidate: dict
    text: str  # where the evaluated tokens came from
    stats: KldStats
    prompt: str
    greedy_reference: list[int]
    greedy_candidate: list[int]
    threads: int
    warnings: list[str] = field(default_factory=list)

    @property
    def greedy_agree(self) -> int:
        """How many leading greedy tokens are identical."""
        n = 0
        for a, b in zip(self.greedy_reference, self.greedy_candidate, strict=False):
            if a != b:
                break
            n += 1
        return n

    def to_dict(self) -> dict:
        data = asdict(self)
        data["greedy_agree"] = self.greedy_agree
        return data


def greedy(backend: Backend, prompt_tokens: Sequence[int], n: int) -> list[int]:
    """``n`` greedy tokens after ``prompt_tokens`` (argmax of each step's logits)."""
    backend.reset()
    backend.prefill(list(prompt_tokens))
    out = []
    for _ in range(n):
        token = int(np.argmax(backend.logits()))
        out.append(token)
        backend.decode_one(token)
    return out


def source_gguf(candidate: str | Path) -> Path | None:
    """The GGUF a ``profiler convert`` output came from (its profiler-convert.json says)."""
    from profiler.convert import MARKER

    p = Path(candidate)
    for folder in (p, p.parent, p.parent.parent):
        try:
            source = Path(json.loads((folder / MARKER).read_text())["source"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        return source if source.exists() else None
    return None


def _open(path: Path, fmt: str, backend: str, n_ctx: int, n_batch: int, threads: int, onnx_options: dict | None):
    instance = create_backend(backend_name_for(backend, path, fmt), False, onnx_options)
    try:
        facts = instance.load(str(path), LoadParams())
        instance.configure(ContextParams(n_ctx=n_ctx, n_batch=n_batch))
        instance.set_threads(threads)
    except BaseException:
        instance.close()
        raise
    return instance, facts


def _text_tokens(backend: Backend, text: str | None, n_tokens: int, add_bos: bool) -> tuple[list[int], str]:
    if text is None:
        from profiler.models.textdata import builtin_text

        text, name = builtin_text()
    else:
        name = "user text"
    tokens = backend.tokenize(text, add_special=add_bos)
    if len(tokens) < 2:
        raise UserError("the parity text tokenises to fewer than 2 tokens")
    return tokens[:n_tokens], name


def parity(
    candidate: str | Path,
    reference: str | Path | None = None,
    text: str | None = None,
    n_tokens: int = 512,
    n_greedy: int = 16,
    prompt: str = DEFAULT_PROMPT,
    threads: int | None = None,
    candidate_backend: str = "auto",
    onnx_options: dict | None = None,
    progress: Callable[[str], None] | None = None,
) -> ParityResult:
    """KL-divergence of ``candidate``'s logits against ``reference`` (llama.cpp) on the same tokens."""
    from profiler.backends.onnx_common import default_threads
    from profiler.models.catalog import resolve
    from profiler.sources import resolve_models

    say = progress or (lambda text: None)
    if n_tokens < 2 or n_greedy < 0:
        raise UserError("--tokens must be >= 2 and --greedy >= 0")
    cand_spec = resolve_models([str(candidate)])[0]
    cand_path = resolve(cand_spec)
    if reference is None:
        reference = source_gguf(cand_path)
        if reference is None:
            raise UserError(f"no reference for {candidate}: give --reference MODEL.gguf (only profiler convert outputs know their source)")
    ref_spec = resolve_models([str(reference)])[0]
    ref_path = resolve(ref_spec)
    threads = threads or default_threads()
    n_ctx = n_tokens + n_greedy + 64
    ref, ref_facts = _open(ref_path, ref_spec.format, "auto", n_ctx, n_ctx, threads, None)
    try:
        tokens, text_name = _text_tokens(ref, text, n_tokens, ref_facts.add_bos)
        prompt_tokens = ref.tokenize(prompt, add_special=ref_facts.add_bos)
        say(f"reference {ref.name}: logits of {len(tokens)} tokens")
        ref_logits = np.array(ref.logits_all(tokens), dtype=np.float32)  # a copy: it outlives the backend
        ref_greedy = greedy(ref, prompt_tokens, n_greedy)
        ref_info = {"path": str(ref_path), "backend": ref.name, "description": ref_facts.description}
    finally:
        ref.close()
    cand, cand_facts = _open(cand_path, cand_spec.format, candidate_backend, n_ctx, n_ctx, threads, onnx_options)
    warnings = []
    try:
        if cand_facts.n_vocab != ref_facts.n_vocab:
            raise UserError(f"vocabularies differ: reference {ref_facts.n_vocab} tokens, candidate {cand_facts.n_vocab}")
        try:
            if cand.tokenize(prompt, add_special=ref_facts.add_bos) != prompt_tokens:
                warnings.append("the two tokenizers split the prompt differently; both are fed the reference's tokens")
        except UserError:
            warnings.append("the candidate has no tokenizer; it is fed the reference's tokens")
        say(f"candidate {cand.name}: logits of {len(tokens)} tokens")
        cand_logits = np.array(cand.logits_all(tokens), dtype=np.float32)
        cand_greedy = greedy(cand, prompt_tokens, n_greedy)
        cand_info = {"path": str(cand_path), "backend": cand.name, "description": cand_facts.description,
                     "session_options": cand.session_options}
    finally:
        cand.close()
    stats = kld_stats(ref_logits, cand_logits)  # every position is a next-token distribution
    return ParityResult(ref_info, cand_info, text_name, stats, prompt, ref_greedy, cand_greedy, threads, warnings)
