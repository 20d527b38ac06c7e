"""The durable results store: SQLite in WAL mode with numbered migrations (simonw/llm's habit).

Every finished test row is committed the moment it completes, so Ctrl-C or ``kill -9`` loses at
most the test in flight; ``reports/<run-id>/`` files are regenerated from here.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from profiler import paths
from profiler.errors import UserError
from profiler.results.schema import RunResult, TestResult, row_from_dict

MIGRATIONS: list[tuple[str, Callable[[sqlite3.Connection], None]]] = []


def migration(fn: Callable[[sqlite3.Connection], None]) -> Callable[[sqlite3.Connection], None]:
    """Register a migration; they run once each, in definition order, recorded in _migrations."""
    MIGRATIONS.append((fn.__name__, fn))
    return fn


@migration
def m001_runs_and_rows(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE runs (
            run_id TEXT PRIMARY KEY,
            created TEXT NOT NULL,
            command TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL DEFAULT 'running',
            device_json TEXT NOT NULL DEFAULT '{}',
            warnings_json TEXT NOT NULL DEFAULT '[]',
            failures_json TEXT NOT NULL DEFAULT '[]',
            plan_json TEXT NOT NULL DEFAULT '{}'
        )"""
    )
    db.execute(
        """CREATE TABLE rows (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(run_id),
            test_key TEXT NOT NULL,
            model_name TEXT NOT NULL,
            test TEXT NOT NULL,
            n_threads INTEGER NOT NULL,
            avg_ts REAL NOT NULL,
            data_json TEXT NOT NULL,
            UNIQUE (run_id, test_key)
        )"""
    )
    db.execute("CREATE INDEX rows_by_run ON rows(run_id, id)")


@migration
def m002_density_reports(db: sqlite3.Connection) -> None:
    """profiler density's report per run (docs/density.md); the newest per run is the one shown."""
    db.execute(
        """CREATE TABLE density_reports (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL,
            created TEXT NOT NULL DEFAULT (datetime('now')),
            family TEXT NOT NULL,
            data_json TEXT NOT NULL
        )"""
    )


def row_key(model_name: str, config) -> str:
    """Identity of one test within a run (what --resume skips when it is already stored)."""
    c = config
    key = (
        f"{model_name}|p{c.n_prompt}|n{c.n_gen}|d{c.n_depth}|t{c.n_threads}|b{c.n_batch}|ub{c.n_ubatch}"
        f"|k{c.type_k}|v{c.type_v}|fa{c.flash_attn}"
    )
    # a placement only when there is one, so the keys of runs stored before placements still match
    mask, strict = getattr(c, "cpu_mask", "0x0"), getattr(c, "cpu_strict", 0)
    return key + (f"|C{mask}" if mask != "0x0" else "") + ("|strict" if strict else "")


