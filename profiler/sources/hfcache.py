"""The Hugging Face hub cache, read offline: ``models--ORG--REPO/{refs,snapshots,blobs}``.

Layout (huggingface_hub constants.py and file_download.py): the cache is ``$HF_HUB_CACHE``,
else ``$HUGGINGFACE_HUB_CACHE``, else ``$HF_HOME/hub``, else ``$XDG_CACHE_HOME/huggingface/hub``,
else ``~/.cache/huggingface/hub``. ``refs/<branch>`` holds a commit hash;
``snapshots/<commit>/<path>`` is a relative symlink to ``blobs/<etag>``, where the etag of a
Git LFS file (every GGUF/ONNX weight file) is its sha256 and that of a small file its git sha1.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from profiler.errors import UserError
from profiler.sources.base import (
    Found,
    Progress,
    check_relative,
    list_dir,
    readable_dir,
    size_of,
    verify_once,
)

SOURCE = "hf-cache"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SPLIT = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$")


def root() -> Path:
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "huggingface" / "hub"


def repo_folder(cache: Path, repo: str) -> Path:
    return cache / ("models--" + repo.replace("/", "--"))


def parse(ref: str) -> tuple[str, str, str | None]:
    """``ORG/REPO/FILE[@REVISION]`` -> (repo, file, revision)."""
    ref, _, revision = ref.partition("@")
    parts = ref.split("/")
    if len(parts) < 3 or not all(parts):
        raise UserError(f"'{ref}' must look like ORG/REPO/FILE[@REVISION] (a file in a Hugging Face repo)")
    check_relative(ref, "a Hugging Face file")
    if revision:
        check_relative(revision, "a Hugging Face revision")
    return "/".join(parts[:2]), "/".join(parts[2:]), revision or None


def _refs(folder: Path) -> dict[str, str]:
    refs = {}
    for ref in list_dir(folder / "refs", "Hugging Face cache"):
        if ref.is_file():
            refs[ref.name] = ref.read_text().strip()
    return refs


def snapshot(folder: Path, revision: str | None) -> Path | None:
    """The snapshot folder of a branch (via refs/), a commit or a commit prefix of 7+ digits."""
    revision = revision or "main"
    commit = _refs(folder).get(revision, revision)
    exact = folder / "snapshots" / commit
    if exact.is_dir():
        return exact
    if len(commit) >= 7:
        matches = [s for s in list_dir(folder / "snapshots", "Hugging Face cache") if s.name.startswith(commit)]
        if len(matches) == 1:
            return matches[0]
    return None


def _entry(scheme: str, cache: Path, repo: str, snap: Path, rel: str, suffix: str) -> Found:
    path = snap / rel
    group = f"{scheme}:{repo}{suffix}"
    found = Found(name=f"{scheme}:{repo}/{rel}{suffix}", source=scheme, path=path, root=cache, size_bytes=0,
                  format="onnx" if rel.endswith(".onnx") or path.is_dir() else "gguf", group=group)
    if path.is_symlink() and not path.exists():
        found.runnable = False
        found.note = f"broken snapshot link: {rel} points to {os.readlink(path)}, which is missing"
        return found
    blob = path.resolve().name
    found.sha256 = blob if _SHA256.fullmatch(blob) else None
    found.size_bytes = size_of(path)
    if found.format == "gguf" and _SPLIT.search(rel):
        found.note = "split GGUF: llama.cpp loads the other parts from the same folder"
    return found


def _model_files(snap: Path) -> list[str]:
    """GGUF files (the first part of a split one), ONNX files, and onnxruntime-genai folders."""
    out = []
    for dirpath, dirnames, filenames in os.walk(snap):
        rel_dir = Path(dirpath).relative_to(snap)
        if "genai_config.json" in filenames and dirpath != str(snap):
            out.append(rel_dir.as_posix())
            dirnames.clear()
            continue
        for name in sorted(filenames):
            split = _SPLIT.search(name)
            if (name.endswith(".gguf") and not (split and split.group(1) != "00001")) or name.endswith(".onnx"):
                out.append((rel_dir / name).as_posix())
        dirnames.sort()
    return sorted(out)


def discover(scheme: str = SOURCE, cache: Path | None = None) -> list[Found]:
    """Every model file of every cached repo: the files of the snapshot ``refs/main`` (or the
    only ref) points to, and those only older snapshots hold, named ``...@<commit>``."""
    cache = cache or root()
    found = []
    for folder in list_dir(cache, "Hugging Face cache"):
        if not folder.name.startswith("models--") or not folder.is_dir():
            continue
        repo = folder.name[len("models--"):].replace("--", "/")
        refs = _refs(folder)
        current = refs.get("main") or next(iter(refs.values()), None)
        snaps = list_dir(folder / "snapshots", "Hugging Face cache")
        seen = set()
        for snap in sorted(snaps, key=lambda s: s.name != current):
            suffix = "" if snap.name == current else f"@{snap.name[:12]}"
            for rel in _model_files(snap):
                if suffix and rel in seen:
                    continue  # the current revision has this file; older copies are listed once
                seen.add(rel)
                found.append(_entry(scheme, cache, repo, snap, rel, suffix))
    return found


def cached(ref: str, scheme: str = SOURCE, cache: Path | None = None) -> Found | None:
    """The cached file ``ORG/REPO/FILE[@REV]`` or None when it is not in the cache (no network)."""
    cache = cache or root()
    repo, rel, revision = parse(ref)
    folder = repo_folder(cache, repo)
    if not readable_dir(cache, "Hugging Face cache") or not readable_dir(folder, "Hugging Face cache"):
        return None
    snap = snapshot(folder, revision)
    if snap is None or not (snap / rel).is_symlink() and not (snap / rel).exists():
        return None
    entry = _entry(scheme, cache, repo, snap, rel, f"@{revision}" if revision else "")
    if not entry.runnable:
        raise UserError(f"{scheme}:{ref}: {entry.note}; download it again (huggingface-cli download {repo} {rel})")
    return entry


def resolve(ref: str, progress: Progress | None = None, scheme: str = SOURCE, cache: Path | None = None) -> Found:
    """``hf-cache:`` never downloads: a file that is not cached is an error naming what is."""
    entry = cached(ref, scheme, cache)
    if entry is None:
        repo = parse(ref)[0]
        have = [f.name for f in discover(scheme, cache) if f.group.split("@")[0] == f"{scheme}:{repo}"]
        hint = f"; cached from {repo}: {', '.join(have[:6])}" if have else ""
        raise UserError(f"{scheme}:{ref} is not in the cache {cache or root()}{hint}")
    return verify(entry, progress)


def verify(entry: Found, progress: Progress | None = None) -> Found:
    entry.sha256 = verify_once(entry.path, entry.sha256, entry.name, progress)
    return entry
