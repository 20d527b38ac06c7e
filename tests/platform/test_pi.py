"""Raspberry Pi without a fork per sample (issue #20 item 2).

The PMIC and the throttle flags are read through the firmware mailbox (a fake ioctl here) with
``vcgencmd`` as the fallback; the rail groups (CPU, DRAM, everything the PMIC sees) reach the
results; under-voltage is named on the rows with the power-supply advice; boards without the
PMIC ADC fall back to their published estimate, labelled "(est.)". The recorded outputs are real
ones from public threads (fixtures/pi/README.md says where each comes from).
"""

from __future__ import annotations

import ctypes
import struct
from pathlib import Path
from types import SimpleNamespace

import pytest

from profiler.measure.energy import EnergyInputs, energy_fields, thermal_fields
from profiler.platform import sysfs, thermal
from profiler.platform.energy import estimate, pi_pmic
from profiler.platform.energy.chooser import choose
from profiler.platform.energy.sampler import Sampler
from profiler.report.energy_text import energy_cell
from support.energy_fixtures import FakeClock, recorded, redirected, vm_tree, write_tree
from support.pi_mailbox import FakeMailbox, install

FIXTURES = Path(__file__).parent / "fixtures" / "pi"
PI5 = "Raspberry Pi 5 Model B Rev 1.0"
PI4 = "Raspberry Pi 4 Model B Rev 1.4"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


PMIC_LOAD = fixture("pi5_pmic_read_adc_load.txt")
# the capture's rails, V * I (twelve with both readings; EXT5V and BATT have a voltage only)
LOAD_RAILS = {"3V7_WL_SW": (3.699776, 0.09368929), "3V3_SYS": (3.310033, 0.0878337), "1V8_SYS": (1.805126, 0.1805471),
              "DDR_VDD2": (1.104761, 0.2254398), "DDR_VDDQ": (0.6014646, 0.0666672), "1V1_SYS": (1.110255, 0.1756674),
              "0V8_SW": (0.8014644, 0.376709), "VDD_CORE": (0.861733, 6.22421), "3V3_DAC": (3.313183, 0.00006105),
              "3V3_ADC": (3.306773, 0.0003663), "0V8_AON": (0.8002922, 0.0030525), "HDMI": (5.08664, 0.0241758)}
TOTAL_W = sum(v * a for v, a in LOAD_RAILS.values())
CPU_W = 0.861733 * 6.22421
DRAM_W = 1.104761 * 0.2254398 + 0.6014646 * 0.0666672


@pytest.fixture
def root(tmp_path):
    with redirected(tmp_path) as path:
        yield path


def no_vcgencmd(argv):
    raise AssertionError(f"a process was started: {argv}")


def board(root: Path, model: str) -> None:
    write_tree(root, {"/proc/device-tree/model": model + "\x00"})


# ----------------------------------------------------------------------------- the mailbox


def test_the_mailbox_message_is_vcgencmds():
    message = sysfs.gencmd_request("pmic_read_adc")
    words = struct.unpack_from("=6I", message)
    # size, request, GET_GENCMD_RESULT, 1024-byte text buffer, length 0, error 0; then the text; end tag 0
    assert words == (len(message), 0, 0x00030080, 1024, 0, 0) and len(message) == 24 + 1024 + 4
    assert message[24:38] == b"pmic_read_adc\x00" and message[-4:] == b"\x00\x00\x00\x00"
    # _IOWR(100, 0, char *): 0xC0086400 on a 64-bit kernel (the value Zeus uses), 0xC0046400 on 32-bit
    expected = 0xC0006400 | ctypes.sizeof(ctypes.c_void_p) << 16
    assert expected == sysfs.IOCTL_MBOX_PROPERTY


def test_pmic_is_read_through_one_open_mailbox_and_never_forks(root):
    board(root, PI5)
    mailbox = install(root, FakeMailbox({"pmic_read_adc": PMIC_LOAD}))
    sysfs.set_command_runner(no_vcgencmd)
    found = pi_pmic.probe()
    source = found[0].source
    assert source.provenance.source == "pi5-pmic" and source.provenance.transport == "mailbox"
    assert source.provenance.rate_hz == 10.0 and "mailbox" in found[0].reason
    assert [source.read(t) for t in range(3)] == [pytest.approx(TOTAL_W)] * 3
    assert mailbox.calls == ["pmic_read_adc"] * 4 and len(mailbox.fds) == 1  # probe + 3 reads, one descriptor
    assert source.last_parts() == pytest.approx({"cpu": CPU_W, "dram": DRAM_W, "total-pmic": TOTAL_W})


