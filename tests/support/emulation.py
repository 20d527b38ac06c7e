"""Skips for what cannot work under qemu-user emulation (scripts/arm64-root), named with the reason."""

from __future__ import annotations

import pytest

from profiler.platform import device


def skip_ray_under_emulation() -> None:
    """Skip (from a fixture) the tests that start a Ray cluster and join it as a driver.

    Ray's driver finds its own node's raylet by process command line, and under qemu-user every
    command line starts with the emulator, so joining fails there however long it waits."""
    note = device.emulation_note()
    if note:
        pytest.skip(f"Ray cannot join a cluster under emulation ({note[:60]}...): see profiler.fleet.connection."
                    "join_failure")
