"""scripts/arm64-root refuses bad input in one line, before it touches anything."""

from __future__ import annotations

import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "arm64-root"


def test_the_script_parses():
    assert subprocess.run(["sh", "-n", str(SCRIPT)], capture_output=True, check=False).returncode == 0


def test_an_unknown_suite_is_one_line_and_exit_2(tmp_path):
    done = subprocess.run(["sh", str(SCRIPT), "buster", str(tmp_path / "work")], capture_output=True, text=True,
                          check=False, timeout=60)
    assert done.returncode == 2
    assert done.stderr == "arm64-root: suite must be bookworm or trixie, not buster\n"
    assert not (tmp_path / "work").exists()

