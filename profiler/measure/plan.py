"""Sweep expansion: llama-bench's grid of tests, grouped by what needs a reload.

Like llama-bench, ``-p`` values give prompt-processing tests (ppN), ``-n`` values give
generation tests (tgN) and ``-pg`` pairs give combined tests (ppN+tgM); every test is
crossed with the depth, thread, placement (``-C``/``--cores``), batch, cache-type and
flash-attention lists. Without ``-t`` a placed test runs one thread per CPU of its placement;
on a big/little device with neither ``-t`` nor a placement, the tests run on the big cluster
(``default_placement``).
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field

from profiler.backends import strict_cpu_refusal
from profiler.backends.base import ContextParams, LoadParams
from profiler.errors import UserError
from profiler.platform import placement
from profiler.platform.cores import CoreClusters

CACHE_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1")
FLASH_ATTN_VALUES = ("auto", "on", "off")


@dataclass(frozen=True)
class TestConfig:
    __test__ = False  # not a pytest test class, despite the name

    n_prompt: int
    n_gen: int
    n_depth: int
    n_threads: int
    n_batch: int
    n_ubatch: int
    type_k: str
    type_v: str
    flash_attn: str
    cpu_mask: str = placement.NO_MASK  # llama-bench's -C: the CPUs the test runs on; 0x0: no placement
    cpu_strict: int = 0  # llama-bench's --cpu-strict (1 is refused: backends.strict_cpu_refusal)

    @property
    def name(self) -> str:
        parts = []
        if self.n_prompt:
            parts.append(f"pp{self.n_prompt}")
        if self.n_gen:
            parts.append(f"tg{self.n_gen}")
        label = "+".join(parts)
        return f"{label} @ d{self.n_depth}" if self.n_depth else label

    @property
    def n_ctx_needed(self) -> int:
        # as llama-bench: the first token is chosen from the prompt's logits, never decoded extra
        return self.n_depth + self.n_prompt + self.n_gen

    def context_key(self) -> tuple:
        return (self.n_batch, self.n_ubatch, self.type_k, self.type_v, self.flash_attn)


@dataclass
class Sweep:
    """Everything ``profiler run`` varies, as lists (llama-bench's comma lists)."""

    n_prompt: list[int] = field(default_factory=lambda: [512])
    n_gen: list[int] = field(default_factory=lambda: [128])
    prompt_gen: list[tuple[int, int]] = field(default_factory=list)
    n_depth: list[int] = field(default_factory=lambda: [0])
    n_threads: list[int] = field(default_factory=list)  # empty: physical cores, or one per CPU of the placement
    cpu_mask: list[str] = field(default_factory=list)  # -C/--cpu-mask values, as given (hex masks)
    cores: list[str] = field(default_factory=list)  # --cores values, as given: big, little, all, N-M
    cpu_strict: list[int] = field(default_factory=lambda: [0])  # --cpu-strict values
    n_batch: list[int] = field(default_factory=lambda: [2048])
    n_ubatch: list[int] = field(default_factory=lambda: [512])
    type_k: list[str] = field(default_factory=lambda: ["f16"])
    type_v: list[str] = field(default_factory=lambda: ["f16"])
    flash_attn: list[str] = field(default_factory=lambda: ["auto"])
    repetitions: int | str = 5  # or "auto": until the 95% CI is within ci_target (measure/adaptive.py)
    ci_target: float = 0.01  # -r auto: CI half-width / mean to reach
    max_time_s: float = 60.0  # -r auto: time cap per test, warm-up included
    random_tokens: bool = False
    use_mmap: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Sweep:
        """From ``to_dict``'s output after a JSON round trip (which turns the prompt_gen pairs into lists)."""
        return cls(**{**data, "prompt_gen": [tuple(p) for p in data.get("prompt_gen", [])]})


def _check(sweep: Sweep) -> None:
    checks = [
        ("-t/--threads", sweep.n_threads, 1),
        ("-p/--n-prompt", sweep.n_prompt, 0),
        ("-n/--n-gen", sweep.n_gen, 0),
        ("-d/--n-depth", sweep.n_depth, 0),
        ("-b/--batch-size", sweep.n_batch, 1),
        ("-ub/--ubatch-size", sweep.n_ubatch, 1),
    ]
    for flag, values, minimum in checks:
        for v in values:
            if v < minimum:
                raise UserError(f"{flag} value {v} is invalid: it must be >= {minimum}")
    for flag, values in (("--cache-type-k", sweep.type_k), ("--cache-type-v", sweep.type_v)):
        for v in values:
            if v not in CACHE_TYPES:
                raise UserError(f"{flag} '{v}' is unknown (use one of {', '.join(CACHE_TYPES)})")
    for v in sweep.flash_attn:
        if v not in FLASH_ATTN_VALUES:
            raise UserError(f"--flash-attn '{v}' is unknown (use on, off or auto)")
    for v in sweep.cpu_strict:
        if v not in (0, 1):
            raise UserError(f"--cpu-strict {v} is invalid: give 0 or 1 (a comma list sweeps both)")
        if v == 1:
            raise UserError(f"--cpu-strict 1 is not available: {strict_cpu_refusal()}")
    _check_repetitions(sweep)


def _check_repetitions(sweep: Sweep) -> None:
    if sweep.repetitions != "auto" and (not isinstance(sweep.repetitions, int) or sweep.repetitions < 1):
        raise UserError(f"-r/--repetitions {sweep.repetitions} is invalid: it must be >= 1, or auto")
    if not 0 < sweep.ci_target < 1:
        raise UserError(f"--ci-target {sweep.ci_target:g} is invalid: give a fraction of the mean "
                        "between 0 and 1, e.g. 0.01 or 1%")
    if not sweep.max_time_s > 0:
        raise UserError(f"--max-time {sweep.max_time_s:g} is invalid: give the seconds per test, > 0")


def default_placement(sweep: Sweep, clusters: CoreClusters | None) -> list[int] | None:
    """The big cluster's CPUs when the device is big/little and the sweep names neither threads nor
    a placement (the little cores would slow every thread's barrier); else None."""
    if sweep.n_threads or sweep.cpu_mask or sweep.cores or clusters is None or not clusters.mixed:
        return None
    return clusters.big().cpu_ids


def placements(sweep: Sweep, clusters: CoreClusters | None, logical_cores: int) -> list[list[int]]:
    """Each placement the sweep runs, as CPU lists ([] = no placement), -C values first, no repeats."""
    chosen = []
    for text in sweep.cpu_mask:
        cpus = placement.parse_cpu_mask(text)
        placement.check_cpus(cpus, clusters, logical_cores, f"-C/--cpu-mask {text}")
        chosen.append(cpus)
    chosen += [placement.resolve_cores(spec, clusters, logical_cores) for spec in sweep.cores]
    default = default_placement(sweep, clusters)
    if default is not None:
        chosen.append(default)
    unique = []
    for cpus in chosen or [[]]:
        if cpus not in unique:
            unique.append(cpus)
    return unique


def expand(sweep: Sweep, default_threads: int, clusters: CoreClusters | None = None,
           logical_cores: int | None = None) -> list[TestConfig]:
    """The ordered list of tests, ordered so that contexts are reused between neighbours.
    ``clusters`` and ``logical_cores`` describe the device: what --cores names, what a mask may name."""
    _check(sweep)
    shapes = [(p, 0) for p in sweep.n_prompt if p > 0]
    shapes += [(0, n) for n in sweep.n_gen if n > 0]
    shapes += [(p, n) for p, n in sweep.prompt_gen if p > 0 or n > 0]
    if not shapes:
        raise UserError("nothing to run: every -p, -n and -pg value is 0")
    placed = []  # (mask, threads) pairs: without -t, one thread per CPU of the placement
    for cpus in placements(sweep, clusters, logical_cores or default_threads):
        mask = placement.format_cpu_mask(cpus)
        placed += [(mask, nt) for nt in sweep.n_threads or [len(cpus) or default_threads]]
    tests = []
    for fa, tk, tv, nb, nub, (mask, nt), strict, (p, n), d in itertools.product(
        sweep.flash_attn, sweep.type_k, sweep.type_v, sweep.n_batch, sweep.n_ubatch, placed, sweep.cpu_strict,
        shapes, sweep.n_depth
    ):
        tests.append(TestConfig(p, n, d, nt, nb, nub, tk, tv, fa, mask, strict))
    return tests


def load_params(sweep: Sweep) -> LoadParams:
    return LoadParams(use_mmap=sweep.use_mmap)


def context_groups(tests: list[TestConfig], n_ctx_train: int | None = None) -> list[tuple[ContextParams, list[TestConfig]]]:
    """Group tests that can share one context; its n_ctx is the largest any of them needs."""
    groups: dict[tuple, list[TestConfig]] = {}
    for t in tests:
        groups.setdefault(t.context_key(), []).append(t)
    result = []
    for key, members in groups.items():
        n_ctx = max(t.n_ctx_needed for t in members)
        if n_ctx_train and n_ctx > n_ctx_train:
            worst = max(members, key=lambda t: t.n_ctx_needed)
            raise UserError(
                f"test {worst.name} needs {n_ctx} tokens of context but the model was trained for "
                f"{n_ctx_train}; lower -p/-n/-d"
            )
        nb, nub, tk, tv, fa = key
        result.append((ContextParams(n_ctx=n_ctx, n_batch=nb, n_ubatch=nub, type_k=tk, type_v=tv, flash_attn=fa), members))
    return result
