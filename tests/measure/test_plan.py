"""Sweep expansion (llama-bench semantics)."""

from __future__ import annotations

import pytest

from profiler.errors import UserError
from profiler.measure.plan import Sweep, TestConfig, context_groups, expand


def test_default_sweep_is_pp512_and_tg128_on_physical_cores():
    tests = expand(Sweep(), default_threads=4)
    assert [t.name for t in tests] == ["pp512", "tg128"]
    assert {t.n_threads for t in tests} == {4}


def test_grid_crosses_every_list_and_names_tests_like_llama_bench():
    sweep = Sweep(n_prompt=[64, 0], n_gen=[16], prompt_gen=[(32, 8)], n_depth=[0, 128], n_threads=[1, 2])
    tests = expand(sweep, default_threads=8)
    assert len(tests) == 3 * 2 * 2
    names = {t.name for t in tests}
    assert names == {"pp64", "tg16", "pp32+tg8", "pp64 @ d128", "tg16 @ d128", "pp32+tg8 @ d128"}


def test_context_groups_share_one_context_sized_for_the_largest_test():
    sweep = Sweep(n_prompt=[64, 256], n_gen=[32], n_depth=[0, 100], n_threads=[1, 2], type_k=["f16", "q8_0"])
    groups = context_groups(expand(sweep, 2))
    assert len(groups) == 2  # one per cache type: threads and shapes reuse the context
    for params, members in groups:
        assert params.n_ctx == 100 + 256  # depth + the longest test (pp256)
        assert len({(t.type_k) for t in members}) == 1


def test_context_longer_than_training_is_refused():
    with pytest.raises(UserError, match="trained for 128"):
        context_groups(expand(Sweep(n_prompt=[512], n_gen=[0]), 1), n_ctx_train=128)


@pytest.mark.parametrize(
    "sweep, message",
    [
        (Sweep(n_threads=[0]), "-t/--threads value 0 is invalid"),
        (Sweep(n_depth=[-1]), "-d/--n-depth value -1 is invalid"),
        (Sweep(type_k=["q9"]), "--cache-type-k 'q9' is unknown"),
        (Sweep(flash_attn=["maybe"]), "--flash-attn 'maybe' is unknown"),
        (Sweep(repetitions=0), "must be >= 1"),
        (Sweep(n_prompt=[0], n_gen=[0]), "nothing to run"),
    ],
)
def test_bad_sweep_values(sweep, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        expand(sweep, 2)


def test_n_ctx_needed_is_the_test_itself_as_llama_bench():
    # the first token is chosen from the prompt's logits: no extra decode needs a cell
    assert TestConfig(512, 0, 0, 1, 2048, 512, "f16", "f16", "auto").n_ctx_needed == 512
    assert TestConfig(512, 128, 64, 1, 2048, 512, "f16", "f16", "auto").n_ctx_needed == 704
