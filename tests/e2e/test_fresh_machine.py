"""Bad input first, no foreign noise (#10 item 15): a run checks every model before it probes
the device, never imports ONNX Runtime for a GGUF model, and native stderr chatter stays out
of the user's one-line error unless -v asks for it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata

import pytest

from profiler.platform import native_noise

PROBE_SPY = """
import json, sys
from profiler import api, errors
from profiler.run.options import RunOptions
from profiler.measure.session import EnergyOptions
from profiler.measure.plan import Sweep
from profiler.platform import device
calls = []
for name in ("probe_bandwidth", "measure_bandwidth"):
    real = getattr(device, name, None)
    if real is not None:
        setattr(device, name, lambda *a, _real=real, _name=name, **k: calls.append(_name) or _real(*a, **k))
options = RunOptions(save=False, isolate=False, energy=EnergyOptions(idle_s=0))
outcome = "ok"
try:
    run = api.profile(sys.argv[1:], Sweep(n_prompt=[0], n_gen=[4], repetitions=1, n_threads=[1]), options)
    runtime = run.device["runtime"]
except errors.UserError as exc:
    outcome, runtime = "error: " + str(exc), None
print(json.dumps({"outcome": outcome, "probes": calls, "onnxruntime_imported": "onnxruntime" in sys.modules,
                  "runtime": runtime}))
"""


def spy(*models: str, cwd) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE_SPY, *models], capture_output=True, text=True, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_a_missing_model_is_refused_before_any_device_probe(tiny_gguf, tmp_path):
    out = spy(str(tiny_gguf), str(tmp_path / "missing.gguf"), cwd=tmp_path)
    assert out["outcome"].startswith("error: model file not found"), out
    assert out["probes"] == [], "no bandwidth probe before every model is checked"
    assert out["onnxruntime_imported"] is False


def test_a_gguf_run_never_imports_onnx_runtime(tiny_gguf, tmp_path):
    out = spy(str(tiny_gguf), cwd=tmp_path)
    assert out["outcome"] == "ok" and out["probes"] == ["probe_bandwidth"], "one probe, after the checks"
    assert out["onnxruntime_imported"] is False
    assert "llama_cpp_python" in out["runtime"]["llama.cpp"]
    try:
        version = metadata.version("onnxruntime")
    except metadata.PackageNotFoundError:  # named as missing, with the extra to install (issue #21)
        assert "profiler[onnx]" in out["runtime"]["onnxruntime"]["missing"]
    else:
        assert out["runtime"]["onnxruntime"] == {"version": version}, "the version, from package metadata"


def test_a_bad_path_gives_exactly_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "profiler", "run", str(tmp_path / "missing.gguf"), "--idle", "0"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: model file not found"), done.stderr


@pytest.mark.parametrize("show", [False, True])
def test_native_stderr_is_held_back_unless_verbose(capfd, show):
    with native_noise.captured(show):
        os.write(2, b"cpuinfo: failed to parse /sys/devices/system/cpu/possible\n")  # as a C library would
    err = capfd.readouterr().err
    assert ("failed to parse" in err) is show
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n", "fd 2 is restored"


def test_package_version_reads_metadata_only():
    assert native_noise.package_version("numpy") == metadata.version("numpy")
    assert native_noise.package_version("no-such-distribution-xyz") is None
