from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))

from support.tinymodel import write_tiny_llama  # noqa: E402

SHARED_DATASETS = TESTS.parent.parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory) -> Path:
    """A ~0.5 MB llama GGUF with random F32 weights and a separate output matrix."""
    return write_tiny_llama(tmp_path_factory.mktemp("models") / "tiny.gguf")


@pytest.fixture(scope="session")
def tiny_gguf_tied(tmp_path_factory) -> Path:
    return write_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-tied.gguf", tied_embeddings=True, seed=1)


@pytest.fixture
def sysroot(tmp_path, monkeypatch):
    """A fake filesystem root for profiler.platform.sysfs; returns a writer helper."""
    from profiler.platform import sysfs

    root = tmp_path / "root"
    root.mkdir()
    sysfs.set_root(root)

    def write(absolute: str, text: str) -> Path:
        target = root / absolute.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return target

    write.root = root
    yield write
    sysfs.set_root(None)
    sysfs.set_command_runner(None)


@pytest.fixture
def isolated_env(tmp_path, monkeypatch):
    """Cache, reports and catalogue lookups confined to tmp_path."""
    monkeypatch.setenv("PROFILER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PROFILER_REPORTS", str(tmp_path / "reports"))
    monkeypatch.chdir(tmp_path)
    return tmp_path
