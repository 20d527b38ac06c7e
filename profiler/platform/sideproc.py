"""A helper process beside the measured one, spoken to in JSON lines.

Samplers that must run during a test (the monitor of power and thermal sensors, the RSS
watcher) run as processes of their own, so no thread of the measured process wakes for them.
Both sides are here: ``SideProcess`` starts one and asks it questions, and ``serve_beside``
prepares a helper's own process before it serves (the ``__main__`` of each helper module).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys

REPLY_TIMEOUT_S = 30.0


class SideProcessError(RuntimeError):
    """The helper process could not start or stopped answering."""


class SideProcess:
    """A running helper: ``python -m MODULE``, with this process's /sys and /proc redirection."""

    error: type[SideProcessError] = SideProcessError  # what a failure raises (each helper its own)

    def __init__(self, module: str, label: str) -> None:
        from profiler.platform import sysfs

        self.label = label
        env = dict(os.environ, PROFILER_SYSFS_ROOT=str(sysfs.root()))
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", module], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True, env=env,
            )
        except OSError as exc:
            raise self.error(f"could not start the {label}: {exc}") from exc

    def ask(self, message: dict) -> dict:
        """Send one message and return the answer; a helper that does not answer is stopped."""
        try:
            self.proc.stdin.write(json.dumps(message) + "\n")
            self.proc.stdin.flush()
            ready, _, _ = select.select([self.proc.stdout], [], [], REPLY_TIMEOUT_S)
            line = self.proc.stdout.readline() if ready else ""
        except OSError as exc:
            line, error = "", str(exc)
        else:
            error = "no answer" if not ready else "it exited"
        if not line:
            raise self.error(f"the {self.label} stopped answering ({error}): {self._end()}")
        return json.loads(line)

    def _end(self) -> str:
        """Stop a helper that failed; its last line on stderr (or its exit status) says why."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        text = (self.proc.stderr.read() or "").strip() if self.proc.stderr else ""
        self.close()
        return text.splitlines()[-1] if text else f"exit status {self.proc.returncode}"

    def close(self) -> None:
        """End the helper: closing its input ends it; a kill if it hangs."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None and not stream.closed:
                with contextlib.suppress(OSError):
                    stream.close()


def serve_beside() -> None:
    """Set up a helper's own process before it serves.

    Ctrl-C goes to the whole process group: the measured process decides what happens, and the
    helper ends when its input closes (also when the measured process is killed). A lower
    priority, because its reads take microseconds and should not preempt the measured process's
    threads (a read that comes late is counted as missed, not hidden)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError, AttributeError):
        os.nice(10)
