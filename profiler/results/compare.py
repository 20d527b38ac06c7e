"""Compare two runs test by test: speedup, Welch's t-test on the raw samples, geometric mean.

Inputs: a run id in the results store, our results.json, llama-bench ``-o json`` output, or a
SQLite database made from llama-bench ``-o sql``. Like pyperf's ``compare_to``, a difference the
samples cannot support is called "not significant".
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from profiler.errors import UserError
from profiler.stats import ALPHA, welch_t_test

MATCH_FIELDS = ("n_prompt", "n_gen", "n_depth", "n_threads", "n_batch", "n_ubatch", "type_k", "type_v", "flash_attn")


@dataclass
class Side:
    label: str
    rows: list[dict]
    # one device of a fleet run (RUN_ID@DEVICE): devices differ in cores, so the default thread
    # count differs too; two such sides are matched without it
    device: str | None = None


@dataclass
class Comparison:
    test: str
    model: str
    n_threads: int
    a_ts: float
    b_ts: float
    speedup: float  # b / a in tokens per second: > 1 means B is faster
    p_value: float | None
    significant: bool | None  # None: no raw samples to test

    @property
    def verdict(self) -> str:
        if self.significant is None:
            return "no samples to test"
        if not self.significant:
            return "not significant"
        return f"{self.speedup:.2f}x faster" if self.speedup >= 1 else f"{1 / self.speedup:.2f}x slower"


# ----------------------------------------------------------------------------- loading


def load_side(ref: str, store=None) -> Side:
    """A run id (results store), results.json, llama-bench JSON, or llama-bench SQLite."""
    path = Path(ref)
    if path.is_dir() and (path / "results.json").exists():
        path = path / "results.json"
    if path.is_file():
        return Side(ref, _rows_from_file(path))
    if store is None:
        from profiler.results.store import Store

        store = Store()
    run_id, _, device = ref.partition("@")
    run = store.load_run(run_id)
    if not device:
        return Side(ref, [r.to_dict() for r in run.rows])
    rows = [r.to_dict() for r in run.rows if r.device_name == device]
    if not rows:
        known = sorted({r.device_name for r in run.rows if r.device_name})
        raise UserError(f"run {run_id} has no rows from device '{device}' (devices: {', '.join(known) or 'none'})")
    return Side(ref, rows, device)


def _rows_from_file(path: Path) -> list[dict]:
    with path.open("rb") as fh:
        head = fh.read(16)
    if head.startswith(b"SQLite format 3"):
        return _rows_from_sqlite(path)
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        # llama-bench -o jsonl: one object per line
        try:
            return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        except ValueError:
            raise UserError(f"{path} is neither JSON, JSONL nor SQLite results ({exc})") from None
    rows = data.get("rows") if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise UserError(f"{path} holds no result rows")
    return rows


def _rows_from_sqlite(path: Path) -> list[dict]:
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        db.row_factory = sqlite3.Row
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "test" in tables:  # llama-bench -o sql
            return [dict(r) for r in db.execute("SELECT * FROM test")]
    except sqlite3.DatabaseError as exc:
        raise UserError(f"{path} is not a readable SQLite database ({exc})") from None
    raise UserError(f"{path} has no llama-bench 'test' table; for a profiler database give a run id and PROFILER_DB")


# ----------------------------------------------------------------------------- comparing


def _test_name(row: dict) -> str:
    if row.get("test"):
        return row["test"]
    parts = [f"pp{row['n_prompt']}"] if int(row.get("n_prompt", 0)) else []
    parts += [f"tg{row['n_gen']}"] if int(row.get("n_gen", 0)) else []
    name = "+".join(parts)
    return f"{name} @ d{row['n_depth']}" if int(row.get("n_depth", 0) or 0) else name


def _model(row: dict) -> str:
    return row.get("model_name") or Path(str(row.get("model_filename", "?"))).name


def _key(row: dict, with_model: bool, with_threads: bool = True) -> tuple:
    values = tuple(str(row.get(f, "")) for f in MATCH_FIELDS if with_threads or f != "n_threads")
    return ((_model(row),) if with_model else ()) + values


def _samples_ts(row: dict) -> list[float]:
    samples = row.get("samples_ts")
    if isinstance(samples, str):  # CSV-like storage
        samples = [float(s) for s in samples.replace(";", ",").split(",") if s]
    return [float(s) for s in samples or []]


def compare(a: Side, b: Side) -> list[Comparison]:
    """Match rows by test configuration (and model, when both sides hold the same models)."""
    same_models = {_model(r) for r in a.rows} == {_model(r) for r in b.rows}
    threads = not (a.device and b.device)
    index = {_key(r, same_models, threads): r for r in b.rows}
    results = []
    for ra in a.rows:
        rb = index.get(_key(ra, same_models, threads))
        if rb is None:
            continue
        sa, sb = _samples_ts(ra), _samples_ts(rb)
        p = welch_t_test(sa, sb)
        a_ts, b_ts = float(ra["avg_ts"]), float(rb["avg_ts"])
        results.append(
            Comparison(
                test=_test_name(ra), model=_model(ra) if same_models else f"{_model(ra)} vs {_model(rb)}",
                n_threads=int(ra.get("n_threads", 0)),
                a_ts=a_ts, b_ts=b_ts, speedup=b_ts / a_ts, p_value=p,
                significant=None if p is None else p < ALPHA,
            )
        )
    if not results:
        raise UserError(f"no matching tests between {a.label} and {b.label} (same -p/-n/-d/-t/-b/-ub/cache/fa needed)")
    return results
