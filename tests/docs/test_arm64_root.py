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


def test_the_root_emulates_the_pi_5_core_not_qemus_max_cpu():
    # On qemu's default "max" CPU, numpy 2.5's OpenBLAS picks SME kernels that qemu 7.2 computes
    # wrongly (NaN from a float matmul); every command in the root must run on the Pi 5's core.
    text = SCRIPT.read_text()
    assert "qemu_cpu=cortex-a76\n" in text
    chroot_lines = [line for line in text.splitlines() if line.lstrip().startswith("chroot ")]
    assert chroot_lines and all("QEMU_CPU=$qemu_cpu" in line for line in chroot_lines)
