"""Models people already have: Ollama, the Hugging Face cache, LM Studio, llama.cpp's cache.

Names as the user knows them resolve to the file where it is (never a copy):
``ollama:NAME[:TAG]``, ``hf-cache:ORG/REPO/FILE[@REV]``, ``hf:ORG/REPO/FILE[@REV]`` (the local
hub cache first, offline; else a download through the catalogue's hf: source),
``lmstudio:PUBLISHER/MODEL/FILE`` and ``llamacpp:OWNER/REPO/FILE``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from profiler.errors import UserError
from profiler.models import catalog as catalog_mod
from profiler.models.catalog import ModelSpec, source_scheme
from profiler.sources import hfcache, llamacpp_cache, lmstudio, ollama
from profiler.sources.base import Found, Progress

# source name -> module with discover() and resolve(ref, progress)
SOURCES = {"ollama": ollama, "hf-cache": hfcache, "lmstudio": lmstudio, "llamacpp": llamacpp_cache}
# what --source accepts: "hf" lists the hub cache
SOURCE_CHOICES = ("ollama", "hf", "lmstudio", "llamacpp", "catalog")


def handles(name: str) -> bool:
    """True for a name one of the local sources (or hf:) resolves."""
    return source_scheme(name) in (*SOURCES, "hf")


def resolve(name: str, progress: Progress | None = None) -> Found:
    """A discovered-model name -> its verified file (UserError, one line, for every bad case)."""
    scheme = source_scheme(name)
    if scheme not in SOURCES:
        raise UserError(f"'{name}' does not name a local model source ({', '.join(s + ':' for s in SOURCES)})")
    return SOURCES[scheme].resolve(name[len(scheme) + 1:], progress)


def spec_for(name: str, progress: Progress | None = None) -> ModelSpec:
    """A spec that profiles the file in place; rows carry ``name``, the source and the sha256."""
    if source_scheme(name) == "hf":
        entry = hfcache.cached(name[len("hf:"):])
        if entry is None:  # not cached: the catalogue's hf: source downloads it
            fmt = "onnx" if name.split("@")[0].endswith(".onnx") else "gguf"
            return ModelSpec(name=name, format=fmt, sources=[name])
        entry = hfcache.verify(entry, progress)
        entry.name = name  # the name the user typed
    else:
        entry = resolve(name, progress)
    return entry.spec()


def resolve_models(names: Sequence[str], catalog_path: Path | None = None,
                   progress: Callable[[str], None] | None = None) -> list[ModelSpec]:
    """Catalogue names, file paths or models already on disk (``ollama:…``, ``hf:…``,
    ``hf-cache:…``, ``lmstudio:…``, ``llamacpp:…``) -> specs; no names -> the catalogue's
    default models."""
    needs_catalog = not names or any(not catalog_mod.looks_like_path(n) and not handles(n) for n in names)
    catalog = catalog_mod.load_catalog(catalog_path) if needs_catalog else None
    if not names:
        return catalog.defaults()
    return [spec_for(n, progress) if handles(n) else
            catalog_mod.spec_for_path(n) if catalog_mod.looks_like_path(n) else catalog.get(n) for n in names]


def discover(source: str | None = None) -> list[Found]:
    """Every model file in the stores of ``source`` (all when None); reads headers only."""
    wanted = {"hf": "hf-cache"}.get(source, source)
    found: list[Found] = []
    for name, module in SOURCES.items():
        if wanted in (None, name):
            found.extend(module.discover())
    return found


def group_members(group: str) -> list[Found]:
    """The runnable files of one model (the quants one store holds): ``ollama:qwen2.5``,
    ``hf-cache:ORG/REPO``, ``lmstudio:PUBLISHER/MODEL``."""
    scheme = source_scheme(group)
    if scheme not in SOURCES:
        raise UserError(f"--existing needs a model as a local source names it, e.g. ollama:qwen2.5 or "
                        f"hf-cache:ORG/REPO (got '{group}')")
    found = SOURCES[scheme].discover()
    members = [f for f in found if f.group == group and f.runnable and f.format == "gguf"]
    if not members:
        groups = sorted({f.group for f in found if f.runnable})
        import difflib

        close = difflib.get_close_matches(group, groups, n=3, cutoff=0.4)
        hint = f"; did you mean {', '.join(close)}?" if close else (f"; models: {', '.join(groups[:8])}" if groups else "")
        raise UserError(f"no runnable GGUF files of '{group}' found{hint}")
    return members
