"""The results store and reports/ written by the code before the refactor into rooms (git tag
before-18), kept in tests/results/fixtures/pre_refactor/, and the commands over it whose output
tests/results/test_pre_refactor_store.py compares (issue #18: a store written before the move must
open, list and compare after it).

The outputs in the fixture's expected/ folder were written by the old code with

    PYTHONPATH=/path/to/before-18:tests python -m support.pre_refactor

(it copies the fixture to a temporary folder first; the fixture itself is never written).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FIXTURE = Path(__file__).resolve().parents[1] / "results" / "fixtures" / "pre_refactor"
EXPECTED = FIXTURE / "expected"
RUN_A, RUN_B = "20261203-114057-9b66", "20261203-114102-ef60"

# name of the expected output -> profiler arguments; paths are relative to the copy's folder
COMMANDS = {
    "history.txt": ["history"],
    "compare.txt": ["compare", RUN_A, RUN_B],
    "compare_files.txt": ["compare", f"reports/{RUN_A}/results.json", f"reports/{RUN_B}/results.json"],
    **{f"show_{run}.txt": ["show", run] for run in (RUN_A, RUN_B)},
    **{f"show_{RUN_A}.{fmt}": ["show", RUN_A, "-o", fmt] for fmt in ("json", "jsonl", "csv", "md")},
}


def copy_fixture(into: Path) -> Path:
    """A copy of the fixture's reports/ (store and saved runs) in ``into``; returns ``into``."""
    shutil.copytree(FIXTURE / "reports", into / "reports")
    return into


def run_in_copy(copy: Path, args: list[str]) -> subprocess.CompletedProcess:
    """``python -m profiler ARGS`` on the copy, at a fixed width and time zone so text tables compare."""
    env = {**os.environ, "PROFILER_REPORTS": str(copy / "reports"), "PROFILER_DB": str(copy / "reports" / "profiler.db"),
           "PROFILER_CACHE": str(copy / "cache"), "COLUMNS": "200", "TZ": "UTC"}
    return subprocess.run([sys.executable, "-m", "profiler", *args], cwd=copy, env=env, capture_output=True,
                          text=True, timeout=120)


def main() -> None:
    EXPECTED.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        copy = copy_fixture(Path(tmp))
        for name, args in COMMANDS.items():
            done = run_in_copy(copy, args)
            assert done.returncode == 0, (args, done.stderr)
            (EXPECTED / name).write_text(done.stdout)
            print(f"wrote {EXPECTED / name}")


if __name__ == "__main__":
    main()
