"""The quantization ladder: ``profiler quantize BASE --types q8_0,q4_k_m,...``.

Quantizing calls llama.cpp's own quantizer (``llama_model_quantize``) through llama-cpp-python.
It wants float weights; when only a quantized file exists (both default models are), the
file is first **dequantized to F16 with the gguf package**: every tensor is expanded with
``gguf.quants.dequantize`` and written as F16 (1-D tensors as F32, as llama.cpp's converter
does). That F16 file is a *reconstruction*: it holds exactly what the quantized weights encode,
not the original weights. The fact is written into its GGUF header
(``profiler.reconstructed_from``) and every report that uses it as a reference says so.

Outputs land in ``--out-dir`` (default ``$PROFILER_CACHE/quants/<base>/``) and are appended to
a catalogue file as ``[[models]]`` entries with sha256, size, ``derived_from`` and the base's
published scores copied as *inherited* (their ``measured_on`` names the original model and
the chain of files in between), so a derived quant can never show them as its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from profiler import atomic, paths
from profiler.errors import UserError
from profiler.models import catalog as catalog_mod
from profiler.quality.evaluate import RECONSTRUCTED_KEY, identify

# llama_ftype ids (llama.h) of the types that need no importance matrix.
FTYPES = {
    "f16": 1, "bf16": 32, "q8_0": 7, "q6_k": 18, "q5_k_m": 17, "q5_k_s": 16, "q5_1": 9, "q5_0": 8,
    "q4_k_m": 15, "q4_k_s": 14, "q4_1": 3, "q4_0": 2, "iq4_nl": 25, "iq4_xs": 30,
    "q3_k_l": 13, "q3_k_m": 12, "q3_k_s": 11, "q2_k": 10,
}
FLOAT_QUANTS = {"F32", "F16", "BF16", "ALL_F32", "MOSTLY_F16", "MOSTLY_BF16"}
DEFAULT_TYPES = ("q8_0", "q6_k", "q5_k_m", "q4_k_m", "q4_0", "q3_k_m", "q2_k")
SKIP_KEYS = {"general.architecture", "general.file_type", "general.quantization_version", "general.alignment", RECONSTRUCTED_KEY}


@dataclass
class LadderStep:
    name: str
    path: str
    quant: str
    sha256: str
    size_bytes: int
    reconstructed_from: str | None
    tensor_types: dict[str, float] = field(default_factory=dict)  # share of tensor bytes per ggml type


@dataclass
class Ladder:
    base: str
    base_quant: str
    reference: LadderStep  # the float model the ladder was quantized from
    steps: list[LadderStep]
    catalog_path: str
    reference_is_reconstruction: bool


def parse_types(text: str | None) -> list[str]:
    types = [t.strip().lower() for t in (text or ",".join(DEFAULT_TYPES)).split(",") if t.strip()]
    unknown = [t for t in types if t not in FTYPES]
    if unknown:
        raise UserError(f"unknown quant type(s) {', '.join(unknown)} (use: {', '.join(FTYPES)})")
    if not types:
        raise UserError("--types is empty")
    return list(dict.fromkeys(types))


# --------------------------------------------------------------------------- dequantize


def _copy_metadata(reader, writer) -> None:
    import gguf

    for key, f in reader.fields.items():
        if key.startswith("GGUF.") or key in SKIP_KEYS:
            continue
        vtype = f.types[0]
        sub = f.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, f.contents(), vtype, sub)


def dequantize_to_f16(src: Path, dst: Path, note: str) -> Path:
    """Write ``src`` with every tensor expanded to F16 (1-D and F32 tensors stay F32)."""
    import gguf
    import numpy as np
    from gguf.quants import dequantize

    reader = gguf.GGUFReader(str(src), "r")
    arch = str(reader.fields["general.architecture"].contents())

    def target(t) -> tuple:
        shape = tuple(int(d) for d in reversed(t.shape))
        keep_f32 = len(shape) == 1 or t.tensor_type == gguf.GGMLQuantizationType.F32
        return shape, (np.float32 if keep_f32 else np.float16)

    plans = [(t, *target(t)) for t in reader.tensors]
    with atomic.replacing_path(dst) as partial:
        writer = gguf.GGUFWriter(str(partial), arch)
        _copy_metadata(reader, writer)
        writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
        writer.add_string(RECONSTRUCTED_KEY, note)
        for t, shape, dtype in plans:
            raw = gguf.GGMLQuantizationType.F32 if dtype is np.float32 else gguf.GGMLQuantizationType.F16
            writer.add_tensor_info(t.name, shape, np.dtype(dtype), int(np.prod(shape)) * np.dtype(dtype).itemsize, raw)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for t, shape, dtype in plans:  # one tensor in memory at a time
            values = dequantize(np.asarray(t.data), t.tensor_type).reshape(shape)
            writer.write_tensor_data(np.ascontiguousarray(values.astype(dtype)))
        writer.close()
    return dst


# --------------------------------------------------------------------------- quantize


def quantize_file(src: Path, dst: Path, qtype: str, threads: int | None = None, verbose: bool = False) -> Path:
    """llama.cpp's quantizer on ``src`` (F16/BF16/F32 GGUF) -> ``dst``."""
    from profiler.backends.llama_cpp import initialised_library

    lc = initialised_library(verbose)
    params = lc.llama_model_quantize_default_params()
    params.ftype = FTYPES[qtype]
    params.nthread = threads or 0
    with atomic.replacing_path(dst) as partial:
        status = lc.llama_model_quantize(str(src).encode(), str(partial).encode(), params)
        if status != 0 or not partial.exists():
            raise UserError(f"llama.cpp could not quantize {src.name} to {qtype} (status {status}); run with --verbose for its log")
    return dst


