"""`profiler models`, `run` and `compare-quants --existing` on models found in test-built stores,
and every bad input of issue 12: one line, exit 2, nothing written into the stores."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from support.sourcestores import COMMIT_MAIN, make_models, make_stores, ollama_manifest, sha256_of, tree

FAST = ["-p", "8", "-n", "4", "-r", "1", "--no-bandwidth", "--no-score", "--idle", "0"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return make_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def stores(tmp_path_factory, models):
    return make_stores(tmp_path_factory.mktemp("stores"), models)


def profiler(stores, *args, work: Path, user: int | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **stores.env(), "PROFILER_CACHE": str(work / "cache"),
           "PROFILER_REPORTS": str(work / "reports"), "PROFILER_DB": str(work / "reports" / "profiler.db")}
    return subprocess.run([sys.executable, "-m", "profiler", *args], cwd=work, capture_output=True, text=True,
                          env=env, timeout=600, user=user)


def assert_one_line_error(done: subprocess.CompletedProcess, fragment: str) -> None:
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1] == errors[0], "the error is the last word (progress may precede it)"
    assert fragment in errors[0], errors[0]


@pytest.fixture(scope="module")
def run_all(stores, tmp_path_factory):
    """One run over a model of every source, and the store trees before and after."""
    work = tmp_path_factory.mktemp("work")
    names = ["ollama:tiny:q8_0", "hf-cache:org/tiny-GGUF/tiny-f16.gguf", "hf:org/tiny-GGUF/tiny-q8_0.gguf",
             "lmstudio:publisher/tiny-GGUF/tiny-q8_0.gguf", "llamacpp:org/tiny-GGUF/tiny-q8_0.gguf"]
    before = tree(*stores.roots())
    done = profiler(stores, "run", *names, *FAST, "-o", "json", work=work)
    after = tree(*stores.roots())
    return work, names, done, before, after


def test_run_on_each_source_names_rows_as_the_user_does(run_all, stores):
    work, names, done, before, after = run_all
    assert done.returncode == 0, done.stderr
    rows = {r["model_name"]: r for r in json.loads(done.stdout)}  # -o json: the rows, as llama-bench
    assert set(rows) == set(names)
    m = stores.models
    expected = {names[0]: ("ollama", m.q8_0), names[1]: ("hf-cache", m.f16), names[2]: ("hf-cache", m.q8_0),
                names[3]: ("lmstudio", m.q8_0), names[4]: ("llamacpp", m.q8_0)}
    for name, (source, original) in expected.items():
        assert rows[name]["model_source"] == source
        assert rows[name]["model_sha256"] == sha256_of(original)
        assert rows[name]["decode_ts"] > 0
    assert rows[names[0]]["model_filename"].startswith(str(stores.ollama / "blobs" / "sha256-"))
    assert after == before, "profiler wrote into a user's store"


def test_models_lists_catalogue_and_stores_with_last_run(run_all, stores):
    work = run_all[0]
    done = profiler(stores, "models", "--json", work=work)
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    rows = {r["name"]: r for r in listing["models"]}
    assert {"catalog", "ollama", "hf-cache", "lmstudio", "llamacpp"} <= {r["source"] for r in rows.values()}
    q8 = rows["ollama:tiny:q8_0"]
    assert (q8["architecture"], q8["quant_type"], q8["n_ctx_train"]) == ("llama", "Q8_0", 1024)
    assert q8["n_params"] == q8["n_params_active"] > 0
    assert q8["last_run_id"] and q8["decode_ts"] > 0
    assert rows["ollama:tiny:f32"]["last_run_id"] is None
    # the same file profiled under another name: found by its sha256
    assert rows["hf-cache:org/tiny-GGUF/tiny-q8_0.gguf"]["last_run_model_name"] in {
        "hf:org/tiny-GGUF/tiny-q8_0.gguf", "ollama:tiny:q8_0", "llamacpp:org/tiny-GGUF/tiny-q8_0.gguf",
        "lmstudio:publisher/tiny-GGUF/tiny-q8_0.gguf"}
    assert rows["ollama:tinylora:latest"]["last_run_id"] is None, "a model that cannot run was never profiled"
    assert rows["lmstudio:publisher/tiny-GGUF/tiny-q8_0.gguf"]["sha256"] == sha256_of(stores.models.q8_0)
    assert not rows["lmstudio:publisher/tiny-GGUF/mmproj-tiny-f16.gguf"]["runnable"]
    assert listing["stores"]["ollama"] == [str(stores.ollama)]
    only = json.loads(profiler(stores, "models", "--json", "--source", "ollama", "tiny:*", work=work).stdout)["models"]
    assert {r["name"] for r in only} == {"ollama:tiny:latest", "ollama:tiny:q8_0", "ollama:tiny:f32"}
    table = profiler(stores, "models", "--source", "hf", work=work)
    assert table.returncode == 0 and "hf-cache:org/tiny-GGUF/tiny-q8_0.gguf" in table.stdout
    assert "F16" in table.stdout and f"hf-cache: {stores.hf}" in table.stdout


@pytest.mark.slow  # evaluates and times up to three models (25-31 s on the shared 2-core machine at load ~20)
def test_compare_quants_existing_uses_the_highest_precision_file(stores, tmp_path):
    before = tree(*stores.roots())
    done = profiler(stores, "compare-quants", "--existing", "ollama:tiny", "-c", "64", "--chunks", "2", "-p", "8",
                    "-n", "4", "-r", "1", "--json", work=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["reference"] == "ollama:tiny:f32" and not result["reference_is_reconstruction"]
    assert "highest-precision file present: ALL_F32" in result["reference_note"]
    roles = {r["name"]: (r["role"], r["quant"]) for r in result["rows"]}
    assert roles == {"ollama:tiny:f32": ("reference", "ALL_F32"), "ollama:tiny:latest": ("quant", "F16"),
                     "ollama:tiny:q8_0": ("quant", "Q8_0")}
    kld = {r["name"]: r["kld_mean"] for r in result["rows"]}
    assert kld["ollama:tiny:latest"] < kld["ollama:tiny:q8_0"], "F16 is closer to F32 than Q8_0"
    assert not list((tmp_path / "cache").glob("quants/**/*.gguf")), "nothing was quantized"
    assert tree(*stores.roots()) == before


# --------------------------------------------------------------------------- bad input


@pytest.fixture
def own_stores(tmp_path, models):
    """A fresh set of stores a test may damage."""
    return make_stores(tmp_path / "s", models)


def test_unknown_ollama_name_suggests_close_names(own_stores, tmp_path):
    before = tree(*own_stores.roots())
    done = profiler(own_stores, "run", "ollama:tinny:q8_0", *FAST, work=tmp_path)
    assert_one_line_error(done, "unknown Ollama model 'tinny:q8_0'")
    assert "did you mean ollama:tiny:q8_0" in done.stderr
    assert tree(*own_stores.roots()) == before


def test_corrupt_and_missing_manifests(own_stores, tmp_path):
    manifest = own_stores.ollama / "manifests/registry.ollama.ai/library/tiny/q8_0"
    manifest.write_text('{"schemaVersion": 2, "layers": [{"mediaType": ')
    empty = own_stores.ollama / "manifests/registry.ollama.ai/library/tiny/latest"
    empty.write_text(json.dumps({"schemaVersion": 2, "layers": [{"mediaType": "x", "digest": "md5:1"}]}))
    before = tree(*own_stores.roots())
    assert_one_line_error(profiler(own_stores, "run", "ollama:tiny:q8_0", *FAST, work=tmp_path),
                          "the Ollama manifest")
    assert_one_line_error(profiler(own_stores, "eval", "ollama:tiny", work=tmp_path), "is corrupt (no valid 'layers'")
    blob = own_stores.ollama / "blobs" / f"sha256-{sha256_of(own_stores.models.f32)}"
    blob.unlink()  # the manifest is there, its model blob is not
    before = tree(*own_stores.roots())
    assert_one_line_error(profiler(own_stores, "run", "ollama:tiny:f32", *FAST, work=tmp_path), "is missing from the store")
    assert tree(*own_stores.roots()) == before


def test_blob_whose_sha256_does_not_match(own_stores, tmp_path):
    blob = own_stores.ollama / "blobs" / f"sha256-{sha256_of(own_stores.models.q8_0)}"
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF  # one flipped bit in the last tensor: the header still reads
    blob.write_bytes(bytes(data))
    before = tree(*own_stores.roots())
    done = profiler(own_stores, "run", "ollama:tiny:q8_0", *FAST, work=tmp_path)
    assert_one_line_error(done, "is damaged: its store names it sha256")
    assert tree(*own_stores.roots()) == before
    assert not list((tmp_path / "cache").glob("verified/*.json")), "a mismatch is never remembered as verified"


def test_broken_hf_snapshot_link(own_stores, tmp_path):
    folder = own_stores.hf / "models--org--tiny-GGUF"
    blob = (folder / "snapshots" / COMMIT_MAIN / "tiny-q8_0.gguf").resolve()
    blob.unlink()
    before = tree(*own_stores.roots())
    for name in ("hf-cache:org/tiny-GGUF/tiny-q8_0.gguf", "hf:org/tiny-GGUF/tiny-q8_0.gguf"):
        assert_one_line_error(profiler(own_stores, "run", name, *FAST, work=tmp_path), "broken snapshot link")
    assert tree(*own_stores.roots()) == before


def _without_root_file_access() -> None:
    """In the child, before exec: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding
    set, so that even root gets "permission denied" from a folder of mode 000 (as any user would)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_store_without_read_permission(own_stores, tmp_path):
    if not sys.platform.startswith("linux"):
        pytest.skip("drops Linux capabilities to make root see permissions")
    own_stores.ollama.chmod(0)
    try:
        others = [r for r in own_stores.roots() if r != own_stores.ollama]
        before = tree(*others)
        env = {**os.environ, **own_stores.env(), "PROFILER_CACHE": str(tmp_path / "cache")}
        for args, fragment in ((["run", "ollama:tiny", *FAST], f"cannot read the Ollama store folder {own_stores.ollama}: "
                                "permission denied"), (["models", "--source", "ollama"], "permission denied")):
            done = subprocess.run([sys.executable, "-m", "profiler", *args], cwd=tmp_path, capture_output=True, text=True,
                                  env=env, timeout=300, preexec_fn=_without_root_file_access)
            assert_one_line_error(done, fragment)
        assert tree(*others) == before
        assert stat.S_IMODE(own_stores.ollama.stat().st_mode) == 0
    finally:
        own_stores.ollama.chmod(0o755)


