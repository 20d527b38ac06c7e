"""Model stores laid out as Ollama, the Hugging Face cache, LM Studio and llama.cpp write them,
holding tiny GGUF models (tests/tinymodel.py), for the profiler/sources tests."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from support.tinymodel import finish_gguf

COMMIT_OLD = "0" * 39 + "1"
COMMIT_MAIN = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_projector(path: Path) -> Path:
    """A GGUF whose architecture is clip, as llama.cpp's mmproj files are."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "clip")
    writer.add_tensor("v.patch_embd.weight", np.zeros((8, 8), dtype=np.float32))
    finish_gguf(writer)
    return path


@dataclass
class Models:
    f32: Path
    f16: Path
    q8_0: Path
    projector: Path


def make_models(folder: Path) -> Models:
    from profiler.ladder.quantize import quantize_file
    from support.tinymodel import write_tiny_llama

    folder.mkdir(parents=True, exist_ok=True)
    f32 = write_tiny_llama(folder / "tiny-f32.gguf", name="tiny")
    return Models(f32=f32, f16=quantize_file(f32, folder / "tiny-f16.gguf", "f16"),
                  q8_0=quantize_file(f32, folder / "tiny-q8_0.gguf", "q8_0"),
                  projector=write_projector(folder / "mmproj-tiny-f16.gguf"))


# --------------------------------------------------------------------------- Ollama


def ollama_blob(store: Path, data: bytes) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    blob = store / "blobs" / f"sha256-{digest}"
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def ollama_manifest(store: Path, name: str, layers: list[tuple[str, bytes]]) -> Path:
    """``name`` is host/namespace/model/tag; layers are (media type, bytes)."""
    config = ollama_blob(store, json.dumps({"model_format": "gguf", "model_family": "llama"}).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", **config},
        "layers": [{"mediaType": media, **ollama_blob(store, data)} for media, data in layers],
    }
    path = store / "manifests" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest))
    return path


MODEL = "application/vnd.ollama.image.model"
TEMPLATE = "application/vnd.ollama.image.template"


def make_ollama(store: Path, m: Models) -> Path:
    template = (TEMPLATE, b"{{ .Prompt }}")
    lib = "registry.ollama.ai/library"
    ollama_manifest(store, f"{lib}/tiny/latest", [(MODEL, m.f16.read_bytes()), template])
    ollama_manifest(store, f"{lib}/tiny/q8_0", [(MODEL, m.q8_0.read_bytes()), template])
    ollama_manifest(store, f"{lib}/tiny/f32", [(MODEL, m.f32.read_bytes()), template])
    ollama_manifest(store, f"{lib}/tinyvision/latest", [(MODEL, m.q8_0.read_bytes()),
                                                         ("application/vnd.ollama.image.projector", m.projector.read_bytes())])
    ollama_manifest(store, f"{lib}/tinylora/latest", [(MODEL, m.q8_0.read_bytes()),
                                                       ("application/vnd.ollama.image.adapter", b"GGUF-lora-bytes")])
    ollama_manifest(store, "hf.co/org/tiny-GGUF/Q8_0", [(MODEL, m.q8_0.read_bytes())])
    return store


# --------------------------------------------------------------------------- Hugging Face cache


def hf_add(cache: Path, repo: str, commit: str, files: dict[str, Path | bytes], lfs: bool = True) -> Path:
    """Put ``files`` (repo path -> file or bytes) in the snapshot ``commit`` as huggingface_hub
    does: blobs named by their etag (sha256 for LFS files, git sha1 for small ones) and relative
    symlinks from snapshots/<commit>/<path>."""
    folder = cache / ("models--" + repo.replace("/", "--"))
    for rel, content in files.items():
        data = content.read_bytes() if isinstance(content, Path) else content
        etag = hashlib.sha256(data).hexdigest() if lfs and len(data) > 1000 else \
            hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        blob = folder / "blobs" / etag
        blob.parent.mkdir(parents=True, exist_ok=True)
        if not blob.exists():
            blob.write_bytes(data)
        link = folder / "snapshots" / commit / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    return folder


def hf_ref(cache: Path, repo: str, commit: str, branch: str = "main") -> None:
    ref = cache / ("models--" + repo.replace("/", "--")) / "refs" / branch
    ref.parent.mkdir(parents=True, exist_ok=True)
    ref.write_text(commit)


