"""What a caller sets for one ``profiler run`` (RunOptions), the progress hooks it gets (Callbacks),
and the interruption it may see (RunInterrupted)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from profiler import paths
from profiler.measure.plan import TestConfig
from profiler.measure.session import EnergyOptions
from profiler.results.schema import TestResult

# The options that shape a measurement: they travel with a job to the measuring child and to a
# fleet device (everything else, such as where reports go, belongs to the machine that saves them).
MEASUREMENT_FIELDS = ("backend", "onnx_options", "warmup", "bandwidth_probe", "verbose", "force", "timeout_s",
                      "command", "energy")


@dataclass
class Callbacks:
    """Hooks the CLI uses for progress; all optional."""

    message: Callable[[str], None] = lambda text: None
    tests_planned: Callable[[int], None] = lambda total_reps: None
    test_started: Callable[[str, TestConfig], None] = lambda model, test: None
    repetition_done: Callable[[], None] = lambda: None
    row_done: Callable[[TestResult], None] = lambda row: None


@dataclass
class RunOptions:
    reports_dir: Path = field(default_factory=paths.reports_dir)
    catalog_path: Path | None = None
    backend: str = "auto"  # auto: llama.cpp for GGUF, ONNX Runtime (genai or plain) for ONNX
    # ONNX Runtime session options: execution_provider ("cpu", ...), graph_optimization ("all", ...)
    onnx_options: dict = field(default_factory=dict)
    warmup: bool = True
    bandwidth_probe: bool = True
    save: bool = True
    verbose: bool = False
    force: bool = False  # run models the memory pre-flight says will not fit
    command: str = ""
    # --idle, --watts, --sustained, --delay, --cooldown-to (docs/energy.md)
    energy: EnergyOptions = field(default_factory=EnergyOptions)
    energy_session: object | None = None  # an EnergySession to use instead of probing (tests)
    isolate: bool = True  # each model's sweep in a child process (crash isolation)
    timeout_s: float | None = None  # per test, with isolate: a child silent this long is killed
    db: Path | None = None  # the results store; default PROFILER_DB or <reports_dir>/profiler.db
    # warnings the caller found before the run, stored with the run's own (run --all-local: the skipped models)
    warnings: list[str] = field(default_factory=list)

    @property
    def db_path(self) -> Path:
        if not self.save:
            return Path(":memory:")  # nothing on disk, but the same code path
        if self.db is not None:
            return self.db
        return paths.db_path(self.reports_dir)

    def to_dict(self) -> dict:
        """The options that shape a measurement (MEASUREMENT_FIELDS), as JSON."""
        data = {name: getattr(self, name) for name in MEASUREMENT_FIELDS}
        return {**data, "onnx_options": dict(self.onnx_options), "energy": asdict(self.energy)}

    @classmethod
    def from_dict(cls, data: dict, **local) -> RunOptions:
        """``to_dict``'s options, plus the ``local`` ones of the machine that runs them."""
        return cls(**{**data, "energy": EnergyOptions(**data["energy"]), **local})


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run; the finished tests are in the store under ``run_id``."""

    resume_command = "profiler run --resume"  # what continues it (the fleet's differs)

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self.run_id = run_id
