"""Ctrl-C on the coordinator of 'profiler fleet run' (issue #13): the remote task and its measuring
child stop, the finished rows stay, the resume command is printed, and --resume runs only the rest.

The fleet is what a user starts: 'profiler fleet up' (a Ray head with token authentication, bound to
the loopback address 127.0.0.2, no device) and 'profiler fleet join' (a separate Ray node labelled as
the device). Both are stopped by process id in the fixture's teardown, even when a test fails.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal

import psutil
import pytest

# Only look for Ray here: the CLI's own processes drive it (importing it would fix its
# authentication settings for the whole pytest process).
if importlib.util.find_spec("ray") is None:
    pytest.skip("the fleet extra is not installed: pip install -e '.[fleet]'", allow_module_level=True)

from profiler.fleet import cluster  # noqa: E402
from support.fleet_cli import HUNG_S, fleet_run, running_fleet, sigint_default, wait_until  # noqa: E402
from support.fleet_cli import profiler_cli as _profiler  # noqa: E402
from support.fleet_cli import run_status as _run_status  # noqa: E402
from support.fleet_cli import stored as _stored  # noqa: E402

DEVICE = "dev-int"
BASE = ["--idle", "0", "--no-bandwidth", "-t", "1"]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """A head (coordinator only) and one joined device node, in a private cache."""
    with running_fleet(tmp_path_factory.mktemp("fleet-int"), [DEVICE]) as started:
        yield started


def _fleet_task_processes(port: int) -> list[psutil.Process]:
    """This fleet's processes that are measuring: the Ray task (its worker retitles itself
    ray::profile-DEVICE while it runs) and the measuring child (python -m profiler.run.worker)."""
    found = []
    for proc in cluster.session_processes(port):
        try:
            line = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        if f"ray::profile-{DEVICE}" in line or "profiler.run.worker" in line:
            found.append(proc)
    return found


def _gone(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE  # dead; reaping is its parent's business
    except psutil.NoSuchProcess:
        return True


def test_ctrl_c_on_the_coordinator_cancels_the_device_task_and_resume_finishes_the_rest(fleet, tiny_gguf):
    env, base, port = fleet["env"], fleet["base"], fleet["port"]
    db = base / "reports" / "profiler.db"
    # --delay 3600 holds the device's measuring child for an hour between its first and second
    # test: however late this poll sees the first row, the sweep is still going when the SIGINT
    # lands (by construction, not by timing; the resume below runs without the delay)
    args = [str(tiny_gguf), "-p", "16,32", "-n", "0", "-r", "1", "--delay", "3600", "--devices", DEVICE, *BASE]
    with fleet_run(args, env, base, preexec_fn=sigint_default) as proc:
        wait_until(lambda: len(_stored(db)) >= 1, "the first row", proc, every_s=0.1)
        measuring = _fleet_task_processes(port)
        lines = [" ".join(p.cmdline()) for p in measuring]
        assert any("profiler.run.worker" in line for line in lines), lines  # the child is in its hour-long delay
        assert any(f"ray::profile-{DEVICE}" in line for line in lines), lines
        child = next(p for p, line in zip(measuring, lines, strict=True) if "profiler.run.worker" in line)
        os.kill(proc.pid, signal.SIGINT)  # the coordinator only, as `kill -INT` would
        _, err = proc.communicate(timeout=HUNG_S)
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    match = re.search(r"profiler fleet run --resume (\S+)", err)
    assert match, err
    run_id = match.group(1)
    # the measuring child is already dead when the coordinator has exited: nothing measures on
    # after the Ctrl-C. (Ray also ends a disconnected driver's tasks during ray.shutdown, so this
    # holds through that path too; it does not tell the fleet's own cancel from Ray's cleanup.)
    assert _gone(child), "the measuring child outlived the coordinator"
    # the remote task is gone too, after a bounded wait; Ray's idle worker process may stay, unnamed
    _, alive = psutil.wait_procs(measuring, timeout=30)
    assert [p for p in alive if not _gone(p)] == [], alive
    assert _fleet_task_processes(port) == []
    assert _stored(db) == [(DEVICE, "pp16")]  # the finished test was kept, nothing after it
    assert _run_status(db, run_id) == "interrupted"

    resumed = _profiler(["fleet", "run", "--resume", run_id, "-o", "json", *BASE], env, base)
    assert resumed.returncode == 0, resumed.stderr
    rows = json.loads(resumed.stdout)  # every row of the run, in order
    assert [(r["device_name"], r["test"]) for r in rows] == [(DEVICE, "pp16"), (DEVICE, "pp32")]
    assert _stored(db) == [(DEVICE, "pp16"), (DEVICE, "pp32")]  # only the rest was measured again
    assert _run_status(db, run_id) == "done"
