"""profiler/sources in-process: names, discovery, resolution, verified markers, --all-local pre-flight."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from profiler import sources
from profiler.errors import UserError
from profiler.sources import base as sources_base
from profiler.sources.ollama import Name
from support.sourcestores import COMMIT_MAIN, COMMIT_OLD, make_stores, sha256_of, tree
from support.tinymodel import finish_gguf


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return make_stores(tmp_path_factory.mktemp("stores"))


@pytest.fixture
def stores(built, monkeypatch, tmp_path):
    for key, value in built.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PROFILER_CACHE", str(tmp_path / "cache"))
    before = tree(*built.roots())
    yield built
    assert tree(*built.roots()) == before, "a store changed"


def test_ollama_names_follow_ollamas_parser():
    assert Name.parse("llama3.2:1b") == Name("registry.ollama.ai", "library", "llama3.2", "1b")
    assert Name.parse("llama3.2").tag == "latest"
    assert Name.parse("hf.co/ORG/REPO:Q4_K_M") == Name("hf.co", "ORG", "REPO", "Q4_K_M")
    assert Name.parse("hf.co/ORG/REPO:Q4_K_M").display == "hf.co/ORG/REPO:Q4_K_M"
    assert Name.parse("me/model").display == "me/model:latest"
    with pytest.raises(UserError, match="not an Ollama model name"):
        Name.parse("a/b/c/d")
    assert Name.parse("localhost:11434/me/model:q4").host == "localhost:11434"
    for outside in ("../../etc/passwd", "../x:latest", "a/../b"):
        with pytest.raises(UserError, match="not an Ollama model name"):
            Name.parse(outside)


@pytest.mark.parametrize("name", ["hf-cache:org/repo/../../../etc/passwd", "hf:org/repo/x.gguf@../../x",
                                  "lmstudio:pub/../../x.gguf", "hf-cache:/abs/repo/x.gguf"])
def test_names_never_reach_outside_a_store(stores, name):
    with pytest.raises(UserError):
        sources.spec_for(name)


def test_compare_existing_ladder_is_ordered_by_precision(stores):
    from profiler.ladder.existing import ladder

    ranked = [(m.name, info.quant_type) for m, info in ladder("hf-cache:org/tiny-GGUF")]
    assert ranked == [("hf-cache:org/tiny-GGUF/tiny-f16.gguf", "F16"), ("hf-cache:org/tiny-GGUF/tiny-q8_0.gguf", "Q8_0")]
    assert [m.name for m, _ in ladder("ollama:tiny")] == ["ollama:tiny:f32", "ollama:tiny:latest", "ollama:tiny:q8_0"]
    with pytest.raises(UserError, match="one runnable GGUF file on disk"):
        ladder("llamacpp:org/tiny-GGUF")
    with pytest.raises(UserError, match="did you mean ollama:tiny"):
        ladder("ollama:tiyn")


def test_discovery_names_every_model_as_its_store_does(stores):
    found = {f.name: f for f in sources.discover()}
    m = stores.models
    assert found["ollama:tiny:latest"].sha256 == sha256_of(m.f16)
    assert found["ollama:tiny:latest"].path == stores.ollama / "blobs" / f"sha256-{sha256_of(m.f16)}"
    assert found["ollama:tiny:q8_0"].group == found["ollama:tiny:f32"].group == "ollama:tiny"
    assert found["ollama:hf.co/org/tiny-GGUF:Q8_0"].runnable
    assert found["ollama:tinyvision:latest"].runnable and "projector" in found["ollama:tinyvision:latest"].note
    assert not found["ollama:tinylora:latest"].runnable and "adapter" in found["ollama:tinylora:latest"].note
    # the Hugging Face cache: the main snapshot's files, and the old revision's by commit
    assert found["hf-cache:org/tiny-GGUF/tiny-q8_0.gguf"].sha256 == sha256_of(m.q8_0)
    assert found["hf-cache:org/tiny-GGUF/tiny-f16.gguf"].group == "hf-cache:org/tiny-GGUF"
    assert f"hf-cache:org/tiny-GGUF/tiny-f32.gguf@{COMMIT_OLD[:12]}" in found
    assert found["lmstudio:publisher/tiny-GGUF/tiny-q8_0.gguf"].sha256 is None  # LM Studio names no hash
    assert found["llamacpp:org/tiny-GGUF/tiny-q8_0.gguf"].sha256 == sha256_of(m.q8_0)
    assert {f.source for f in found.values()} == {"ollama", "hf-cache", "lmstudio", "llamacpp"}


def test_resolution_verifies_once_and_writes_only_into_our_cache(stores, monkeypatch, tmp_path):
    m = stores.models
    spec = sources.spec_for("ollama:tiny:q8_0")
    assert (spec.name, spec.origin, spec.sha256) == ("ollama:tiny:q8_0", "ollama", sha256_of(m.q8_0))
    assert Path(spec.sources[0]).parent == stores.ollama / "blobs"
    assert list((tmp_path / "cache" / "verified").glob("*.json")), "the verified marker lives in our cache"

    def no_hashing(path, *args):
        raise AssertionError(f"hashed {path} again")

    monkeypatch.setattr(sources_base, "sha256_file", no_hashing)
    assert sources.spec_for("ollama:tiny:q8_0").sha256 == sha256_of(m.q8_0)  # remembered, not re-hashed


def test_every_source_resolves_in_place(stores):
    m = stores.models
    cases = {
        "hf-cache:org/tiny-GGUF/tiny-f16.gguf": (m.f16, "hf-cache"),
        "hf:org/tiny-GGUF/tiny-q8_0.gguf": (m.q8_0, "hf-cache"),  # offline: the local hub cache first
        f"hf-cache:org/tiny-GGUF/tiny-f32.gguf@{COMMIT_OLD}": (m.f32, "hf-cache"),
        f"hf:org/tiny-GGUF/tiny-q8_0.gguf@{COMMIT_MAIN[:8]}": (m.q8_0, "hf-cache"),
        "lmstudio:publisher/tiny-GGUF/tiny-f16.gguf": (m.f16, "lmstudio"),
        "llamacpp:org/tiny-GGUF/tiny-q8_0.gguf": (m.q8_0, "llamacpp"),
    }
    for name, (original, source) in cases.items():
        spec = sources.spec_for(name)
        path = Path(spec.sources[0])
        assert spec.name == name and spec.origin == source
        assert spec.sha256 == sha256_of(original)
        assert str(path).startswith(str(stores.home.parent)), "profiled where it is, never copied"


@pytest.mark.parametrize("name, message", [
    ("ollama:tiyn", "unknown Ollama model 'tiyn'.*did you mean ollama:tiny"),
    ("ollama:tiny:q4", "unknown Ollama model 'tiny:q4'.*ollama:tiny:"),
    ("ollama:tinylora", "cannot be profiled: it has a LoRA adapter layer"),
    ("hf-cache:org/tiny-GGUF/tiny-q2_k.gguf", "is not in the cache.*tiny-q8_0.gguf"),
    ("lmstudio:publisher/tiny-GGUF/nope.gguf", "is not in"),
])
def test_bad_names_are_one_line_errors(stores, name, message):
    with pytest.raises(UserError, match=message) as err:
        sources.spec_for(name)
    assert "\n" not in str(err.value)


def test_hf_not_cached_falls_back_to_the_catalogue_download(stores):
    spec = sources.spec_for("hf:org/other-GGUF/model.gguf")
    assert spec.origin is None and spec.sources == ["hf:org/other-GGUF/model.gguf"]


def test_discovery_reads_headers_only(stores, tmp_path, monkeypatch):
    """100 models: every one listed with its header facts, no file read whole, nothing hashed."""
    from profiler.sources.listing import list_models

    home = tmp_path / "home100"
    folder = home / ".lmstudio" / "models" / "pub"
    for i in range(100):  # hard links: 100 distinct model paths, little disk
        (folder / f"m{i:03d}").mkdir(parents=True)
        os.link(stores.models.f32, folder / f"m{i:03d}" / "tiny-f32.gguf")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr(sources_base, "sha256_file", lambda *a: pytest.fail("discovery hashed a file"))
    read = _bytes_read()
    listing = list_models("lmstudio")
    read = _bytes_read() - read
    assert len(listing.rows) == 100
    assert all(r.architecture == "llama" and r.n_params and r.n_ctx_train == 1024 for r in listing.rows)
    whole = 100 * stores.models.f32.stat().st_size
    assert read < whole / 10, f"read {read} bytes for headers of {whole} bytes of models"
    again = _bytes_read()
    assert [r.n_params for r in list_models("lmstudio").rows] == [r.n_params for r in listing.rows]
    again = _bytes_read() - again
    assert again < read / 4, f"the second listing read {again} bytes: header facts are not remembered"


def test_long_string_arrays_are_skipped_in_blocks(tmp_path):
    """A vocabulary-sized string array, one string longer than the 1 MiB read block, then more keys."""
    import gguf

    from profiler.models.ggufinfo import parse_header

    path = tmp_path / "strings.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    words = [f"tok{i}" for i in range(70000)]
    words[40000] = "x" * (3 << 20)
    writer.add_array("test.vocab", words)
    writer.add_uint32("test.after", 7)
    writer.add_string("test.name", "still read")
    writer.add_tensor("w", np.zeros((4, 4), dtype=np.float32))
    finish_gguf(writer)
    metadata, tensors = parse_header(path)
    assert metadata["test.vocab"].count == 70000
    assert (metadata["test.after"], metadata["test.name"]) == (7, "still read")
    assert [t.name for t in tensors] == ["w"]


def _bytes_read() -> int:
    from profiler.platform import sysfs

    text = sysfs.read_text("/proc/self/io") or ""
    return int(next(line.split()[1] for line in text.splitlines() if line.startswith("rchar:")))


def test_all_local_skips_what_will_not_fit(stores, sysroot):
    """The memory pre-flight per model: the projector and the adapter model are listed with the
    reason; with too little memory every model is skipped with its estimate."""
    from profiler.measure.plan import Sweep
    from profiler.run.all_local import plan_all_local

    sweep = Sweep(n_prompt=[8], n_gen=[4], repetitions=1)
    sysroot("/proc/meminfo", "MemTotal: 16000000 kB\nMemAvailable: 8000000 kB\n")
    keep, skipped = plan_all_local(sweep)
    assert "ollama:tiny:latest" in keep and "hf-cache:org/tiny-GGUF/tiny-q8_0.gguf" in keep
    assert any(s.startswith("ollama:tinylora:latest: it has a LoRA adapter") for s in skipped)
    assert any(s.startswith("lmstudio:publisher/tiny-GGUF/mmproj-tiny-f16.gguf") and "projector" in s for s in skipped)
    sysroot("/proc/meminfo", "MemTotal: 16000000 kB\nMemAvailable: 1000 kB\n")
    keep, skipped = plan_all_local(sweep)
    assert keep == []
    assert any(s.startswith("ollama:tiny:latest needs about") and "MiB (weights" in s for s in skipped)
    keep, _ = plan_all_local(sweep, force=True)
    assert "ollama:tiny:latest" in keep


def test_models_shows_active_and_total_parameters_of_a_moe(stores, tmp_path, monkeypatch):
    from profiler.cli.sources import params_cell
    from profiler.sources.listing import list_models
    from support.tinymodel import write_tiny_llama

    home = tmp_path / "moehome"
    folder = home / ".lmstudio" / "models" / "pub" / "tiny-moe"
    folder.mkdir(parents=True)
    write_tiny_llama(folder / "tiny-moe.gguf", n_expert=4, n_expert_used=2, name="tiny-moe")
    monkeypatch.setenv("HOME", str(home))
    (row,) = list_models("lmstudio").rows
    assert 0 < row.n_params_active < row.n_params
    assert params_cell(row).count("/") == 1, "active/total in the table"
