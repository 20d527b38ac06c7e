"""A device's node killed mid-run, then the run resumed, as a user sees it (issue #21.2): one line
per event and none of Ray's own logs on the terminal, the resume command, the device table in
``profiler run``'s order, a cost-only choice when no quality data exists, ``fleet devices`` naming
the live node, and a resume that completes the run exiting 0 with the old failure recovered.

The fleet is what a user starts ('profiler fleet up', one 'profiler fleet join' per device); the
device's raylet is killed with SIGKILL, as the out-of-memory killer would. Every Ray process is
stopped by process id in the teardown, even when the test fails.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from pathlib import Path

import psutil
import pytest

# Only look for Ray here: the CLI's own processes drive it (importing it would fix its
# authentication settings for the whole pytest process).
if importlib.util.find_spec("ray") is None:
    pytest.skip("the fleet extra is not installed: pip install -e '.[fleet]'", allow_module_level=True)

from profiler.fleet import DEVICE_LABEL, cluster  # noqa: E402
from support.fleet_cli import (  # noqa: E402
    HUNG_S,
    fleet_run,
    join,
    profiler_cli,
    run_status,
    running_fleet,
    stored,
    wait_until,
)
from support.tinymodel import write_tiny_llama  # noqa: E402

VICTIM, SURVIVOR = "dev-b", "dev-a"
# 2 models x (pp16, tg8, pp8+tg4) on each of two devices: 12 rows. --delay 3 leaves seconds between
# the victim's first row and its next, so the kill lands mid-run however late this test looks.
RUN = ["-p", "16", "-n", "8", "-pg", "8,4", "-r", "1", "--delay", "3", "--idle", "0", "--no-bandwidth", "-t", "1"]
TESTS = ["pp16", "tg8", "pp8+tg4"]
RAY_CHATTER = ("state-dump", "Raylet is terminated", "(raylet)", "Last 20 lines", "NodeManagerService", "Traceback")


def _raylet_of(device: str, port: int) -> psutil.Process:
    """The device node's raylet: its command line carries the node's label (the device name)."""
    found = []
    for proc in cluster.session_processes(port):
        try:
            if proc.name() == "raylet" and re.search(rf"{DEVICE_LABEL}\W+{device}\b", " ".join(proc.cmdline())):
                found.append(proc)
        except psutil.Error:
            continue
    assert len(found) == 1, found
    return found[0]


def _devices(fleet: dict, *flags: str) -> subprocess.CompletedProcess:
    return profiler_cli(["fleet", "devices", "--address", fleet["address"], *flags], fleet["env"], fleet["base"])


def _victim_dead(fleet: dict) -> bool:
    done = _devices(fleet, "--all", "--json")
    assert done.returncode == 0, done.stderr
    return [d["status"] for d in json.loads(done.stdout) if d["name"] == VICTIM] == ["dead"]


def _table_tests(stdout: str, device: str) -> list[tuple[str, str]]:
    """(model, test) of each line of the device x model x test table for ``device``, in order."""
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in stdout.splitlines() if line.startswith("│")]
    return [(c[1], c[3]) for c in cells if c and c[0] == device]


def test_a_device_killed_mid_run_then_resumed_reads_well(tmp_path):
    models = [str(write_tiny_llama(tmp_path / "tiny-a.gguf", seed=3)),
              str(write_tiny_llama(tmp_path / "tiny-b.gguf", seed=4, n_layer=3))]
    with running_fleet(tmp_path / "fleet", [SURVIVOR, VICTIM]) as fleet:
        base, port = fleet["base"], fleet["port"]
        env = {**fleet["env"], "COLUMNS": "1000"}  # one line per message and table row, as a wide terminal shows them
        db = base / "reports" / "profiler.db"
        args = [*models, *RUN, "--devices", f"{SURVIVOR},{VICTIM}", "--address", fleet["address"]]
        with fleet_run(args, env, base) as proc:
            wait_until(lambda: any(d == VICTIM for d, _ in stored(db)) or proc.poll() is not None, "a row of the victim")
            _raylet_of(VICTIM, port).kill()
            out, err = proc.communicate(timeout=HUNG_S)

        # the run ends with what is missing: exit 1, and how to continue
        assert proc.returncode == 1, err
        match = re.search(r"continue with profiler fleet run --resume (\S+)", err)
        assert match, err
        run_id = match.group(1)
        victim_rows = [t for d, t in stored(db, run_id) if d == VICTIM]
        assert 1 <= len(victim_rows) < 6 and len(stored(db, run_id)) == 6 + len(victim_rows)
        # none of Ray's own logs on the terminal; one line naming the device, the event and Ray's log
        for chatter in RAY_CHATTER:
            assert chatter not in out + err, chatter
        said = [line for line in err.splitlines() if line.startswith(f"{VICTIM} failed")]
        assert len(said) == 1, err
        log = re.search(r"device left the fleet: its Ray node \w+ is dead \(Ray's log: (\S+/logs/raylet[.\d]*\.out)\)",
                        said[0])
        assert log and Path(log.group(1)).exists(), said  # one machine here: the device's log folder is ours
        # the table in profiler run's order: each model's tests as the sweep lists them (pp, tg, pg)
        assert _table_tests(out, SURVIVOR) == [(m, t) for m in ("tiny-a.gguf", "tiny-b.gguf") for t in TESTS]
        # no quality data: said so, how to get it, and the choice on cost alone
        assert "best none" not in out and "no limits" not in out and "excluded" not in out
        assert re.search(rf"{SURVIVOR}: best {SURVIVOR}: tiny-\w\.gguf t1 \(ALL_F32\) - on cost alone", out), out
        assert "no quality data: no hellaswag score exists" in out and "profiler eval MODEL --hellaswag" in out

        # the device comes back under its name: fleet devices shows the live node, the dead one with --all
        wait_until(lambda: _victim_dead(fleet), "Ray marks the killed node dead")
        join(VICTIM, fleet)
        listed = _devices(fleet)
        assert listed.returncode == 0, listed.stderr
        rows = [line for line in listed.stdout.splitlines() if line.startswith("│") and f" {VICTIM} " in line]
        assert len(rows) == 1 and "ready" in rows[0], listed.stdout
        assert re.search(r"[1-9] dead node\(s\) not shown .*--all", listed.stdout), listed.stdout
        every = _devices(fleet, "--all")
        assert every.returncode == 0, every.stderr
        assert "dead, replaced by node" in " ".join(every.stdout.split()), every.stdout

        # the resume measures only what is missing, and the run is then complete: exit 0
        resumed = profiler_cli(["fleet", "run", "--resume", run_id, "--address", fleet["address"]], env, base)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert len(stored(db, run_id)) == 12 and run_status(db, run_id) == "done"
        assert sorted(stored(db, run_id)) == sorted((d, t) for d in (SURVIVOR, VICTIM) for t in TESTS * 2)
        assert "failed on" not in resumed.stdout and "continue with" not in resumed.stderr
        assert re.search(rf"recovered on {VICTIM}: .*device left the fleet", resumed.stdout), resumed.stdout
        assert "recovered: 1 earlier failure(s)" in resumed.stderr
        for chatter in RAY_CHATTER:
            assert chatter not in resumed.stdout + resumed.stderr, chatter
