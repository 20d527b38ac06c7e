"""``profiler fit``: the largest context a model fits in a RAM budget, and where the bytes go.

The prediction is the pre-flight check's own (run/preflight.py ``estimate_memory``, from the GGUF
header): one formula decides both what ``fit`` prints and what ``profiler run`` refuses, so ``fit``
can never promise a context the run would then refuse. llama-cpp-python 0.3.36 exposes no memory
accounting that predicts without allocating (``llama_state_get_size`` and ``llama_get_memory``
need a live context, whose creation is the allocation itself), so ``method`` always says "header
formula" (docs/fit.md).

``--verify`` measures the model's own peak RSS (``model_peak_rss_bytes``) at a few contexts
through ``profiler run`` (one pp512 test at depth context - 512), never starting a context the
pre-flight check refuses on this machine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from profiler.errors import UserError
from profiler.measure.plan import CACHE_TYPES, Sweep
from profiler.models import catalog as catalog_mod
from profiler.models.ggufinfo import GGUFInfo, read_info
from profiler.platform import device as device_mod
from profiler.run import preflight
from profiler.sources import discover, resolve_models

# The contexts every report shows (the model's trained context is added to them).
CONTEXTS = (2048, 4096, 8192, 16384, 32768)
# Left for the OS, other programs and the page cache on top of what the model needs; --margin sets it.
DEFAULT_MARGIN_BYTES = 256 * 2**20
# The contexts --verify measures by default (those above the model's or this machine's limit are dropped).
VERIFY_CONTEXTS = (1024, 2048, 4096)
# The measured test at each verified context: a full ubatch of prompt on top of the depth,
# the step whose attention spans the whole context.
VERIFY_PROMPT = 512
METHOD = ("header formula (profiler/run/preflight.py estimate_memory); llama.cpp 0.3.36 has no memory "
          "accounting that predicts without allocating a context")


@dataclass
class KvLayer:
    """One layer's KV cache: a global layer keeps every token, a sliding-window one its window."""

    layer: int
    sliding: bool
    bytes_per_token: float  # K + V of one token: n_head_kv x (head_dim_k x size_k + head_dim_v x size_v)
    max_cells: int | None  # the cells a sliding-window layer keeps (window + ubatch); None: the context


@dataclass
class ContextPoint:
    """The prediction at one context (bytes the model's own process needs, plus the runtime)."""

    n_ctx: int
    weights_bytes: int
    kv_cache_bytes: int
    compute_bytes: int
    library_bytes: int  # llama.cpp's own: its CPU backend and the vocabulary's tables
    runtime_bytes: int  # Python and profiler's modules, before the model loads
    reclaimable_bytes: int  # mapped file pages of repacked weights: in RSS, but the kernel may drop them
    fits: bool

    @property
    def model_bytes(self) -> int:
        """What ``model_peak_rss_bytes`` measures: weights + KV + compute + llama.cpp (the interpreter excluded)."""
        return self.weights_bytes + self.kv_cache_bytes + self.compute_bytes + self.library_bytes

    @property
    def needed_bytes(self) -> int:
        """What must stay resident: the model's bytes and the runtime, less the droppable file pages."""
        return self.model_bytes + self.runtime_bytes - self.reclaimable_bytes


@dataclass
class VerifyPoint:
    n_ctx: int
    predicted_bytes: int  # ContextPoint.model_bytes
    measured_bytes: int | None  # model_peak_rss_bytes of the run; None with why_not
    why_not: str = ""

    @property
    def ratio(self) -> float | None:
        return self.predicted_bytes / self.measured_bytes if self.measured_bytes else None


@dataclass
class FitSettings:
    ram_bytes: int | None = None  # None: this machine's available memory now
    margin_bytes: int = DEFAULT_MARGIN_BYTES
    type_k: str = "f16"
    type_v: str = "f16"
    n_ubatch: int = 512
    flash_attn: str = "auto"
    use_mmap: bool = True
    contexts: Sequence[int] = CONTEXTS


