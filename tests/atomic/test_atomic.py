"""profiler.atomic: a file (or a folder) is replaced whole or not at all."""

from __future__ import annotations

import os
import stat

import pytest

from profiler import atomic
from profiler.errors import UserError


class Boom(Exception):
    pass


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def test_replacing_writes_the_whole_file_and_fsyncs_it(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    target = tmp_path / "sub" / "out.bin"
    with atomic.replacing(target) as fh:
        fh.write(b"new")
    assert target.read_bytes() == b"new" and synced
    assert os.listdir(target.parent) == ["out.bin"]


def test_replacing_keeps_the_old_file_when_the_block_fails(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(Boom), atomic.replacing(target) as fh:
        fh.write(b"half of the ne")
        raise Boom
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"], "no temporary left behind"


def test_a_new_file_follows_the_umask(tmp_path, umask_027):
    target = tmp_path / "new.txt"
    atomic.write_text(target, "x")
    assert _mode(target) == 0o640  # 0666 & ~027, not mkstemp's 0600


def test_a_replaced_file_keeps_its_mode(tmp_path, umask_027):
    target = tmp_path / "kept.txt"
    target.write_text("old")
    target.chmod(0o604)
    atomic.write_text(target, "new")
    assert target.read_text() == "new" and _mode(target) == 0o604


def test_write_text_is_utf8(tmp_path):
    atomic.write_text(tmp_path / "t.txt", "± µ")
    assert (tmp_path / "t.txt").read_bytes() == "± µ".encode()


def test_write_user_file_turns_an_os_error_into_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError, match=r"cannot write .*file/report.md: "):
        atomic.write_user_file(blocker / "report.md", "x")
    with pytest.raises(OSError):
        atomic.write_text(blocker / "report.md", "x")  # the plain writer leaves the error to its caller


def test_replacing_path_hands_out_a_partial_name_and_renames_it(tmp_path):
    target = tmp_path / "out" / "model.gguf"
    with atomic.replacing_path(target) as partial:
        assert partial == target.with_name("model.gguf.partial") and partial.parent.is_dir()
        partial.write_bytes(b"made by someone else")
        assert not target.exists(), "the target appears only when the work is done"
    assert target.read_bytes() == b"made by someone else" and not partial.exists()


def test_replacing_path_removes_the_partial_and_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "model.gguf"
    target.write_bytes(b"old")
    with pytest.raises(Boom), atomic.replacing_path(target) as partial:
        partial.write_bytes(b"hal")
        raise Boom
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["model.gguf"]


def test_replacing_path_clears_a_crash_leftover_first(tmp_path):
    target = tmp_path / "model.gguf"
    target.with_name("model.gguf.partial").write_bytes(b"from a killed run")
    with atomic.replacing_path(target) as partial:
        assert not partial.exists()
        partial.write_bytes(b"fresh")
    assert target.read_bytes() == b"fresh"


def test_replacing_path_replaces_a_folder_whole(tmp_path):
    target = tmp_path / "genai-int4"
    target.mkdir()
    (target / "stale.onnx").write_text("old")
    with atomic.replacing_path(target) as partial:
        partial.mkdir()
        (partial / "model.onnx").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["model.onnx"]
    assert os.listdir(tmp_path) == ["genai-int4"]


def test_replacing_path_keeps_the_old_folder_on_failure(tmp_path):
    target = tmp_path / "optimum"
    target.mkdir()
    (target / "model.onnx").write_text("old")
    with pytest.raises(Boom), atomic.replacing_path(target) as partial:
        partial.mkdir()
        (partial / "model.onnx").write_text("ne")
        raise Boom
    assert (target / "model.onnx").read_text() == "old"
    assert os.listdir(tmp_path) == ["optimum"]


def test_replacing_path_takes_the_suffix_a_library_insists_on(tmp_path):
    target = tmp_path / "ref.npz"
    with atomic.replacing_path(target, suffix=".partial.npz") as partial:
        assert partial.name == "ref.npz.partial.npz"
        partial.write_bytes(b"npz")
    assert target.read_bytes() == b"npz"