def test_a_reply_with_nul_between_lines_is_read_whole(root):
    board(root, PI5)
    install(root, FakeMailbox({"pmic_read_adc": PMIC_LOAD}, nul_lines=True))
    assert len(pi_pmic.parse_rails(pi_pmic.read_pmic().text)) == 12


def test_vcgencmd_is_the_fallback_and_the_provenance_says_so(root):
    board(root, PI5)  # no /dev/vcio in this root
    sysfs.set_command_runner(recorded({pi_pmic.COMMAND: PMIC_LOAD}))
    source = pi_pmic.probe()[0].source
    assert source.provenance.transport == "vcgencmd" and source.read(0) == pytest.approx(TOTAL_W)
    notes = " ".join(source.provenance.notes)
    assert "a process per sample" in notes and "/dev/vcio" in notes


def test_a_user_outside_the_video_group_is_told_so(root):
    board(root, PI5)
    sysfs.set_command_runner(recorded({pi_pmic.COMMAND: fixture("pi4_vcgencmd_not_in_video_group.txt")}))
    found = pi_pmic.probe()
    assert found[0].source is None and "video group" in found[0].reason


# ----------------------------------------------------------------------------- rail groups


def test_rail_groups_are_listed_with_their_provenance_and_never_added(root):
    vm_tree(root)
    board(root, PI5)
    install(root, FakeMailbox({"pmic_read_adc": PMIC_LOAD}))
    choice = choose(cpu_model="Cortex-A76", board=PI5)
    assert choice.source.provenance.source == "pi5-pmic"
    groups = {c.name: c for c in choice.candidates if c.name.startswith("pi5-pmic:")}
    assert set(groups) == {"pi5-pmic:cpu VDD_CORE", "pi5-pmic:dram DDR_VDD2+DDR_VDDQ"}
    assert all(c.status == "skipped" and "never added" in c.reason for c in groups.values())
    assert f"{CPU_W:.2f} W" in groups["pi5-pmic:cpu VDD_CORE"].reason
    notes = " ".join(choice.source.provenance.notes)
    assert "cpu: VDD_CORE" in notes and "dram: DDR_VDD2 + DDR_VDDQ" in notes
    assert "5 V input stage, USB devices and the fan are outside" in notes


def test_each_row_carries_the_groups_power_over_its_windows(root):
    board(root, PI5)
    texts = [PMIC_LOAD, PMIC_LOAD.replace("VDD_CORE_A current(7)=6.22421000A", "VDD_CORE_A current(7)=2.00000000A")]
    install(root, FakeMailbox({"pmic_read_adc": [PMIC_LOAD] + texts * 3}))
    source = pi_pmic.probe()[0].source
    clock = FakeClock()
    sampler = Sampler(source, clock, cpu_reader=lambda: (None, None)).open()
    for _ in range(6):
        sampler.take()
        clock.advance(0.1)
    readings = sampler.readings
    window = ("decode", readings[0].t_ns, readings[-1].t_ns)
    fields, _ = energy_fields(EnergyInputs(readings, source.provenance, False, [window], 0, 32, None, "none", 0.1),
                              "m tg32")
    groups = fields["energy_detail"]["groups"]["power_w"]
    cpu_low = 0.861733 * 2.0
    # a sawtooth between the two CPU levels over 5 intervals: mean of the trapezoids
    assert groups["cpu"] == pytest.approx((CPU_W + cpu_low) / 2)
    assert groups["dram"] == pytest.approx(DRAM_W)
    assert groups["total-pmic"] == pytest.approx(TOTAL_W - (CPU_W - cpu_low) / 2)
    assert fields["energy_detail"]["provenance"]["transport"] == "mailbox"


# ----------------------------------------------------------------------------- throttling


def thermal_row(readings, sensors):
    fields, warnings, _ = thermal_fields(readings, sensors, "m tg32")
    return fields, warnings


