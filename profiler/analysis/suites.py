"""Suite scores of a run (``profiler run --suite``, docs/suites.md): the rows of each model and
setting that together hold every shape of a suite, scored by the suite's own formula.

A suite is recognised by its shapes, not by how the run was started, so a run resumed, run on the
fleet or assembled by hand with the same ``-pg`` shapes is scored the same way. Rows that differ
in anything but the shape (model, device, threads, batch sizes, cache types, depth, backend) are
scored separately.
"""

from __future__ import annotations

from dataclasses import dataclass

from profiler.measure.suites import SUITES, ShapeSamples, Suite, SuiteScore
from profiler.results.schema import TestResult


@dataclass
class GroupScore:
    model_name: str
    setting: str  # what the group's rows share besides the model, e.g. "t4 b2048 ub512"
    device_name: str | None
    random_tokens: bool
    score: SuiteScore


def group_key(row: TestResult) -> tuple:
    """Everything a suite's rows must share besides their shape."""
    return (row.model_name, row.device_name, row.backend, row.n_threads, row.cpu_mask, row.cpu_strict, row.n_batch,
            row.n_ubatch, row.type_k, row.type_v, row.flash_attn, row.n_depth)


def _setting(row: TestResult) -> str:
    flash = {-1: "auto", 0: "off", 1: "on"}.get(row.flash_attn, str(row.flash_attn))
    text = f"t{row.n_threads} b{row.n_batch} ub{row.n_ubatch} {row.type_k}/{row.type_v} fa {flash}"
    text += f" d{row.n_depth}" if row.n_depth else ""
    return text + (f" on {row.cpu_cores or row.cpu_mask}" if row.cpu_mask not in (None, "0x0") else "")


def shape_samples(row: TestResult) -> ShapeSamples | None:
    """The row's repetitions, split per repetition; None when they cannot be (no TTFT, or inter-token
    latencies that do not come in n_gen per repetition, as in a --sustained row)."""
    reps = len(row.ttft_ms_samples)
    if not reps or row.n_gen < 1 or len(row.itl_ms_samples) != reps * row.n_gen:
        return None
    itl = [row.itl_ms_samples[i * row.n_gen:(i + 1) * row.n_gen] for i in range(reps)]
    return ShapeSamples(row.n_prompt, row.n_gen, list(row.ttft_ms_samples), itl)


def _score_group(suite: Suite, rows: list[TestResult]) -> SuiteScore | None:
    by_shape = {(r.n_prompt, r.n_gen): r for r in rows}
    samples = []
    for shape in suite.shapes:
        row = by_shape.get((shape.n_prompt, shape.n_gen))
        s = shape_samples(row) if row is not None else None
        if s is None:
            return None
        samples.append(s)
    return suite.score(samples)


def suite_scores(rows: list[TestResult], names: list[str] | None = None) -> list[GroupScore]:
    """Every suite (or those in ``names``) for every group of rows holding all its shapes."""
    groups: dict[tuple, list[TestResult]] = {}
    for row in rows:
        groups.setdefault(group_key(row), []).append(row)
    out = []
    for name in names or list(SUITES):
        suite = SUITES[name]
        for members in groups.values():
            score = _score_group(suite, members)
            if score is not None:
                first = members[0]
                out.append(GroupScore(first.model_name, _setting(first), first.device_name,
                                      all(r.random_tokens for r in members), score))
    return out