def test_adapter_and_projector_layers_are_not_run(stores, tmp_path):
    assert_one_line_error(profiler(stores, "run", "ollama:tinylora", *FAST, work=tmp_path),
                          "ollama:tinylora:latest cannot be profiled: it has a LoRA adapter layer")
    bad = tmp_path / "s"
    ollama_manifest(bad, "registry.ollama.ai/library/notgguf/latest",
                    [("application/vnd.ollama.image.model", b"\x00" * 2048)])
    done = subprocess.run([sys.executable, "-m", "profiler", "run", "ollama:notgguf", *FAST], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OLLAMA_MODELS": str(bad), "PROFILER_CACHE": str(tmp_path / "c")})
    assert_one_line_error(done, "its model layer is not a GGUF file")


def test_onnx_model_in_the_hub_cache(own_stores, tmp_path):
    """ONNX works through the same sources: an Optimum repo's onnx/model.onnx, listed and run in place."""
    pytest.importorskip("onnxruntime")
    from support.sourcestores import make_hf_onnx

    name = make_hf_onnx(own_stores.hf, tmp_path / "src")
    before = tree(*own_stores.roots())
    listing = json.loads(profiler(own_stores, "models", "--json", "--source", "hf", "tiny-onnx", work=tmp_path).stdout)
    (row,) = listing["models"]
    assert (row["name"], row["format"], row["runnable"]) == (name, "onnx", True)
    assert row["n_params"] > 0 and row["sha256"] is not None
    done = profiler(own_stores, "run", name, *FAST, "-o", "json", work=tmp_path)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert {(r["model_name"], r["model_source"], r["model_sha256"]) for r in results} == {(name, "hf-cache", row["sha256"])}
    assert all(r["backend"].startswith("onnx") for r in results)
    assert max(r["decode_ts"] or 0 for r in results) > 0
    assert tree(*own_stores.roots()) == before


@pytest.mark.slow  # evaluates and times up to three models (25-31 s on the shared 2-core machine at load ~20)
def test_eval_and_compare_quants_take_discovered_names(stores, tmp_path):
    before = tree(*stores.roots())
    done = profiler(stores, "eval", "ollama:tiny:f32", "-c", "64", "--chunks", "2", "--json", work=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["model"]["name"] == "ollama:tiny:f32" and result["model"]["sha256"] == sha256_of(stores.models.f32)
    assert result["perplexity"]["ppl"] > 1
    done = profiler(stores, "compare-quants", "ollama:tiny:f32", "--types", "q8_0", "-c", "64", "--chunks", "2",
                    "-p", "8", "-n", "4", "-r", "1", "--json", work=tmp_path)
    assert done.returncode == 0, done.stderr
    ladder = json.loads(done.stdout)
    assert {r["role"] for r in ladder["rows"]} == {"original", "quant"}
    assert [p.name for p in (tmp_path / "cache" / "quants").iterdir()] == ["ollama-tiny-f32"], "a plain folder name"
    assert tree(*stores.roots()) == before


def test_run_all_local_profiles_what_it_found(models, tmp_path):
    """Only an LM Studio folder: its two models run, its projector is listed as skipped."""
    stores = make_stores(tmp_path / "s", models)
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {"OLLAMA_MODELS": str(empty), "HF_HUB_CACHE": str(empty), "LLAMA_CACHE": str(empty)}
    stores.env = lambda: {"HOME": str(stores.home), **env}
    done = profiler(stores, "run", "--all-local", *FAST, "-o", "json", work=tmp_path)
    assert done.returncode == 0, done.stderr
    assert {r["model_name"] for r in json.loads(done.stdout)} == {
        "lmstudio:publisher/tiny-GGUF/tiny-f16.gguf", "lmstudio:publisher/tiny-GGUF/tiny-q8_0.gguf"}
    assert "skipped: lmstudio:publisher/tiny-GGUF/mmproj-tiny-f16.gguf: a vision projector" in done.stderr


def test_onnx_genai_folder_in_the_hub_cache(own_stores, tmp_path):
    pytest.importorskip("onnxruntime_genai")
    from support.sourcestores import make_hf_genai

    name = make_hf_genai(own_stores.hf, tmp_path / "src")
    before = tree(*own_stores.roots())
    (row,) = json.loads(profiler(own_stores, "models", "--json", "tiny-genai", work=tmp_path).stdout)["models"]
    assert (row["name"], row["format"], row["runnable"]) == (name, "onnx", True), row
    done = profiler(own_stores, "run", name, *FAST, "-o", "json", work=tmp_path)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert {(r["model_name"], r["model_source"], r["backend"]) for r in results} == {(name, "hf-cache", "onnxruntime-genai")}
    assert len({r["model_sha256"] for r in results}) == 1 and results[0]["model_sha256"]
    assert tree(*own_stores.roots()) == before
