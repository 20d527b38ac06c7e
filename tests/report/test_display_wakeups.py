"""The progress display never wakes on a timer while tests are measured (issue #10, 8b).

rich redraws a progress bar or a spinner from a thread 10-12 times a second; on a busy 2-core
machine each of those wake-ups can preempt one of the measured process's OpenMP workers. Our
displays redraw on events only, so during a run no thread of ours exists besides the main one.
"""

from __future__ import annotations

import io
import threading

from rich.console import Console

from profiler.measure.plan import TestConfig
from profiler.report import console


def _threads() -> set[str]:
    return {t.name for t in threading.enumerate()}


def _terminal() -> Console:
    """A console that believes it is a terminal, so rich would animate if allowed to."""
    return Console(file=io.StringIO(), force_terminal=True, width=100)


def test_the_run_progress_bar_redraws_on_events_and_starts_no_thread(monkeypatch):
    screen = _terminal()
    monkeypatch.setattr(console, "err_console", screen)
    before = _threads()
    with console.RunDisplay() as display:
        assert _threads() == before, "a refresh thread would wake during every test"
        events = display.callbacks()
        events.tests_planned(2)
        events.test_started("tiny", TestConfig(n_prompt=16, n_gen=0, n_depth=0, n_threads=2, n_batch=2048, n_ubatch=512,
                                                 type_k="f16", type_v="f16", flash_attn="auto"))
        drawn = screen.file.getvalue()
        events.repetition_done()
        assert _threads() == before
    assert "tiny pp16 t=2" in drawn, "the bar is drawn at the event, not later by a timer"
    assert "1/2" in screen.file.getvalue(), "a finished repetition redraws the count"


def test_the_status_line_redraws_on_updates_and_starts_no_thread():
    screen = _terminal()
    before = _threads()
    with console.EventStatus("comparing quants", screen) as status:
        assert _threads() == before
        status.update("quantizing q4_k_m")
        assert "quantizing q4_k_m" in screen.file.getvalue()
    assert _threads() == before
