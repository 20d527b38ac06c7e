"""RAPL counters from fixture powercap trees: Intel, AMD, a wrap mid-run, a permission error."""

from __future__ import annotations

import pytest

from profiler.platform.energy import rapl
from profiler.platform.energy.chooser import choose
from profiler.platform.energy.sampler import Sampler
from support.energy_fixtures import FakeClock, deny_reads, rapl_zone, redirected, set_value

PC = "/sys/class/powercap"


@pytest.fixture
def root(tmp_path):
    with redirected(tmp_path) as path:
        yield path


def intel_tree(tmp) -> None:
    rapl_zone(tmp, "intel-rapl:0", "package-0", 10_000_000)
    rapl_zone(tmp, "intel-rapl:0:0", "core", 4_000_000)
    rapl_zone(tmp, "intel-rapl:0:1", "uncore", 1_000_000)
    rapl_zone(tmp, "intel-rapl:0:2", "dram", 2_000_000, max_range_uj=65712999613)
    rapl_zone(tmp, "intel-rapl:1", "psys", 50_000_000)


def amd_tree(tmp) -> None:
    rapl_zone(tmp, "intel-rapl:0", "package-0", 7_000_000, max_range_uj=4294967295)
    rapl_zone(tmp, "intel-rapl:0:0", "core", 3_000_000, max_range_uj=4294967295)
    rapl_zone(tmp, "intel-rapl:0:1", "core", 3_100_000, max_range_uj=4294967295)


def sampled_energy(tmp, source, steps: list[dict[str, int]]) -> float:
    """Feed counter values step by step (0.1 s apart) and return the joules since the first."""
    clock = FakeClock()
    sampler = Sampler(source, clock, cpu_reader=lambda: (None, None)).open()
    readings = []
    for values in steps:
        for path, value in values.items():
            set_value(tmp, path, value)
        readings.append(sampler.take())
        clock.advance(0.1)
    return readings[-1].value


def test_intel_prefers_psys_and_adds_nothing_nested(root):
    intel_tree(root)
    found = rapl.probe()
    source = found[0].source
    assert source.provenance.source == "rapl:psys"
    assert source.provenance.scope == "soc" and source.provenance.method == "counter"
    assert source.provenance.measured is True
    skipped = {c.name: c.reason for c in found[1:]}
    assert "nested" in skipped["rapl:intel-rapl:0:0 core"]
    assert "already includes" in skipped["rapl:intel-rapl:0 package-0"]
    energy = sampled_energy(root, source, [{}, {f"{PC}/intel-rapl:1/energy_uj": 53_456_789,
                                                f"{PC}/intel-rapl:0/energy_uj": 99_000_000}])
    assert round(energy * 1e6) == 3_456_789  # psys delta only; the package change is ignored


def test_intel_without_psys_uses_package_plus_dram_never_core(root):
    intel_tree(root)
    (root / "sys/class/powercap/intel-rapl:1/name").write_text("not-psys\n")
    source = rapl.probe()[0].source
    assert [z.name for z in source.zones] == ["package-0", "dram"]
    energy = sampled_energy(root, source, [{}, {
        f"{PC}/intel-rapl:0/energy_uj": 12_500_001,  # +2.500001 J
        f"{PC}/intel-rapl:0:0/energy_uj": 6_000_000,  # core +2 J: inside the package, not added
        f"{PC}/intel-rapl:0:2/energy_uj": 2_300_000,  # dram +0.3 J
    }])
    assert round(energy * 1e6) == 2_800_001


def test_amd_package_only_cores_skipped(root):
    amd_tree(root)
    found = rapl.probe()
    assert found[0].source.provenance.source == "rapl:package-0"
    assert sum(1 for c in found if "nested" in c.reason) == 2
    energy = sampled_energy(root, found[0].source, [{}, {f"{PC}/intel-rapl:0/energy_uj": 7_123_456}])
    assert round(energy * 1e6) == 123_456


def test_wrap_in_the_middle_of_a_run_is_undone(root):
    rapl_zone(root, "intel-rapl:0", "package-0", 4_294_000_000, max_range_uj=4_294_967_295)
    source = rapl.probe()[0].source
    steps = [{}, {f"{PC}/intel-rapl:0/energy_uj": 4_294_900_000},  # +900_000
             {f"{PC}/intel-rapl:0/energy_uj": 250_000},  # wrapped: +67_295 + 250_000
             {f"{PC}/intel-rapl:0/energy_uj": 1_250_000}]  # +1_000_000
    energy = sampled_energy(root, source, steps)
    assert round(energy * 1e6) == 900_000 + (4_294_967_295 - 4_294_900_000) + 250_000 + 1_000_000


def test_poller_reads_fast_enough_that_a_counter_cannot_wrap_twice(root):
    # A 65 J range at a 500 W limit wraps every 0.131 s: read at least 4 times as often.
    rapl_zone(root, "intel-rapl:0", "package-0", 0, max_range_uj=65_532_610, max_power_uw=500_000_000)
    source = rapl.probe()[0].source
    sampler = Sampler(source)
    assert source.max_interval_s == pytest.approx(65.53261 / 500 / 4)
    assert sampler.interval_s == pytest.approx(source.max_interval_s)


def test_permission_error_says_how_to_allow_it_and_falls_back(root, monkeypatch):
    intel_tree(root)
    deny_reads(monkeypatch, {f"{PC}/intel-rapl:1/energy_uj"})
    found = rapl.probe()
    assert found[0].source.provenance.source == "rapl:package-0+dram"
    psys = next(c for c in found if c.name == "rapl:intel-rapl:1 psys")
    assert "permission denied" in psys.reason and "udev" in psys.reason and "chmod" in psys.reason


def test_all_counters_denied_falls_back_to_an_estimate(root, monkeypatch):
    amd_tree(root)
    (root / "proc").mkdir()
    (root / "proc/stat").write_text("cpu  10 0 10 100 0 0 0 0 0 0\ncpu0 10 0 10 100 0 0 0 0 0 0\n")
    deny_reads(monkeypatch, {f"{PC}/intel-rapl:0/energy_uj", f"{PC}/intel-rapl:0:0/energy_uj",
                             f"{PC}/intel-rapl:0:1/energy_uj"})
    choice = choose(cpu_model="AMD Ryzen 7 5800U", board=None)
    rapl_row = next(c for c in choice.candidates if c.name == "rapl")
    assert rapl_row.status == "skipped" and "udev" in rapl_row.reason
    assert choice.source.provenance.method == "model"
    assert choice.source.provenance.measured is False


def test_unwrap_delta_without_a_range_never_goes_negative():
    assert rapl.unwrap_delta(100, 50, None) == 0
    assert rapl.unwrap_delta(100, 50, 1000) == 950
