"""ONNX model facts: layouts, KV shape, parameter and byte counts, clear errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from profiler.errors import UserError  # noqa: E402
from profiler.models.modelinfo import fixed_kv_type, read_model_info  # noqa: E402
from profiler.models.onnxinfo import find_layout, read_info  # noqa: E402
from support.tinyonnx import TinyConfig, vocabulary, write_genai, write_plain  # noqa: E402

CFG = TinyConfig()


def _exact_params(cfg: TinyConfig) -> int:
    h, kvd, v = cfg.hidden, cfg.n_head_kv * cfg.head_dim, len(vocabulary())
    per_layer = 2 * h * h + 2 * h * kvd + 2 * h * cfg.n_ff
    return 2 * v * h + cfg.n_layer * per_layer


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx-info")
    return {"plain": write_plain(root / "plain"), "genai": write_genai(root / "genai")}


def test_layouts_are_found_from_folders_and_files(models):
    genai = find_layout(models["genai"])
    assert genai.kind == "genai" and genai.decoder == models["genai"] / "model.onnx"
    assert genai.genai_config["model"]["vocab_size"] == len(vocabulary())
    plain = find_layout(models["plain"])
    assert plain.kind == "plain" and plain.decoder == models["plain"] / "onnx" / "model.onnx"
    assert plain.hf_config["num_key_value_heads"] == CFG.n_head_kv and plain.tokenizer_dir == models["plain"]
    # A file inside a genai folder is the plain graph, run by plain onnxruntime.
    direct = find_layout(models["genai"] / "model.onnx")
    assert direct.kind == "plain" and direct.genai_config is not None


@pytest.mark.parametrize("layout", ["plain", "genai"])
def test_graph_facts(models, layout):
    info = read_info(models[layout])
    assert (info.n_layer, info.n_head_kv, info.head_dim_k, info.kv_type) == (CFG.n_layer, CFG.n_head_kv, CFG.head_dim, "f32")
    assert info.shared_kv_buffer is (layout == "genai")
    assert info.has_position_ids is (layout == "plain")
    assert info.n_params == _exact_params(CFG)  # rotary tables and shape constants are not parameters
    assert info.quant_type == "fp32" and info.n_ctx_train == CFG.max_pos
    embed = len(vocabulary()) * CFG.hidden * 4
    rotary = 2 * CFG.max_pos * CFG.head_dim // 2 * 4
    # A decode step streams every weight except the tables it only indexes.
    assert info.weight_bytes_per_token == info.tensor_bytes - embed - rotary
    assert info.kv_bytes_per_cell() == CFG.n_layer * CFG.n_head_kv * 2 * CFG.head_dim * 4
    assert info.kv_cache_bytes(100) == 100 * info.kv_bytes_per_cell()
    decoder = info.layout.decoder
    assert info.file_size_bytes == decoder.stat().st_size
    assert fixed_kv_type(info) == "f32"
    cached = read_model_info(models[layout], "onnx")
    assert cached.n_params == info.n_params and read_model_info(models[layout], "onnx") is cached


def test_quantized_variants_are_labelled_and_smaller(models, tmp_path):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src = models["plain"] / "onnx" / "model.onnx"
    target = models["plain"] / "onnx" / "model_int8.onnx"
    quantize_dynamic(str(src), str(target), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
    try:
        full, q8 = read_info(src), read_info(target)
        assert q8.quant_type == "int8"
        assert q8.weight_bytes_per_token < full.weight_bytes_per_token / 2
        assert abs(q8.n_params - full.n_params) < 0.01 * full.n_params  # int8 weights still count once
        assert q8.layout.hf_config is not None  # config.json one folder up, as Optimum lays it out
    finally:
        target.unlink()


def test_folder_with_several_models_asks_which(models, tmp_path):
    folder = tmp_path / "two"
    (folder / "onnx").mkdir(parents=True)
    for name in ("model_q4.onnx", "model_int8.onnx"):
        shutil.copy(models["plain"] / "onnx" / "model.onnx", folder / "onnx" / name)
    with pytest.raises(UserError, match="several ONNX models .*give the path"):
        find_layout(folder)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p, "model not found"),
        (lambda p: (p.mkdir(), p)[1], "has no .onnx model"),
        (lambda p: (p.write_text("x"), p)[1], "not an ONNX model"),
    ],
)
def test_bad_paths_are_one_line_errors(tmp_path, make, message):
    with pytest.raises(UserError, match=message):
        read_info(make(tmp_path / "thing"))


def test_corrupt_graph_and_missing_decoder(tmp_path, models):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(UserError, match="not a readable ONNX model"):
        read_info(bad)
    folder = tmp_path / "genai"
    shutil.copytree(models["genai"], folder)
    config = json.loads((folder / "genai_config.json").read_text())
    config["model"]["decoder"]["filename"] = "gone.onnx"
    (folder / "genai_config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match="names gone.onnx, which is missing"):
        read_info(folder)


def test_symbolic_kv_shape_without_configs_is_explained(tmp_path, models):
    import onnx

    model = onnx.load(str(models["plain"] / "onnx" / "model.onnx"))
    for value in list(model.graph.input) + list(model.graph.output):
        if value.name.startswith(("past_key_values", "present")):
            dims = value.type.tensor_type.shape.dim
            dims[1].dim_param, dims[3].dim_param = "heads", "head_dim"
    onnx.save(model, tmp_path / "model.onnx")
    with pytest.raises(UserError, match="cannot tell the KV-cache shape"):
        read_info(tmp_path / "model.onnx")
    (tmp_path / "config.json").write_text(json.dumps({"num_attention_heads": 4, "num_key_value_heads": 2, "hidden_size": 64}))
    info = read_info(tmp_path / "model.onnx")
    assert (info.n_head_kv, info.head_dim_k) == (2, 16)


def test_not_a_decoder(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph), tmp_path / "m.onnx")
    with pytest.raises(UserError, match="no past_key_values"):
        read_info(tmp_path / "m.onnx")


def test_catalogue_sha256_of_a_model_folder_covers_every_file(models, tmp_path):
    from profiler.models.catalog import sha256_file

    folder = tmp_path / "copy"
    shutil.copytree(models["genai"], folder)
    before = sha256_file(folder)
    assert before == sha256_file(models["genai"])
    data = np.frombuffer((folder / "model.onnx").read_bytes(), dtype=np.uint8).copy()
    data[-1] ^= 1
    (folder / "model.onnx").write_bytes(data.tobytes())
    assert sha256_file(folder) != before
