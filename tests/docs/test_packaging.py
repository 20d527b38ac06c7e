"""The package metadata builds with the SPDX license form, without setuptools' deprecation warning.

setuptools deprecated ``license = { text = ... }`` and announced that such projects stop building
after 2027-02-18; the SPDX string plus ``license-files`` (PEP 639) is the form that keeps building.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD_METADATA = (
    "import sys, warnings; warnings.simplefilter('always')\n"
    "from setuptools import build_meta\n"
    "print(build_meta.prepare_metadata_for_build_wheel(sys.argv[1]))\n"
)


def test_metadata_carries_the_spdx_license_and_builds_without_deprecation(tmp_path):
    done = subprocess.run([sys.executable, "-c", BUILD_METADATA, str(tmp_path)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    metadata = (tmp_path / done.stdout.strip().splitlines()[-1] / "METADATA").read_text()
    assert "License-Expression: MIT" in metadata
    assert "License-File: LICENSE" in metadata
    assert "deprecat" not in done.stderr.lower(), done.stderr[-2000:]


def test_the_license_file_is_mit():
    assert (REPO / "LICENSE").read_text().startswith("MIT License")