class Store:
    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path is not None else paths.db_path()
        self.db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        try:
            if str(self.path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._migrate(db)
        except sqlite3.DatabaseError as exc:
            if not self.path.exists() or not os.access(self.path.parent, os.W_OK):
                raise UserError(
                    f"cannot create results database {self.path} ({exc}): is {self.path.parent} writable? "
                    "use --reports-dir or PROFILER_DB to put it elsewhere"
                ) from None
            raise UserError(
                f"results database {self.path} is unreadable ({exc}); move it aside or set PROFILER_DB to a new file"
            ) from None
        except OSError as exc:
            raise UserError(f"cannot open results database {self.path}: {exc.strerror or exc}") from None
        return db

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
        done = {name for (name,) in db.execute("SELECT name FROM _migrations")}
        for name, fn in MIGRATIONS:
            if name in done:
                continue
            with _transaction(db):
                fn(db)
                db.execute("INSERT INTO _migrations VALUES (?, datetime('now'))", (name,))

    def applied_migrations(self) -> list[str]:
        return [name for (name,) in self.db.execute("SELECT name FROM _migrations ORDER BY rowid")]

    # ------------------------------------------------------------------ writing
    def begin_run(self, run: RunResult, plan: dict) -> None:
        with self._write():
            self.db.execute(
                "INSERT INTO runs (run_id, created, command, device_json, warnings_json, plan_json) VALUES (?,?,?,?,?,?)",
                (run.run_id, run.created, run.command, json.dumps(run.device), json.dumps(run.warnings), json.dumps(plan)),
            )

    def add_row(self, run_id: str, key: str, row: TestResult) -> None:
        with self._write():
            self.db.execute(
                "INSERT OR REPLACE INTO rows (run_id, test_key, model_name, test, n_threads, avg_ts, data_json)"
                " VALUES (?,?,?,?,?,?,?)",
                (run_id, key, row.model_name, row.test, row.n_threads, row.avg_ts, json.dumps(row.to_dict())),
            )

    def update_run(self, run: RunResult, status: str) -> None:
        with self._write():
            self.db.execute(
                "UPDATE runs SET status=?, warnings_json=?, failures_json=? WHERE run_id=?",
                (status, json.dumps(run.warnings), json.dumps(run.failures), run.run_id),
            )

    def update_device(self, run_id: str, device: dict) -> None:
        """Replace a run's device record (a fleet run fills it in as devices report back)."""
        with self._write():
            self.db.execute("UPDATE runs SET device_json=? WHERE run_id=?", (json.dumps(device), run_id))

    @contextmanager
    def _write(self) -> Iterator[None]:
        try:
            with _transaction(self.db):
                yield
        except sqlite3.OperationalError as exc:
            raise UserError(f"cannot write results database {self.path}: {exc}") from None

    # ------------------------------------------------------------------ reading
    def done_keys(self, run_id: str) -> set[str]:
        return {k for (k,) in self.db.execute("SELECT test_key FROM rows WHERE run_id=?", (run_id,))}

    def plan(self, run_id: str) -> dict:
        found = self.db.execute("SELECT plan_json FROM runs WHERE run_id=?", (run_id,)).fetchone()
        if found is None:
            raise UserError(f"no run '{run_id}' in {self.path}; see profiler history")
        return json.loads(found[0])

    def load_run(self, run_id: str) -> RunResult:
        found = self.db.execute(
            "SELECT run_id, created, command, device_json, warnings_json, failures_json FROM runs WHERE run_id=?", (run_id,)
        ).fetchone()
        if found is None:
            raise UserError(f"no run '{run_id}' in {self.path}; see profiler history")
        rows = [row_from_dict(json.loads(d)) for (d,) in self.db.execute("SELECT data_json FROM rows WHERE run_id=? ORDER BY id", (run_id,))]
        return RunResult(
            run_id=found[0], created=found[1], command=found[2], device=json.loads(found[3]),
            warnings=json.loads(found[4]), failures=json.loads(found[5]), rows=rows,
        )

    def list_runs(self, limit: int = 50) -> list[dict]:
        query = """SELECT r.run_id, r.created, r.status, r.command, COUNT(x.id), GROUP_CONCAT(DISTINCT x.model_name)
                   FROM runs r LEFT JOIN rows x ON x.run_id = r.run_id
                   GROUP BY r.run_id ORDER BY r.created DESC, r.rowid DESC LIMIT ?"""
        return [
            {"run_id": a, "created": b, "status": c, "command": d, "rows": e, "models": (f or "").split(",") if f else []}
            for a, b, c, d, e, f in self.db.execute(query, (limit,))
        ]

    def latest_rows(self, model_names: list[str], key: str = "model_name") -> dict[str, tuple[str, TestResult]]:
        """Per model name (or per ``model_sha256`` with key="model_sha256": the same file under
        another name), its newest stored row that measured decoding (else its newest row) and
        that row's run id (``profiler models``: was it profiled already?)."""
        latest: dict[str, tuple[str, TestResult]] = {}
        column = {"model_name": "model_name", "model_sha256": "json_extract(data_json, '$.model_sha256')"}[key]
        marks = ",".join("?" * len(model_names))
        query = f"SELECT run_id, {column}, data_json FROM rows WHERE {column} IN ({marks}) ORDER BY id DESC"
        for run_id, name, data in self.db.execute(query, list(model_names)) if model_names else []:
            row = row_from_dict(json.loads(data))
            if name not in latest or (latest[name][1].decode_ts is None and row.decode_ts is not None):
                latest[name] = (run_id, row)
        return latest

    def save_density(self, run_id: str, family: str, data: dict) -> None:
        with self._write():
            self.db.execute("INSERT INTO density_reports (run_id, family, data_json) VALUES (?, ?, ?)",
                            (run_id, family, json.dumps(data)))

    def density(self, run_id: str) -> dict | None:
        """The newest density report stored for ``run_id``."""
        row = self.db.execute("SELECT data_json FROM density_reports WHERE run_id = ? ORDER BY id DESC LIMIT 1",
                              (run_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def close(self) -> None:
        self.db.close()


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
