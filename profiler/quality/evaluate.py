"""``profiler eval``: perplexity, KL-divergence and multiple-choice accuracy of one model file.

Everything is measured on the exact artifact given (matched by sha256 afterwards), with the
settings, the text's sha256 and the reference's identity recorded next to every number.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from profiler import atomic, paths
from profiler.backends import backend_name_for, create_backend
from profiler.backends.base import LoadParams
from profiler.errors import UserError
from profiler.models import catalog as catalog_mod
from profiler.quality import data as data_mod
from profiler.quality import kld as kld_mod
from profiler.quality import store, tasks
from profiler.quality.perplexity import PerplexityResult, perplexity, plan_chunks
from profiler.results.schema import json_safe

SCHEMA_VERSION = 1
RECONSTRUCTED_KEY = "profiler.reconstructed_from"


@dataclass
class EvalOptions:
    text: str | None = None  # a file, a pulled dataset name, or None for the built-in text
    perplexity: bool = True
    n_ctx: int = 512
    n_batch: int = 2048
    n_chunks: int | None = None
    threads: int | None = None
    flash_attn: str = "auto"
    save_reference: Path | None = None
    top_k: int = kld_mod.DEFAULT_TOP_K
    tail_samples: int = kld_mod.DEFAULT_TAIL_SAMPLES
    kld_reference: Path | None = None
    hellaswag: str | None = None  # a file or "hellaswag" (the pulled copy)
    winogrande: str | None = None
    n_tasks: int | None = None
    task_ctx: int = 512
    n_parallel: int = 4
    reports_dir: Path = field(default_factory=paths.reports_dir)
    save: bool = True
    catalog_path: Path | None = None
    verbose: bool = False
    command: str = ""


@dataclass
class ModelIdentity:
    name: str
    path: str
    sha256: str
    quant: str
    n_params: int
    size_bytes: int
    description: str
    reconstructed_from: str | None = None  # set when the file is a dequantized reconstruction
    header_error: str | None = None  # why the header could not be read for that note (None: it was read)


@dataclass
class EvalResult:
    run_id: str
    created: str
    command: str
    model: ModelIdentity
    settings: dict
    text: dict | None = None
    perplexity: PerplexityResult | None = None
    kld: kld_mod.KldResult | None = None
    tasks: list[tasks.TaskResult] = field(default_factory=list)
    reference_saved: str | None = None
    warnings: list[str] = field(default_factory=list)
    samples: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # per-token raw values
    schema_version: int = SCHEMA_VERSION
    kind: str = "quality"

    def to_dict(self) -> dict:
        out = asdict(self)
        out.pop("samples")
        return json_safe(out)


def reconstructed_from(path: str | Path) -> str | None:
    """The note ``profiler quantize`` writes into a dequantized reconstruction's GGUF header.

    A header that cannot be read raises (OSError, ValueError): the caller records why, since
    "no note" would claim original weights."""
    # ggufinfo's streaming header parser skips long arrays (the vocabulary); gguf.GGUFReader
    # would decode all of them, ~10 s for a 49k-token vocabulary on a slow CPU.
    from profiler.models.ggufinfo import parse_header

    value = parse_header(Path(path))[0].get(RECONSTRUCTED_KEY)
    return None if value is None else str(value)


def _reconstruction_note(path: Path, fmt: str) -> tuple[str | None, str | None]:
    """(note, why it could not be read). ONNX models carry no such note."""
    if fmt != "gguf":
        return None, None
    try:
        return reconstructed_from(path), None
    except (OSError, ValueError, UserError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


def identify(model: str, catalog_path: Path | None = None, progress=None) -> tuple[ModelIdentity, Path]:
    """Resolve a catalogue name or path to a verified file and who it is (sha256 included)."""
    from profiler.models.modelinfo import read_model_info
    from profiler.sources import resolve_models

    spec = resolve_models([model], catalog_path)[0]
    path = catalog_mod.resolve(spec, progress=progress)
    info = read_model_info(path, spec.format)  # GGUF header or ONNX graph
    sha = spec.sha256 or _file_sha256(path)
    note, header_error = _reconstruction_note(path, spec.format)
    identity = ModelIdentity(
        name=spec.name, path=str(path), sha256=sha, quant=spec.quant or info.quant_type,
        n_params=spec.n_params or info.n_params, size_bytes=info.file_size_bytes,
        description=spec.description or info.name, reconstructed_from=note, header_error=header_error,
    )
    return identity, path


def _file_sha256(path: Path) -> str:
    """sha256 of a model file (or of a model folder's files, names included), remembered per
    (path, size, mtime) so repeated evals skip the hashing."""
    index = paths.cache_dir() / "quality" / "sha256-index.json"
    files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path]
    stats = [f.stat() for f in files]
    key, stamp = str(path.resolve()), [sum(s.st_size for s in stats), max((s.st_mtime_ns for s in stats), default=0)]
    try:
        known = json.loads(index.read_text())
    except (OSError, ValueError):
        known = {}
    entry = known.get(key)
    if isinstance(entry, dict) and entry.get("stamp") == stamp:
        return entry["sha256"]
    if path.is_dir():
        digest = hashlib.sha256()
        for f in files:
            digest.update(f"{f.relative_to(path)}\0{catalog_mod.sha256_file(f)}\n".encode())
        sha = digest.hexdigest()
    else:
        sha = catalog_mod.sha256_file(path)
    known[key] = {"stamp": stamp, "sha256": sha}
    with contextlib.suppress(OSError):  # a read-only cache only costs a re-hash next time
        atomic.write_text(index, json.dumps(known))
    return sha


def default_threads() -> int:
    try:
        import psutil

        return psutil.cpu_count(logical=False) or os.cpu_count() or 1
    except ImportError:  # psutil is a dependency, but a thread count is no reason to fail
        return os.cpu_count() or 1


def evaluate(model: str, options: EvalOptions, progress: Callable[[str], None] | None = None) -> EvalResult:
    """Measure what ``options`` asks for on ``model`` and save the report (unless save=False)."""
    say = progress or (lambda text: None)
    _check(options)
    identity, path = identify(model, options.catalog_path, say)
    threads = options.threads or default_threads()
    from profiler.results.schema import new_run_id

    result = EvalResult(
        run_id=new_run_id(),
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        command=options.command,
        model=identity,
        settings={"threads": threads, "n_batch": options.n_batch, "flash_attn": options.flash_attn},
    )
    if identity.reconstructed_from:
        result.warnings.append(f"{identity.name} is a reconstruction ({identity.reconstructed_from}), not original weights")
    if identity.header_error:
        result.warnings.append(f"could not read {identity.name}'s GGUF header to tell whether it is a dequantized "
                               f"reconstruction ({identity.header_error}); treated as original weights")
    # llama.cpp for GGUF, ONNX Runtime for ONNX models: KLD against a llama.cpp reference is cross-runtime parity
    backend = create_backend(backend_name_for("auto", path, catalog_mod.spec_for_path(path).format), options.verbose)
    try:
        facts = backend.load(str(path), LoadParams())
        if options.perplexity or options.kld_reference or options.save_reference:
            _run_perplexity(backend, facts, identity, options, threads, result, say)
        for name, source, scorer in (("hellaswag", options.hellaswag, tasks.hellaswag),
                                     ("winogrande", options.winogrande, tasks.winogrande)):
            if source:
                result.tasks.append(_run_task(backend, name, source, scorer, options, threads, say))
    finally:
        backend.close()
    if options.save:
        save(result, options.reports_dir)
    return result


def _check(options: EvalOptions) -> None:
    if options.save_reference and options.kld_reference:
        raise UserError("--save-reference and --kld are exclusive: save the reference with one model, compare with another")
    if not (options.perplexity or options.kld_reference or options.save_reference or options.hellaswag or options.winogrande):
        raise UserError("nothing to evaluate: drop --no-perplexity or add --hellaswag / --winogrande")
    if options.threads is not None and options.threads < 1:
        raise UserError(f"--threads {options.threads} is invalid: it must be >= 1")


def _run_perplexity(backend, facts, identity, options, threads, result, say) -> None:
    ref = None
    if options.kld_reference:
        ref = kld_mod.load_reference(options.kld_reference)
        tokens = ref.tokens.tolist()
        n_chunks = min(options.n_chunks or ref.n_chunks, ref.n_chunks)
        plan = plan_chunks(len(tokens), ref.n_ctx, options.n_batch, n_chunks)
        result.text = ref.meta.get("text")
        if options.text is not None:
            result.warnings.append("--file ignored: KL-divergence uses the reference's own tokens")
        if ref.meta.get("model", {}).get("sha256") == identity.sha256:
            result.warnings.append("the candidate is the reference model itself: KLD is ~0 by construction")
    else:
        text, source = data_mod.resolve_text(options.text)
        tokens = backend.tokenize(text, add_special=True)
        plan = plan_chunks(len(tokens), options.n_ctx, options.n_batch, options.n_chunks)
        result.text = source.to_dict()
        result.warnings += source.notes
    backend.configure(plan.context_params(options.flash_attn))
    backend.set_threads(threads)
    say(f"perplexity: {plan.n_chunks} chunks of {plan.n_ctx} tokens, {plan.n_seq} per batch, {threads} threads")
    writer = kld_mod.ReferenceWriter(options.top_k, options.tail_samples) if options.save_reference else None
    comparer = kld_mod.KldAccumulator(ref, facts.n_vocab) if ref is not None else None

    def on_chunk(chunk) -> None:
        if writer:
            writer(chunk)
        if comparer:
            comparer(chunk)

    ppl, acc = perplexity(backend, facts, tokens, plan, threads, on_chunk, want_argmax=comparer is not None)
    result.perplexity = ppl
    result.samples["token_nll"] = np.concatenate(acc.token_nll)
    if writer:
        meta = {"model": asdict(identity), "n_vocab": facts.n_vocab, "add_bos": facts.add_bos, "text": result.text}
        saved = writer.save(Path(options.save_reference), tokens, plan, meta)
        result.reference_saved = str(saved)
        say(f"saved the KLD reference to {saved}")
    if comparer:
        result.kld = comparer.result()
        result.kld.reference = _reference_summary(ref)
        result.samples["token_kld"] = np.concatenate(comparer.kld).astype(np.float32)
        result.samples["token_p_diff"] = np.concatenate(comparer.p_diff).astype(np.float32)
        note = result.kld.reference.get("reconstructed_from")
        if note:
            result.warnings.append(f"KLD reference is a reconstruction ({note}), not the original weights")


def _reference_summary(ref: kld_mod.Reference) -> dict:
    model = ref.meta.get("model", {})
    return {
        "path": str(ref.path), "model": model.get("name"), "sha256": model.get("sha256"), "quant": model.get("quant"),
        "reconstructed_from": model.get("reconstructed_from"), "top_k": ref.meta.get("top_k"),
        "tail_samples": ref.meta.get("tail_samples"),
        "n_ctx": ref.n_ctx, "n_chunks": ref.n_chunks, "text": ref.meta.get("text"),
        "file_sha256": ref.file_sha256, "n_vocab": ref.meta.get("n_vocab"),
    }


def _run_task(backend, name, source, scorer, options, threads, say) -> tasks.TaskResult:
    text, src = data_mod.resolve_text(source)
    say(f"{name}: {options.n_tasks or 'all'} tasks from {src.name}")
    res = scorer(backend, text, options.n_tasks, options.task_ctx, options.n_parallel, threads)
    res.source = src.to_dict()
    return res


def store_entries(result: EvalResult) -> list[dict]:
    """One index line per measured number, keyed by the model file's sha256."""
    base = {"model_sha256": result.model.sha256, "model_name": result.model.name, "run_id": result.run_id,
            "created": result.created, "provenance": "measured"}
    out = []
    for t in result.tasks:
        out.append({**base, "metric": t.task, "value_pct": t.accuracy_pct, "ci95_pct": [t.ci95_low_pct, t.ci95_high_pct],
                    "n_tasks": t.n_tasks, "n_shot": 0, "source": f"profiler eval ({t.selection})",
                    "data_sha256": t.source.get("sha256"), "variant": tasks.MEASURED_VARIANT.get(t.task, "acc"),
                    "selection": t.selection, "n_tasks_in_file": t.n_tasks_in_file, "n_correct": t.n_correct,
                    # per-task outcomes in the selection's order: the paired test between two files
                    "task_correct": "".join("1" if p["choice"] == p["gold"] else "0" for p in t.predictions)})
    if result.perplexity is not None:
        p = result.perplexity
        out.append({**base, "metric": "ppl", "value": p.ppl, "uncertainty": p.ppl_uncertainty, "n_ctx": p.n_ctx,
                    "n_chunks": p.n_chunks, "data_sha256": (result.text or {}).get("sha256")})
    if result.kld is not None:
        k, ref = result.kld, result.kld.reference
        # what makes two KLDs comparable (analysis.ranking): the same reference file, text, context
        # and chunks scored (--chunks may score a subset of the reference's)
        out.append({**base, "metric": "kld", "value": k.mean_kld, "uncertainty": k.mean_kld_uncertainty,
                    "uncertainty_chunks": k.mean_kld_chunk_uncertainty, "n_tokens": k.n_tokens,
                    "reference_sha256": ref.get("sha256"), "reference_file_sha256": ref.get("file_sha256"),
                    "data_sha256": (ref.get("text") or {}).get("sha256"), "n_ctx": ref.get("n_ctx"),
                    "n_chunks": k.n_chunks, "top_k": ref.get("top_k"), "tail_samples": ref.get("tail_samples"),
                    "n_vocab": ref.get("n_vocab"), "reference_reconstructed_from": ref.get("reconstructed_from")})
    return [json_safe(e) for e in out]


def save(result: EvalResult, reports_dir: Path) -> Path:
    folder = Path(reports_dir) / result.run_id
    atomic.write_user_file(folder / "quality.json", json.dumps(result.to_dict(), indent=2) + "\n")
    if result.samples:
        with atomic.replacing(folder / "quality-samples.npz") as fh:  # never half an archive
            np.savez_compressed(fh, **result.samples)
    store.record(store_entries(result))
    return folder


def load_result(path: str | Path) -> dict:
    """A saved quality.json (as a dict; the scoreboard reads it field by field)."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise UserError(f"quality results not found: {p}") from None
    except ValueError as exc:
        raise UserError(f"{p} is not valid JSON ({exc})") from None
    if data.get("kind") != "quality" or data.get("schema_version") != SCHEMA_VERSION:
        raise UserError(f"{p} is not a profiler eval result (schema {SCHEMA_VERSION})")
    return data