@dataclass
class FitReport:
    model: str
    path: str
    architecture: str
    n_ctx_train: int
    budget_bytes: int  # ram - margin
    ram_bytes: int
    ram_source: str  # "--ram" or "available on this machine now"
    margin_bytes: int
    type_k: str
    type_v: str
    flash_attn: str
    n_ubatch: int
    use_mmap: bool
    weights_mode: str  # "mapped, paged in" / "read into memory (--no-mmap)"
    tensor_bytes: int
    repacked_bytes: int
    kv_layers: list[KvLayer]
    points: list[ContextPoint]
    max_ctx: int | None  # the largest context that fits (up to n_ctx_train); None: not even 1 token
    limit: str  # why max_ctx is where it is
    method: str = METHOD
    measured: bool = False
    verify: list[VerifyPoint] = field(default_factory=list)

    def to_dict(self) -> dict:
        data = asdict(self)
        for point, raw in zip(self.points, data["points"], strict=True):
            raw.update(model_bytes=point.model_bytes, needed_bytes=point.needed_bytes)
        for check, raw in zip(self.verify, data["verify"], strict=True):
            raw["ratio"] = check.ratio
        return data


def point(info: GGUFInfo, n_ctx: int, settings: FitSettings, budget_bytes: int) -> ContextPoint:
    """The pre-flight estimate at ``n_ctx``, split as ``fit`` prints it."""
    est = preflight.estimate_memory(info, n_ctx, settings.n_ubatch, settings.type_k, settings.type_v,
                                    flash_attn=settings.flash_attn, use_mmap=settings.use_mmap)
    reclaimable = info.repackable_bytes if settings.use_mmap else 0
    p = ContextPoint(n_ctx, est.weights_bytes, est.kv_cache_bytes, est.compute_bytes, est.library_bytes,
                     est.overhead_bytes, reclaimable, fits=False)
    p.fits = p.needed_bytes <= budget_bytes
    return p


def kv_layers(info: GGUFInfo, settings: FitSettings) -> list[KvLayer]:
    per_token = info.kv_bytes_per_cell(settings.type_k, settings.type_v) / max(info.n_layer, 1)
    return [KvLayer(i, swa, per_token, info.sliding_window + settings.n_ubatch if swa else None)
            for i, swa in enumerate(info.swa_layers())]


def largest_context(info: GGUFInfo, settings: FitSettings, budget_bytes: int) -> tuple[int | None, str]:
    """The largest n_ctx whose prediction fits ``budget_bytes`` (binary search: the estimate only
    grows with the context), capped at the trained context; and why it stops there."""
    top = info.n_ctx_train or max(settings.contexts)

    def fits(n: int) -> bool:
        return point(info, n, settings, budget_bytes).fits

    if fits(top):
        return top, f"the model's trained context ({top}); memory is not the limit"
    if not fits(1):
        return None, "the weights and runtime alone exceed the budget"
    lo, hi = 1, top  # fits(lo), not fits(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo, "the RAM budget"


def predict(name: str, info: GGUFInfo, settings: FitSettings, ram_bytes: int, ram_source: str) -> FitReport:
    """The report for one model's header: no file is loaded, nothing runs."""
    _check_settings(settings)
    budget = ram_bytes - settings.margin_bytes
    contexts = sorted({*settings.contexts, *([info.n_ctx_train] if info.n_ctx_train else [])})
    max_ctx, limit = largest_context(info, settings, budget)
    return FitReport(
        model=name, path=str(info.path), architecture=info.architecture, n_ctx_train=info.n_ctx_train,
        budget_bytes=budget, ram_bytes=ram_bytes, ram_source=ram_source, margin_bytes=settings.margin_bytes,
        type_k=settings.type_k, type_v=settings.type_v, flash_attn=settings.flash_attn, n_ubatch=settings.n_ubatch,
        use_mmap=settings.use_mmap, weights_mode="mapped, paged in" if settings.use_mmap else "read into memory (--no-mmap)",
        tensor_bytes=info.tensor_bytes, repacked_bytes=info.repackable_bytes,
        kv_layers=kv_layers(info, settings), points=[point(info, n, settings, budget) for n in contexts],
        max_ctx=max_ctx, limit=limit,
    )


def _check_settings(settings: FitSettings) -> None:
    for flag, value in (("-ctk", settings.type_k), ("-ctv", settings.type_v)):
        if value not in CACHE_TYPES:
            raise UserError(f"{flag} '{value}' is unknown (use one of {', '.join(CACHE_TYPES)})")
    if settings.margin_bytes < 0:
        raise UserError("--margin must be >= 0")


