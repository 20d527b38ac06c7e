"""Route B: the Optimum / transformers.js layout, made with transformers + torch's ONNX export.

transformers loads the (F16) GGUF as a PyTorch model; a thin wrapper turns the flat
``past_key_values.N.key/value`` inputs into a transformers cache and the cache back into flat
``present.N.*`` outputs, and torch's TorchScript exporter traces it with dynamic batch,
sequence and past lengths. Quantized variants sit beside the float model as transformers.js
names them:

* ``onnx/model_int8.onnx`` - onnxruntime.quantization dynamic int8 (MatMulInteger; weights
  per tensor, activations quantized at run time);
* ``onnx/model_q4.onnx`` - MatMulNBits int4, blocks of 32, accuracy level 4.

Runs in a subprocess so torch's memory goes back to the system when the export is done.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from profiler.convert.hf_folder import require
from profiler.errors import UserError

FILES = {"fp32": "model.onnx", "int8": "model_int8.onnx", "int4": "model_q4.onnx"}
RECIPES = {
    "fp32": {"tool": "torch.onnx.export (TorchScript)", "opset": 17},
    "int8": {"tool": "onnxruntime.quantization.quantize_dynamic", "weight_type": "QInt8", "per_channel": False,
             "op_types": ["MatMul"]},
    "int4": {"tool": "onnxruntime.quantization.MatMulNBitsQuantizer", "block_size": 32, "is_symmetric": True,
             "accuracy_level": 4},
}
OPSET = 17


def export(f16_gguf: Path, hf_dir: Path, out_dir: Path, precisions: list[str], work_dir: Path) -> dict[str, dict]:
    """Write ``out_dir/onnx/model*.onnx`` for ``precisions`` (fp32 is always made: the others
    quantize it). Returns {precision: recipe}."""
    require("torch", "transformers", "onnx", "onnxruntime")
    (out_dir / "onnx").mkdir(parents=True, exist_ok=True)
    log = work_dir / "optimum-export.log"
    job = {"gguf": str(f16_gguf), "hf_dir": str(hf_dir), "out": str(out_dir / "onnx"), "precisions": precisions}
    argv = [sys.executable, "-m", "profiler.convert.route_optimum", json.dumps(job)]
    with log.open("w") as fh:
        done = subprocess.run(argv, stdout=fh, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        raise UserError(f"the Optimum-layout export failed: {(lines or ['no output'])[-1][:200]} (log: {log})")
    return {p: RECIPES[p] for p in precisions}


# --------------------------------------------------------------------------- in the subprocess


def _wrapper(model, n_layer: int):
    """A module with flat KV inputs/outputs around a transformers causal LM."""
    import torch
    from transformers import DynamicCache

    class FlatKV(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, position_ids, *past):
            cache = DynamicCache(config=model.config)
            for i in range(n_layer):
                cache.update(past[2 * i], past[2 * i + 1], i)
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                             past_key_values=cache, use_cache=True)
            flat = []
            for layer in out.past_key_values.layers:
                flat += [layer.keys, layer.values]
            return (out.logits, *flat)

    return FlatKV()


def _export_fp32(gguf: Path, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32,
                                                 attn_implementation="eager")
    model.eval()
    cfg = model.config
    n_layer, n_kv = cfg.num_hidden_layers, cfg.num_key_value_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    # Trace with a non-empty past and a multi-token step so no length is baked in as a constant.
    seq, past_len = 3, 2
    past = [torch.zeros(1, n_kv, past_len, head_dim) for _ in range(2 * n_layer)]
    args = (torch.ones(1, seq, dtype=torch.int64), torch.ones(1, past_len + seq, dtype=torch.int64),
            torch.arange(past_len, past_len + seq)[None], *past)
    kv_names = [f"{i}.{k}" for i in range(n_layer) for k in ("key", "value")]
    inputs = ["input_ids", "attention_mask", "position_ids"] + [f"past_key_values.{n}" for n in kv_names]
    outputs = ["logits"] + [f"present.{n}" for n in kv_names]
    axes = {"input_ids": {0: "batch_size", 1: "sequence_length"}, "position_ids": {0: "batch_size", 1: "sequence_length"},
            "attention_mask": {0: "batch_size", 1: "total_sequence_length"}, "logits": {0: "batch_size", 1: "sequence_length"}}
    axes.update({name: {0: "batch_size", 2: "past_sequence_length"} for name in inputs[3:]})
    axes.update({name: {0: "batch_size", 2: "total_sequence_length"} for name in outputs[1:]})
    with torch.no_grad():
        torch.onnx.export(_wrapper(model, n_layer), args, str(target), input_names=inputs, output_names=outputs,
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False, do_constant_folding=True)


def _quantize(src: Path, precision: str) -> None:
    target = src.with_name(FILES[precision])
    if precision == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(src), str(target), weight_type=QuantType.QInt8, per_channel=False, op_types_to_quantize=["MatMul"])
    elif precision == "int4":
        import onnx
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

        quantizer = MatMulNBitsQuantizer(onnx.load(str(src)), block_size=32, is_symmetric=True, accuracy_level=4)
        quantizer.process()
        quantizer.model.save_model_to_file(str(target), use_external_data_format=False)


def _main(job: dict) -> None:
    out = Path(job["out"])
    fp32 = out / FILES["fp32"]
    _export_fp32(Path(job["gguf"]), fp32)
    for precision in job["precisions"]:
        if precision != "fp32":
            _quantize(fp32, precision)
    if "fp32" not in job["precisions"]:
        fp32.unlink()


if __name__ == "__main__":
    _main(json.loads(sys.argv[1]))
