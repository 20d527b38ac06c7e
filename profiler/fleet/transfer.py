"""Getting a model file onto a device, verified by sha256, never copied twice.

On the device, in order: a copy it already holds (by sha256), the catalogue's own sources through
its own cache (``catalog.resolve``, which verifies the sha256), and last the coordinator, which
streams the file in chunks through the hub; the device hashes while it writes and keeps the file
only if the sha256 matches. Files live under ``<cache>/fleet/devices/<device>/models/<sha16>/``:
keyed by content, so a second run finds them, and by device, so several device nodes on one
machine (the tests) keep separate copies.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from profiler import atomic, paths
from profiler.errors import UserError
from profiler.models import catalog
from profiler.models.catalog import ModelSpec

CHUNK_BYTES = 4 << 20


@dataclass
class ModelFile:
    """What the coordinator tells a device about one model of the run."""

    name: str  # the name rows carry (catalogue name, or the file name for a model given by path)
    by_path: bool  # given as a path on the coordinator: the device cannot fetch it itself
    sha256: str
    size_bytes: int
    filename: str
    spec: dict = field(default_factory=dict)  # the catalogue entry (sources, quant, family, ...)

    def to_dict(self) -> dict:
        return asdict(self)


def describe(spec: ModelSpec, path: Path, by_path: bool) -> ModelFile:
    """The coordinator's description of a model it has resolved to ``path``."""
    if path.is_dir():
        raise UserError(f"{spec.name}: the fleet streams model files, not folders; put the ONNX folder on each device")
    sha = spec.sha256 or catalog.sha256_file(path)
    return ModelFile(name=spec.name, by_path=by_path, sha256=sha, size_bytes=path.stat().st_size,
                     filename=path.name, spec=spec.to_dict())


def device_models_dir(device: str) -> Path:
    return paths.cache_dir() / "fleet" / "devices" / device / "models"


def held_path(device: str, model: ModelFile) -> Path:
    return device_models_dir(device) / model.sha256[:16] / model.filename


def ensure_local(model: ModelFile, device: str, fetch_chunk, message=lambda text: None) -> tuple[Path, str]:
    """A verified local path to ``model`` on this device and how it got there (held/fetched/streamed)."""
    target = held_path(device, model)
    if target.exists():
        catalog.verify(target, model.sha256, quarantine=True)
        return target, "held"
    why = "it was given as a path on the coordinator"
    if not model.by_path:
        spec = ModelSpec.from_dict({**model.spec, "base_dir": None})
        if not spec.is_local:
            try:
                return catalog.resolve(spec, progress=message), "fetched"
            except Exception as exc:  # offline device, registry down: the coordinator has the file
                why = f"fetching it here failed ({str(exc).strip()[:160] or type(exc).__name__})"
    message(f"{model.name}: streaming {model.size_bytes / 1e6:.1f} MB from the coordinator, because {why}")
    stream(model, target, fetch_chunk)
    return target, "streamed"


def stream(model: ModelFile, target: Path, fetch_chunk) -> None:
    """Pull ``model`` chunk by chunk (``fetch_chunk(sha256, offset, size) -> bytes``), hashing as it
    arrives; keep it only when the sha256 matches."""
    digest = hashlib.sha256()
    offset = 0
    with atomic.replacing_path(target) as partial:
        with partial.open("wb") as out:
            while offset < model.size_bytes:
                block = fetch_chunk(model.sha256, offset, CHUNK_BYTES)
                if not block:
                    raise UserError(f"{model.name}: the coordinator's copy ended at {offset} of {model.size_bytes} bytes")
                digest.update(block)
                out.write(block)
                offset += len(block)
            out.flush()
            os.fsync(out.fileno())
        actual = digest.hexdigest()
        if actual != model.sha256:
            raise UserError(f"{model.name}: the streamed copy failed its sha256 check (expected {model.sha256[:12]}..., "
                            f"got {actual[:12]}...); it was discarded")
    # record the check, so resolving it again does not re-hash
    catalog.verify(target, model.sha256, quarantine=True)


def write_device_catalog(models: list[tuple[ModelFile, Path]], directory: Path) -> tuple[list[str], Path]:
    """A catalogue naming each catalogue model's local copy, so the run resolves it
    by the same name (and rows carry it); models given by path are passed as their local path."""
    directory.mkdir(parents=True, exist_ok=True)
    names, entries = [], []
    for model, path in models:
        if model.by_path:
            names.append(str(path))  # same file name, so the same model name in the rows
            continue
        names.append(model.name)
        spec = model.spec
        fields = {"name": model.name, "format": spec.get("format", "gguf"), "source": str(path), "sha256": model.sha256,
                  "quant": spec.get("quant"), "family": spec.get("family"), "params": spec.get("n_params"),
                  "size_bytes": spec.get("size_bytes"), "description": spec.get("description")}
        lines = ["[[models]]"] + [f"{k} = {json.dumps(v)}" for k, v in fields.items() if v is not None]
        entries.append("\n".join(lines))
    path = directory / f"models-{os.getpid()}.toml"
    path.write_text("\n\n".join(entries) + "\n")
    return names, path
