"""LM Studio's models folder: ``PUBLISHER/MODEL/FILE.gguf``.

LM Studio 0.3 and later keep models in ``~/.lmstudio/models``; earlier versions used
``~/.cache/lm-studio/models``. Both are read when they exist. LM Studio names no sha256, so a
file is hashed the first time it is profiled and the result remembered in our cache (discovery
shows it from then on, without hashing).
"""

from __future__ import annotations

from pathlib import Path

from profiler.errors import UserError
from profiler.sources.base import (
    Found,
    Progress,
    check_relative,
    known_sha256,
    list_dir,
    readable_dir,
    verify_once,
)

SOURCE = "lmstudio"


def roots() -> list[Path]:
    home = Path.home()
    return [home / ".lmstudio" / "models", home / ".cache" / "lm-studio" / "models"]


def discover() -> list[Found]:
    found, seen = [], set()
    for root in roots():
        for publisher in list_dir(root, "LM Studio models"):
            for model in list_dir(publisher, "LM Studio models") if publisher.is_dir() else []:
                for path in list_dir(model, "LM Studio models") if model.is_dir() else []:
                    rel = path.relative_to(root).as_posix()
                    if path.suffix == ".gguf" and path.is_file() and rel not in seen:
                        seen.add(rel)  # the newer folder wins over the older one
                        found.append(Found(name=f"{SOURCE}:{rel}", source=SOURCE, path=path, root=root,
                                           size_bytes=path.stat().st_size, sha256=known_sha256(path),
                                           group=f"{SOURCE}:{publisher.name}/{model.name}"))
    return found


def resolve(ref: str, progress: Progress | None = None) -> Found:
    parts = ref.split("/")
    if len(parts) != 3 or not all(parts):
        raise UserError(f"lmstudio:{ref} must look like lmstudio:PUBLISHER/MODEL/FILE.gguf")
    check_relative(ref, "an LM Studio model")
    for root in roots():
        if readable_dir(root, "LM Studio models") and (root / ref).is_file():
            path = root / ref
            entry = Found(name=f"{SOURCE}:{ref}", source=SOURCE, path=path, root=root, size_bytes=path.stat().st_size,
                          group=f"{SOURCE}:{parts[0]}/{parts[1]}")
            entry.sha256 = verify_once(path, None, entry.name, progress)
            return entry
    have = [f.name for f in discover()]
    hint = f"; found: {', '.join(have[:6])}" if have else ""
    raise UserError(f"lmstudio:{ref} is not in {' or '.join(str(r) for r in roots())}{hint}")
