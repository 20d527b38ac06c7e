"""What every suite is made of: its shapes, the per-repetition samples a score reads, and the
figures a score gives."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from profiler.stats import RatioInterval


@dataclass(frozen=True)
class Shape:
    n_prompt: int
    n_gen: int  # timed decodes (our tgN): the first generated token comes from the prompt's logits
    label: str  # what the original calls it ("64:1 title generation", "Content Generation")

    @property
    def test(self) -> str:
        return f"pp{self.n_prompt}+tg{self.n_gen}"


@dataclass(frozen=True)
class ShapeSamples:
    """One shape's repetitions as the runner timed them (profiler/measure/runner.py)."""

    n_prompt: int
    n_gen: int
    ttft_ms: list[float]  # per repetition: prompt processing + choosing the first token
    itl_ms: list[list[float]]  # per repetition, per decode: the decode + choosing the next token

    @property
    def repetitions(self) -> int:
        return len(self.ttft_ms)


@dataclass(frozen=True)
class Figure:
    """One printed figure: the point estimate, its 95% interval (None: unavailable, with why)."""

    name: str
    unit: str
    value: float
    interval: RatioInterval | None
    unavailable: str | None = None  # why there is no interval

    @property
    def low(self) -> float | None:
        return self.interval.low if self.interval else None

    @property
    def high(self) -> float | None:
        return self.interval.high if self.interval else None


@dataclass
class SuiteScore:
    suite: str
    headline: list[Figure]  # the suite's score(s) and their parts
    per_shape: list[dict]  # one dict per shape: its label, test and per-shape figures
    repetitions: int  # the fewest repetitions any shape had
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Suite:
    name: str  # the --suite value
    title: str
    shapes: tuple[Shape, ...]
    source: str  # where the shapes and the formula come from
    score: Callable[[list[ShapeSamples]], SuiteScore]
