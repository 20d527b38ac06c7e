"""The SQLite results store: migrations, WAL, per-row commits, round trips, corrupt files."""

from __future__ import annotations

import sqlite3

import pytest

from profiler.errors import UserError
from profiler.measure.plan import TestConfig
from profiler.results.schema import RunResult
from profiler.results.store import MIGRATIONS, Store, row_key
from support.tests_support import make_row


def _run(run_id="r1"):
    return RunResult(run_id=run_id, created="2026-11-27T04:00:00+00:00", command="profiler run", device={"cpu_model": "x"})


def test_migrations_are_recorded_once_and_wal_is_on(tmp_path):
    store = Store(tmp_path / "p.db")
    assert store.applied_migrations() == [name for name, _ in MIGRATIONS]
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()
    again = Store(tmp_path / "p.db")  # reopening applies nothing twice
    assert again.applied_migrations() == [name for name, _ in MIGRATIONS]


def test_rows_round_trip_and_are_visible_to_another_connection_at_once(tmp_path):
    store = Store(tmp_path / "p.db")
    run = _run()
    store.begin_run(run, {"models": ["m"]})
    row = make_row(test="pp64", avg_ts=123.5)
    store.add_row(run.run_id, "m|pp64", row)
    other = sqlite3.connect(tmp_path / "p.db")
    assert other.execute("SELECT test, avg_ts FROM rows").fetchall() == [("pp64", 123.5)]
    loaded = store.load_run("r1")
    assert loaded.rows[0].to_dict() == row.to_dict()
    assert loaded.device == {"cpu_model": "x"}
    assert store.done_keys("r1") == {"m|pp64"}
    assert store.plan("r1") == {"models": ["m"]}
    run.failures.append({"model": "m", "test": "tg8", "error": "boom"})
    store.update_run(run, "failed")
    assert store.list_runs()[0] == {"run_id": "r1", "created": run.created, "status": "failed", "command": "profiler run",
                                    "rows": 1, "models": ["tiny"]}
    assert store.load_run("r1").failures == run.failures


def test_unknown_run_id(tmp_path):
    with pytest.raises(UserError, match="no run 'nope'"):
        Store(tmp_path / "p.db").load_run("nope")


def test_corrupt_database_is_a_user_error(tmp_path):
    bad = tmp_path / "p.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(UserError, match="is unreadable.*PROFILER_DB"):
        Store(bad)


def test_test_key_distinguishes_every_sweep_dimension():
    base = TestConfig(64, 0, 0, 2, 2048, 512, "f16", "f16", "auto")
    variants = [TestConfig(64, 0, d, t, 2048, 512, k, "f16", fa) for d in (0, 8) for t in (1, 2) for k in ("f16", "q8_0") for fa in ("auto", "on")]
    assert len({row_key("m", v) for v in variants}) == len(variants)
    assert row_key("m", base) != row_key("n", base)


def _old_row_dict() -> dict:
    """A row as stored before issue #19.11: the process's power under the name avg_power_w."""
    data = make_row(n_gen=16, n_prompt=0).to_dict()
    data.pop("process_power_w"), data.pop("device_power_w")
    phases = {"decode": {"domain_j": 8.0, "duration_s": 2.0, "energy_j": 2.0}}
    return {**data, "avg_power_w": 1.0, "energy_detail": {"phases": phases}}


def test_old_rows_with_avg_power_w_load_under_the_new_names(tmp_path):
    import json

    from profiler.results.schema import load_run, row_from_dict

    row = row_from_dict(_old_row_dict())
    assert (row.process_power_w, row.device_power_w) == (1.0, 4.0) and "avg_power_w" not in row.extra
    store = Store(tmp_path / "p.db")
    store.begin_run(_run("old"), {})
    store.db.execute("INSERT INTO rows (run_id, test_key, model_name, test, n_threads, avg_ts, data_json) "
                     "VALUES ('old', 'k', 'tiny', 'tg16', 2, 1.0, ?)", (json.dumps(_old_row_dict()),))
    stored = store.load_run("old").rows[0]
    assert (stored.process_power_w, stored.device_power_w) == (1.0, 4.0)
    saved = tmp_path / "results.json"
    saved.write_text(json.dumps({**_run("old").to_dict(), "rows": [_old_row_dict()]}))
    assert load_run(saved).rows[0].process_power_w == 1.0
