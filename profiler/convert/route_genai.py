"""Route A: F16 GGUF -> onnxruntime-genai's model builder -> a genai model folder.

The builder reads the GGUF weights itself and takes the Hugging Face config and tokenizer from
a folder made offline (hf_folder.py). It runs in a subprocess: it prints a progress line per
tensor (kept in a log file) and its peak memory is returned to the system when it exits.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from profiler.convert.hf_folder import require
from profiler.errors import UserError

# Builder options per precision. int4/int8 are MatMulNBits with blocks of 32 and accuracy
# level 4 (int8 activations: the CPU kernel llama.cpp's Q4/Q8 dot products also use).
# int4 uses k_quant and keeps the LM head at int8: the GGUF's own output matrix is 8-bit
# (Q8_0) and plain RTN int4 re-quantization of already-quantized weights loses more
# (SmolLM2-135M: KLD 0.46 vs 0.29 against llama.cpp on the same text; see docs/onnx.md).
RECIPES = {
    "fp32": {"precision": "fp32", "extra": {}},
    "int8": {"precision": "int8", "extra": {"block_size": "32", "accuracy_level": "4"}},
    "int4": {"precision": "int4", "extra": {"block_size": "32", "accuracy_level": "4", "algo_config": "k_quant",
                                            "matmul_mixed_precision": "last_matmul:int8"}},
}


def build(f16_gguf: Path, hf_dir: Path, out_dir: Path, precision: str, work_dir: Path) -> dict:
    """Run the builder for one precision into ``out_dir``; returns the recipe used."""
    require("onnxruntime_genai", "torch", "transformers", "onnx_ir")
    recipe = RECIPES[precision]
    extra = {**recipe["extra"], "hf_token": "false"}  # never ask the hub for anything
    argv = [
        sys.executable, "-m", "onnxruntime_genai.models.builder",
        "-m", str(hf_dir), "-i", str(f16_gguf), "-o", str(out_dir),
        "-p", recipe["precision"], "-e", "cpu", "-c", str(work_dir / "builder-cache"),
        "--extra_options", *[f"{k}={v}" for k, v in extra.items()],
    ]
    log = work_dir / f"builder-{precision}.log"
    with log.open("w") as fh:
        done = subprocess.run(argv, stdout=fh, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        raise UserError(f"the onnxruntime-genai builder failed for {precision}: {(lines or ['no output'])[-1][:200]} (log: {log})")
    return {"tool": "onnxruntime_genai.models.builder", "precision": recipe["precision"],
            "execution_provider": "cpu", "extra_options": recipe["extra"]}
