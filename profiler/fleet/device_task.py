"""What runs on a device: get the models there, then the run pipeline (run/orchestrate.py) as ``profiler run`` does.

The measurement is the same code path as on one machine: a child process per model (so the Ray
worker's own memory and CPU time are never in the measured process), the pre-flight, energy with
its idle baseline (taken with the Ray worker present, so its idle cost is subtracted), thermal
tracking and warnings. This module only forwards what happens to the coordinator's hub and tags
each row with the device.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from pathlib import Path

from profiler.errors import UserError
from profiler.fleet import transfer
from profiler.measure.plan import Sweep, TestConfig
from profiler.platform.device import fingerprint
from profiler.results.schema import TestResult
from profiler.results.store import row_key
from profiler.run import orchestrate
from profiler.run.options import Callbacks, RunOptions

# battery: its capacity, so answers per charge can be scored from the stored rows (issue #22.2)
FINGERPRINT_KEYS = ("cpu_model", "board", "arch", "physical_cores", "logical_cores", "ram_total_bytes", "os", "kernel",
                    "battery")


class _Forwarder:
    """The run's callbacks, forwarded to the hub; waits for each row to be acknowledged."""

    def __init__(self, ray, hub, device: str, node_id: str, fingerprint: dict) -> None:
        self.ray, self.hub, self.device, self.node_id, self.fingerprint = ray, hub, device, node_id, fingerprint
        self.key: str | None = None
        self.started: float | None = None

    def send(self, event: dict) -> None:
        self.ray.get(self.hub.put.remote({**event, "device": self.device, "node_id": self.node_id}))

    def message(self, text: str) -> None:
        self.send({"type": "message", "text": text})

    def test_started(self, model: str, test: TestConfig) -> None:
        self.key, self.started = row_key(model, test), time.time()
        self.send({"type": "test_started", "model": model, "test": test.name, "key": self.key, "at": self.started})

    def row_done(self, row: TestResult) -> None:
        """Send the row home tagged with this device and when the test ran (a copy: the run's own
        row stays as measured)."""
        fingerprint = {**self.fingerprint, "energy_source": row.energy_source,
                       "energy_measured": row.energy_measured, "energy_method": row.energy_method}
        tagged = dataclasses.replace(row, device_name=self.device, device_node_id=self.node_id,
                                     device_fingerprint=fingerprint, test_start_unix_s=self.started,
                                     test_end_unix_s=time.time())
        self.send({"type": "row", "key": self.key, "row": tagged.to_dict()})
        self.key = None

    def callbacks(self) -> Callbacks:
        return Callbacks(message=self.message, test_started=self.test_started, row_done=self.row_done)


def run_on_device(device: str, models: list[dict], sweep: dict, options: dict, skip: list[str], hub) -> dict:
    """The Ray task body. Returns the device's failures and warnings; a refusal (pre-flight, bad
    model) is returned as ``refused`` so the coordinator records it for this device only."""
    import ray

    node_id = ray.get_runtime_context().get_node_id()
    restore_user_environment()
    machine = {k: v for k, v in fingerprint().to_dict().items() if k in FINGERPRINT_KEYS}
    forward = _Forwarder(ray, hub, device, node_id, machine)
    fetch = lambda sha, offset, size: ray.get(hub.chunk.remote(sha, offset, size))  # noqa: E731
    try:
        local = []
        for data in models:
            model = transfer.ModelFile(**data)
            path, how = transfer.ensure_local(model, device, fetch, forward.message)
            forward.send({"type": "model_ready", "model": model.name, "how": how})
            local.append((model, path))
        with tempfile.TemporaryDirectory(prefix="profiler-fleet-") as tmp:
            names, catalog_path = transfer.write_device_catalog(local, transfer.device_models_dir(device) / "catalogs")
            run_options = RunOptions.from_dict(options, save=False, catalog_path=catalog_path, isolate=True,
                                               reports_dir=Path(tmp))
            try:
                run = orchestrate.profile(names, Sweep.from_dict(sweep), run_options, forward.callbacks(), skip=set(skip))
            finally:
                catalog_path.unlink(missing_ok=True)
    except UserError as exc:
        return {"refused": str(exc), "node_id": node_id}
    return {"failures": run.failures, "warnings": run.warnings, "device": run.device, "node_id": node_id}


def restore_user_environment() -> None:
    """Undo what Ray changed in the worker's environment that the measured child would inherit."""
    from profiler.fleet.cluster import ORIGINAL_OMP_ENV

    if ORIGINAL_OMP_ENV not in os.environ:
        return  # a node not started by profiler fleet up/join: nothing recorded to put back
    original = os.environ[ORIGINAL_OMP_ENV]
    if original:
        os.environ["OMP_NUM_THREADS"] = original
    else:
        os.environ.pop("OMP_NUM_THREADS", None)
