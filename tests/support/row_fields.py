"""The field names and column order of what ``profiler run`` writes: its -o json/jsonl/csv/md output,
the results.json/csv/md it saves and the SQLite store's tables. Values vary from run to run; names
and order must not (issue #18: the refactor changes no output).

tests/e2e/test_row_fields.py compares the profiler under test with tests/e2e/row_fields_golden.json,
which this module wrote from the code before the refactor (git tag before-18):

    PYTHONPATH=/path/to/before-18:tests python -m support.row_fields tests/e2e/row_fields_golden.json
"""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

FORMATS = ("json", "jsonl", "csv", "md")
# Two tests (pp16, tg4), one thread, two repetitions; nothing slow or networked (no bandwidth
# probe, no idle baseline, no scoreboard).
RUN_ARGS = ["-p", "16", "-n", "4", "-t", "1", "-r", "2", "--no-bandwidth", "--idle", "0", "--no-score"]


def run_profiler(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m profiler ARGS`` in cwd with its reports, cache and store under cwd; the
    profiler imported is whichever PYTHONPATH names."""
    env = {**os.environ, "PROFILER_REPORTS": str(cwd / "reports"), "PROFILER_CACHE": str(cwd / "cache"),
           "PROFILER_DB": str(cwd / "reports" / "profiler.db")}
    return subprocess.run([sys.executable, "-m", "profiler", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def same_for_every_row(rows: list[list[str]]) -> list[str]:
    """The one field list all rows share (a row with other fields would be a change in itself)."""
    assert rows, "no rows"
    assert all(r == rows[0] for r in rows), rows
    return rows[0]


def json_row_fields(text: str) -> list[str]:
    """-o json prints the rows as a list (as llama-bench does); results.json keeps them under "rows"."""
    data = json.loads(text)
    return same_for_every_row([list(row) for row in (data["rows"] if isinstance(data, dict) else data)])


def jsonl_row_fields(text: str) -> list[str]:
    return same_for_every_row([list(json.loads(line)) for line in text.splitlines() if line.strip()])


def csv_columns(text: str) -> list[str]:
    return next(csv.reader(io.StringIO(text)))


def md_columns(text: str) -> list[str]:
    """The header of the first Markdown table."""
    header = next(line for line in text.splitlines() if line.startswith("|"))
    return [cell.strip() for cell in header.strip().strip("|").split("|")]


PARSERS = {"json": json_row_fields, "jsonl": jsonl_row_fields, "csv": csv_columns, "md": md_columns}


def store_fields(db: Path) -> dict:
    """Every table of the store and its columns in order, the migrations applied, and the fields of
    the rows' stored JSON."""
    con = sqlite3.connect(db)
    try:
        tables = [name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        rows = [list(json.loads(data)) for (data,) in con.execute("SELECT data_json FROM rows ORDER BY id")]
        return {"store_columns": {t: [col[1] for col in con.execute(f"PRAGMA table_info({t})")] for t in tables},
                "store_migrations": [name for (name,) in con.execute("SELECT name FROM _migrations ORDER BY name")],
                "store_row_fields": same_for_every_row(rows)}
    finally:
        con.close()


def saved_fields(folder: Path) -> dict[str, list[str]]:
    """Run keys and row fields of results.json, and the columns of results.csv and results.md."""
    results = json.loads((folder / "results.json").read_text())
    return {"saved_json_run_keys": list(results),
            "saved_json_row_fields": json_row_fields((folder / "results.json").read_text()),
            "saved_csv_columns": csv_columns((folder / "results.csv").read_text()),
            "saved_md_columns": md_columns((folder / "results.md").read_text())}


def capture(workdir: Path) -> dict:
    """Run ``profiler run`` on a tiny model once per -o format, in a folder of its own each, and
    collect every field list: stdout's, the saved files' (of the json run) and the store's."""
    from support.tinymodel import write_tiny_llama

    model = write_tiny_llama(workdir / "tiny.gguf")
    fields: dict = {}
    for fmt in FORMATS:
        cwd = workdir / fmt
        cwd.mkdir(parents=True)
        done = run_profiler(["run", str(model), *RUN_ARGS, "-o", fmt], cwd)
        assert done.returncode == 0, done.stderr[-3000:]
        fields[f"{fmt}_columns" if fmt in ("csv", "md") else f"{fmt}_row_fields"] = PARSERS[fmt](done.stdout)
        if fmt == "json":
            (saved,) = [p for p in (cwd / "reports").iterdir() if p.is_dir()]
            fields.update(saved_fields(saved))
            fields.update(store_fields(cwd / "reports" / "profiler.db"))
    return fields


def source_of_profiler(cwd: Path) -> str:
    """Which checkout the profiler that ``run_profiler`` starts in cwd comes from: its git tag or commit."""
    where = subprocess.run([sys.executable, "-c", "import profiler; print(profiler.__file__)"], cwd=cwd,
                           capture_output=True, text=True, check=True)
    tree = Path(where.stdout.strip()).resolve().parents[1]
    done = subprocess.run(["git", "-C", str(tree), "describe", "--tags", "--always", "--dirty"],
                          capture_output=True, text=True)
    return f"{tree} at {done.stdout.strip() or 'an unknown commit'}"


def main(out: Path) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        fields = capture(Path(tmp))
        source = source_of_profiler(Path(tmp))
    note = (f"Field names and column order written by the profiler of {source} with "
            f"`python -m support.row_fields` (tests/support/row_fields.py); compared by tests/e2e/test_row_fields.py.")
    out.write_text(json.dumps({"_note": note, **fields}, indent=1) + "\n")
    print(f"wrote {out}: {', '.join(fields)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
