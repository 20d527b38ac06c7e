"""The one serialised job: what the measuring child and a fleet device rebuild is what was sent."""

from __future__ import annotations

import json
from pathlib import Path

from profiler.measure.plan import Sweep, expand
from profiler.measure.session import EnergyOptions
from profiler.models.catalog import ModelSpec
from profiler.platform.device import fingerprint
from profiler.run.job import Job
from profiler.run.options import RunOptions


def _json_round_trip(data: dict) -> dict:
    return json.loads(json.dumps(data))


def test_a_job_survives_json_as_the_child_rebuilds_it(tmp_path):
    spec = ModelSpec(name="tiny", format="gguf", sources=["tiny.gguf"], base_dir=tmp_path, quant="Q4_0")
    sweep = Sweep(n_prompt=[16], n_gen=[8], prompt_gen=[(16, 8)], n_threads=[1], repetitions="auto",
                  cpu_mask=["0x1"], cores=["all"])
    device = fingerprint()
    options = RunOptions(backend="llama.cpp", onnx_options={"execution_provider": "cpu"}, warmup=False,
                         timeout_s=30.0, energy=EnergyOptions(idle_s=0, delay_s=2.0), reports_dir=tmp_path)
    job = Job(spec, tmp_path / "tiny.gguf", expand(sweep, 1, device.core_clusters, device.logical_cores), sweep,
              device, options,
              idle={"power_w": 1.5, "duration_s": 5.0, "reason": None}, first=False)
    data = job.to_dict()
    data["device"]["energy"] = {"sources": {}}  # a run's device record carries more than the fingerprint
    rebuilt = Job.from_dict(_json_round_trip(data))
    assert rebuilt.spec == spec and isinstance(rebuilt.spec.base_dir, Path)
    assert rebuilt.sweep == sweep and rebuilt.sweep.prompt_gen == [(16, 8)]
    assert rebuilt.tests == job.tests and rebuilt.device == device
    assert {t.cpu_mask for t in rebuilt.tests} == {"0x1", hex(2 ** device.logical_cores - 1)}  # the placements travel
    assert rebuilt.path == job.path and rebuilt.idle == job.idle and rebuilt.first is False
    assert rebuilt.options.to_dict() == {**options.to_dict(), "bandwidth_probe": False}
    assert rebuilt.options.energy == options.energy and rebuilt.options.save is False


def test_run_options_carry_only_what_shapes_a_measurement(tmp_path):
    options = RunOptions(reports_dir=tmp_path, catalog_path=tmp_path / "models.toml", force=True, verbose=True,
                         warnings=["skipped x"], energy=EnergyOptions(sustained_s=30))
    data = _json_round_trip(options.to_dict())
    assert "reports_dir" not in data and "catalog_path" not in data and "warnings" not in data
    here = RunOptions.from_dict(data, reports_dir=tmp_path / "device", save=False)
    assert (here.force, here.verbose, here.energy) == (True, True, EnergyOptions(sustained_s=30))
    assert here.reports_dir == tmp_path / "device" and here.save is False and here.warnings == []