def tensor_type_shares(path: Path) -> dict[str, float]:
    """Share of tensor bytes per ggml type: shows llama.cpp's fallbacks (e.g. Q8_0 rows in a Q4_K_M
    file when a row length is not a multiple of 256)."""
    from profiler.models.ggufinfo import parse_header

    sizes: dict[str, int] = {}
    for t in parse_header(path)[1]:
        sizes[t.type_name] = sizes.get(t.type_name, 0) + int(t.n_bytes)
    total = sum(sizes.values()) or 1
    return {k: round(v / total, 4) for k, v in sorted(sizes.items(), key=lambda kv: -kv[1])}


def _stem(name: str, quant: str) -> str:
    name = name[: -len(".gguf")] if name.lower().endswith(".gguf") else name
    # a discovered model's name (ollama:llama3.2:1b, hf-cache:ORG/REPO/FILE) makes a plain file stem
    name = re.sub(r"[:/\\]+", "-", name)
    suffix = "-" + quant.lower()
    return name[: -len(suffix)] if name.lower().endswith(suffix) else name


def _step(name: str, path: Path, quant: str, reconstructed: str | None) -> LadderStep:
    return LadderStep(name=name, path=str(path), quant=quant, sha256=catalog_mod.sha256_file(path),
                      size_bytes=path.stat().st_size, reconstructed_from=reconstructed, tensor_types=tensor_type_shares(path))


def quants_dir(name: str) -> Path:
    """Where a ladder's files go by default: the cache's quants/NAME (quantized and existing alike)."""
    return paths.cache_dir() / "quants" / name


