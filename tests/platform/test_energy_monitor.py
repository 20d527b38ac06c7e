"""Sampling out of the measured process (issue #10, items 3 and 8b).

Sensors that must be sampled are read by a real monitor process: ``vcgencmd`` (here a
stand-in script on PATH that logs its parent) must never be a child of the measured
process, and the readings line up with the measured process's windows.
"""

from __future__ import annotations

import os
import stat
import time

import pytest

from profiler.measure.energy import EnergySession
from profiler.platform import sysfs
from support.energy_fixtures import PI5_PMIC, PI5_PMIC_W, tracked_row, vm_tree, write_tree

PI5 = "Raspberry Pi 5 Model B Rev 1.0"


@pytest.fixture
def pi5(tmp_path, monkeypatch):
    """A Pi 5 seen through a fixture /sys and /proc and a vcgencmd that logs who ran it."""
    root = vm_tree(tmp_path / "root")
    write_tree(root, {f"/proc/{os.getpid()}/stat": (root / "proc/self/stat").read_text(),
                      "/sys/class/thermal/thermal_zone0/temp": 52000,
                      "/sys/class/thermal/thermal_zone0/type": "cpu-thermal\n"})
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "pmic.txt").write_text(PI5_PMIC)
    log = tmp_path / "vcgencmd.log"
    script = bin_dir / "vcgencmd"
    script.write_text(f"""#!/bin/sh
echo "$PPID $1" >> {log}
case "$1" in
  pmic_read_adc) cat {tmp_path / 'pmic.txt'} ;;
  get_throttled) echo throttled=0x0 ;;
  *) exit 1 ;;
esac
""")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    sysfs.set_root(root)
    sysfs.set_command_runner(None)
    yield log
    sysfs.set_root(None)


def callers(log) -> list[tuple[int, str]]:
    return [(int(pid), cmd) for pid, cmd in (line.split() for line in log.read_text().splitlines())]


def test_pmic_and_thermal_are_sampled_by_the_monitor_process_not_the_measured_one(pi5):
    session = EnergySession.open(cpu_model="Cortex-A76", board=PI5)
    assert session.choice.source.provenance.source == "pi5-pmic"
    before = len(callers(pi5))  # the probe ran vcgencmd from here, before any test
    try:
        with session.track() as tracker:
            start = time.perf_counter_ns()
            time.sleep(0.6)
            end = time.perf_counter_ns()
        row = tracked_row(tracker, [("decode", start, end)], "m tg32", n_prompt=0, n_gen=32)
        monitor_pid = tracker.monitor.proc.pid
    finally:
        session.close()
    during = callers(pi5)[before:]
    assert {cmd for _, cmd in during} == {"pmic_read_adc", "get_throttled"}
    assert {pid for pid, _ in during} == {monitor_pid} and monitor_pid != os.getpid()
    assert "monitor process" in row.energy_sampling and row.energy_rate_hz == pytest.approx(10.0)
    # no /dev/vcio in the fixture root: the vcgencmd fallback, and the provenance says which way
    assert row.energy_detail["provenance"]["transport"] == "vcgencmd"
    # the rail groups travel from the monitor process into the row
    groups = row.energy_detail["groups"]["power_w"]
    assert groups["cpu"] == pytest.approx(1.54489 * 0.887) and groups["total-pmic"] == pytest.approx(PI5_PMIC_W)
    assert row.energy_samples >= 2 and row.energy_read_errors == 0
    # constant rails: the window's energy is exactly their power times its length
    assert row.energy_decode_j == pytest.approx(PI5_PMIC_W * (end - start) / 1e9, rel=1e-9)
    assert row.temp_max_c == pytest.approx(52.0) and row.thermal_detail["sampling"]["mode"].endswith("monitor process")
    assert row.energy_attribution == "system-wide"  # the fixture's CPU times do not move


def test_a_monitor_that_cannot_find_the_source_falls_back_and_says_why(pi5):
    session = EnergySession.open(cpu_model="Cortex-A76", board=PI5)
    session.spec["board"] = None  # the monitor would then probe differently ...
    session.choice.source.provenance.source = "pi5-pmic-renamed"  # ... and cannot find this source
    try:
        with session.track() as tracker:
            start = time.perf_counter_ns()
            time.sleep(0.3)
            end = time.perf_counter_ns()
        row = tracked_row(tracker, [("decode", start, end)], "m tg8", n_prompt=0, n_gen=8)
    finally:
        session.close()
    assert "in a thread of the measured process" in row.energy_sampling
    assert "does not see pi5-pmic-renamed" in row.energy_sampling
    assert row.energy_decode_j == pytest.approx(PI5_PMIC_W * (end - start) / 1e9, rel=1e-9)


def test_a_counter_needs_no_monitor_and_no_thread(tmp_path):
    with_nothing = vm_tree(tmp_path)  # this VM: the CPU-table model, no thermal sensor at all
    sysfs.set_root(with_nothing)
    try:
        session = EnergySession.open(cpu_model="AMD EPYC", board=None)
        with session.track() as tracker:
            assert tracker.monitor is None and tracker.thermal is None and tracker.edges  # no monitor started
    finally:
        sysfs.set_root(None)


def test_a_monitor_that_dies_mid_test_gives_unavailable_with_the_reason_then_threads(pi5):
    session = EnergySession.open(cpu_model="Cortex-A76", board=PI5)
    try:
        with session.track() as tracker:
            start = time.perf_counter_ns()
            tracker.monitor.proc.kill()  # the monitor dies during the test
            end = time.perf_counter_ns()
        row = tracked_row(tracker, [("decode", start, end)], "m tg8", n_prompt=0, n_gen=8)
        assert getattr(row, "energy_decode_j", None) is None and "monitor process stopped answering" in row.energy_unavailable
        assert row.energy_samples == 0 and row.temp_max_c is None
        with session.track() as later:  # the next test samples in a thread and says why
            time.sleep(0.2)
        assert later.monitor is None and "in a thread of the measured process" in later.energy_sampling
        assert "stopped answering" in later.energy_sampling
    finally:
        session.close()


def test_no_energy_or_thermal_thread_runs_in_the_measured_process_during_a_test(tiny_gguf, monkeypatch):
    """On this machine as it is: counters are read at window edges and sensors (if any) by the
    monitor process, and peak memory by the kernel's VmHWM (or, where the reset is refused, a
    watcher process), so no sampling thread runs beside the test in the measured process."""
    import threading

    from profiler import api
    from profiler.measure import runner
    from profiler.measure.plan import Sweep
    from profiler.measure.session import EnergyOptions
    from profiler.run.options import RunOptions

    seen: list[set[str]] = []
    real = runner.run_repetition

    def spy(*args, **kwargs):
        seen.append({t.name for t in threading.enumerate()})
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "run_repetition", spy)
    before = {t.name for t in threading.enumerate()}  # pools other tests left in this process
    options = RunOptions(save=False, bandwidth_probe=False, energy=EnergyOptions(idle_s=0.0), isolate=False)
    run = api.profile([str(tiny_gguf)], Sweep(n_prompt=[16], n_gen=[8], repetitions=2, n_threads=[1]), options)
    assert len(seen) == 4 and all(names == before for names in seen), seen
    assert all("thread of the measured process" not in (r.energy_sampling or "") for r in run.rows)
