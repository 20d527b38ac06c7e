"""``profiler fit``: the predicted breakdown against hand-computed values on tiny GGUFs, the largest
context at the exact byte where it stops fitting, --no-mmap, the local stores, --verify, and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from profiler import api
from profiler.analysis import fit
from profiler.models.ggufinfo import KV_TYPE_BYTES, read_info
from profiler.run import preflight
from support.tinymodel import write_tiny_llama

# 6 layers, every third global; 4 query heads sharing 2 KV heads of 16 dims
SWA = dict(n_embd=64, n_layer=6, n_head=4, n_head_kv=2, n_ff=128, n_ctx=4096, sliding_window=64,
           swa_pattern=[True, True, False, True, True, False])
N_VOCAB = 375  # support.tinymodel's vocabulary


@pytest.fixture(scope="module")
def swa_gguf(tmp_path_factory):
    return write_tiny_llama(tmp_path_factory.mktemp("fit") / "tiny-swa.gguf", name="tiny-swa", **SWA)


def _settings(**overrides) -> fit.FitSettings:
    return fit.FitSettings(**{"type_k": "q8_0", "type_v": "f16", "n_ubatch": 32, "flash_attn": "off",
                              "margin_bytes": 0, **overrides})


def test_breakdown_is_the_hand_computed_one(swa_gguf):
    info = read_info(swa_gguf)
    report = fit.predict("tiny-swa", info, _settings(), ram_bytes=2**40, ram_source="--ram")
    per_token_layer = 2 * (16 * KV_TYPE_BYTES["q8_0"] + 16 * KV_TYPE_BYTES["f16"])  # 2 KV heads x (K + V)
    assert [k.sliding for k in report.kv_layers] == SWA["swa_pattern"]
    assert {k.bytes_per_token for k in report.kv_layers} == {per_token_layer}
    assert [k.max_cells for k in report.kv_layers if k.sliding] == [64 + 32] * 4
    at_2k = next(p for p in report.points if p.n_ctx == 2048)
    # 2 global layers keep 2048 cells, 4 sliding-window layers keep window + ubatch = 96
    assert at_2k.kv_cache_bytes == int(2 * 2048 * per_token_layer + 4 * 96 * per_token_layer)
    # logits row + one layer's scores (4 heads x 32 x 2048) + FFN and embedding activations, all f32
    assert at_2k.compute_bytes == int(4 * (N_VOCAB + 32 * ((4 + preflight.MASK_ROWS_PLAIN) * 2048 + 3 * 128 + 4 * 64)))
    assert at_2k.weights_bytes == info.tensor_bytes
    assert at_2k.library_bytes == preflight.LLAMA_FIXED_BYTES + preflight.LLAMA_VOCAB_BYTES_PER_TOKEN * N_VOCAB
    assert at_2k.model_bytes == at_2k.weights_bytes + at_2k.kv_cache_bytes + at_2k.compute_bytes + at_2k.library_bytes
    assert at_2k.needed_bytes == at_2k.model_bytes + preflight.RUNTIME_OVERHEAD_BYTES
    assert [p.n_ctx for p in report.points] == [2048, 4096, 8192, 16384, 32768]  # 4096 is the trained one
    # the sliding-window layers stop growing at their window: only the global layers' share grows
    at_4k = next(p for p in report.points if p.n_ctx == 4096)
    assert at_4k.kv_cache_bytes - at_2k.kv_cache_bytes == int(2 * 2048 * per_token_layer)


def test_flash_attention_drops_the_score_matrix(swa_gguf):
    info = read_info(swa_gguf)
    off = fit.point(info, 2048, _settings(), 2**40)
    on = fit.point(info, 2048, _settings(flash_attn="on"), 2**40)
    rows = 4 + preflight.MASK_ROWS_PLAIN - preflight.MASK_ROWS_FLASH  # 4 heads of scores, and the masks
    assert off.compute_bytes - on.compute_bytes == pytest.approx(4 * 32 * 2048 * rows, abs=2)
    assert fit.point(info, 2048, _settings(flash_attn="auto"), 2**40).compute_bytes == on.compute_bytes


def test_largest_context_stops_at_the_exact_byte(swa_gguf):
    info = read_info(swa_gguf)
    settings = _settings(margin_bytes=10 * 2**20)
    needed_at_1000 = fit.point(info, 1000, settings, 0).needed_bytes
    ram = needed_at_1000 + settings.margin_bytes
    report = fit.predict("tiny-swa", info, settings, ram, "--ram")
    assert report.budget_bytes == needed_at_1000
    assert report.max_ctx == 1000 and report.limit == "the RAM budget"
    assert fit.point(info, 1001, settings, report.budget_bytes).fits is False
    roomy = fit.predict("tiny-swa", info, settings, 2**40, "--ram")
    assert roomy.max_ctx == 4096 and "trained context" in roomy.limit
    cramped = fit.predict("tiny-swa", info, settings, settings.margin_bytes + 2**20, "--ram")
    assert cramped.max_ctx is None and not any(p.fits for p in cramped.points)


def test_no_mmap_counts_repacked_weights_once(tmp_path):
    from profiler.ladder.quantize import quantize_file

    q8 = quantize_file(write_tiny_llama(tmp_path / "f32.gguf"), tmp_path / "q8.gguf", "q8_0")
    info = read_info(q8)
    assert info.repackable_bytes > 0  # Q8_0 matrices are repacked by the CPU backend
    mapped = fit.point(info, 2048, _settings(), 2**40)
    read_in = fit.point(info, 2048, _settings(use_mmap=False), 2**40)
    assert mapped.weights_bytes == info.tensor_bytes + info.repackable_bytes
    assert mapped.reclaimable_bytes == info.repackable_bytes  # the mapped originals: droppable pages
    assert read_in.weights_bytes == info.tensor_bytes and read_in.reclaimable_bytes == 0
    assert mapped.needed_bytes == read_in.needed_bytes  # what must stay resident is the same
    # the pre-flight of a --no-mmap run uses the smaller figure
    tests = _tests(n_ctx=512)
    assert (preflight.worst_estimate(info, tests, use_mmap=True).total_bytes
            - preflight.worst_estimate(info, tests, use_mmap=False).total_bytes) == info.repackable_bytes


def _tests(n_ctx: int):
    from profiler.measure.plan import Sweep, expand

    return expand(Sweep(n_prompt=[n_ctx], n_gen=[0], repetitions=1), default_threads=1)


def test_verify_runs_only_what_fits_here_and_compares(swa_gguf, monkeypatch):
    info = read_info(swa_gguf)
    settings = _settings(ram_bytes=2**40)
    report = fit.predict("tiny-swa", info, settings, 2**40, "--ram")
    # this machine, as verify sees it: room for 2000 tokens at most
    here_ram = fit.point(info, 2000, settings, 0).needed_bytes
    monkeypatch.setattr(fit, "ram_budget", lambda ram: (here_ram, "available on this machine now"))
    calls = []

    def measure(path, sweep):
        calls.append(sweep)
        return 2 * 2**20

    fit.verify(report, info, settings, measure, wanted=(256, 1024, 2048, 4096))
    assert [(s.n_prompt, s.n_depth, s.type_k, s.flash_attn, s.use_mmap) for s in calls] == [
        ([512], [512], ["q8_0"], ["off"], True)]
    by_ctx = {v.n_ctx: v for v in report.verify}
    assert by_ctx[1024].measured_bytes == 2 * 2**20
    assert by_ctx[1024].ratio == pytest.approx(fit.point(info, 1024, settings, 0).model_bytes / (2 * 2**20))
    assert by_ctx[2048].measured_bytes is None and "above what fits here (2000)" in by_ctx[2048].why_not
    assert by_ctx[256].measured_bytes is None and report.measured


def _profiler(*args, env=None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "profiler", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})}, cwd=cwd)


def test_cli_json_for_another_device(swa_gguf):
    settings = _settings(margin_bytes=256 * 2**20, type_k="f16", n_ubatch=512, flash_attn="auto")
    info = read_info(swa_gguf)
    ram = fit.point(info, 3000, settings, 0).needed_bytes + settings.margin_bytes
    done = _profiler("fit", str(swa_gguf), "--ram", str(ram), "--json")
    assert done.returncode == 0, done.stderr
    (model,) = json.loads(done.stdout)["models"]
    assert model["max_ctx"] == 3000 and model["ram_source"] == "--ram" and model["measured"] is False
    assert "header formula" in model["method"] and model["budget_bytes"] == ram - 256 * 2**20
    text = _profiler("fit", str(swa_gguf), "--ram", str(ram), "--margin", "256MiB")
    assert "largest context that fits: 3,000 tokens" in text.stdout, text.stderr
    assert "4 sliding-window layers keep 576 cells" in text.stdout


@pytest.mark.parametrize("args, fragment", [
    (["--ram", "lots"], "--ram 'lots' is not a size"),
    (["--ram", "0"], "--ram must be a positive size"),
    (["-ctk", "q3"], "-ctk 'q3' is unknown"),
])
def test_bad_input_is_one_line(swa_gguf, args, fragment):
    done = _profiler("fit", str(swa_gguf), *args)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [f"error: {done.stderr.strip()[7:]}"] and fragment in done.stderr


def test_local_stores_and_all_local(tmp_path):
    from support.sourcestores import make_stores

    stores = make_stores(tmp_path / "stores")
    done = _profiler("fit", "ollama:tiny:q8_0", "--ram", "4GB", "--json", env=stores.env(), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (model,) = json.loads(done.stdout)["models"]
    assert model["model"] == "ollama:tiny:q8_0" and model["max_ctx"] == 1024  # the tiny model's trained context
    done = _profiler("fit", "--all-local", "--ram", "4GB", "--json", env=stores.env(), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    names = {m["model"] for m in result["models"]}
    assert {"ollama:tiny:q8_0", "hf-cache:org/tiny-GGUF/tiny-f16.gguf"} <= names
    assert any("adapter" in line or "projector" in line for line in result["skipped"])


@pytest.mark.slow
def test_verify_on_smollm2_is_within_ten_percent():
    settings = fit.FitSettings(ram_bytes=4 * 2**30)
    # two contexts keep the suite's time down; benchmarks/fit_accuracy.py covers 4096 and Gemma 3
    (report,), _ = api.fit(["smollm2-135m-instruct-q4_1"], settings, verify=True, verify_contexts=(1024, 2048))
    ratios = [v.ratio for v in report.verify if v.ratio is not None]
    assert len(ratios) == 2 and all(0.9 <= r <= 1.1 for r in ratios), report.verify


def test_verify_measures_a_real_run_of_what_fits(tiny_gguf):
    (report,), skipped = api.fit([str(tiny_gguf)], fit.FitSettings(), verify=True, verify_contexts=(1024, 2048))
    measured, refused = report.verify
    assert measured.n_ctx == 1024 and measured.measured_bytes > 0 and measured.ratio > 0 and report.measured
    assert refused.measured_bytes is None and "trained context" in refused.why_not  # the tiny model's is 1024
    assert skipped == []
