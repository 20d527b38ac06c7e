"""Fault injection: a killed child, Ctrl-C on the parent, resume, a corrupt database, a read-only
reports folder, a full disk and malformed GGUF files. Each asserts what was kept and what was said."""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from profiler import api, atomic
from profiler.errors import UserError
from profiler.measure.plan import Sweep
from profiler.measure.session import EnergyOptions
from profiler.run.options import Callbacks, RunInterrupted, RunOptions
from support.tinymodel import write_tiny_llama

BASE = ["--idle", "0", "--no-bandwidth"]


@pytest.fixture(scope="module")
def slow_gguf(tmp_path_factory) -> Path:
    """Big enough that a decode test lasts seconds, so a fault can land inside it."""
    return write_tiny_llama(tmp_path_factory.mktemp("slow") / "slow.gguf", n_embd=512, n_layer=8, n_head=8,
                            n_head_kv=8, n_ff=2048, n_ctx=4096, name="slow")


def _sigint_default() -> None:
    # A shell running this suite in the background (`pytest &` in a script) hands its children
    # SIGINT ignored, and Python keeps an inherited SIG_IGN: the run would never see the Ctrl-C.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "profiler", "run", *args, *BASE], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_sigint_default)


def stored_rows(db: Path) -> list[tuple]:
    if not db.exists():
        return []
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT model_name, test FROM rows ORDER BY id").fetchall()
    except sqlite3.OperationalError:
        return []


def wait_for(predicate, proc: subprocess.Popen | None = None, timeout: float = 900.0) -> None:
    """Poll until ``predicate``; fail at once if the run ended first. The timeout only stops a
    hung test: it is far beyond what any machine needs, so a slow or busy machine never fails here."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the run ended (exit {proc.returncode}) before the awaited event: {proc.stderr.read()}")
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def test_killed_child_ends_only_that_model(slow_gguf, tiny_gguf, tmp_path):
    proc = start([str(slow_gguf), str(tiny_gguf), "-p", "16", "-n", "400", "-r", "3", "-t", "1"], tmp_path)
    db = tmp_path / "reports" / "profiler.db"
    wait_for(lambda: len(stored_rows(db)) >= 1, proc)  # pp16 of the slow model is done; tg400 is running
    parent = psutil.Process(proc.pid)
    parent.suspend()  # it can neither commit tg400 nor start the next model's child meanwhile
    try:
        (child,) = parent.children()
        assert stored_rows(db) == [("slow.gguf", "pp16")], "the slow model's tg400 (seconds of decoding) already ended"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        parent.resume()
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 1, err
    assert "failed: slow.gguf (tg400): crashed: SIGKILL" in err
    assert stored_rows(db) == [("slow.gguf", "pp16"), ("tiny.gguf", "pp16"), ("tiny.gguf", "tg400")]
    run_dir = next(p for p in (tmp_path / "reports").iterdir() if p.is_dir())
    saved = json.loads((run_dir / "results.json").read_text())
    assert saved["failures"][0]["model"] == "slow.gguf" and saved["failures"][0]["test"] == "tg400"
    assert saved["failures"][0]["exit_code"] == -signal.SIGKILL
    assert "tg400" in out  # the table still shows what finished


def test_sigint_to_the_parent_keeps_finished_tests_and_resume_completes(slow_gguf, tmp_path):
    # --delay 3600 holds the child for an hour between its first and second test: however late
    # this poll sees the first row, the run is still going when the SIGINT lands (by construction,
    # not by timing; the resume below runs without the delay)
    proc = start([str(slow_gguf), "-p", "16,32", "-n", "16", "-r", "2", "-t", "1", "--delay", "3600"], tmp_path)
    db = tmp_path / "reports" / "profiler.db"
    wait_for(lambda: len(stored_rows(db)) >= 1, proc)
    children = psutil.Process(proc.pid).children(recursive=True)
    assert children, "the model's child process is running"
    os.kill(proc.pid, signal.SIGINT)  # the parent only, as `kill -INT` would
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 130, err
    match = [line for line in err.splitlines() if "--resume" in line]
    assert match, err
    run_id = match[0].rsplit(" ", 1)[-1]
    assert "Traceback" not in err
    assert psutil.wait_procs(children, timeout=10)[1] == [], "no orphaned child keeps running"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT status FROM runs WHERE run_id=?", (run_id,)).fetchone() == ("interrupted",)
    assert stored_rows(db) == [("slow.gguf", "pp16")]

    done = subprocess.run([sys.executable, "-m", "profiler", "run", "--resume", run_id, "-o", "json", *BASE],
                          cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert [r["test"] for r in json.loads(done.stdout)] == ["pp16", "pp32", "tg16"]
    assert stored_rows(db) == [("slow.gguf", "pp16"), ("slow.gguf", "pp32"), ("slow.gguf", "tg16")]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT status FROM runs WHERE run_id=?", (run_id,)).fetchone() == ("done",)


def _gone(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE  # dead; reaping is the new parent's business
    except psutil.NoSuchProcess:
        return True


def test_a_child_never_outlives_its_parent(slow_gguf, tmp_path):
    """Whatever ends the parent (here SIGKILL, where no cleanup can run; a Ctrl-C while it was
    still starting the child is the same case), the child must not go on measuring as an orphan."""
    proc = start([str(slow_gguf), "-p", "16,32", "-n", "0", "-r", "1", "-t", "1", "--delay", "3600"], tmp_path)
    wait_for(lambda: len(stored_rows(tmp_path / "reports" / "profiler.db")) >= 1, proc)
    (child,) = psutil.Process(proc.pid).children()  # now in its hour-long --delay
    proc.kill()
    proc.communicate()
    wait_for(lambda: _gone(child))  # no timing claim: on the parent's death it dies at once, or never


def test_ctrl_c_in_the_terminal_interrupts_the_run_not_the_model(slow_gguf, tmp_path):
    """A terminal's Ctrl-C reaches the parent and the child together; the child dying of it is
    the run's interruption, never recorded as the model failing."""
    proc = subprocess.Popen([sys.executable, "-m", "profiler", "run", str(slow_gguf), "-p", "16,32", "-n", "0", "-r", "1",
                             "-t", "1", "--delay", "3600", *BASE], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, preexec_fn=_sigint_default)
    wait_for(lambda: len(stored_rows(tmp_path / "reports" / "profiler.db")) >= 1, proc)
    os.killpg(proc.pid, signal.SIGINT)  # the whole process group, as the terminal does
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 130, err
    assert "--resume" in err and "failed" not in err, err
    run_dir = next(p for p in (tmp_path / "reports").iterdir() if p.is_dir())
    assert json.loads((run_dir / "results.json").read_text())["failures"] == []


