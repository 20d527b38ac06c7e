"""Ollama's model store: ``manifests/<host>/<namespace>/<model>/<tag>`` -> ``blobs/sha256-<hex>``.

Checked against Ollama's own source (github.com/ollama/ollama, 2026-08):
  * the store is ``$OLLAMA_MODELS``, else ``~/.ollama/models`` (envconfig.Models, Linux and
    macOS); the Linux system service runs as user ``ollama`` whose home is /usr/share/ollama,
    so its store is /usr/share/ollama/.ollama/models (scripts/install.sh);
  * a name is ``[host/][namespace/]model[:tag]``, defaults registry.ollama.ai, library, latest
    (types/model/name.go), and its manifest path is host/namespace/model/tag;
  * a manifest is JSON ``{"schemaVersion", "mediaType", "config", "layers": [{"mediaType",
    "digest", "size"}]}``; a digest ``sha256:<hex>`` is the file ``blobs/sha256-<hex>``
    (manifest/manifest.go, manifest/paths.go);
  * the runnable weights are the layer ``application/vnd.ollama.image.model`` (the last one
    wins, as in server/images.go); ``...projector`` (vision) and ``...adapter`` (LoRA) layers
    are not runnable on their own; ``...tensor`` layers are safetensors for Ollama's own engine.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from profiler.errors import UserError
from profiler.sources.base import Found, Progress, is_gguf, list_dir, readable_dir, verify_once

SOURCE = "ollama"
MODEL = "application/vnd.ollama.image.model"
PROJECTOR = "application/vnd.ollama.image.projector"
ADAPTER = "application/vnd.ollama.image.adapter"
TENSOR = "application/vnd.ollama.image.tensor"
DEFAULT_HOST, DEFAULT_NAMESPACE, DEFAULT_TAG = "registry.ollama.ai", "library", "latest"
SYSTEM_STORE = Path("/usr/share/ollama/.ollama/models")
_DIGEST = re.compile(r"sha256[:-]([0-9a-f]{64})")
# a name part as Ollama accepts it (a host may carry a port); never "." or ".." (no path escapes)
_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,79}")


def roots() -> tuple[list[Path], bool]:
    """The stores to read, and whether the user chose them ($OLLAMA_MODELS)."""
    env = os.environ.get("OLLAMA_MODELS")
    if env:
        return [Path(env).expanduser()], True
    return [Path.home() / ".ollama" / "models", SYSTEM_STORE], False


@dataclass(frozen=True)
class Name:
    host: str
    namespace: str
    model: str
    tag: str

    @classmethod
    def parse(cls, text: str) -> Name:
        """Ollama's ParseName: a tag after the last ':' past the last '/', then model,
        namespace, host from the right; missing parts take the defaults."""
        rest, tag = text, DEFAULT_TAG
        if rest.rfind(":") > rest.rfind("/"):
            rest, tag = rest.rsplit(":", 1)
        parts = rest.split("/")
        if len(parts) == 3:
            parts[0] = parts[0].split("://")[-1]  # https://host/...
        if len(parts) > 3 or not all(_PART.fullmatch(p) for p in [*parts, tag]):
            raise UserError(f"'{text}' is not an Ollama model name (NAME[:TAG], NAMESPACE/NAME[:TAG] or HOST/NAMESPACE/NAME[:TAG])")
        host = parts[-3] if len(parts) == 3 else DEFAULT_HOST
        namespace = parts[-2] if len(parts) >= 2 else DEFAULT_NAMESPACE
        return cls(host, namespace, parts[-1], tag)

    @property
    def model_part(self) -> str:
        """Ollama's shortest display without the tag: ``llama3.2``, ``hf.co/ORG/REPO``."""
        if self.host.lower() != DEFAULT_HOST:
            return f"{self.host}/{self.namespace}/{self.model}"
        if self.namespace.lower() != DEFAULT_NAMESPACE:
            return f"{self.namespace}/{self.model}"
        return self.model

    @property
    def display(self) -> str:
        return f"{self.model_part}:{self.tag}"

    @property
    def relpath(self) -> Path:
        return Path(self.host, self.namespace, self.model, self.tag)


