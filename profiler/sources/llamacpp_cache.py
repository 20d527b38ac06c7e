"""Where ``llama-cli -hf`` / ``llama-server -hf`` keep what they download.

Checked against llama.cpp's source (common/common.cpp, common/hf-cache.cpp, 2026):
  * older builds: ``fs_get_cache_directory()`` = ``$LLAMA_CACHE``, else ``$XDG_CACHE_HOME/llama.cpp``,
    else ``~/.cache/llama.cpp`` on Linux (``~/Library/Caches/llama.cpp`` on macOS); a file is
    ``OWNER_REPO_PATH`` (every '/' made '_') beside ``manifest=OWNER=REPO=TAG.json``, whose
    ``ggufFile``/``mmprojFile`` give the repo path (``rfilename``) and ``lfs.sha256``;
  * current builds use the Hugging Face cache layout, in ``$LLAMA_CACHE`` when set, else in the
    Hugging Face hub cache itself (those files are listed as ``hf-cache:``). They move an old
    flat cache into it when they next run online.
"""

from __future__ import annotations

import json
import os
import platform
import re
from pathlib import Path

from profiler.errors import UserError
from profiler.sources import hfcache
from profiler.sources.base import Found, Progress, list_dir, verify_once

SOURCE = "llamacpp"
_MANIFEST = re.compile(r"^manifest=([^=]+)=([^=]+)=(.*)\.json$")


def root() -> Path:
    if os.environ.get("LLAMA_CACHE"):
        return Path(os.environ["LLAMA_CACHE"]).expanduser()
    if platform.system() == "Darwin":
        return Path.home() / "Library" / "Caches" / "llama.cpp"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "llama.cpp"


def _flat_name(owner: str, repo: str, rfilename: str) -> str:
    return f"{owner}_{repo}_{rfilename}".replace("/", "_")


def _from_manifests(cache: Path, entries: list[Path]) -> list[Found]:
    found = []
    for entry in entries:
        match = _MANIFEST.match(entry.name)
        if not match or not entry.is_file():
            continue
        owner, repo = match.group(1), match.group(2)
        try:
            data = json.loads(entry.read_text())
        except (OSError, ValueError):
            continue
        for key in ("ggufFile", "mmprojFile"):
            node = data.get(key) if isinstance(data, dict) else None
            if not isinstance(node, dict) or not isinstance(node.get("rfilename"), str):
                continue
            path = cache / _flat_name(owner, repo, node["rfilename"])
            sha = (node.get("lfs") or {}).get("sha256")
            item = Found(name=f"{SOURCE}:{owner}/{repo}/{node['rfilename']}", source=SOURCE, path=path, root=cache,
                         size_bytes=path.stat().st_size if path.is_file() else 0, group=f"{SOURCE}:{owner}/{repo}",
                         sha256=sha if isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha) else None)
            if key == "mmprojFile":
                item.runnable, item.note = False, "a vision projector (mmproj), not a language model"
            elif not path.is_file():
                item.runnable, item.note = False, f"{path.name} is missing from the cache"
            found.append(item)
    return found


def discover() -> list[Found]:
    cache = root()
    entries = list_dir(cache, "llama.cpp cache")
    found = hfcache.discover(SOURCE, cache) if any(e.name.startswith("models--") for e in entries) else []
    found += _from_manifests(cache, entries)
    claimed = {f.path for f in found}
    for path in entries:  # files put there by hand, or by a build without manifests
        if path.suffix == ".gguf" and path.is_file() and path not in claimed:
            found.append(Found(name=f"{SOURCE}:{path.name}", source=SOURCE, path=path, root=cache,
                               size_bytes=path.stat().st_size, group=f"{SOURCE}:{path.name}"))
    return found


def resolve(ref: str, progress: Progress | None = None) -> Found:
    for entry in discover():
        if entry.name == f"{SOURCE}:{ref}":
            if not entry.runnable:
                raise UserError(f"{entry.name} cannot be profiled: {entry.note}")
            entry.sha256 = verify_once(entry.path, entry.sha256, entry.name, progress)
            return entry
    have = [f.name for f in discover() if f.runnable]
    hint = f"; cached: {', '.join(have[:6])}" if have else ""
    raise UserError(f"{SOURCE}:{ref} is not in llama.cpp's cache {root()}{hint}")
