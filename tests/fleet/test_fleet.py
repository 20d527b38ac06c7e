"""The fleet on a real local Ray cluster: a head and device nodes, each labelled as a different
device, all bound to a loopback address, measuring tiny random-weight GGUF models.

Ray rewrites 127.0.0.1 to the machine's network address when connecting, so the cluster uses
127.0.0.2 (loopback too: nothing is reachable from outside). The cluster is started once for the
module and shut down in the fixture's teardown, even when a test fails.
"""

from __future__ import annotations

import os
import re
import secrets
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from support.emulation import skip_ray_under_emulation
from support.tinymodel import write_tiny_llama

# Ray reads its authentication settings once, when it is imported: the whole cluster (and this
# driver) uses token authentication, as 'profiler fleet up' sets it up.
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
ray = pytest.importorskip("ray", reason="the fleet extra is not installed: pip install -e '.[fleet]'")

from profiler.errors import UserError  # noqa: E402
from profiler.fleet import DEVICE_LABEL, SLOT_RESOURCE, connection, dispatch, registry  # noqa: E402
from profiler.measure.plan import Sweep  # noqa: E402
from profiler.measure.session import EnergyOptions  # noqa: E402
from profiler.results.store import Store  # noqa: E402
from profiler.run.options import Callbacks, RunOptions  # noqa: E402

LOOPBACK = "127.0.0.2"
NODE_MEMORY = {"object_store_memory": 80 * 1024 * 1024, "node_ip_address": LOOPBACK}


def _device_node(cluster, name: str, **env):
    return cluster.add_node(num_cpus=1, resources={SLOT_RESOURCE: 1}, labels={DEVICE_LABEL: name},
                            env_vars=env or None, **NODE_MEMORY)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """Head (the coordinator, no slot) + dev-a, dev-b and dev-small (whose /proc says 64 MB of RAM)."""
    skip_ray_under_emulation()
    from ray.cluster_utils import Cluster

    base = tmp_path_factory.mktemp("fleet")
    saved_cache = os.environ.get("PROFILER_CACHE")
    os.environ["PROFILER_CACHE"] = str(base / "cache")  # inherited by every node: device copies land here
    small_root = base / "small-root"
    (small_root / "proc").mkdir(parents=True)
    (small_root / "proc" / "cpuinfo").write_text(Path("/proc/cpuinfo").read_text())
    (small_root / "proc" / "meminfo").write_text("MemTotal: 65536 kB\nMemAvailable: 32768 kB\n")
    # quick node-death detection, so the death test waits seconds rather than half a minute
    health = {"health_check_period_ms": 1000, "health_check_failure_threshold": 3,
              "worker_niceness": 0}  # as profiler fleet up/join start Ray
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False,
                                                            "_system_config": health, **NODE_MEMORY})
    try:
        nodes = {name: _device_node(cluster, name) for name in ("dev-a", "dev-b")}
        nodes["dev-small"] = _device_node(cluster, "dev-small", PROFILER_SYSFS_ROOT=str(small_root))
        connection.connect(cluster.address)
        yield {"cluster": cluster, "nodes": nodes, "base": base, "address": cluster.address}
    finally:
        connection.disconnect()
        cluster.shutdown()
        if saved_cache is None:
            os.environ.pop("PROFILER_CACHE", None)
        else:
            os.environ["PROFILER_CACHE"] = saved_cache


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("fleet-models")
    return [write_tiny_llama(folder / "tiny-a.gguf", seed=3), write_tiny_llama(folder / "tiny-b.gguf", seed=4, n_layer=3)]


def _options(tmp_path: Path) -> RunOptions:
    return RunOptions(reports_dir=tmp_path / "reports", bandwidth_probe=False, energy=EnergyOptions(idle_s=0),
                          db=tmp_path / "fleet.db")


SWEEP = dict(n_prompt=[16], n_gen=[8], n_threads=[1], repetitions=2)


def _node_ids() -> dict[str, str]:
    return {n["Labels"][DEVICE_LABEL]: n["NodeID"] for n in ray.nodes() if n["Alive"] and DEVICE_LABEL in n.get("Labels", {})}