def build_ladder(
    base: str,
    types: list[str],
    out_dir: Path | None = None,
    catalog_out: Path | None = None,
    catalog_path: Path | None = None,
    threads: int | None = None,
    verbose: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Ladder:
    """Reference (the base if it is float, else its F16 reconstruction) and one file per type."""
    say = progress or (lambda text: None)
    identity, base_path = identify(base, catalog_path, say)
    out_dir = Path(out_dir) if out_dir else quants_dir(_stem(identity.name, ""))
    stem = _stem(identity.name, identity.quant)
    reconstructed = identity.quant.upper() not in FLOAT_QUANTS
    tag = f"-from-{identity.quant.lower()}" if reconstructed else ""
    if reconstructed:
        ref_path = out_dir / f"{stem}-f16{tag}.gguf"
        note = (f"F16 reconstruction by dequantizing {identity.name} ({identity.quant}, sha256 {identity.sha256[:12]}) "
                "with the gguf package - not the original weights")
        if not ref_path.exists():
            say(f"dequantizing {identity.name} ({identity.quant}) to F16 - the reference will be a reconstruction")
            dequantize_to_f16(base_path, ref_path, note)
        reference = _step(f"{stem}-f16{tag}", ref_path, "F16", note)
    else:
        reference = _step(identity.name, base_path, identity.quant, None)
    steps = []
    for qtype in types:
        path = out_dir / f"{stem}-{qtype}{tag}.gguf"
        if not path.exists():
            say(f"quantizing to {qtype}")
            quantize_file(Path(reference.path), path, qtype, threads, verbose)
        steps.append(_step(f"{stem}-{qtype}{tag}", path, qtype.upper(), reference.reconstructed_from))
    catalog_out = Path(catalog_out) if catalog_out else out_dir / "models.toml"
    spec = _base_spec(base, catalog_path)
    entries = ([reference] if reconstructed else []) + steps
    add_to_catalog(catalog_out, entries, identity, spec)
    return Ladder(base=identity.name, base_quant=identity.quant, reference=reference, steps=steps,
                  catalog_path=str(catalog_out), reference_is_reconstruction=reconstructed)


def _base_spec(base: str, catalog_path: Path | None):
    from profiler import sources

    if catalog_mod.looks_like_path(base) or sources.handles(base):
        return None
    return catalog_mod.load_catalog(catalog_path).get(base)


# --------------------------------------------------------------------------- the catalogue file


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a valid TOML basic string


def _entry_text(step: LadderStep, identity, spec) -> str:
    via = "an F16 reconstruction of " + identity.quant if step.reconstructed_from else identity.quant
    kind = "F16 reconstruction (not the original weights)" if step.quant == "F16" and step.reconstructed_from else step.quant
    fallback = ", ".join(f"{k} {v:.0%}" for k, v in step.tensor_types.items())
    lines = [
        "[[models]]",
        f"name = {_toml(step.name)}",
        'format = "gguf"',
        f"source = {_toml(step.path)}",
        f"sha256 = {_toml(step.sha256)}",
        f"size_bytes = {step.size_bytes}",
        f"params = {identity.n_params}",
        f"quant = {_toml(step.quant)}",
        f"derived_from = {_toml(identity.name)}",
        f"description = {_toml(f'{identity.name} as {kind}, made by profiler quantize from {via}; tensor bytes: {fallback}')}",
    ]
    if spec is not None and spec.family:
        lines.insert(6, f"family = {_toml(spec.family)}")
    for acc in (spec.accuracy if spec is not None else []):
        inherited = {**acc, "measured_on": f"{acc['measured_on']} via {identity.name}"}
        lines.append("")
        lines.append("[[models.accuracy]]")
        lines += [f"{k} = {_toml(v)}" for k, v in inherited.items()]
    return "\n".join(lines) + "\n"


def add_to_catalog(path: Path, steps: list[LadderStep], identity, spec) -> None:
    """Append entries; an entry already there with the same sha256 is kept, a different one is an error."""
    existing = {m.name: m for m in catalog_mod.load_catalog(path).models} if path.exists() else {}
    blocks = []
    for step in steps:
        old = existing.get(step.name)
        if old is not None:
            if old.sha256 != step.sha256:
                raise UserError(f"{path} already has a different '{step.name}' (sha256 {str(old.sha256)[:12]}...); "
                                "remove it or pick another --catalog")
            continue
        blocks.append(_entry_text(step, identity, spec))
    if not blocks:
        return
    old = path.read_text(encoding="utf-8") if path.exists() else \
        "# Models made by profiler quantize. Use with: profiler run --models-file THIS_FILE NAME\n"
    new = old + "\n" + "\n".join(blocks)
    atomic.write_text(path, new)  # a crash mid-write never leaves a catalogue cut in half
    catalog_mod.load_catalog(path)  # what we wrote must parse
