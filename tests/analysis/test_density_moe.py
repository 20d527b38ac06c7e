"""Active parameters of a mixture-of-experts model: header counting, rows from a real llama.cpp run,
pre-flight memory, and per-parameter scores."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from profiler.analysis import scoring
from profiler.analysis.accuracy import AccuracyScore
from profiler.models.ggufinfo import read_info
from support.tinymoe import expected_counts, write_tiny_moe


@pytest.fixture(scope="module")
def tiny_moe(tmp_path_factory):
    return write_tiny_moe(tmp_path_factory.mktemp("moe") / "tiny-moe.gguf")


def test_header_counts_active_parameters(tiny_moe):
    info = read_info(tiny_moe)
    counts = expected_counts()
    assert (info.n_expert, info.n_expert_used) == (8, 2) and info.is_moe
    assert info.n_params == counts["total"]
    assert info.expert_params == counts["expert"]
    assert info.n_params_active == counts["active"]
    # A decode step streams the non-expert weights (not the indexed embedding table) and 2 of 8 experts.
    embd = 4 * 64 * info.n_vocab
    assert info.weight_bytes_per_token == info.tensor_bytes - embd - 4 * counts["expert"] * 6 // 8


def test_dense_model_active_equals_total(tiny_gguf):
    info = read_info(tiny_gguf)
    assert not info.is_moe and info.n_params_active == info.n_params


def test_preflight_still_counts_every_expert(tiny_moe):
    from profiler.run.preflight import estimate_memory

    info = read_info(tiny_moe)
    est = estimate_memory(info, n_ctx=128, n_ubatch=128)
    assert est.weights_bytes >= info.tensor_bytes  # all experts are loaded, whichever a token uses


def test_moe_runs_in_llama_cpp_and_rows_carry_active_counts(tiny_moe, tmp_path):
    import os

    env = dict(os.environ, PROFILER_REPORTS=str(tmp_path / "reports"))
    done = subprocess.run(
        [sys.executable, "-m", "profiler", "run", str(tiny_moe), "-p", "16", "-n", "4", "-t", "1", "-r", "2",
         "-o", "json", "--no-bandwidth", "--idle", "0"],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    counts = expected_counts()
    info = read_info(tiny_moe)
    assert {r["test"] for r in rows} == {"pp16", "tg4"}
    for row in rows:
        assert row["model_n_params"] == counts["total"]  # llama.cpp's own count: every expert
        assert row["model_n_params_active"] == counts["active"]
        assert row["weight_bytes_per_token"] == info.weight_bytes_per_token
    tg = next(r for r in rows if r["test"] == "tg4")
    assert tg["decode_ts"] > 0 and len(tg["itl_ms_samples"]) == 2 * 4
    # the bytes a decode step reads start from the active weights, not the whole file
    assert tg["bytes_per_token"] < info.tensor_bytes


def test_scores_divide_by_active_parameters():
    rows = [{"model_name": "moe", "model_filename": "/m/moe.gguf", "n_threads": 2, "n_batch": 2048, "n_ubatch": 512,
             "type_k": "f16", "type_v": "f16", "flash_attn": -1, "quant_type": "Q4_0", "model_n_params": 1_000_000_000,
             "model_n_params_active": 250_000_000, "file_size_bytes": 1, "n_gen": 8, "decode_ts": 10.0}]
    config = scoring.configurations(rows)[0]
    assert (config.n_params, config.n_params_active) == (1_000_000_000, 250_000_000)
    acc = AccuracyScore(metric="hellaswag", value_pct=50.0, provenance="measured", n_shot=0, source="t")
    s = scoring.score(config, "hellaswag", acc, 0.3)
    assert s.knowledge_density_pct_per_b_params == pytest.approx(200.0)  # 50% / 0.25 B active, not / 1 B
    assert s.knowledge_density_above_chance_pct_per_b_params == pytest.approx(100.0)


def test_scoreboard_shows_both_counts():
    from profiler.report.quality_text import params_text

    assert params_text(1_000_000_000, 250_000_000) == "1B (active 250M)"
    assert params_text(134_515_008, 134_515_008) == "134.5M"


def test_onnx_graph_with_a_moe_node_counts_active_experts(tmp_path):
    """An ONNX decoder whose graph has ONNX Runtime's fused MoE op (8 experts, k=2): the experts a
    token skips leave the active count and the streamed bytes; a dense graph is unchanged."""
    onnx = pytest.importorskip("onnx")
    import numpy as np
    from onnx import helper, numpy_helper

    from profiler.models.onnxinfo import read_info as read_onnx
    from support.tinyonnx import write_plain

    dense = read_onnx(write_plain(tmp_path / "dense"))
    assert dense.n_params_active == dense.n_params and dense.n_expert == 0

    folder = write_plain(tmp_path / "moe")
    path = folder / "onnx" / "model.onnx"
    model = onnx.load(str(path))
    hidden, ff, n_expert = 64, 32, 8
    experts = {"fc1": np.zeros((n_expert, ff, hidden), np.float32), "fc2": np.zeros((n_expert, hidden, ff), np.float32),
               "fc3": np.zeros((n_expert, ff, hidden), np.float32)}
    model.graph.initializer.extend(numpy_helper.from_array(v, name=k) for k, v in experts.items())
    model.graph.node.append(helper.make_node("MoE", ["x_moe", "router", "fc1", "", "fc2", "", "fc3"], ["y_moe"],
                                             domain="com.microsoft", k=2))
    onnx.save(model, str(path))
    info = read_onnx(folder)
    expert_params = 3 * n_expert * ff * hidden
    assert (info.n_expert, info.n_expert_used) == (8, 2)
    assert info.n_params == dense.n_params + expert_params
    assert info.n_params_active == dense.n_params + expert_params * 2 // 8
    assert info.weight_bytes_per_token == dense.weight_bytes_per_token + 4 * expert_params * 2 // 8


def test_markdown_report_shows_active_beside_total():
    from profiler.report.writers import params_cell
    from support.tests_support import make_row

    assert params_cell(make_row(model_n_params=1_000_000_000, model_n_params_active=250_000_000).to_dict()) == \
        "1000.0 M (250.0 M active)"
    assert params_cell(make_row(model_n_params=500, model_n_params_active=500).to_dict()) == "0.0 M"
