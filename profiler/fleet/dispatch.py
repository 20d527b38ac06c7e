"""The coordinator's side of ``profiler fleet run``.

One Ray task per device runs that device's whole sweep (``device_task.run_on_device``). It claims
the device's single profiling slot and is pinned to the device's node with a hard node affinity,
so a device never runs two measurements at once while different devices run in parallel. Events
come back through the hub; each row is committed to the coordinator's store as it arrives, keyed
by (device, test), which is what ``--resume`` skips. Input is checked (models, devices, versions)
before any work; node death, a pre-flight refusal or a crash is recorded for that device only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from profiler.errors import UserError
from profiler.fleet import SLOT_RESOURCE, connection, device_task, hub, registry, transfer
from profiler.measure import session as energy_run
from profiler.measure.plan import Sweep, expand
from profiler.models import catalog
from profiler.models.catalog import ModelSpec
from profiler.platform.cores import CoreClusters
from profiler.report import save_run
from profiler.results.schema import RunResult, recover_failures, row_from_dict
from profiler.results.store import Store, row_key
from profiler.run.options import Callbacks, RunInterrupted, RunOptions
from profiler.run.orchestrate import Ledger, Plan

CANCEL_GRACE_S = 15.0
WAKE = {"type": "wake"}  # put into the hub to end the coordinator's last wait for events


@dataclass
class FleetOptions:
    devices: list[str] = field(default_factory=lambda: ["all"])
    address: str | None = None  # default: the one 'profiler fleet up' saved on this machine


class FleetInterrupted(RunInterrupted):
    """Ctrl-C on the coordinator: remote tasks cancelled, finished rows stored."""

    resume_command = "profiler fleet run --resume"


def fleet_key(device: str, key: str) -> str:
    """A fleet row's identity in the store: the device, then the usual test key."""
    return f"{device}|{key}"


def split_key(stored: str) -> tuple[str, str]:
    device, _, key = stored.partition("|")
    return device, key


def planned_tests(specs, sweep: Sweep, energy: energy_run.EnergyOptions,
                  fingerprint: dict) -> list[tuple[str, str, str]]:
    """(model, test name, key) of each test the device will run, model by model as ``profiler run``
    runs them there (the same expansion, with the device's core clusters: --cores and the default
    placement name its CPUs)."""
    clusters = CoreClusters.from_dict(fingerprint["core_clusters"]) if fingerprint.get("core_clusters") else None
    tests = energy_run.select_tests(expand(sweep, fingerprint["physical_cores"], clusters,
                                           fingerprint.get("logical_cores")), energy)
    return [(spec.name, t.name, row_key(spec.name, t)) for spec in specs for t in tests]


def planned_keys(specs, sweep: Sweep, energy: energy_run.EnergyOptions, fingerprint: dict) -> set[str]:
    """The test keys the device will run: the same expansion ``profiler run`` makes there."""
    return {key for _, _, key in planned_tests(specs, sweep, energy, fingerprint)}


def fleet_profile(
    model_names: Sequence[str],
    sweep: Sweep,
    options: RunOptions | None = None,
    callbacks: Callbacks | None = None,
    resume: str | None = None,
    fleet: FleetOptions | None = None,
) -> RunResult:
    """``profiler run`` over the fleet: the same arguments, plus which devices."""
    options = options or RunOptions()
    fleet = fleet or FleetOptions()
    cb = callbacks or Callbacks()
    ledger = Ledger(options, resume, Plan(list(model_names), sweep))
    if ledger.resumed and "fleet" not in ledger.plan.extra:
        raise UserError(f"run {resume} is not a fleet run; continue it with profiler run --resume {resume}")
    wanted = ledger.plan.extra["fleet"]["devices"] if ledger.resumed else fleet.devices
    specs = ledger.specs()
    ray = connection.connect(fleet.address)
    devices = registry.probe(ray, registry.select(ray, wanted))
    registry.refuse_unusable(devices)
    files = model_files(specs, ledger.plan.models, cb)
    run = start_run(ledger, devices)
    return Dispatch(ray, ledger.begin(run), run, options, cb).go(devices, specs, files, ledger.plan.sweep)


def model_files(specs: list[ModelSpec], names: list[str], cb: Callbacks) -> list[tuple[transfer.ModelFile, Path]]:
    """Each model's file as the devices receive it, resolved here on the coordinator. With no names
    the specs are the catalogue's defaults, named by their catalogue names."""
    names = names or [spec.name for spec in specs]
    return [_describe(spec, name, cb) for spec, name in zip(specs, names, strict=True)]


def _describe(spec: ModelSpec, name: str, cb: Callbacks) -> tuple[transfer.ModelFile, Path]:
    path = catalog.resolve(spec, progress=cb.message)
    return transfer.describe(spec, path, by_path=catalog.looks_like_path(name)), path


