"""Cross-runtime parity: the KL-divergence maths and the parity run on tiny ONNX models."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from profiler.errors import UserError
from profiler.quality.parity import kl_divergence, kld_stats


def test_kl_divergence_matches_the_definition():
    p_logits = np.log(np.array([[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]], dtype=np.float32))
    q_logits = np.log(np.array([[0.25, 0.5, 0.25], [0.1, 0.1, 0.8]], dtype=np.float32)) + 3.0  # shift-invariant
    kld = kl_divergence(p_logits, q_logits)
    expected = 0.5 * math.log(0.5 / 0.25) + 0.25 * math.log(0.25 / 0.5)
    assert kld[0] == pytest.approx(expected, rel=1e-5)
    assert kld[1] == pytest.approx(0.0, abs=1e-7)


def test_kl_divergence_is_non_negative_and_blocked_rows_agree():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((150, 40)).astype(np.float32)  # more rows than one block
    b = a + rng.standard_normal((150, 40)).astype(np.float32) * 0.1
    kld = kl_divergence(a, b)
    assert (kld >= 0).all() and kld.mean() > 0
    assert kld[130] == pytest.approx(kl_divergence(a[130:131], b[130:131])[0])
    with pytest.raises(UserError, match="logit shapes differ"):
        kl_divergence(a, b[:, :39])


def test_stats_count_same_top_and_uncertainty():
    a = np.array([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 3.0], [3.0, 0.0, 0.0]], dtype=np.float32)
    b = a.copy()
    b[1] = [3.5, 0.0, 0.0]  # a different argmax in one of four rows
    stats = kld_stats(a, b)
    assert stats.n_tokens == 4 and stats.same_top_fraction == 0.75
    assert stats.kld_max > stats.kld_median and stats.kld_mean_stderr > 0


@pytest.fixture(scope="module")
def tiny_pair(tmp_path_factory):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from support.tinyonnx import TinyConfig, write_genai, write_plain

    root = tmp_path_factory.mktemp("parity")
    other = TinyConfig(seed=7)  # different weights, same shapes and vocabulary
    return write_plain(root / "plain"), write_genai(root / "genai"), write_plain(root / "other", other)


def test_parity_of_two_layouts_of_the_same_weights_is_zero(tiny_pair, isolated_env):
    from profiler.quality.parity import parity

    plain, genai, _ = tiny_pair
    result = parity(plain, reference=genai, n_tokens=40, n_greedy=6, threads=1, text="the quick brown fox " * 8)
    assert result.stats.n_tokens == 40
    assert result.stats.kld_mean < 1e-5 and result.stats.same_top_fraction == 1.0
    assert result.greedy_agree == 6 and result.greedy_reference == result.greedy_candidate
    assert result.candidate["backend"] == "onnxruntime" and result.reference["backend"] == "onnxruntime-genai"


def test_parity_of_different_weights_is_large(tiny_pair, isolated_env):
    from profiler.quality.parity import parity

    _, genai, other = tiny_pair
    result = parity(other, reference=genai, n_tokens=40, n_greedy=4, threads=1, text="the quick brown fox " * 8)
    assert result.stats.kld_mean > 0.1 and result.stats.same_top_fraction < 0.9


def test_parity_needs_a_reference_unless_converted(tiny_pair, isolated_env):
    from profiler.quality.parity import parity, source_gguf

    plain, genai, _ = tiny_pair
    with pytest.raises(UserError, match="give --reference"):
        parity(plain)
    (genai / "profiler-convert.json").write_text(json.dumps({"source": str(plain / "onnx" / "model.onnx")}))
    try:
        assert source_gguf(genai / "model.onnx") == plain / "onnx" / "model.onnx"
    finally:
        (genai / "profiler-convert.json").unlink()


def test_parity_cli_prints_kld_and_greedy(tiny_pair, isolated_env):
    from click.testing import CliRunner

    from profiler.cli.app import cli

    plain, genai, _ = tiny_pair
    text = isolated_env / "text.txt"
    text.write_text("the quick brown fox " * 8)
    out = CliRunner().invoke(cli, ["parity", str(plain), "--reference", str(genai), "-f", str(text), "--tokens", "30",
                                   "--greedy", "4", "-t", "1", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output[out.output.index("{"):])
    assert data["stats"]["n_tokens"] == 30 and data["greedy_agree"] == 4
