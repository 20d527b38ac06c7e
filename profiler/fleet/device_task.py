"""What runs on a device: get the models there, then ``profiler.api.profile`` as ``profiler run`` does.

The measurement is the same code path as on one machine: a child process per model (so the Ray
worker's own memory and CPU time are never in the measured process), the pre-flight, energy with
its idle baseline (taken with the Ray worker present, so its idle cost is subtracted), thermal
tracking and warnings. This module only forwards what happens to the coordinator's hub and tags
each row with the device.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from profiler.errors import UserError
from profiler.fleet import transfer
from profiler.measure.plan import Sweep, TestConfig
from profiler.results.schema import TestResult
from profiler.results.store import row_key

FINGERPRINT_KEYS = ("cpu_model", "board", "arch", "physical_cores", "logical_cores", "ram_total_bytes", "os", "kernel")


def sweep_from_dict(data: dict) -> Sweep:
    data = dict(data)
    data["prompt_gen"] = [tuple(p) for p in data.get("prompt_gen", [])]
    return Sweep(**data)


class _Forwarder:
    """The api's callbacks, forwarded to the hub; waits for each row to be acknowledged."""

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
        row.device_name, row.device_node_id = self.device, self.node_id
        row.device_fingerprint = {**self.fingerprint, "energy_source": row.energy_source,
                                  "energy_measured": row.energy_measured, "energy_method": row.energy_method}
        row.test_start_unix_s, row.test_end_unix_s = self.started, time.time()
        self.send({"type": "row", "key": self.key, "row": row.to_dict()})
        self.key = None

    def callbacks(self):
        from profiler.api import Callbacks

        return Callbacks(message=self.message, test_started=self.test_started, row_done=self.row_done)


def run_on_device(device: str, models: list[dict], sweep: dict, options: dict, skip: list[str], hub) -> dict:
    """The Ray task body. Returns the device's failures and warnings; a refusal (pre-flight, bad
    model) is returned as ``refused`` so the coordinator records it for this device only."""
    import ray

    from profiler import api

    node_id = ray.get_runtime_context().get_node_id()
    restore_user_environment()
    fingerprint = {k: v for k, v in api.describe_device(bandwidth_probe=False).to_dict().items() if k in FINGERPRINT_KEYS}
    forward = _Forwarder(ray, hub, device, node_id, fingerprint)
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
            run_options = api.RunOptions(save=False, catalog_path=catalog_path, isolate=True,
                                         reports_dir=Path(tmp), **options_from_dict(options))
            try:
                run = api.profile(names, sweep_from_dict(sweep), run_options, forward.callbacks(), skip=set(skip))
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


def options_to_dict(options) -> dict:
    """The ``profiler run`` options that travel to the device (everything that shapes a measurement)."""
    return {"backend": options.backend, "onnx_options": dict(options.onnx_options), "warmup": options.warmup,
            "bandwidth_probe": options.bandwidth_probe, "verbose": options.verbose, "force": options.force,
            "timeout_s": options.timeout_s, "command": options.command, "energy": asdict(options.energy)}


def options_from_dict(data: dict) -> dict:
    from profiler.measure.session import EnergyOptions

    return {**data, "energy": EnergyOptions(**data["energy"])}
