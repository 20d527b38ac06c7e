"""Which Ray nodes are devices, what each one is, and whether it runs our versions.

A device is a node started by ``profiler fleet join``: it carries the device label and one
profiling slot. ``probe`` runs a tiny task on each device (claiming no slot, so it never waits for
a measurement) that returns its fingerprint and its profiler, Ray and Python versions.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from profiler.errors import UserError
from profiler.fleet import DEVICE_LABEL, SLOT_RESOURCE

PROBE_TIMEOUT_S = 60.0


@dataclass
class DeviceNode:
    name: str
    node_id: str
    ip: str
    alive: bool
    slots: float  # profiling slots the node advertises (1 for a device)
    info: dict = field(default_factory=dict)  # the probe's answer (versions, fingerprint)
    problem: str | None = None  # why it cannot be used (version mismatch, unreachable)
    log: str = "?"  # where Ray keeps this node's own log, on the device

    @property
    def status(self) -> str:
        if not self.alive:
            return "dead"
        return self.problem or "ready"


def device_nodes(ray) -> list[DeviceNode]:
    """Every node that carries the device label, alive or not (newest registration last)."""
    devices = []
    for node in ray.nodes():
        name = (node.get("Labels") or {}).get(DEVICE_LABEL)
        if not name:
            continue
        devices.append(DeviceNode(
            name=name, node_id=node["NodeID"], ip=node.get("NodeManagerAddress", "?"), alive=bool(node.get("Alive")),
            slots=float((node.get("Resources") or {}).get(SLOT_RESOURCE, 0)), log=ray_log(node),
        ))
    return devices


def ray_log(node: dict) -> str:
    """Where Ray keeps a node's own log, on that node's machine: the raylet's log in its session's
    log folder (``.../session_*/logs/raylet.out``; ``raylet.N.out`` for the N-th node of a machine)."""
    socket = node.get("RayletSocketName")
    if not socket:
        return "the node's Ray log folder (/tmp/ray/session_latest/logs on it)"
    path = PurePosixPath(socket)
    return str(path.parent.parent / "logs" / f"{path.name}.out")


def listed(devices: list[DeviceNode], every: bool = False) -> list[DeviceNode]:
    """What ``fleet devices`` shows: each live node; a dead one only with ``every`` (--all), since a
    device that rejoined leaves its old node behind under the same name."""
    return list(devices) if every else [d for d in devices if d.alive]


def select(ray, wanted: list[str]) -> list[DeviceNode]:
    """The live devices named in ``wanted`` (or every live device for ``all``); one line on a bad name."""
    alive = [d for d in device_nodes(ray) if d.alive]
    names = [d.name for d in alive]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise UserError(f"two live nodes share the device name {', '.join(duplicated)}: stop one (ray stop on it), "
                        "or, if the device just rejoined, wait until Ray marks its old node dead (about 30 s)")
    by_name = {d.name: d for d in alive}
    if not wanted or wanted == ["all"]:
        if not alive:
            raise UserError("no device has joined the fleet: run 'profiler fleet join HEAD:PORT --name NAME' on each device")
        return alive
    unknown = [n for n in wanted if n not in by_name]
    if unknown:
        known = ", ".join(sorted(by_name)) or "none"
        raise UserError(f"unknown device {', '.join(unknown)} (live devices: {known}); see profiler fleet devices")
    return [by_name[n] for n in dict.fromkeys(wanted)]


def local_versions() -> dict:
    import ray

    import profiler

    return {"profiler": profiler.__version__, "ray": ray.__version__, "python": platform.python_version()}


def _probe_on_device() -> dict:
    """Runs on the device: versions and the fingerprint (no bandwidth probe: that is the run's job)."""
    import ray

    from profiler.platform.device import fingerprint

    device = fingerprint()
    return {"versions": local_versions(), "node_id": ray.get_runtime_context().get_node_id(),
            "fingerprint": device.to_dict(), "worker_niceness": os.nice(0)}


def probe(ray, devices: list[DeviceNode], timeout_s: float = PROBE_TIMEOUT_S) -> list[DeviceNode]:
    """Ask every device, in parallel, for its versions and fingerprint; mark the ones that differ."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    task = ray.remote(num_cpus=0, max_retries=0)(_probe_on_device)
    refs = {d.name: task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(d.node_id, soft=False)).remote()
            for d in devices if d.alive}
    mine = local_versions()
    for device in devices:
        if device.name not in refs:
            continue
        try:
            device.info = ray.get(refs[device.name], timeout=timeout_s)
        except Exception as exc:  # GetTimeoutError, a node that died meanwhile
            device.problem = f"did not answer ({type(exc).__name__})"
            continue
        theirs = device.info["versions"]
        differ = [f"{k} {theirs.get(k)} (coordinator {mine[k]})" for k in ("profiler", "ray") if theirs.get(k) != mine[k]]
        if differ:
            device.problem = "version mismatch: " + ", ".join(differ)
    return devices


def refuse_unusable(devices: list[DeviceNode]) -> None:
    """Bad input stops the run before any work: one line naming every device that cannot take part."""
    bad = [f"{d.name}: {d.status}" for d in devices if d.status != "ready"]
    if bad:
        raise UserError("cannot use " + "; ".join(bad) + " (install the same profiler and Ray versions on every device)")


def summary(fingerprint: dict) -> str:
    """One line: board or CPU, cores, RAM, architecture."""
    ram = fingerprint.get("ram_total_bytes")
    parts = [fingerprint.get("board") or fingerprint.get("cpu_model") or "?",
             f"{fingerprint.get('physical_cores', '?')}C/{fingerprint.get('logical_cores', '?')}T",
             f"{ram / 2**30:.1f} GiB" if ram else "RAM unknown", fingerprint.get("arch") or "?"]
    return " | ".join(parts)
