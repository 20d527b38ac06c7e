"""The fleet's commands as a user runs them: 'profiler fleet up' starts a real Ray head (ray start,
token authentication, bound to a loopback address) that is also a device; devices, run, report
and the bad-input cases go through the CLI. The head's processes are stopped by id at the end."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

# Only look for Ray here (importing it would fix its authentication settings for this process
# before test_fleet.py sets them); these tests drive Ray through the CLI's own processes.
if importlib.util.find_spec("ray") is None:
    pytest.skip("the fleet extra is not installed: pip install -e '.[fleet]'", allow_module_level=True)

from profiler.errors import UserError  # noqa: E402
from profiler.fleet import cluster, connection  # noqa: E402
from profiler.report.terminal import short_device  # noqa: E402
from support.emulation import skip_ray_under_emulation  # noqa: E402

LOOPBACK = "127.0.0.2"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def profiler(args: list[str], env: dict, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "profiler", *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    """'profiler fleet up --device solo' in a private cache; stopped by process id afterwards."""
    skip_ray_under_emulation()
    base = tmp_path_factory.mktemp("fleet-cli")
    env = {**os.environ, "PROFILER_CACHE": str(base / "cache"), "PROFILER_REPORTS": str(base / "reports")}
    for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        env.pop(key, None)  # the CLI sets up its own token
    port = _free_port()
    up = profiler(["fleet", "up", "--address", LOOPBACK, "--port", str(port), "--device", "solo"], env, base)
    try:
        assert up.returncode == 0, up.stderr
        yield {"env": env, "base": base, "address": f"{LOOPBACK}:{port}", "up": up}
    finally:
        down = profiler(["fleet", "down", "--port", str(port)], env, base)
        assert down.returncode == 0 and "stopped" in down.stdout, down.stderr
        assert not cluster.session_processes(port)


def test_up_prints_a_token_join_command_and_keeps_the_token_private(head):
    out = head["up"].stdout
    assert f"profiler fleet join {head['address']} --name DEVICE-NAME" in out
    assert "PROFILER_FLEET_TOKEN=" in out
    token = Path(head["base"] / "cache" / "fleet" / "coordinator" / "auth_token")
    assert token.stat().st_mode & 0o077 == 0  # readable by its owner only
    assert token.read_text().strip() in out


def test_devices_run_and_report_through_the_cli(head, tiny_gguf):
    env, base = head["env"], head["base"]
    listed = profiler(["fleet", "devices", "--json"], env, base)
    assert listed.returncode == 0, listed.stderr
    devices = json.loads(listed.stdout)
    assert [(d["name"], d["status"]) for d in devices] == [("solo", "ready")]
    assert devices[0]["worker_niceness"] == 0  # Ray's default 15 would starve the measurement under load
    ran = profiler(["fleet", "run", str(tiny_gguf), "-p", "16", "-n", "8", "-r", "2", "--idle", "0", "--no-bandwidth",
                    "-o", "json"], env, base)
    assert ran.returncode == 0, ran.stderr
    rows = json.loads(ran.stdout)  # -o json: the rows, as llama-bench prints them
    assert {(r["device_name"], r["test"]) for r in rows} == {("solo", "pp16"), ("solo", "tg8")}
    assert all(r["device_node_id"] == devices[0]["node_id"] for r in rows)
    [run_id] = [p.name for p in (base / "reports").iterdir() if p.is_dir()]
    # without -o: one device-aware output, not profiler run's own table with "on unknown"
    shown_run = profiler(["fleet", "run", str(tiny_gguf), "-p", "16", "-n", "8", "-r", "2", "--idle", "0",
                          "--no-bandwidth"], env, base)
    assert shown_run.returncode == 0, shown_run.stderr
    out = shown_run.stdout
    assert "device x model x test" in out and "profiler results" not in out and "unknown" not in out, out
    cpu = re.escape(short_device({"cpu_model": devices[0]["fingerprint"]["cpu_model"]}))
    closing = [line for line in out.splitlines() if re.match(rf"\S+ \S+ on solo \[.*{cpu}.*\] \(\d+ threads?\): ", line)]
    assert len(closing) == 1, out  # one quotable line per (device, model)
    assert "t/s prompt" in closing[0] and "t/s generation" in closing[0]
    assert "saved to " in out
    report = profiler(["fleet", "report", run_id, "--html", str(base / "fleet.html")], env, base)
    assert report.returncode == 0, report.stderr
    assert "device x model x test" in report.stdout and "solo" in report.stdout
    assert "<th class=\"l\">device</th>" in (base / "fleet.html").read_text()
    shown = profiler(["show", run_id], env, base)
    assert shown.returncode == 0 and "devices: solo" in shown.stdout


@pytest.mark.parametrize("args, message", [
    (["fleet", "run", "m.gguf", "--devices", "nope"], "unknown device nope (live devices: solo)"),
    (["fleet", "join", f"{LOOPBACK}:9", "--name", "pi"], "cannot reach the fleet coordinator"),
])
def test_bad_input_is_one_line_and_exit_2(head, tiny_gguf, args, message):
    args = [str(tiny_gguf) if a == "m.gguf" else a for a in args]
    done = profiler(args, head["env"], head["base"], timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], done.stderr


@pytest.mark.parametrize("call, message", [
    (lambda: cluster.join(f"{LOOPBACK}:9", "pi", "x" * 64), "cannot reach the fleet coordinator"),
    (lambda: cluster.join(f"{LOOPBACK}:9", "bad name!", "x" * 64), "device name 'bad name!'"),
    (lambda: cluster.up("0.0.0.0"), "0.0.0.0) is refused"),
    (lambda: cluster.up("127.0.0.1"), "127.0.0.2"),
    (lambda: connection.check_reachable("127.0.0.1:6379"), "127.0.0.2"),
    (lambda: connection.split_address("pi5"), "not an address like"),
])
def test_bad_input_in_the_library_is_a_user_error(call, message):
    with pytest.raises(UserError, match=re.escape(message)):
        call()


def test_join_without_a_token_says_where_to_find_it(monkeypatch):
    monkeypatch.delenv(connection.TOKEN_ENV, raising=False)
    with socket.socket() as listener:  # something listening, so the token check is what fails
        listener.bind((LOOPBACK, 0))
        listener.listen()
        with pytest.raises(UserError, match="no fleet token"):
            cluster.join(f"{LOOPBACK}:{listener.getsockname()[1]}", "pi", None)
