"""The child side of crash isolation: ``python -m profiler.run.worker FD [PARENT_PID]`` runs one model's sweep.

It reads its job (JSON) from stdin and writes events as JSON lines to file descriptor FD:
``test_started``, ``rep``, ``row``, ``message`` and ``user_error``. Anything the native runtime
prints goes to stdout/stderr, never into the event stream.
"""

from __future__ import annotations

import json
import os
import sys


class _Events:
    def __init__(self, fd: int) -> None:
        self.stream = os.fdopen(fd, "w", encoding="utf-8", buffering=1)

    def emit(self, kind: str, **data) -> None:
        self.stream.write(json.dumps({"type": kind, **data}) + "\n")
        self.stream.flush()


def _callbacks(events: _Events):
    from dataclasses import asdict

    from profiler.run.options import Callbacks

    return Callbacks(
        message=lambda text: events.emit("message", text=text),
        test_started=lambda model, test: events.emit("test_started", model=model, test=asdict(test)),
        repetition_done=lambda: events.emit("rep"),
    )


def _session(job):
    """The child's own energy session: same source choice, the parent's idle baseline."""
    from profiler.measure.energy import EnergySession, IdleBaseline

    energy, device = job.options.energy, job.device
    session = EnergySession.open(energy.watts, device.cpu_model, device.board, track=energy.track)
    session.idle = IdleBaseline.from_dict(job.idle or {})
    return session


def _die_with_parent(parent: int | None) -> None:
    """Linux: the kernel kills this process when the parent dies, however it dies (a Ctrl-C while
    the parent was still starting us, a SIGKILL), so no orphan goes on measuring."""
    if not sys.platform.startswith("linux") or parent is None:
        return
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return  # no prctl: the pipe to the parent breaks at the next event instead
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(130)


def main(argv: list[str]) -> int:
    _die_with_parent(int(argv[2]) if len(argv) > 2 else None)  # FD, then the parent's pid
    events = _Events(int(argv[1]))
    data = json.loads(sys.stdin.read())
    from dataclasses import asdict

    from profiler.errors import UserError
    from profiler.models.modelinfo import read_model_info
    from profiler.run.job import Job
    from profiler.run.model_sweep import measure_model

    try:
        job = Job.from_dict(data)
        info = read_model_info(job.path, job.spec.format)

        def sink(test, row) -> None:
            events.emit("row", test=asdict(test), row=row.to_dict())

        measure_model(job, info, _session(job), _callbacks(events), sink)
    except UserError as exc:
        events.emit("user_error", message=str(exc))
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
