"""The quantization ladder on tiny models: llama.cpp's quantizer, the F16 reconstruction, the catalogue."""

from __future__ import annotations

import gguf
import numpy as np
import pytest
from gguf.quants import dequantize

from profiler.errors import UserError
from profiler.ladder import quantize
from profiler.models.catalog import load_catalog
from profiler.quality.evaluate import RECONSTRUCTED_KEY, reconstructed_from
from support.tinymodel import write_tiny_llama


@pytest.fixture(scope="module")
def wide_tiny(tmp_path_factory):
    """Rows of 256 so k-quants apply without llama.cpp's fallback types."""
    return write_tiny_llama(tmp_path_factory.mktemp("wide") / "wide.gguf", n_embd=256, n_ff=512, n_head=4, n_head_kv=2)


def test_parse_types():
    assert quantize.parse_types("Q8_0, q4_k_m,q8_0") == ["q8_0", "q4_k_m"]
    assert quantize.parse_types(None) == list(quantize.DEFAULT_TYPES)
    with pytest.raises(UserError, match="unknown quant type.*iq2_xxs"):
        quantize.parse_types("iq2_xxs")  # needs an importance matrix


def test_ladder_from_a_float_model(wide_tiny, tmp_path):
    ladder = quantize.build_ladder(str(wide_tiny), ["q8_0", "q4_0"], out_dir=tmp_path)
    assert not ladder.reference_is_reconstruction and ladder.reference.path == str(wide_tiny)
    q8, q4 = ladder.steps
    assert q8.size_bytes > q4.size_bytes
    assert max(q8.tensor_types, key=q8.tensor_types.get) == "Q8_0"
    assert max(q4.tensor_types, key=q4.tensor_types.get) == "Q4_0"
    cat = load_catalog(ladder.catalog_path)
    assert [m.name for m in cat.models] == ["wide-q8_0", "wide-q4_0"]
    assert cat.get("wide-q4_0").sha256 == q4.sha256 and cat.get("wide-q4_0").derived_from == "wide.gguf"
    again = quantize.build_ladder(str(wide_tiny), ["q8_0", "q4_0"], out_dir=tmp_path)  # idempotent
    assert [s.sha256 for s in again.steps] == [q8.sha256, q4.sha256]
    assert len(load_catalog(ladder.catalog_path).models) == 2


def test_quantized_base_is_dequantized_and_marked_as_reconstruction(wide_tiny, tmp_path):
    q4 = quantize.quantize_file(wide_tiny, tmp_path / "wide-q4_0.gguf", "q4_0")
    ladder = quantize.build_ladder(str(q4), ["q8_0"], out_dir=tmp_path / "ladder")
    assert ladder.reference_is_reconstruction
    ref = ladder.reference
    assert ref.quant == "F16" and "not the original weights" in ref.reconstructed_from
    assert reconstructed_from(ref.path) == ref.reconstructed_from
    assert ladder.steps[0].reconstructed_from == ref.reconstructed_from
    # every tensor is exactly what the Q4_0 file encodes, rounded to F16
    source = {t.name: t for t in gguf.GGUFReader(str(q4)).tensors}
    for t in gguf.GGUFReader(ref.path).tensors:
        original = dequantize(np.asarray(source[t.name].data), source[t.name].tensor_type).reshape(np.asarray(t.data).shape)
        np.testing.assert_allclose(np.asarray(t.data, dtype=np.float32), original, rtol=1e-3, atol=1e-4)
    desc = load_catalog(ladder.catalog_path).get(ref.name).description
    assert "reconstruction (not the original weights)" in desc
    reader = gguf.GGUFReader(ref.path)
    assert RECONSTRUCTED_KEY in reader.fields and "tokenizer.ggml.tokens" in reader.fields


def test_catalogue_conflict_is_an_error(wide_tiny, tmp_path):
    ladder = quantize.build_ladder(str(wide_tiny), ["q8_0"], out_dir=tmp_path)
    text = (tmp_path / "models.toml").read_text().replace(ladder.steps[0].sha256, "0" * 64)
    (tmp_path / "models.toml").write_text(text)
    with pytest.raises(UserError, match="already has a different 'wide-q8_0'"):
        quantize.build_ladder(str(wide_tiny), ["q8_0"], out_dir=tmp_path)


def test_published_scores_are_copied_as_inherited(tiny_gguf, tmp_path):
    catalog = tmp_path / "base.toml"
    catalog.write_text(f'[[models]]\nname = "base"\nformat = "gguf"\nsource = "{tiny_gguf}"\nquant = "F32"\n'
                       '[[models.accuracy]]\nmetric = "hellaswag"\nvalue = 40.0\nn_shot = 0\nsource = "card"\n'
                       'measured_on = "org/base"\n')
    ladder = quantize.build_ladder("base", ["q8_0"], out_dir=tmp_path / "out", catalog_path=catalog)
    derived = load_catalog(ladder.catalog_path).get("base-q8_0")
    assert derived.accuracy == [{"metric": "hellaswag", "value": 40.0, "n_shot": 0, "source": "card",
                                 "measured_on": "org/base via base"}]
