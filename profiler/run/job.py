"""One model's sweep as a job: what the measuring child (or this process) needs to measure it.

A job is built once by the orchestrator and serialised only here, as JSON, for the child
(run/isolate.py sends it, run/worker.py reads it); the model header is re-read where it runs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from profiler.measure.plan import Sweep, TestConfig
from profiler.models.catalog import ModelSpec
from profiler.platform.device import Device
from profiler.run.options import RunOptions


@dataclass
class Job:
    spec: ModelSpec
    path: Path
    tests: list[TestConfig]
    sweep: Sweep
    device: Device
    options: RunOptions  # only its measurement fields travel (RunOptions.to_dict)
    idle: dict | None = None  # the run's idle baseline (IdleBaseline.to_dict), for the child's own session
    first: bool = True  # no test of the run has happened yet: no --delay before this job's first test

    def to_dict(self) -> dict:
        return {
            "spec": self.spec.to_dict(),
            "path": str(self.path),
            "tests": [asdict(t) for t in self.tests],
            "sweep": self.sweep.to_dict(),
            "device": self.device.to_dict(),
            "options": self.options.to_dict(),
            "idle": self.idle,
            "first": self.first,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Job:
        """The job as the child runs it: nothing saved, no bandwidth probe (the parent did both)."""
        return cls(
            spec=ModelSpec.from_dict(data["spec"]),
            path=Path(data["path"]),
            tests=[TestConfig(**t) for t in data["tests"]],
            sweep=Sweep.from_dict(data["sweep"]),
            device=Device.from_dict(data["device"]),
            options=RunOptions.from_dict(data["options"], save=False, bandwidth_probe=False),
            idle=data.get("idle"),
            first=data["first"],
        )
