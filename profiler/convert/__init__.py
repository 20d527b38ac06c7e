"""``profiler convert MODEL.gguf --to onnx``: a ladder of ONNX models from one GGUF.

Route A (layout ``genai``): dequantize to F16 with the gguf package, then onnxruntime-genai's
model builder -> ``genai-fp32/``, ``genai-int8/``, ``genai-int4/`` folders.
Route B (layout ``plain``): transformers loads the F16 GGUF, torch exports the Optimum /
transformers.js layout, onnxruntime.quantization makes the int8 (dynamic) and q4 variants
-> ``optimum/onnx/model*.onnx``.

Results are cached under ``$PROFILER_CACHE/converted/<gguf name>-<sha256[:12]>/``; a model
whose ``profiler-convert.json`` exists is reused. Each output is built in a ``.partial``
folder and renamed when complete, so an interrupted conversion never looks finished.
Heavy dependencies (torch, transformers, onnxruntime-genai's builder) come from the
``convert`` extra and are imported only here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from profiler import atomic, paths
from profiler.errors import UserError

PRECISIONS = ("fp32", "int8", "int4")
LAYOUTS = ("genai", "plain")
MARKER = "profiler-convert.json"


@dataclass
class ConvertedModel:
    """One converted model: where it is and exactly how it was made."""

    precision: str
    layout: str  # "genai" (onnxruntime-genai folder) or "plain" (Optimum layout file)
    route: str
    path: Path
    recipe: dict
    size_bytes: int
    convert_s: float | None  # None when reused from the cache
    source_gguf: str = ""
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["path"] = str(self.path)
        return data


def converted_dir(gguf: Path) -> Path:
    from profiler.models.catalog import sha256_file

    stem = re.sub(r"^[0-9a-f]{16}-", "", gguf.stem)  # drop the download cache's own key prefix
    return paths.cache_dir() / "converted" / f"{stem}-{sha256_file(gguf)[:12]}"


def _folder_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _check(precisions: Sequence[str], layouts: Sequence[str]) -> None:
    for p in precisions:
        if p not in PRECISIONS:
            raise UserError(f"--precision '{p}' is not one of {', '.join(PRECISIONS)}")
    for layout in layouts:
        if layout not in LAYOUTS:
            raise UserError(f"--layout '{layout}' is not one of {', '.join(LAYOUTS)}")
    if not precisions or not layouts:
        raise UserError("nothing to convert: give at least one --precision and --layout")


class _Work:
    """The shared intermediate files: the F16 GGUF and the Hugging Face config folder."""

    def __init__(self, gguf: Path, root: Path, say: Callable[[str], None]) -> None:
        self.gguf, self.dir, self.say = gguf, root / "work", say
        self.dir.mkdir(parents=True, exist_ok=True)

    def f16(self) -> Path:
        target = self.dir / "model-f16.gguf"
        if not target.exists():
            from profiler.convert.gguf_dequant import dequantize_to_f16

            self.say(f"dequantizing {self.gguf.name} to F16 (gguf package)")
            dequantize_to_f16(self.gguf, target)
        return target

    def hf(self) -> Path:
        target = self.dir / "hf"
        if not (target / "config.json").exists():
            from profiler.convert.hf_folder import make_hf_folder

            self.say("writing the Hugging Face config and tokenizer from the GGUF header (transformers)")
            with atomic.replacing_path(target) as partial:
                make_hf_folder(self.f16(), partial)
        return target


def _cached(path: Path) -> dict | None:
    try:
        return json.loads((path / MARKER).read_text()) if path.is_dir() else None
    except (OSError, ValueError):
        return None


def _genai(work: _Work, root: Path, precision: str, force: bool) -> ConvertedModel:
    from profiler.convert import route_genai

    target = root / f"genai-{precision}"
    route = "A: GGUF -> F16 GGUF (gguf) -> onnxruntime-genai model builder"
    known = _cached(target)
    if known and not force:
        return ConvertedModel(precision, "genai", route, target, known["recipe"], _folder_bytes(target), None, str(work.gguf))
    work.say(f"building genai-{precision} with the onnxruntime-genai model builder")
    start = time.perf_counter()
    with atomic.replacing_path(target) as partial:
        recipe = route_genai.build(work.f16(), work.hf(), partial, precision, work.dir)
        (partial / MARKER).write_text(json.dumps({"recipe": recipe, "source": str(work.gguf), "route": route}, indent=2))
    return ConvertedModel(precision, "genai", route, target, recipe, _folder_bytes(target), time.perf_counter() - start, str(work.gguf))


def _plain(work: _Work, root: Path, precisions: list[str], force: bool) -> list[ConvertedModel]:
    from profiler.convert import route_optimum
    from profiler.convert.hf_folder import copy_tokenizer_files

    target = root / "optimum"
    route = "B: GGUF -> F16 GGUF -> transformers + torch.onnx.export -> onnxruntime.quantization"
    known = _cached(target) or {}
    missing = [p for p in precisions if force or p not in known.get("recipes", {})]
    seconds = None
    if missing:
        work.say(f"exporting the Optimum layout ({', '.join(missing)}) with transformers + torch")
        start = time.perf_counter()
        with atomic.replacing_path(target) as partial:
            if target.exists():  # keep the variants already made
                shutil.copytree(target, partial)
            recipes = {**known.get("recipes", {}), **route_optimum.export(work.f16(), work.hf(), partial, missing, work.dir)}
            copy_tokenizer_files(work.hf(), partial)
            (partial / MARKER).write_text(json.dumps({"recipes": recipes, "source": str(work.gguf), "route": route}, indent=2))
        known = {"recipes": recipes}
        seconds = time.perf_counter() - start
    models = []
    for p in precisions:
        path = target / "onnx" / route_optimum.FILES[p]
        note = ["tied embeddings are exported twice (embedding and LM head)"]
        models.append(ConvertedModel(p, "plain", route, path, known["recipes"][p], _folder_bytes(path), seconds, str(work.gguf), note))
    return models


def convert(
    gguf: str | os.PathLike,
    precisions: Sequence[str] = PRECISIONS,
    layouts: Sequence[str] = ("genai",),
    out_dir: str | os.PathLike | None = None,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[ConvertedModel]:
    """Convert the GGUF file ``gguf`` to ONNX models (cached; ``force`` rebuilds)."""
    say = progress or (lambda text: None)
    _check(precisions, layouts)
    gguf = Path(gguf)
    from profiler.models.ggufinfo import check_header

    check_header(gguf)
    root = Path(out_dir) if out_dir is not None else converted_dir(gguf)
    root.mkdir(parents=True, exist_ok=True)
    work = _Work(gguf, root, say)
    models: list[ConvertedModel] = []
    if "genai" in layouts:
        models += [_genai(work, root, p, force) for p in precisions]
    if "plain" in layouts:
        models += _plain(work, root, list(precisions), force)
    return models


def cached_models(gguf: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> list[Path]:
    """Converted model paths already in the cache for ``gguf`` (no conversion)."""
    root = Path(out_dir) if out_dir is not None else converted_dir(Path(gguf))
    found = [p for p in sorted(root.glob("genai-*")) if _cached(p)]
    optimum = _cached(root / "optimum")
    if optimum:
        from profiler.convert.route_optimum import FILES

        found += [root / "optimum" / "onnx" / FILES[p] for p in optimum.get("recipes", {})]
    return found
