"""A Hugging Face config + tokenizer folder made from a GGUF's own metadata, offline.

onnxruntime-genai's model builder reads weights from a GGUF but still wants a Hugging Face
``config.json`` and tokenizer (it normally downloads them by model name). transformers builds
both from the GGUF header, so no model hub is needed.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from profiler.errors import UserError

# GGUF architecture -> the transformers class the builder dispatches on
ARCHITECTURES = {
    "llama": "LlamaForCausalLM",
    "mistral": "MistralForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "qwen3": "Qwen3ForCausalLM",
    "phi3": "Phi3ForCausalLM",
    "gemma": "GemmaForCausalLM",
    "gemma2": "Gemma2ForCausalLM",
    "gemma3": "Gemma3ForCausalLM",
    "granite": "GraniteForCausalLM",
    "olmo": "OlmoForCausalLM",
    "nemotron": "NemotronForCausalLM",
}


def require(*modules: str) -> None:
    """UserError naming the convert extra unless every module imports."""
    import importlib

    missing = []
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise UserError(
            f"conversion needs {', '.join(missing)}: pip install 'profiler[convert]' "
            "(install the CPU torch first: pip install torch==2.13.0)"
        )


def make_hf_folder(gguf_path: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Write config.json, tokenizer files and generation_config.json for ``gguf_path`` into ``out_dir``."""
    require("transformers")
    from transformers import AutoConfig, AutoTokenizer

    gguf_path, out_dir = Path(gguf_path), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        config = AutoConfig.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    except Exception as exc:  # transformers raises ValueError/KeyError/OSError for unsupported GGUFs
        raise UserError(f"transformers cannot read the config of {gguf_path.name}: {type(exc).__name__}: {exc}") from None
    if not getattr(config, "architectures", None):
        arch = ARCHITECTURES.get(config.model_type)
        if arch is None:
            raise UserError(f"no ONNX conversion recipe for architecture '{config.model_type}'")
        config.architectures = [arch]
    config.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    generation = {"bos_token_id": config.bos_token_id, "eos_token_id": config.eos_token_id, "do_sample": False}
    (out_dir / "generation_config.json").write_text(json.dumps(generation, indent=2))
    return out_dir


def copy_tokenizer_files(hf_dir: Path, dst: Path) -> None:
    """config, tokenizer and chat template files beside an exported model."""
    for pattern in ("config.json", "generation_config.json", "tokenizer*.json", "special_tokens_map.json", "chat_template.jinja"):
        for f in hf_dir.glob(pattern):
            shutil.copy2(f, dst / f.name)
