"""A real `profiler run -C 0x1` on a tiny random-weight model: the measuring process (the crash-isolation
child, or this run's own with --in-process) ran on CPU 0 only, as the kernel reported after each test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _profiler(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PROFILER_REPORTS": str(cwd / "reports"), "PROFILER_CACHE": str(cwd / "cache"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    # no timing assertion: under load the run is only slower; the generous timeout is for a stuck child
    return subprocess.run([sys.executable, "-m", "profiler", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=600)


@pytest.mark.parametrize("mode", [[], ["--in-process"]], ids=["child", "in-process"])
def test_cpu_mask_0x1_runs_on_cpu_0_only(tiny_gguf, tmp_path, mode):
    done = _profiler("run", str(tiny_gguf), "-C", "0x1", "-p", "16", "-n", "4", "-r", "2", "--no-bandwidth",
                     "--idle", "0", "-o", "json", *mode, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [r["test"] for r in rows] == ["pp16", "tg4"]
    for row in rows:
        assert row["cpu_mask"] == "0x1" and row["cpu_strict"] is False
        assert row["cpu_affinity"] == [0]  # read back with sched_getaffinity over every thread of the process
        assert row["n_threads"] == 1  # without -t: one thread per CPU of the placement
        assert row["cpu_cores"].startswith("1× ")


def test_cpu_strict_1_is_one_clear_line(tiny_gguf, tmp_path):
    done = _profiler("run", str(tiny_gguf), "-C", "0x1", "--cpu-strict", "1", cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --cpu-strict 1 is not available: "), done.stderr
