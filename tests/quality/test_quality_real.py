"""Integration on the real SmolLM2-135M-Instruct Q4_1: eval on a few chunks/tasks, agreement with
llama-perplexity, and a short ladder.

Slow: they need the downloaded model (PROFILER_CACHE) and the shared datasets; the agreement test
builds llama-perplexity from the installed llama-cpp-python's source the first time (a few minutes,
cached per version, as benchmarks/ does).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from profiler.errors import UserError
from profiler.models import catalog
from profiler.quality import tasks
from profiler.quality.evaluate import EvalOptions, evaluate

pytestmark = pytest.mark.slow

DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"
WIKI = DATASETS / "wikitext-2-raw-test.txt"
HELLASWAG = DATASETS / "hellaswag_val_full.txt"
MODEL = "smollm2-135m-instruct-q4_1"


@pytest.fixture(scope="module")
def model_path() -> Path:
    if not WIKI.exists() or not HELLASWAG.exists():
        pytest.skip(f"shared datasets not found at {DATASETS}")
    try:
        return catalog.resolve(catalog.load_catalog().get(MODEL))
    except UserError as exc:
        pytest.skip(f"real model unavailable: {exc}")


@pytest.fixture(autouse=True)
def own_cache(model_path, tmp_path, monkeypatch) -> Path:
    """The downloaded model is shared (a link to the real cache's models folder), but the quality
    store, the sha256 index and everything else these runs write stay in tmp_path, so the user's
    own measurements never gain rows from the tests."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "models").symlink_to(model_path.parent, target_is_directory=True)
    monkeypatch.setenv("PROFILER_CACHE", str(cache))
    return cache


@pytest.fixture(scope="module")
def llama_perplexity() -> Path:
    """llama.cpp's own llama-perplexity, built from the same source as the installed
    llama-cpp-python (benchmarks/llamacpp_tools.py; cached after the first build)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    try:
        from llamacpp_tools import ToolBuildError, build_tool
    finally:
        sys.path.pop(0)
    try:
        return build_tool("llama-perplexity")
    except ToolBuildError as exc:
        pytest.skip(f"llama-perplexity could not be built, so the agreement is unchecked: {str(exc).splitlines()[0]}")


def test_eval_perplexity_and_hellaswag_on_the_real_model(model_path, tmp_path):
    options = EvalOptions(text=str(WIKI), n_chunks=3, hellaswag=str(HELLASWAG), n_tasks=24, threads=2,
                          reports_dir=tmp_path, save=False)
    result = evaluate(MODEL, options)
    p = result.perplexity
    assert p.n_chunks == 3 and p.n_tokens_scored == 3 * 255
    assert 5 < p.ppl < 60  # a 135M model on WikiText-2; a broken BOS or offset gives hundreds
    hs = result.tasks[0]
    assert hs.n_tasks == 24 and [x["task"] for x in hs.predictions] == tasks.hellaswag_order(10042, 24)
    assert hs.ci95_low_pct <= hs.accuracy_pct <= hs.ci95_high_pct


def test_perplexity_agrees_with_llama_perplexity(model_path, llama_perplexity, tmp_path):
    options = EvalOptions(text=str(WIKI), n_chunks=3, threads=2, reports_dir=tmp_path, save=False)
    ours = evaluate(MODEL, options).perplexity.ppl
    out = subprocess.run([str(llama_perplexity), "-m", str(model_path), "-f", str(WIKI), "--chunks", "3", "-t", "2"],
                         capture_output=True, text=True, check=True)
    theirs = float(re.search(r"Final estimate: PPL = ([0-9.]+)", out.stdout + out.stderr).group(1))
    assert ours == pytest.approx(theirs, rel=0.005)


def test_compare_quants_ladder_on_the_real_model(model_path, own_cache, tmp_path, monkeypatch):
    from profiler.ladder.compare_quants import CompareOptions, compare_quants

    monkeypatch.setenv("PROFILER_REPORTS", str(tmp_path / "reports"))
    options = CompareOptions(types=["q8_0", "q2_k"], text=str(WIKI), n_ctx=256, n_chunks=2, hellaswag=str(HELLASWAG),
                             n_tasks=8, n_prompt=16, n_gen=4, repetitions=1, threads=2, out_dir=tmp_path / "ladder",
                             reports_dir=tmp_path / "reports")
    result = compare_quants(MODEL, options)
    rows = {r.role + ":" + r.quant: r for r in result.rows}
    assert set(rows) == {"original:Q4_1", "reference:F16", "quant:Q8_0", "quant:Q2_K"}
    assert result.reference_is_reconstruction and "not the original weights" in result.reference_note
    assert rows["reference:F16"].kld_mean is None  # the reference itself: shown as "reference", not a number
    assert rows["original:Q4_1"].kld_mean < rows["quant:Q2_K"].kld_mean
    assert rows["quant:Q8_0"].kld_mean < rows["quant:Q2_K"].kld_mean
    assert rows["quant:Q2_K"].ppl > rows["quant:Q8_0"].ppl
    assert rows["quant:Q2_K"].size_bytes < rows["quant:Q8_0"].size_bytes
    # 8 tasks cannot tell the files apart; KLD to the reference can, and ranks the quality
    assert rows["quant:Q2_K"].quality_rank > rows["quant:Q8_0"].quality_rank
    for r in result.rows:
        assert r.decode_tps and r.decode_tps > 0 and r.hellaswag_pct is not None
        assert r.j_per_decode_token is not None or r.energy_note.startswith("energy unavailable")
    md = (tmp_path / "reports").glob("*/compare-quants.md")
    assert any("reconstruction" in f.read_text() for f in md)
    # the ladder's KLD rows went to this test's own store, not the user's
    assert "smollm2-135m-instruct-q2_k" in (own_cache / "quality" / "measurements.jsonl").read_text()
