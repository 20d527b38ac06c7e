"""Android fixture trees (tests/platform/fixtures/android, README.md there cites each source)."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "platform" / "fixtures" / "android"
LAPTOP_FIXTURES = FIXTURES.parent / "laptop"


def tree_lines(name: str, folder: Path = FIXTURES) -> list[tuple[str, str]]:
    """The (path, content) pairs of a ``.tree`` fixture."""
    pairs = []
    for line in (folder / name).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition(" = ")
            pairs.append((key.strip(), "" if value.strip() == '""' else value.strip()))
    return pairs


def write_power_supply(root: Path, name: str, folder: Path = FIXTURES) -> None:
    for rel, content in tree_lines(name, folder):
        target = root / "sys/class/power_supply" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f"{content}\n")


def write_thermal_zones(root: Path, name: str) -> dict[str, str]:
    """The zones of ``name`` as thermal_zone0, 1, ... in file order; returns zone type -> zone dir name."""
    zones = {}
    for i, (kind, temp) in enumerate(tree_lines(name)):
        zone = root / f"sys/class/thermal/thermal_zone{i}"
        zone.mkdir(parents=True, exist_ok=True)
        (zone / "type").write_text(f"{kind}\n")
        (zone / "temp").write_text(f"{temp}\n" if temp else "")
        zones[kind] = f"thermal_zone{i}"
    return zones


def fake_termux_battery_status(bin_dir: Path, output_file: Path) -> Path:
    """A ``termux-battery-status`` executable that prints ``output_file`` (rewrite it to change the phone)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "termux-battery-status"
    script.write_text(f"#!{sys.executable}\nimport sys\nsys.stdout.write(open({str(output_file)!r}).read())\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return script


def path_with(bin_dir: Path) -> str:
    return f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
