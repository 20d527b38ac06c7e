"""How close a test's decode came to the machine's memory bandwidth (a row's ``bw_*`` fields)."""

from __future__ import annotations

from profiler.measure.plan import TestConfig
from profiler.models.modelinfo import ModelInfo
from profiler.platform import device as device_mod


def row_fields(info: ModelInfo, test: TestConfig, decode_step_ts: float | None, device: device_mod.Device) -> dict:
    """Bytes one decode step reads (weights + the KV cache it attends to, averaged over the
    test's decode positions), what that makes per second, and its fraction of the read
    bandwidth measured at the test's own thread count; ``warnings`` lists what the row should say.

    ``decode_step_ts`` is the rate of the timed decode steps alone (``TestTimings.decode_step_ts``),
    not ``decode_ts``: choosing a token reads no weights, so its time has no place in a roofline."""
    fields = {"bytes_per_token": None, "achieved_gbps": None, "bw_fraction": None, "warnings": []}
    if decode_step_ts is None:
        return {**fields, "bw_note": "no decode in this test"}
    first = test.n_depth + test.n_prompt
    per_token = int(info.weight_bytes_per_token + info.kv_bytes_read(first, test.n_gen, test.type_k, test.type_v))
    achieved = per_token * decode_step_ts / 1e9
    fields.update(bytes_per_token=per_token, achieved_gbps=achieved)
    rate, why_not = device_mod.bandwidth_at(device.memory_bandwidth, test.n_threads)
    if rate is None:
        return {**fields, "bw_note": why_not}
    fraction = achieved / rate["read_gbps"]
    fields.update(bw_fraction=fraction, bw_read_gbps=rate["read_gbps"], bw_probe_threads=test.n_threads,
                  bw_probe_buffer_bytes=rate["buffer_bytes"], bw_note=device.memory_bandwidth.get("note"))
    if fraction > 1.0:
        fields["warnings"].append(_over_one(fraction, per_token, device, test))
    return fields


def _over_one(fraction: float, per_token: int, device: device_mod.Device, test: TestConfig) -> str:
    """A bw_fraction above 1 reads more than RAM can deliver: say which explanation applies."""
    llc = max(device.caches.values(), default=0)
    if per_token <= llc:
        why = (f"the {per_token / 2**20:.1f} MiB a token reads fit in the {llc / 2**20:.0f} MiB last-level cache, "
               "so decoding is not limited by RAM bandwidth")
    else:
        why = "physically impossible from RAM: the bandwidth probe under-measured (was the machine busy during it?)"
    return f"{test.name}: bw_fraction {fraction:.2f} > 1.0; {why}"
