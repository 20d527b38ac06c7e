"""The monitor process answers ``peek`` with the energy readings so far, without stopping: --energy-target
looks at them between repetitions (issue #19.10)."""

from __future__ import annotations

import io
import json

from profiler.platform.monitor import serve
from support.energy_fixtures import laptop_fan_battery, redirected


def test_peek_returns_the_readings_so_far_and_the_series_goes_on(tmp_path):
    lines = [{"pid": 1, "energy": {"source": "battery:BAT0", "cpu_model": "x", "board": ""}, "thermal": False},
             {"cmd": "start"}, {"cmd": "peek"}, {"cmd": "stop"}]
    out = io.StringIO()
    with redirected(laptop_fan_battery(tmp_path)):
        serve(io.StringIO("".join(json.dumps(line) + "\n" for line in lines)), out)
    hello, started, peeked, stopped = [json.loads(line) for line in out.getvalue().splitlines()]
    assert hello["ok"] and started["ok"] and peeked["ok"]
    assert peeked["readings"] and peeked["readings"][0][1] == 11.25  # power_now 11 250 000 µW
    # the series was not stopped by the peek: stop returns the peeked readings and the closing one
    assert len(stopped["energy"]["readings"]) > len(peeked["readings"])
    assert stopped["energy"]["readings"][:len(peeked["readings"])] == peeked["readings"]
