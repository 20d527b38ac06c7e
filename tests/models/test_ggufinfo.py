"""GGUF header reading: sizes, parameter counts, KV-cache sizing and bad-file errors."""

from __future__ import annotations

import struct

import pytest

from profiler.errors import UserError
from profiler.models.ggufinfo import read_info


def test_tiny_model_facts(tiny_gguf):
    info = read_info(tiny_gguf)
    assert info.architecture == "llama"
    assert (info.n_layer, info.n_embd, info.n_head, info.n_head_kv) == (2, 64, 2, 1)
    assert info.head_dim_k == info.head_dim_v == 32
    n_vocab = 3 + 256 + 94 + 1 + 21
    per_layer = 64 * 64 * 2 + 2 * (32 * 64) + 3 * 128 * 64 + 2 * 64
    assert info.n_params == 2 * n_vocab * 64 + 2 * per_layer + 64
    assert info.tensor_bytes == 4 * info.n_params
    # The embedding table is only indexed when a separate output matrix exists.
    assert info.weight_bytes_per_token == info.tensor_bytes - 4 * n_vocab * 64
    assert info.quant_type == "ALL_F32"


def test_tied_embeddings_count_the_table_as_read(tiny_gguf_tied):
    info = read_info(tiny_gguf_tied)
    assert info.weight_bytes_per_token == info.tensor_bytes


def test_kv_cache_bytes(tiny_gguf):
    info = read_info(tiny_gguf)
    # 2 layers x 1 kv head x (32 K + 32 V) x 2 bytes (f16) per cell
    assert info.kv_bytes_per_cell() == 2 * 1 * 64 * 2
    assert info.kv_cache_bytes(1000) == 1000 * 256
    assert info.kv_cache_bytes(1000, "q8_0", "q8_0") == int(1000 * 2 * 1 * 64 * 34 / 32)


def test_sliding_window_layers_keep_a_window_only(tiny_gguf):
    info = read_info(tiny_gguf)
    info.architecture, info.n_layer, info.sliding_window = "gemma3", 6, 100
    per_cell_layer = info.kv_bytes_per_cell() / 6
    # five SWA layers hold window + ubatch cells, the sixth (global) holds n_ctx
    assert info.kv_cache_bytes(4096, n_ubatch=28) == int(5 * 128 * per_cell_layer + 4096 * per_cell_layer)


def _header(n_tensors=1, n_kv=1, version=3):
    return b"GGUF" + struct.pack("<IQQ", version, n_tensors, n_kv)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is empty"),
        (b"PK\x03\x04" + b"\0" * 40, "is not a GGUF file"),
        (b"GGUF\x03\0", "is truncated"),
        (_header(version=99), "unsupported GGUF version 99"),
        (_header(n_tensors=10**12), "is corrupt: header claims"),
        (_header(n_kv=10**12), "is corrupt: header claims"),
        (_header(n_tensors=3, n_kv=2) + b"\x05\0\0\0", "is not a valid GGUF file"),
    ],
)
def test_bad_files_are_one_line_user_errors(tmp_path, content, message):
    path = tmp_path / "bad.gguf"
    path.write_bytes(content)
    with pytest.raises(UserError) as err:
        read_info(path)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_truncated_real_header(tiny_gguf, tmp_path):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_gguf.read_bytes()[:2000])
    with pytest.raises(UserError, match="not a valid GGUF file"):
        read_info(cut)


def test_missing_directory_and_unreadable(tmp_path):
    with pytest.raises(UserError, match="model file not found"):
        read_info(tmp_path / "nope.gguf")
    with pytest.raises(UserError, match="is a directory"):
        read_info(tmp_path)


def test_unreadable_file(tmp_path, monkeypatch):
    locked = tmp_path / "locked.gguf"
    locked.write_bytes(_header())
    # Root reads anything, so simulate what a normal user sees for a mode-000 file.
    monkeypatch.setattr("profiler.models.ggufinfo.os.access", lambda path, mode: False)
    with pytest.raises(UserError, match="permission denied"):
        read_info(locked)