def test_throttle_flags_are_read_through_the_mailbox_without_vcgencmd(root):
    board(root, PI5)
    before = ["throttled=0x0\n"] * 3  # discovery and the first two readings
    mailbox = install(root, FakeMailbox({"get_throttled": before + [fixture("pi5_get_throttled_undervoltage.txt")]}))
    sysfs.set_command_runner(no_vcgencmd)
    sensors = thermal.ThermalSensors.discover()
    assert sensors.pi_throttle and sensors.describe()["pi_get_throttled_via"] == "mailbox"
    readings = [sensors.read(t) for t in (10, 20, 30)]
    fields, warnings = thermal_row(readings, sensors)
    assert fields["throttled"] is True and fields["thermal_detail"]["samples"]["pi_throttled"] == [0, 0, 0x50000]
    assert fields["throttle_reasons"] == ["under-voltage has occurred", "throttled has occurred"]
    assert "power supply" in warnings[0] and thermal.THERMAL_ADVICE not in warnings[0]
    assert mailbox.calls == ["get_throttled"] * 4


def test_under_voltage_now_on_a_row_names_the_power_supply(root):
    outputs = iter(["throttled=0x0\n", "throttled=0x0\n", fixture("pi3_get_throttled_undervoltage_now.txt")])
    sysfs.set_command_runner(lambda argv: next(outputs) if tuple(argv) == ("vcgencmd", "get_throttled") else None)
    sensors = thermal.ThermalSensors.discover()
    assert sensors.pi_transport == "vcgencmd"
    fields, warnings = thermal_row([sensors.read(10), sensors.read(20)], sensors)
    assert fields["throttle_reasons"][:2] == ["under-voltage", "throttled"]
    assert "under-voltage" in warnings[0] and "27 W" in warnings[0] and "cooling will not help" in warnings[0]


def test_heat_alone_keeps_the_cooling_advice():
    assert thermal.throttle_advice(["soft temperature limit", "throttled"]) == thermal.THERMAL_ADVICE
    both = thermal.throttle_advice(["under-voltage", "soft temperature limit"])
    assert "power supply" in both and thermal.THERMAL_ADVICE in both


# ----------------------------------------------------------------------------- Pi 4 and older


@pytest.mark.parametrize("way", ["mailbox", "vcgencmd"])
def test_pi4_has_no_pmic_and_falls_back_to_its_published_estimate(root, way):
    vm_tree(root)
    board(root, PI4)
    if way == "mailbox":
        install(root, FakeMailbox({}))  # the Pi 4 firmware does not register pmic_read_adc
    else:
        # vcgencmd prints the firmware's refusal and exits 255, so the runner gets nothing
        assert "Command not registered" in fixture("pi4_and_older_pmic_read_adc.txt")
        sysfs.set_command_runner(lambda argv: None)
    choice = choose(cpu_model="Cortex-A72", board=PI4)
    pmic = next(c for c in choice.candidates if c.name == "pi5-pmic")
    assert pmic.source is None and "Pi 4 and older" in pmic.reason and "(est.)" in pmic.reason
    assert choice.source.provenance.source == "model:powerjoular-pi" and not choice.source.provenance.measured
    row = SimpleNamespace(energy_method="model", energy_measured=False, energy_attribution="process-share",
                          j_per_prefill_token=None, j_per_decode_token=0.05, energy_detail={})
    assert energy_cell(row).endswith("(est.)")


@pytest.mark.parametrize(("model", "prefix", "slope"), [
    ("Raspberry Pi 3 Model B Plus Rev 1.3", "Raspberry Pi 3 Model B Plus", 3.298332817557656),
    ("Raspberry Pi 3 Model B Rev 1.2", "Raspberry Pi 3 Model B", 3.477373034437569),
    ("Raspberry Pi 400 Rev 1.0", "Raspberry Pi 400", 5.025368568347057),
    ("Raspberry Pi Zero W Rev 1.1", "Raspberry Pi Zero W", 0.47328964159919246),
])
def test_older_boards_get_their_own_published_fit(model, prefix, slope):
    found = estimate.pi_model(model)
    assert found.name == prefix and found.busy_w == slope and found.scope == "wall"