def _count(db: Path, where: str = "") -> int:
    """Rows stored so far (0 while the store is still being created)."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute(f"SELECT COUNT(*) FROM rows {where}").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _overlaps(intervals: list[tuple[float, float]]) -> bool:
    ordered = sorted(intervals)
    return any(b[0] < a[1] for a, b in zip(ordered, ordered[1:], strict=False))


def test_fleet_run_pins_each_device_streams_rows_and_never_overlaps(fleet, models, tmp_path):
    options = _options(tmp_path)
    options.warnings = ["skipped gemma-3-270m: not in the local cache"]  # as profiler run --all-local sets them
    messages: list[str] = []
    seen_while_running: list[int] = []
    result: dict = {}

    def go(key, devices, sweep):
        cb = Callbacks(message=messages.append)
        result[key] = dispatch.fleet_profile([str(m) for m in models], Sweep(**sweep), options, cb,
                                             fleet=dispatch.FleetOptions(devices=devices, address=fleet["address"]))

    # Two runs at once, both wanting dev-a: its single slot must serialise them.
    first = threading.Thread(target=go, args=("all", ["dev-a", "dev-b", "dev-small"], SWEEP))
    second = threading.Thread(target=go, args=("a-again", ["dev-a"], {**SWEEP, "n_prompt": [24]}))
    first.start()
    second.start()
    while first.is_alive() or second.is_alive():
        seen_while_running.append(_count(options.db))
        time.sleep(0.2)
    first.join()
    second.join()
    run, again = result["all"], result["a-again"]
    ids = _node_ids()
    rows = run.rows + again.rows
    # each test ran on its own device's node
    assert {r.device_name for r in run.rows} == {"dev-a", "dev-b"}
    assert all(r.device_node_id == ids[r.device_name] for r in rows)
    assert all(r.device_fingerprint.get("cpu_model") for r in rows)
    # 2 models x 2 tests per device
    assert sum(r.device_name == "dev-a" for r in run.rows) == 4 and sum(r.device_name == "dev-b" for r in run.rows) == 4
    # no two tests overlapped on one device, across both runs
    for device in ("dev-a", "dev-b"):
        spans = [(r.test_start_unix_s, r.test_end_unix_s) for r in rows if r.device_name == device]
        assert all(s < e for s, e in spans)
        assert not _overlaps(spans), device
    # rows landed in the store while the runs were still going
    assert any(0 < n < len(rows) for n in seen_while_running)
    # the device whose /proc says 64 MB refused by its own pre-flight; the others ran
    refused = [f for f in run.failures if f["device"] == "dev-small"]
    assert len(refused) == 1 and refused[0]["error"].startswith("refused:")
    assert "only 32 MiB is available" in refused[0]["error"]
    # models given by path were streamed to each device once, then held
    assert sum("streamed" in m and "dev-a:" in m for m in messages) >= 2
    stored = Store(options.db).load_run(run.run_id)
    assert set(stored.device["fleet"]) == {"dev-a", "dev-b", "dev-small"}
    # the caller's warnings are the fleet run's too
    assert "skipped gemma-3-270m: not in the local cache" in run.warnings
    assert "skipped gemma-3-270m: not in the local cache" in stored.warnings
    assert len(stored.rows) == 8


def test_resume_after_a_node_dies_finishes_only_the_rest(fleet, models, tmp_path):
    cluster = fleet["cluster"]
    victim = _device_node(cluster, "dev-d")
    # big enough that its decode test lasts seconds, so the node dies inside it
    slow = write_tiny_llama(tmp_path / "slow.gguf", n_embd=512, n_layer=8, n_head=8, n_head_kv=8, n_ff=2048,
                            n_ctx=2048, name="slow")
    options = _options(tmp_path)
    sweep = Sweep(n_prompt=[32], n_gen=[96], n_threads=[1], repetitions=2)
    names = [str(models[0]), str(slow)]
    fleet_opts = dispatch.FleetOptions(devices=["dev-b", "dev-d"], address=fleet["address"])
    result: dict = {}
    messages: list[str] = []
    worker = threading.Thread(target=lambda: result.setdefault("run", dispatch.fleet_profile(
        names, sweep, options, Callbacks(message=messages.append), fleet=fleet_opts)))
    worker.start()

    def dev_d_rows() -> int:
        return _count(options.db, "WHERE test_key LIKE 'dev-d|%'")

    deadline = time.monotonic() + 120
    while dev_d_rows() == 0 and time.monotonic() < deadline and worker.is_alive():
        time.sleep(0.1)
    assert dev_d_rows() > 0, "dev-d never finished a test"
    # kill it while the slow model's decode test (seconds long) is in flight
    while not any(re.match(r"dev-d: slow.gguf tg", m) for m in messages) and time.monotonic() < deadline:
        time.sleep(0.05)
    cluster.remove_node(victim, allow_graceful=False)
    worker.join(timeout=180)
    assert not worker.is_alive()
    run = result["run"]
    planned = 2 * 2  # 2 models x (pp32 + tg96)
    dead = [f for f in run.failures if f["device"] == "dev-d"]
    assert len(dead) == 1 and "dead" in dead[0]["error"], dead
    assert (dead[0]["model"], dead[0]["test"]) == ("slow.gguf", "tg96"), dead  # the test in flight
    assert sum(r.device_name == "dev-b" for r in run.rows) == planned  # the other device finished
    before_d = sum(r.device_name == "dev-d" for r in run.rows)
    assert 0 < before_d < planned

    # the device comes back (once Ray has marked its old node dead); resume re-dispatches only
    # its unfinished tests
    while any(n["NodeID"] == dead[0]["node_id"] and n["Alive"] for n in ray.nodes()):
        time.sleep(0.2)
    _device_node(cluster, "dev-d")
    messages.clear()
    resumed = dispatch.fleet_profile([], Sweep(), options, Callbacks(message=messages.append), resume=run.run_id,
                                     fleet=dispatch.FleetOptions(address=fleet["address"]))
    assert any(m == "dispatched to dev-d" for m in messages), messages
    assert sum(r.device_name == "dev-b" for r in resumed.rows) == planned
    assert sum(r.device_name == "dev-d" for r in resumed.rows) == planned
    keys = [k for k in Store(options.db).done_keys(run.run_id)]
    assert len(keys) == 2 * planned


def test_streaming_verifies_sha256_and_never_copies_twice(fleet, tmp_path):
    from profiler.fleet import hub, transfer
    from profiler.models.catalog import spec_for_path

    source = write_tiny_llama(tmp_path / "s.gguf", seed=7)
    model = transfer.describe(spec_for_path(source), source, by_path=True)
    actor = hub.start_hub(ray)
    try:
        ray.get(actor.offer.remote(model.sha256, str(source)))
        fetch = lambda sha, off, size: ray.get(actor.chunk.remote(sha, off, 64 * 1024))  # noqa: E731
        # the coordinator's file changed after it was described: the device refuses the copy
        bad = transfer.ModelFile(**{**model.to_dict(), "sha256": "0" * 64})
        ray.get(actor.offer.remote(bad.sha256, str(source)))
        with pytest.raises(UserError, match="sha256"):
            transfer.ensure_local(bad, "dev-x", fetch)
        assert not transfer.held_path("dev-x", bad).exists()
        assert not list(transfer.held_path("dev-x", bad).parent.glob("*.partial"))
        path, how = transfer.ensure_local(model, "dev-x", fetch)
        assert how == "streamed" and path.read_bytes() == source.read_bytes()
        calls = []
        path2, how2 = transfer.ensure_local(model, "dev-x", lambda *a: calls.append(a) or b"")
        assert (path2, how2, calls) == (path, "held", [])
    finally:
        ray.kill(actor)


def test_bad_inputs_stop_before_any_work(fleet, models, tmp_path):
    options = _options(tmp_path)
    run = lambda devices, address=fleet["address"]: dispatch.fleet_profile(  # noqa: E731
        [str(models[0])], Sweep(**SWEEP), options, fleet=dispatch.FleetOptions(devices=devices, address=address))
    with pytest.raises(UserError, match="unknown device nope"):
        run(["nope"])
    assert not options.db.exists()  # nothing started
    with pytest.raises(UserError, match="cannot reach the fleet coordinator"):
        connection.check_reachable(f"{LOOPBACK}:9")
    with pytest.raises(UserError, match="127.0.0.2"):
        connection.check_reachable("127.0.0.1:6379")
    with pytest.raises(UserError, match="unknown model"):
        dispatch.fleet_profile(["no-such-model"], Sweep(**SWEEP), options,
                               fleet=dispatch.FleetOptions(devices=["dev-a"], address=fleet["address"]))
    # a device on another profiler version: refused by name, before any work
    devices = registry.probe(ray, registry.select(ray, ["dev-a"]))
    assert devices[0].status == "ready"
    assert devices[0].info["worker_niceness"] == 0
    devices[0].info["versions"]["profiler"] = "0.0.1"
    devices[0].problem = None
    mine = registry.local_versions()
    theirs = devices[0].info["versions"]
    devices[0].problem = "version mismatch: " + ", ".join(
        f"{k} {theirs[k]} (coordinator {mine[k]})" for k in ("profiler",) if theirs[k] != mine[k])
    with pytest.raises(UserError, match="dev-a: version mismatch: profiler 0.0.1"):
        registry.refuse_unusable(devices)
    assert not options.db.exists()


def test_the_coordinator_waits_on_events_and_never_wakes_for_nothing(fleet, models, tmp_path, monkeypatch):
    """With fleet up --device the coordinator shares the measured machine: it must sleep until a
    device reports something or a task ends, never poll Ray on a timer (it once woke at 5 Hz). Every
    ray.wait of the run is recorded through the real one: none has a timeout, none returns empty,
    across a 2 s --delay between the device's two tests."""
    real_wait = ray.wait
    calls: list[tuple[int, object]] = []

    def recording_wait(refs, *args, **kwargs):
        ready, rest = real_wait(refs, *args, **kwargs)
        calls.append((len(ready), kwargs.get("timeout", args[1] if len(args) > 1 else None)))
        return ready, rest

    monkeypatch.setattr(ray, "wait", recording_wait)
    options = _options(tmp_path)
    options.energy = EnergyOptions(idle_s=0, delay_s=2.0)
    run = dispatch.fleet_profile([str(models[0])], Sweep(n_prompt=[16, 32], n_gen=[0], n_threads=[1], repetitions=1),
                                 options, fleet=dispatch.FleetOptions(devices=["dev-a"], address=fleet["address"]))
    assert [r.test for r in run.rows] == ["pp16", "pp32"] and run.failures == []
    assert calls, "the coordinator never waited on Ray"
    assert [timeout for _, timeout in calls] == [None] * len(calls)
    assert all(n_ready > 0 for n_ready, _ in calls), calls