def _timed_run(model: Path, args: list[str], cwd: Path) -> tuple[float, list[dict]]:
    """Wall seconds of a whole ``profiler run`` (both processes' start-up included), and its rows."""
    cwd.mkdir(exist_ok=True)
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "profiler", "run", str(model), *args, "-o", "json", *BASE],
                          cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return time.monotonic() - start, json.loads(done.stdout)


def test_per_test_timeout_kills_and_records(slow_gguf, tiny_gguf, tmp_path):
    """The --timeout is sized from this machine's own speed, so the test means the same on a fast
    laptop and in a 50x slower emulator: twice what the tiny model's whole run takes here (start-up
    included), while the slow model's test, predicted from its measured decode rate, is far longer."""
    tiny_wall_s, _ = _timed_run(tiny_gguf, ["-p", "0", "-n", "1000", "-r", "5", "-t", "1"], tmp_path / "calibrate")
    _, (slow_row,) = _timed_run(slow_gguf, ["-p", "0", "-n", "32", "-r", "1", "-t", "1"], tmp_path / "calibrate")
    timeout_s = max(3, math.ceil(2 * tiny_wall_s))
    slow_test_s = 5 * 1000 / slow_row["decode_ts"]
    if slow_test_s < 2 * timeout_s:
        pytest.skip(f"the slow model's tg1000 x5 (~{slow_test_s:.0f} s) is too short here to outlast a "
                    f"{timeout_s} s timeout that the tiny model's run needs")
    done = subprocess.run(
        [sys.executable, "-m", "profiler", "run", str(slow_gguf), str(tiny_gguf), "-p", "0", "-n", "1000", "-r", "5",
         "-t", "1", "--timeout", str(timeout_s), *BASE], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    assert f"failed: slow.gguf (tg1000): timeout: no result within {timeout_s} s (--timeout)" in done.stderr
    assert stored_rows(tmp_path / "reports" / "profiler.db") == [("tiny.gguf", "tg1000")]


def test_a_test_longer_than_the_context_is_refused_before_anything_runs(tiny_gguf, tmp_path):
    done = subprocess.run([sys.executable, "-m", "profiler", "run", str(tiny_gguf), "-p", "0", "-n", "2000", *BASE],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    _clean_error(done, "needs 2000 tokens of context but the model was trained for 1024")
    assert not (tmp_path / "reports").exists()


def _clean_error(done: subprocess.CompletedProcess, fragment: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], done.stderr


def test_corrupt_database_file(tiny_gguf, tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "profiler.db").write_bytes(b"\x00garbage" * 512)
    done = subprocess.run([sys.executable, "-m", "profiler", "run", str(tiny_gguf), "-p", "8", "-n", "0", "-r", "1", *BASE],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    _clean_error(done, "is unreadable")
    assert "PROFILER_DB" in done.stderr
    assert [p.name for p in reports.iterdir()] == ["profiler.db"], "no half-written run folder"
    history = subprocess.run([sys.executable, "-m", "profiler", "history"], cwd=tmp_path, capture_output=True, text=True)
    _clean_error(history, "is unreadable")


def _make_read_only(folder: Path) -> bool:
    """chattr +i stops even root; fall back to mode bits for normal users."""
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0:
        return True
    folder.chmod(0o555)
    return not os.access(folder, os.W_OK)


def test_read_only_reports_directory(tiny_gguf, tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    if not _make_read_only(reports):
        pytest.skip("cannot make a read-only folder here (root without chattr)")
    try:
        done = subprocess.run([sys.executable, "-m", "profiler", "run", str(tiny_gguf), "-p", "8", "-n", "0", "-r", "1",
                               *BASE], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        _clean_error(done, "cannot create results database")
        assert "--reports-dir or PROFILER_DB" in done.stderr
        assert list(reports.iterdir()) == []
    finally:
        subprocess.run(["chattr", "-i", str(reports)], capture_output=True)
        reports.chmod(0o755)


def test_full_disk_leaves_no_half_written_file(tmp_path, monkeypatch):
    target = tmp_path / "results.json"
    target.write_text("previous complete report")
    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fdopen", lambda fd, *a, **k: FullDisk(real_fdopen(fd, *a, **k)))
    with pytest.raises(UserError, match="cannot write .*results.json: No space left on device"):
        atomic.write_user_file(target, "new report")
    assert target.read_text() == "previous complete report"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"], "temp file removed"


@pytest.mark.parametrize(
    "content, fragment",
    [(b"", "is empty"), (b"GGML" + b"\0" * 60, "is not a GGUF file"), (b"GGUF\x03\0\0\0" + (10**9).to_bytes(8, "little") * 2, "is corrupt")],
)
def test_malformed_gguf_files_in_a_sweep(tiny_gguf, tmp_path, content, fragment):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(content)
    done = subprocess.run([sys.executable, "-m", "profiler", "run", str(tiny_gguf), str(bad), "-p", "8", "-n", "0",
                           "-r", "1", *BASE], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    _clean_error(done, fragment)
    assert not (tmp_path / "reports").exists(), "bad input is caught before anything is measured or written"


def test_truncated_tensor_data(tiny_gguf, tmp_path):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_gguf.read_bytes()[: tiny_gguf.stat().st_size - 1000])
    done = subprocess.run([sys.executable, "-m", "profiler", "run", str(cut), "-p", "8", "-n", "0", "-r", "1", *BASE],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    _clean_error(done, "truncated")


def test_in_process_and_isolated_runs_give_the_same_rows(tiny_gguf, tmp_path):
    sweep = Sweep(n_prompt=[16], n_gen=[4], repetitions=2)
    rows = {}
    for isolate in (False, True):
        options = RunOptions(reports_dir=tmp_path / str(isolate), bandwidth_probe=False,
                                 energy=EnergyOptions(idle_s=0), isolate=isolate)
        rows[isolate] = api.profile([str(tiny_gguf)], sweep, options).rows
    assert [r.test for r in rows[False]] == [r.test for r in rows[True]] == ["pp16", "tg4"]
    for a, b in zip(rows[False], rows[True], strict=True):
        assert (a.test, a.n_prompt, a.n_gen, a.model_n_params, a.kv_cache_bytes, a.repetitions) == \
               (b.test, b.n_prompt, b.n_gen, b.model_n_params, b.kv_cache_bytes, b.repetitions)
        assert len(b.samples_ns) == 2 and b.peak_rss_bytes > 0


def test_a_ctrl_c_right_after_the_run_is_registered_leaves_it_resumable(tiny_gguf, tmp_path):
    """The KeyboardInterrupt lands in the first callback after the run is in the store, before
    any test: the run is still marked interrupted and named for --resume."""
    def ctrl_c(total):
        raise KeyboardInterrupt

    options = RunOptions(reports_dir=tmp_path / "reports", bandwidth_probe=False, energy=EnergyOptions(idle_s=0))
    with pytest.raises(RunInterrupted) as caught:
        api.profile([str(tiny_gguf)], Sweep(n_prompt=[8], n_gen=[0], repetitions=1), options,
                    Callbacks(tests_planned=ctrl_c))
    with sqlite3.connect(tmp_path / "reports" / "profiler.db") as conn:
        status = conn.execute("SELECT status FROM runs WHERE run_id=?", (caught.value.run_id,)).fetchone()
    assert status == ("interrupted",)