def ram_budget(ram_bytes: int | None) -> tuple[int, str]:
    """(RAM to plan for, where the figure comes from)."""
    if ram_bytes is not None:
        if ram_bytes <= 0:
            raise UserError("--ram must be a positive size, e.g. 4GB")
        return ram_bytes, "--ram"
    available = device_mod.fingerprint().ram_available_bytes
    if available is None:
        raise UserError("this machine's available memory is unknown (no MemAvailable in /proc/meminfo); give --ram")
    return available, "available on this machine now"


def model_files(names: Sequence[str], all_local: bool, catalog_path: Path | None,
                progress: Callable[[str], None] | None = None) -> tuple[list[tuple[str, Path]], list[str]]:
    """(name, GGUF file) of catalogue names, paths and local-store names (``ollama:...``), plus every
    discovered model with ``all_local``; and one line per model left out and why."""
    files, skipped = [], []
    for spec in resolve_models(list(names), catalog_path, progress) if names else []:
        if spec.format != "gguf":
            raise UserError(f"{spec.name}: profiler fit reads GGUF headers; this is {spec.format}")
        files.append((spec.name, catalog_mod.resolve(spec, progress=progress)))
    for entry in discover() if all_local else []:
        if not entry.runnable or entry.format != "gguf":
            skipped.append(f"{entry.name}: {entry.note or 'not a GGUF file'}")
            continue
        files.append((entry.name, entry.path))
    if not files:
        raise UserError("no models: name some, or give --all-local" if not all_local else
                        "--all-local found no GGUF models (see profiler models)")
    return files, skipped


def fit(names: Sequence[str], settings: FitSettings, all_local: bool = False, catalog_path: Path | None = None,
        progress: Callable[[str], None] | None = None) -> tuple[list[FitReport], list[str]]:
    """One report per model (a projector or unreadable file becomes a skipped line, not an error)."""
    ram, source = ram_budget(settings.ram_bytes)
    files, skipped = model_files(names, all_local, catalog_path, progress)
    reports = []
    for name, path in files:
        try:
            info = read_info(path)
            if info.architecture == "clip":
                raise UserError("a vision projector (mmproj), not a language model")
        except UserError as exc:
            if not all_local:
                raise
            skipped.append(f"{name}: {exc}")
            continue
        reports.append(predict(name, info, settings, ram, source))
    return reports, skipped


Measure = Callable[[str, Sweep], int | None]  # (model path, sweep) -> model_peak_rss_bytes


def verify_contexts(report: FitReport, here: FitReport, wanted: Sequence[int]) -> list[int]:
    """The contexts of ``wanted`` this machine can run (``here``: the report for its own RAM) and the
    model supports; each longer than the measured prompt."""
    if here.max_ctx is None:
        return []
    top = min(here.max_ctx, report.n_ctx_train or here.max_ctx)
    return [c for c in wanted if VERIFY_PROMPT < c <= top]


def verify(report: FitReport, info: GGUFInfo, settings: FitSettings, measure: Measure,
           wanted: Sequence[int] = VERIFY_CONTEXTS) -> FitReport:
    """Measure the model's own peak at the contexts of ``wanted`` this machine fits, beside the
    prediction; a context it cannot run is listed with why."""
    ram_here, source = ram_budget(None)
    here = predict(report.model, info, settings, ram_here, source)
    runnable = set(verify_contexts(report, here, wanted))
    for n_ctx in wanted:
        predicted = point(info, n_ctx, settings, here.budget_bytes).model_bytes
        if n_ctx not in runnable:
            why = (f"not run: {n_ctx} is above what fits here ({here.max_ctx}) or the trained context"
                   if n_ctx > VERIFY_PROMPT else f"not run: below one {VERIFY_PROMPT}-token prompt")
            report.verify.append(VerifyPoint(n_ctx, predicted, None, why))
            continue
        sweep = Sweep(n_prompt=[VERIFY_PROMPT], n_gen=[0], n_depth=[n_ctx - VERIFY_PROMPT], n_ubatch=[settings.n_ubatch],
                      type_k=[settings.type_k], type_v=[settings.type_v], flash_attn=[settings.flash_attn],
                      repetitions=1, use_mmap=settings.use_mmap)
        measured = measure(str(info.path), sweep)
        report.verify.append(VerifyPoint(n_ctx, predicted, measured, "" if measured else "not measured: the run had no peak"))
    report.measured = any(v.measured_bytes for v in report.verify)
    return report