def read_manifest(path: Path, label: str) -> list[dict]:
    """The manifest's layers; UserError (one line) when it is missing or not a valid manifest."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except PermissionError:
        raise UserError(f"cannot read the Ollama manifest {path}: permission denied") from None
    except FileNotFoundError:
        raise UserError(f"{label}: the Ollama manifest {path} is missing; pull it again with: ollama pull {label}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise UserError(f"{label}: the Ollama manifest {path} is corrupt ({reason}); pull it again with: ollama pull {label}") from None
    layers = data.get("layers") if isinstance(data, dict) else None
    if not isinstance(layers, list) or not all(
        isinstance(x, dict) and isinstance(x.get("mediaType"), str) and _DIGEST.fullmatch(str(x.get("digest", "")))
        for x in layers
    ):
        raise UserError(f"{label}: the Ollama manifest {path} is corrupt (no valid 'layers' list of mediaType and "
                        f"sha256 digest); pull it again with: ollama pull {label}")
    return layers


def _entry(root: Path, name: Name, layers: list[dict]) -> Found:
    """What the manifest makes runnable, with the reason when nothing is."""
    types = [layer["mediaType"] for layer in layers]
    models = [layer for layer in layers if layer["mediaType"] == MODEL]
    found = Found(name=f"{SOURCE}:{name.display}", source=SOURCE, path=root / "manifests" / name.relpath, root=root,
                  size_bytes=0, group=f"{SOURCE}:{name.model_part}")
    if not models:
        found.runnable = False
        found.note = ("stored as safetensors tensor layers for Ollama's own engine, not one GGUF file"
                      if TENSOR in types else "the manifest has no model layer")
        return found
    layer = models[-1]
    hexdigest = _DIGEST.fullmatch(layer["digest"]).group(1)
    blob = root / "blobs" / f"sha256-{hexdigest}"
    found.path, found.sha256 = blob, hexdigest
    if not blob.is_file():
        found.runnable, found.note = False, f"its model blob {blob.name} is missing from the store"
        return found
    found.size_bytes = blob.stat().st_size
    if not is_gguf(blob):
        found.runnable, found.note = False, "its model layer is not a GGUF file"
    elif ADAPTER in types:
        found.runnable = False
        found.note = "it has a LoRA adapter layer; the base weights alone are not this model"
    elif PROJECTOR in types:
        found.note = "its vision projector layer is not profiled (text only)"
    return found


def _walk(root: Path) -> list[tuple[Name, Path]]:
    """Every manifest file: manifests/<host>/<namespace>/<model>/<tag>."""
    out = []
    for host in list_dir(root / "manifests", "Ollama manifests"):
        for namespace in list_dir(host, "Ollama manifests"):
            for model in list_dir(namespace, "Ollama manifests"):
                for tag in list_dir(model, "Ollama manifests"):
                    if tag.is_file():
                        out.append((Name(host.name, namespace.name, model.name, tag.name), tag))
    return out


def _existing_roots() -> list[Path]:
    """Stores that exist; an unreadable one is an error when the user chose it ($OLLAMA_MODELS),
    and silently absent when it is a default another user owns."""
    paths, chosen = roots()
    kept = []
    for root in paths:
        try:
            if readable_dir(root, "Ollama store"):
                kept.append(root)
        except UserError:
            if chosen:
                raise
    return kept


def discover() -> list[Found]:
    found = []
    for root in _existing_roots():
        for name, manifest in _walk(root):
            label = name.display
            try:
                found.append(_entry(root, name, read_manifest(manifest, label)))
            except UserError as exc:
                found.append(Found(name=f"{SOURCE}:{label}", source=SOURCE, path=manifest, root=root, size_bytes=0,
                                   group=f"{SOURCE}:{name.model_part}", runnable=False, note=str(exc)))
    return found


def resolve(text: str, progress: Progress | None = None) -> Found:
    """``llama3.2:1b`` -> the verified GGUF blob; one-line UserError for every bad case."""
    name = Name.parse(text)
    roots_checked = _checked_roots()
    for root in roots_checked:
        manifest = _manifest_path(root, name)
        if manifest is not None:
            entry = _entry(root, name, read_manifest(manifest, name.display))
            if not entry.runnable:
                raise UserError(f"{entry.name} cannot be profiled: {entry.note}")
            entry.sha256 = verify_once(entry.path, entry.sha256, entry.name, progress)
            return entry
    raise UserError(_unknown(text, name, roots_checked))


def _checked_roots() -> list[Path]:
    paths, chosen = roots()
    kept = [root for root in paths if readable_dir(root, "Ollama store")]
    if not kept:
        where = paths[0] if chosen else " or ".join(str(p) for p in paths)
        raise UserError(f"no Ollama store at {where}; set OLLAMA_MODELS to the folder 'ollama serve' uses")
    return kept


def _manifest_path(root: Path, name: Name) -> Path | None:
    exact = root / "manifests" / name.relpath
    if exact.is_file():
        return exact
    # Ollama matches names case-insensitively
    for known, path in _walk(root):
        if known.relpath.as_posix().lower() == name.relpath.as_posix().lower():
            return path
    return None


def _unknown(text: str, name: Name, stores: list[Path]) -> str:
    known = [n.display for root in stores for n, _ in _walk(root)]
    close = difflib.get_close_matches(name.display, known, n=3, cutoff=0.5)
    close += [k for k in known if k.split(":")[0] == name.model_part and k not in close][:3]
    hint = f"; did you mean {', '.join('ollama:' + c for c in close)}?" if close else (
        f"; installed: {', '.join(known[:8])}" if known else "; the store has no models")
    return f"unknown Ollama model '{text}' in {', '.join(str(s) for s in stores)}{hint}"
