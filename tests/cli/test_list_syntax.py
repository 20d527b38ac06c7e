"""llama-bench's list syntax for -p/-n/-t/... (1,2,4; 1-4; 128-512+128; 128-1024*2)."""

from __future__ import annotations

import pytest

from profiler.cli.app import int_list
from profiler.errors import UserError


@pytest.mark.parametrize(
    "text, expected",
    [("512", [512]), ("1,2,4", [1, 2, 4]), ("1-4", [1, 2, 3, 4]), ("128-512+128", [128, 256, 384, 512]),
     ("128-1024*2", [128, 256, 512, 1024]), ("0", [0])],
)
def test_llama_bench_list_syntax(text, expected):
    assert int_list(text, "-p") == expected


def test_list_syntax_errors():
    with pytest.raises(UserError, match="not an integer"):
        int_list("1,x", "-t")
    with pytest.raises(UserError, match="does not advance"):
        int_list("1-4*1", "-t")
