"""Evaluation data: text sources, ``profiler data pull`` (error path and sha256 checks with fakes)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from profiler.errors import UserError
from profiler.quality import data

SHARED = data.Path(__file__).resolve().parents[3] / "shared" / "datasets"


def _fake_dataset(monkeypatch, name: str, payload: bytes, url: str = "https://example.invalid/file.txt", builder="raw"):
    ds = data.Dataset(name=name, filename=f"{name}.txt", sha256=hashlib.sha256(payload).hexdigest(), urls=(url,),
                      description="test data", licence="test", builder=builder)
    monkeypatch.setitem(data.DATASETS, name, ds)
    return ds


def test_pull_checks_sha256_and_saves(isolated_env, monkeypatch):
    payload = b"ctx\n0\na\nb\nc\nd\n"
    _fake_dataset(monkeypatch, "fake", payload)
    calls = []
    path = data.pull("fake", get=lambda url: calls.append(url) or payload)
    assert path.read_bytes() == payload and path.parent == data.datasets_dir()
    assert data.pull("fake", get=lambda url: pytest.fail("a verified copy must not be downloaded again")) == path
    assert calls == ["https://example.invalid/file.txt"]
    text, source = data.resolve_text("fake")
    assert text == payload.decode()[:-1] and source.sha256 == hashlib.sha256(payload).hexdigest()


def test_pull_rejects_a_changed_file(isolated_env, monkeypatch):
    _fake_dataset(monkeypatch, "fake", b"the pinned content")
    with pytest.raises(UserError, match="sha256 .* expected .* not saved"):
        data.pull("fake", get=lambda url: b"something else")
    assert not (data.datasets_dir() / "fake.txt").exists()
    assert not list(data.datasets_dir().glob("*.partial")) if data.datasets_dir().exists() else True


def test_corrupt_cached_copy_is_replaced(isolated_env, monkeypatch):
    payload = b"good"
    _fake_dataset(monkeypatch, "fake", payload)
    target = data.datasets_dir() / "fake.txt"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"bad")
    assert data.pull("fake", get=lambda url: payload).read_bytes() == payload


def test_pull_unreachable_host_is_a_user_error(isolated_env, monkeypatch):
    _fake_dataset(monkeypatch, "fake", b"x", url="http://127.0.0.1:9/hellaswag.txt")  # port 9: nothing listens
    with pytest.raises(UserError, match="cannot download from 127.0.0.1:9"):
        data.pull("fake")


def test_real_sources_fail_cleanly_offline(isolated_env, monkeypatch):
    def offline(url):
        raise data.urllib.error.URLError("network unreachable")

    for name in ("hellaswag", "wikitext2"):
        with pytest.raises(UserError, match="cannot download .*network unreachable"):
            data.pull(name, get=offline)


def test_wikitext_is_rebuilt_from_rows(isolated_env, monkeypatch):
    rows = [" = Title = \n", "", " Some text , here . \n", "", " More . \n"]
    expected = b" = Title = \r\n Some text , here . \r\n More . \r\n"
    _fake_dataset(monkeypatch, "wt", expected, url="https://rows.invalid/?offset={offset}&length={length}",
                  builder="wikitext-rows")

    def pages(url):
        offset = int(url.split("offset=")[1].split("&")[0])
        chunk = rows[offset : offset + 2]
        return json.dumps({"rows": [{"row_idx": offset + i, "row": {"text": t}} for i, t in enumerate(chunk)],
                           "num_rows_total": len(rows)}).encode()

    monkeypatch.setattr(data, "WIKITEXT_PAGE", 2)
    assert data.pull("wt", get=pages).read_bytes() == expected


@pytest.mark.skipif(not (SHARED / "wikitext-2-raw-test.txt").exists(), reason=f"shared datasets not found at {SHARED}")
def test_pinned_hashes_match_the_shared_files():
    for ds in data.DATASETS.values():
        assert hashlib.sha256((SHARED / ds.filename).read_bytes()).hexdigest() == ds.sha256


def test_text_files(tmp_path, isolated_env):
    f = tmp_path / "t.txt"
    f.write_bytes(b"hello\n")
    assert data.read_text_file(f)[0] == "hello"  # llama.cpp's -f drops one trailing newline
    f.write_bytes(b"\xff\xfe")
    with pytest.raises(UserError, match="not UTF-8"):
        data.read_text_file(f)
    with pytest.raises(UserError, match="not found"):
        data.read_text_file(tmp_path / "missing.txt")
    with pytest.raises(UserError, match="not pulled yet; run: profiler data pull hellaswag"):
        data.resolve_text("hellaswag")  # the isolated cache is empty
    text, source = data.resolve_text(None)
    assert len(text) > 100_000 and source.path is None and source.notes


def test_cli_data_pull_error_is_one_line(isolated_env):
    done = subprocess.run([sys.executable, "-m", "profiler", "data", "pull", "nope"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: unknown dataset 'nope' (available: hellaswag, wikitext2)"
