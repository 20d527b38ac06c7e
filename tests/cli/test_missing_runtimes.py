"""`profiler device` and `profiler models` on a machine without the optional runtimes (issue #20.3, #21).

Under Termux there is no ONNX Runtime or Ray wheel, and llama-cpp-python may fail to build. The
commands run in a child process whose imports of those packages fail, as they would there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ABSENT = ("onnxruntime", "onnxruntime_genai", "onnx", "ray", "llama_cpp", "torch", "transformers")

# Installs an import blocker for ABSENT, then runs the CLI with the remaining arguments.
WITHOUT_RUNTIMES = f"""
import importlib.abc, sys
ABSENT = {ABSENT!r}
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ABSENT:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, Absent())
from profiler.cli.app import main
sys.argv = ["profiler", *sys.argv[1:]]
main()
"""


def run_without_runtimes(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PROFILER_CACHE": str(tmp_path / "cache"),
           "PROFILER_REPORTS": str(tmp_path / "reports"), "HOME": str(tmp_path)}
    return subprocess.run([sys.executable, "-c", WITHOUT_RUNTIMES, *args], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path, env=env, check=False)


@pytest.mark.parametrize("args", [("device", "--json", "--no-bandwidth"), ("models", "--json")])
def test_command_works_and_names_the_missing_runtimes(tmp_path, args):
    done = run_without_runtimes(tmp_path, *args)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    missing = out["runtime"] if args[0] == "device" else out["missing_runtimes"]
    if args[0] == "device":
        missing = {name: entry["missing"] for name, entry in missing.items() if "missing" in entry}
    assert set(missing) == {"llama.cpp", "onnxruntime", "onnxruntime-genai"}
    assert "llama-cpp-python is not importable" in missing["llama.cpp"]
    assert "profiler[onnx]" in missing["onnxruntime"]


def test_device_text_lists_missing_runtimes(tmp_path):
    done = run_without_runtimes(tmp_path, "device", "--no-bandwidth")
    assert done.returncode == 0, done.stderr
    assert "llama.cpp missing" in done.stdout
    assert "pip install 'profiler[onnx]'" in done.stdout  # printed as text, not eaten as rich markup


def test_runtime_present_is_not_listed_missing():
    from profiler.backends import missing_runtimes, runtime_info

    assert "llama.cpp" not in missing_runtimes(runtime_info())
