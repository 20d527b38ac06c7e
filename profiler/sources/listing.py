"""``profiler models``: the catalogue and every model found on this machine, one row each.

Only headers are read (the GGUF header parser, never the weights, never a hash), and their
facts are remembered per file version in our cache (profiler/sources/facts.py), so a hundred
models list in well under two seconds once seen.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from profiler import sources
from profiler.errors import UserError
from profiler.models import catalog as catalog_mod
from profiler.sources.base import Found
from profiler.sources.facts import FactsCache

SCHEMA_VERSION = 1


@dataclass
class ModelRow:
    name: str  # as the user types it
    source: str  # catalog | ollama | hf-cache | lmstudio | llamacpp
    path: str | None  # where the file is; None for a catalogue entry not downloaded yet
    size_bytes: int | None
    format: str
    quant_type: str | None = None  # the GGUF header's file type, else the most used tensor type
    architecture: str | None = None
    n_params: int | None = None
    n_params_active: int | None = None  # MoE: the parameters one token runs through
    n_ctx_train: int | None = None
    runnable: bool = True
    note: str = ""
    sha256: str | None = None  # named by the store; None when only a first run will hash it
    group: str = ""
    last_run_id: str | None = None
    last_run_model_name: str | None = None  # the name it was profiled under (the same sha256 may have two)
    decode_ts: float | None = None
    j_per_decode_token: float | None = None
    j_per_decode_token_measured: bool | None = None  # False: an estimate (docs/energy.md)


@dataclass
class Listing:
    rows: list[ModelRow]
    stores: dict[str, list[str]] = field(default_factory=dict)  # source -> the folders it read
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict:
        return {"schema_version": self.schema_version, "stores": self.stores, "models": [asdict(r) for r in self.rows]}


def _header_facts(row: ModelRow, path: Path, cache: FactsCache) -> None:
    """Architecture, quant, parameters and context from the file's header (remembered per file
    version); a file that is not a usable model says why instead."""
    facts = cache.facts(path, row.format)
    if facts.get("error"):
        row.runnable, row.note = False, facts["error"]
        return
    row.architecture = facts["architecture"]
    row.quant_type = row.quant_type or facts["quant_type"]
    row.n_params, row.n_params_active, row.n_ctx_train = facts["n_params"], facts["n_params_active"], facts["n_ctx_train"]
    if row.architecture == "clip":
        row.runnable, row.note = False, "a vision projector (mmproj), not a language model"


def _found_row(found: Found, cache: FactsCache) -> ModelRow:
    row = ModelRow(name=found.name, source=found.source, path=str(found.path), size_bytes=found.size_bytes or None,
                   format=found.format, runnable=found.runnable, note=found.note, sha256=found.sha256, group=found.group)
    if found.runnable:
        _header_facts(row, found.path, cache)
    return row


def _catalog_rows(catalog_path: Path | None, cache: FactsCache) -> list[ModelRow]:
    rows = []
    for spec in catalog_mod.load_catalog(catalog_path).models:
        path = catalog_mod.cached_path(spec)
        row = ModelRow(name=spec.name, source="catalog", path=str(path) if path else None,
                       size_bytes=spec.size_bytes, format=spec.format, quant_type=spec.quant, n_params=spec.n_params,
                       sha256=spec.sha256, group=spec.derived_from or spec.name,
                       note="" if path else f"not downloaded yet ({spec.sources[0].split('#')[0]})")
        if path is not None:
            _header_facts(row, path, cache)
            row.size_bytes = row.size_bytes or Path(path).stat().st_size
        rows.append(row)
    return rows


def _stores(source: str | None) -> dict[str, list[str]]:
    from profiler.sources import hfcache, llamacpp_cache, lmstudio, ollama

    folders = {"ollama": [str(p) for p in ollama.roots()[0]], "hf-cache": [str(hfcache.root())],
               "lmstudio": [str(p) for p in lmstudio.roots()], "llamacpp": [str(llamacpp_cache.root())]}
    wanted = {"hf": "hf-cache"}.get(source, source)
    return {k: [_describe_folder(p) for p in v if os.path.isdir(p)] for k, v in folders.items() if wanted in (None, k)}


def _describe_folder(path: str) -> str:
    """A default store another user owns (Ollama's system service) is skipped, and says so."""
    return path if os.access(path, os.R_OK | os.X_OK) else f"{path} (no read permission for this user: skipped)"


def _attach_runs(rows: list[ModelRow], db_path: Path | None) -> None:
    """The latest stored run of each model (the store is only opened when it exists)."""
    from profiler import paths
    from profiler.results.store import Store

    db = Path(db_path) if db_path else paths.db_path()
    if not db.is_file():
        return
    store = Store(db)
    try:
        by_name = store.latest_rows([r.name for r in rows])
        # the same file profiled under another name (hf: and hf-cache:, one blob in two stores)
        by_sha = store.latest_rows([r.sha256 for r in rows if r.sha256 and r.name not in by_name], "model_sha256")
    finally:
        store.close()
    for row in rows:
        found = by_name.get(row.name) or by_sha.get(row.sha256)
        if found and row.runnable:
            run_id, stored = found
            row.last_run_model_name = stored.model_name
            row.last_run_id, row.decode_ts = run_id, stored.decode_ts
            row.j_per_decode_token = stored.j_per_decode_token
            row.j_per_decode_token_measured = stored.energy_measured if stored.j_per_decode_token is not None else None


def list_models(source: str | None = None, pattern: str | None = None, catalog_path: Path | None = None,
                db_path: Path | None = None) -> Listing:
    """Rows for the catalogue (unless another source is asked for) and every discovered model;
    ``pattern`` keeps names containing it (or matching it, with * ? [)."""
    if source is not None and source not in sources.SOURCE_CHOICES:
        raise UserError(f"--source {source}: use one of {', '.join(sources.SOURCE_CHOICES)}")
    cache = FactsCache()
    rows = _catalog_rows(catalog_path, cache) if source in (None, "catalog") else []
    if source != "catalog":
        found = sources.discover(source)
        if pattern:  # filter before reading headers: only what is shown is opened
            found = [f for f in found if _matches(f.name, pattern)]
        cache.prefetch([(f.path, f.format) for f in found if f.runnable])
        rows += [_found_row(f, cache) for f in found]
    cache.save()
    if pattern:
        rows = [r for r in rows if _matches(r.name, pattern)]
    _attach_runs(rows, db_path)
    return Listing(rows=rows, stores=_stores(source) if source != "catalog" else {})


def _matches(name: str, pattern: str) -> bool:
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(name.split(":", 1)[-1], pattern)
    return pattern.lower() in name.lower()