def make_hf(cache: Path, m: Models) -> Path:
    repo = "org/tiny-GGUF"
    hf_add(cache, repo, COMMIT_OLD, {"tiny-f32.gguf": m.f32, "README.md": b"old card"})
    hf_add(cache, repo, COMMIT_MAIN, {"tiny-f16.gguf": m.f16, "tiny-q8_0.gguf": m.q8_0, "README.md": b"# tiny"})
    hf_ref(cache, repo, COMMIT_MAIN)
    return cache


# --------------------------------------------------------------------------- LM Studio, llama.cpp


def make_lmstudio(home: Path, m: Models) -> Path:
    folder = home / ".lmstudio" / "models" / "publisher" / "tiny-GGUF"
    folder.mkdir(parents=True, exist_ok=True)
    for src in (m.f16, m.q8_0, m.projector):
        shutil.copy(src, folder / src.name)
    return folder.parent.parent


def make_llamacpp(cache: Path, m: Models) -> Path:
    """The flat cache older llama.cpp builds write: OWNER_REPO_FILE beside a manifest."""
    cache.mkdir(parents=True, exist_ok=True)
    shutil.copy(m.q8_0, cache / "org_tiny-GGUF_tiny-q8_0.gguf")
    (cache / "org_tiny-GGUF_tiny-q8_0.gguf.etag").write_text('"etag"')
    manifest = {"ggufFile": {"rfilename": "tiny-q8_0.gguf", "lfs": {"sha256": sha256_of(m.q8_0), "size": 1}}}
    (cache / "manifest=org=tiny-GGUF=latest.json").write_text(json.dumps(manifest))
    return cache


@dataclass
class Stores:
    home: Path
    ollama: Path
    hf: Path
    lmstudio: Path
    llamacpp: Path
    models: Models

    def env(self) -> dict[str, str]:
        return {"HOME": str(self.home), "OLLAMA_MODELS": str(self.ollama), "HF_HUB_CACHE": str(self.hf),
                "LLAMA_CACHE": str(self.llamacpp), "HF_HUB_OFFLINE": "1"}

    def roots(self) -> list[Path]:
        return [self.ollama, self.hf, self.lmstudio, self.llamacpp]


def make_stores(base: Path, models: Models | None = None) -> Stores:
    m = models or make_models(base / "src")
    home = base / "home"
    return Stores(home=home, ollama=make_ollama(base / "ollama" / "models", m), hf=make_hf(base / "hf" / "hub", m),
                  lmstudio=make_lmstudio(home, m), llamacpp=make_llamacpp(base / "llama.cpp", m), models=m)


def tree(*roots: Path) -> dict[str, tuple]:
    """Every path under ``roots`` with its kind, size, mtime and (links) target: compared
    before and after to prove nothing was written into a user's store."""
    out = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                p = Path(dirpath) / name
                st = p.lstat()
                out[str(p)] = (st.st_mode, st.st_size, st.st_mtime_ns, os.readlink(p) if p.is_symlink() else None)
        st = root.lstat()
        out[str(root)] = (st.st_mode, st.st_mtime_ns)
    return out


def make_hf_onnx(cache: Path, work: Path) -> str:
    """An Optimum-layout ONNX repo in the hub cache (config.json, tokenizer.json, onnx/model.onnx)."""
    from support.tinyonnx import write_plain

    folder = write_plain(work / "tiny-onnx")
    files = {f.relative_to(folder).as_posix(): f for f in sorted(folder.rglob("*")) if f.is_file()}
    hf_add(cache, "org/tiny-onnx", COMMIT_MAIN, files)
    hf_ref(cache, "org/tiny-onnx", COMMIT_MAIN)
    return "hf-cache:org/tiny-onnx/onnx/model.onnx"


def make_hf_genai(cache: Path, work: Path) -> str:
    """An onnxruntime-genai folder inside a repo (as microsoft's *-onnx repos ship them)."""
    from support.tinyonnx import write_genai

    folder = write_genai(work / "genai")
    files = {"cpu-int4/" + f.relative_to(folder).as_posix(): f for f in sorted(folder.rglob("*")) if f.is_file()}
    hf_add(cache, "org/tiny-genai", COMMIT_MAIN, {**files, "README.md": b"# genai"})
    hf_ref(cache, "org/tiny-genai", COMMIT_MAIN)
    return "hf-cache:org/tiny-genai/cpu-int4"
