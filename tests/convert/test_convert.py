"""profiler convert: GGUF dequantization, argument checks, caching; heavy routes are faked here
(the real conversion runs in test_onnx_real.py, marked slow)."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from profiler import convert as convert_mod
from profiler.convert.gguf_dequant import dequantize_to_f16
from profiler.errors import UserError
from support.tinymodel import finish_gguf


def _quantize_gguf(src, dst):
    """A copy of ``src`` with every matrix stored as Q8_0 (what real models look like)."""
    import gguf

    reader = gguf.GGUFReader(str(src))
    writer = gguf.GGUFWriter(str(dst), reader.fields["general.architecture"].contents())
    for key, f in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        writer.add_key_value(key, f.contents(), f.types[0], f.types[1] if f.types[0] == gguf.GGUFValueType.ARRAY else None)
    for t in reader.tensors:
        data = np.array(t.data)
        if data.ndim == 2:
            q = gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0)
            writer.add_tensor(t.name, q, raw_shape=q.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            writer.add_tensor(t.name, data)
    finish_gguf(writer)
    return dst


@pytest.fixture(scope="module")
def q8_gguf(tmp_path_factory):
    from support.tinymodel import write_tiny_llama

    root = tmp_path_factory.mktemp("convert")
    return _quantize_gguf(write_tiny_llama(root / "tiny.gguf"), root / "tiny-q8_0.gguf")


def test_dequantized_f16_holds_llama_cpps_values(q8_gguf, tmp_path):
    import gguf

    out = dequantize_to_f16(q8_gguf, tmp_path / "f16.gguf")
    src, dst = gguf.GGUFReader(str(q8_gguf)), gguf.GGUFReader(str(out))
    assert dst.fields["general.file_type"].contents() == gguf.LlamaFileType.MOSTLY_F16
    assert dst.fields["tokenizer.ggml.tokens"].contents() == src.fields["tokenizer.ggml.tokens"].contents()
    by_name = {t.name: t for t in src.tensors}
    for t in dst.tensors:
        original = by_name[t.name]
        if original.tensor_type == gguf.GGMLQuantizationType.Q8_0:
            assert t.tensor_type == gguf.GGMLQuantizationType.F16
            expected = gguf.quants.dequantize(original.data, original.tensor_type).astype(np.float16)
            np.testing.assert_array_equal(np.array(t.data), expected)
        else:
            assert t.tensor_type == gguf.GGMLQuantizationType.F32
    assert not list(tmp_path.glob("*.partial"))


def test_llama_cpp_runs_the_f16_copy_like_the_original(q8_gguf, tmp_path):
    from profiler.backends.base import ContextParams, LoadParams
    from profiler.backends.llama_cpp import LlamaCppBackend

    out = dequantize_to_f16(q8_gguf, tmp_path / "f16.gguf")
    logits = []
    for path in (q8_gguf, out):
        b = LlamaCppBackend()
        try:
            b.load(str(path), LoadParams())
            b.configure(ContextParams(n_ctx=64, n_batch=64, n_ubatch=64))
            b.set_threads(1)
            b.prefill([1, 300, 301, 302, 303])
            logits.append(b.logits().copy())
        finally:
            b.close()
    # Q8_0 dot products quantize activations too; F16 does not: close, not equal
    np.testing.assert_allclose(logits[1], logits[0], rtol=0.05, atol=0.05 * np.abs(logits[0]).max())
    assert np.argmax(logits[1]) == np.argmax(logits[0])


@pytest.mark.parametrize(
    "precisions, layouts, message",
    [(["fp16"], ["genai"], "--precision 'fp16'"), (["int4"], ["tflite"], "--layout 'tflite'"), ([], ["genai"], "nothing to convert")],
)
def test_bad_arguments_are_one_line_errors(q8_gguf, tmp_path, precisions, layouts, message):
    with pytest.raises(UserError, match=message):
        convert_mod.convert(q8_gguf, precisions, layouts, out_dir=tmp_path)


def test_only_gguf_files_convert(tmp_path):
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"ONNX" + b"\0" * 40)
    with pytest.raises(UserError, match="not a GGUF file"):
        convert_mod.convert(bad, ["int4"], out_dir=tmp_path / "out")


def test_missing_heavy_dependencies_name_the_extra():
    from profiler.convert.hf_folder import require

    with pytest.raises(UserError, match=r"no_such_module_xyz: pip install 'profiler\[convert\]'"):
        require("numpy", "no_such_module_xyz")


def test_conversions_are_cached_and_reused(q8_gguf, tmp_path, monkeypatch):
    from profiler.convert import route_genai

    calls = []

    def fake_build(f16, hf_dir, out_dir, precision, work_dir):
        calls.append(precision)
        out_dir.mkdir(parents=True)
        (out_dir / "model.onnx").write_bytes(b"x" * 10)
        return {"precision": precision}

    monkeypatch.setattr(route_genai, "build", fake_build)
    monkeypatch.setattr(convert_mod._Work, "hf", lambda self: self.dir / "hf")
    first = convert_mod.convert(q8_gguf, ["int4", "fp32"], out_dir=tmp_path)
    assert calls == ["int4", "fp32"] and all(m.convert_s is not None for m in first)
    assert (tmp_path / "work" / "model-f16.gguf").exists()
    again = convert_mod.convert(q8_gguf, ["fp32", "int4"], out_dir=tmp_path)
    assert calls == ["int4", "fp32"], "nothing rebuilt"
    assert [m.path.name for m in again] == ["genai-fp32", "genai-int4"] and all(m.convert_s is None for m in again)
    marker = json.loads((tmp_path / "genai-int4" / convert_mod.MARKER).read_text())
    assert marker["source"] == str(q8_gguf) and marker["recipe"] == {"precision": "int4"}
    convert_mod.convert(q8_gguf, ["int4"], out_dir=tmp_path, force=True)
    assert calls == ["int4", "fp32", "int4"]
    assert convert_mod.cached_models(q8_gguf, tmp_path) == [tmp_path / "genai-fp32", tmp_path / "genai-int4"]


def test_interrupted_builds_never_look_finished(q8_gguf, tmp_path, monkeypatch):
    from profiler.convert import route_genai

    def broken_build(f16, hf_dir, out_dir, precision, work_dir):
        out_dir.mkdir(parents=True)
        raise UserError("the onnxruntime-genai builder failed for int4: boom")

    monkeypatch.setattr(route_genai, "build", broken_build)
    monkeypatch.setattr(convert_mod._Work, "hf", lambda self: self.dir / "hf")
    with pytest.raises(UserError, match="builder failed"):
        convert_mod.convert(q8_gguf, ["int4"], out_dir=tmp_path)
    assert not (tmp_path / "genai-int4").exists() and convert_mod.cached_models(q8_gguf, tmp_path) == []


def test_builder_failure_points_at_its_log(tmp_path, monkeypatch):
    from profiler.convert import route_genai

    monkeypatch.setattr(route_genai, "require", lambda *names: None)

    def fake_run(argv, stdout, stderr, check):
        stdout.write("Traceback ...\nValueError: unsupported tensor layout\n")
        assert argv[1:3] == ["-m", "onnxruntime_genai.models.builder"] and "hf_token=false" in argv
        assert "block_size=32" in argv and "accuracy_level=4" in argv
        return subprocess.CompletedProcess(argv, 1)

    monkeypatch.setattr(route_genai.subprocess, "run", fake_run)
    with pytest.raises(UserError, match=r"unsupported tensor layout \(log: .*builder-int4.log\)"):
        route_genai.build(tmp_path / "f16.gguf", tmp_path / "hf", tmp_path / "out", "int4", tmp_path)
