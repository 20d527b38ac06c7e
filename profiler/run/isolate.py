"""Crash isolation: each model's sweep runs in a child process (optimum-benchmark's process launcher).

A segfault or abort in the native runtime, an out-of-memory kill or a per-test timeout ends only
that child; the parent records the cause (signal, exit code, test in flight, stderr tail) and goes
on with the next model. Rows travel back over a dedicated pipe as JSON lines the moment a test
finishes, and the parent commits each one to the results store at once.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from profiler.errors import UserError
from profiler.measure.plan import TestConfig
from profiler.results.schema import TestResult, row_from_dict
from profiler.run.job import Job
from profiler.run.options import Callbacks

STDERR_TAIL_LINES = 20
# The parent sleeps until the child says something (its event pipe), so it does not wake during
# a test: on a busy 2-core machine every wake-up can preempt one of the measured process's
# OpenMP workers and stall the others at their barrier. It wakes on its own only at a --timeout
# deadline, or every SAFETY_POLL_S to notice a child that exited while something it started
# still holds the pipe open (no end-of-file then). A Ctrl-C interrupts the wait at once.
SAFETY_POLL_S = 5.0


def _child_env() -> dict:
    """The parent's environment, plus its /sys and /proc redirection (set in-process by tests)."""
    from profiler.platform import sysfs

    env = dict(os.environ)
    env["PROFILER_SYSFS_ROOT"] = str(sysfs.root())
    return env


def _signal_name(code: int) -> str:
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    if name == "SIGKILL":
        return "SIGKILL (killed: out of memory, or by another process)"
    return name


class ChildFailure(Exception):
    """The child ended without finishing: carries the record the run keeps."""

    def __init__(self, record: dict) -> None:
        super().__init__(record["error"])
        self.record = record


def run_model(
    job: Job,
    on_row: Callable[[TestConfig, TestResult], None],
    cb: Callbacks,
    timeout_s: float | None,
    verbose: bool = False,
) -> None:
    """Run one model's sweep in a child; raise ChildFailure (recorded) or UserError (bad input).

    A Ctrl-C (KeyboardInterrupt) anywhere from the start of the child to its collection kills the
    child and propagates; a child that died of the Ctrl-C itself (it shares the terminal's process
    group) is the run's interruption too, never a model failure. The child also dies with this
    process (worker.py asks the kernel for that), which covers a Ctrl-C inside Popen itself.
    """
    read_fd, write_fd = os.pipe()
    argv = [sys.executable, "-m", "profiler.run.worker", str(write_fd), str(os.getpid())]
    try:
        child = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            pass_fds=(write_fd,), text=True, env=_child_env(),
        )
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    events: queue.Queue = queue.Queue()
    tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
    readers = [
        threading.Thread(target=_read_events, args=(read_fd, events), daemon=True),
        threading.Thread(target=_read_stderr, args=(child.stderr, tail, verbose), daemon=True),
    ]
    state = {"test": None, "started": time.monotonic(), "user_error": None}
    try:
        for thread in readers:
            thread.start()
        _send_job(child, job)
        _pump(child, events, state, on_row, cb, timeout_s)
    except BaseException:
        _kill(child)
        raise
    finally:
        for thread in readers:
            if thread.is_alive():
                thread.join(timeout=5)
    if state["user_error"]:
        raise UserError(state["user_error"])
    if child.returncode in (-signal.SIGINT, 130) and not state.get("timed_out"):
        raise KeyboardInterrupt  # the terminal's Ctrl-C reached the child first
    if child.returncode != 0 or state.get("timed_out"):
        raise ChildFailure(_failure_record(job, child.returncode, state, tail, timeout_s))


def _send_job(child: subprocess.Popen, job: Job) -> None:
    try:
        child.stdin.write(json.dumps(job.to_dict()))
        child.stdin.close()
    except BrokenPipeError:
        pass  # the child died at once; its exit status tells why


def _pump(child, events, state, on_row, cb, timeout_s) -> None:
    """Forward the child's events until it exits; kill it when a test outlives the timeout."""
    while True:
        try:
            event = events.get(timeout=_sleep_s(state, timeout_s))
        except queue.Empty:
            event = None
        if event is None:
            if child.poll() is not None and events.empty():
                return
            if timeout_s and time.monotonic() - state["started"] > timeout_s:
                state["timed_out"] = True
                _kill(child)
                return
            continue
        if event.get("type") == "eof":
            child.wait()
            return
        _handle(event, state, on_row, cb)


def _sleep_s(state: dict, timeout_s: float | None) -> float:
    """How long to wait for the next event: to the test's --timeout deadline, at most SAFETY_POLL_S."""
    if not timeout_s:
        return SAFETY_POLL_S
    return min(SAFETY_POLL_S, max(0.0, state["started"] + timeout_s - time.monotonic()))


def _handle(event: dict, state: dict, on_row, cb) -> None:
    kind = event["type"]
    if kind == "test_started":
        state["test"] = TestConfig(**event["test"])
        state["started"] = time.monotonic()
        cb.test_started(event["model"], state["test"])
    elif kind == "rep":
        cb.repetition_done()
    elif kind == "row":
        on_row(TestConfig(**event["test"]), row_from_dict(event["row"]))
        state["test"] = None
        state["started"] = time.monotonic()
    elif kind == "message":
        cb.message(event["text"])
    elif kind == "user_error":
        state["user_error"] = event["message"]


def _failure_record(job: Job, code: int | None, state: dict, tail, timeout_s) -> dict:
    test = state["test"]
    if state.get("timed_out"):
        cause = f"timeout: no result within {timeout_s:g} s (--timeout)"
    elif code is not None and code < 0:
        cause = f"crashed: {_signal_name(code)}"
    else:
        cause = f"exited with status {code}"
    return {
        "model": job.spec.name,
        "test": test.name if test else None,
        "error": cause,
        "exit_code": code,
        "stderr_tail": list(tail),
    }


def _kill(child: subprocess.Popen) -> None:
    if child.poll() is None:
        child.kill()
    child.wait()


def _read_events(fd: int, events: queue.Queue) -> None:
    with os.fdopen(fd, "r", encoding="utf-8") as stream:
        for line in stream:
            try:
                events.put(json.loads(line))
            except ValueError:
                continue  # a half-written line from a child killed mid-write
    events.put({"type": "eof"})


def _read_stderr(stream, tail, echo: bool) -> None:
    for line in stream:
        tail.append(line.rstrip("\n"))
        if echo:
            sys.stderr.write(line)