def start_run(ledger: Ledger, devices: list[registry.DeviceNode]) -> RunResult:
    """The stored run when resuming; else a new one with each device's record, the caller's
    warnings (e.g. the models --all-local skipped) and the devices in its plan."""
    run = ledger.run(_fleet_device(devices))
    if not ledger.resumed:
        run.warnings.extend(ledger.options.warnings)
        ledger.plan.extra["fleet"] = {"devices": [d.name for d in devices]}
    return run


def _fleet_device(devices: list[registry.DeviceNode]) -> dict:
    """A fleet run's device record: each device's node, versions and fingerprint."""
    return {"fleet": {d.name: {"node_id": d.node_id, "versions": d.info.get("versions", {}),
                               "fingerprint": d.info.get("fingerprint", {})} for d in devices}}


class Dispatch:
    """The coordinator's loop over one fleet run: dispatch, collect rows and failures, finish."""

    def __init__(self, ray, store: Store, run: RunResult, options: RunOptions, cb: Callbacks) -> None:
        self.ray, self.store, self.run, self.options, self.cb = ray, store, run, options, cb
        self.in_flight: dict[str, tuple[str, str] | None] = {}  # device -> (model, test) being measured
        # device -> (model, test, key) not stored yet, in the order the device runs them: what a
        # device that dies between two tests did not run
        self.remaining: dict[str, list[tuple[str, str, str]]] = {}
        self.started: set[str] = set()  # devices that began a test in this dispatch
        self.planned: dict[str, set[str]] = {}  # device -> the fleet keys of every test it runs in this run
        self.hub = None
        self.events = None  # the pending hub.next_events call

    def go(self, devices, specs, files, sweep: Sweep) -> RunResult:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self.hub = hub.start_hub(self.ray)
        self.ray.get([self.hub.offer.remote(model.sha256, str(path)) for model, path in files])
        task = self.ray.remote(device_task.run_on_device)
        done = self.store.done_keys(self.run.run_id)
        earlier = list(self.run.failures)  # a resumed run's: made good once their device has every row
        refs = {}
        options = self.options.to_dict()
        for device in devices:
            finished = {split_key(k)[1] for k in done if split_key(k)[0] == device.name}
            planned = planned_tests(specs, sweep, self.options.energy, device.info["fingerprint"])
            self.planned[device.name] = {fleet_key(device.name, key) for _, _, key in planned}
            todo = [entry for entry in planned if entry[2] not in finished]
            if not todo:
                continue
            self.in_flight[device.name] = None
            self.remaining[device.name] = todo
            strategy = NodeAffinitySchedulingStrategy(device.node_id, soft=False)
            refs[device.name] = task.options(
                num_cpus=0, resources={SLOT_RESOURCE: 1}, scheduling_strategy=strategy, max_retries=0,
                name=f"profile-{device.name}",
            ).remote(device.name, [m.to_dict() for m, _ in files], sweep.to_dict(), options, sorted(finished), self.hub)
        self.cb.message(f"dispatched to {', '.join(refs) or 'no device (nothing left to run)'}")
        try:
            self._wait(refs, devices)
        except KeyboardInterrupt:
            self._cancel(refs)
            self._finish("interrupted")
            raise FleetInterrupted(self.run.run_id) from None
        self._recover(earlier)
        self._finish("failed" if self.run.open_failures else "done")
        return self.store.load_run(self.run.run_id)

    def _recover(self, earlier: list[dict]) -> None:
        """A failure of an earlier attempt is made good once its device has every test stored."""
        done = self.store.done_keys(self.run.run_id)
        complete = lambda f: f.get("device") in self.planned and self.planned[f["device"]] <= done  # noqa: E731
        for failure in recover_failures(earlier, complete):
            self.cb.message(f"{failure['device']}: the earlier failure is recovered, every test it missed is measured")

    # ------------------------------------------------------------------ the loop
    def _wait(self, refs: dict, devices) -> None:
        """Sleep until a device reports an event or a device's task ends: no timer, no polling."""
        pending = {ref: name for name, ref in refs.items()}
        node_of = {d.name: d.node_id for d in devices}
        self.events = self.hub.next_events.remote()
        while pending:
            ready, _ = self.ray.wait([self.events, *pending], num_returns=1)
            if self.events in ready:
                self._take(self.ray.get(self.events))
                self.events = self.hub.next_events.remote()
            for ref in ready:
                if ref in pending:
                    name = pending.pop(ref)
                    self._settle(name, ref, node_of[name])

    def _take(self, events: list[dict]) -> None:
        for event in events:
            if event != WAKE:
                self._on_event(event)

    def _settle(self, device: str, ref, node_id: str) -> None:
        try:
            result = self.ray.get(ref)
        except Exception as exc:  # node death, a crashed worker
            self._drain()
            self._fail(device, node_id, self._cause(exc, node_id))
            return
        self._drain()
        if "refused" in result:
            self._fail(device, node_id, f"refused: {result['refused']}")
            return
        for failure in result["failures"]:
            self.run.failures.append({**failure, "device": device, "node_id": node_id})
            self.cb.message(f"{device}: {failure['model']} failed during {failure['test'] or 'loading'}: {failure['error']}")
        self.run.warnings.extend(f"{device}: {w}" for w in result["warnings"])
        self.run.device.setdefault("fleet", {}).setdefault(device, {})["measured_device"] = result.get("device")
        self._update()

    def _cause(self, exc: Exception, node_id: str) -> str:
        """One line: what happened, and where Ray keeps that node's own log (Ray's long messages stay there)."""
        nodes = {n["NodeID"]: n for n in self.ray.nodes()}
        node = nodes.get(node_id, {})
        where = registry.ray_log(node)
        if isinstance(exc, self.ray.exceptions.NodeDiedError) or not node.get("Alive", False):
            return f"device left the fleet: its Ray node {node_id[:12]} is dead (Ray's log: {where})"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        return f"{type(exc).__name__}: {first} (Ray's log: {where})"

    def _fail(self, device: str, node_id: str, cause: str) -> None:
        """Record the test in flight; between two tests, the next one, saying so. Either way the
        failure lists every test the device did not run."""
        remaining = self.remaining.get(device, [])
        failure = {"device": device, "node_id": node_id, "not_run": [f"{m} {t}" for m, t, _ in remaining]}
        in_flight = self.in_flight.get(device)
        if in_flight:
            (model, test), when = in_flight, f"during {in_flight[1]}"
        elif device in self.started and remaining:
            model, test, _ = remaining[0]
            when = f"between tests, before {model} {test}"
            cause = f"{cause} (between tests: {model} {test} was next)"
        else:
            model, test, when = "-", None, "before its first test" if remaining else "after its last test"
        if remaining:
            cause = f"{cause}; not run: {', '.join(failure['not_run'])}"
        self.run.failures.append({"model": model, "test": test, "error": cause, **failure})
        self.cb.message(f"{device} failed {when}: {cause}")
        self._update()

    def _drain(self) -> None:
        """Take every event a device sent before its task ended. The pending next_events call may
        already hold some (it took them from the hub, but its result was not in this wait's ready
        list): wake it and take those first, then what is still queued, and only then wait anew, so
        no row is committed after the failure or the recovery it bears on."""
        self._take_pending()
        self._take(self.ray.get(self.hub.drain.remote()))
        self.events = self.hub.next_events.remote()

    def _take_pending(self) -> None:
        """End the pending next_events call (a WAKE returns it if it is still waiting) and take its events."""
        if self.events is not None:
            self.ray.get(self.hub.put.remote(WAKE))
            self._take(self.ray.get(self.events))
            self.events = None

    def _on_event(self, event: dict) -> None:
        device, kind = event["device"], event["type"]
        if kind == "test_started":
            self.in_flight[device] = (event["model"], event["test"])
            self.started.add(device)
            self.cb.message(f"{device}: {event['model']} {event['test']}")
        elif kind == "row":
            self._commit(device, event["key"], event["row"])
            self.in_flight[device] = None
            self.remaining[device] = [e for e in self.remaining.get(device, []) if e[2] != event["key"]]
        elif kind == "model_ready":
            self.cb.message(f"{device}: {event['model']} {event['how']}")
        elif kind == "message":
            self.cb.message(f"{device}: {event['text']}")

    def _commit(self, device: str, key: str, data: dict) -> None:
        row = row_from_dict(data)
        self.store.add_row(self.run.run_id, fleet_key(device, key), row)
        self.run.rows.append(row)
        self._update()
        self.cb.row_done(row)

    def _update(self, status: str = "running") -> None:
        self.store.update_run(self.run, status)
        self.store.update_device(self.run.run_id, self.run.device)
        if self.options.save:
            save_run(self.store.load_run(self.run.run_id), self.options.reports_dir)

    def _cancel(self, refs: dict) -> None:
        """Ctrl-C: ask each task to stop (its run kills the measuring child), then force."""
        if not refs:
            return
        for ref in refs.values():
            self.ray.cancel(ref, force=False)
        _, left = self.ray.wait(list(refs.values()), num_returns=len(refs), timeout=CANCEL_GRACE_S)
        for ref in left:
            self.ray.cancel(ref, force=True)
        self._drain()

    def _finish(self, status: str) -> None:
        if self.hub is not None:
            self._take_pending()  # end the last wait, so that no call is left pending on the actor killed below
        self._update(status)
        if self.hub is not None:
            self.ray.kill(self.hub)
            self.hub = None
