"""compare: the input formats and the per-test verdicts (the statistics are tested in tests/stats)."""

from __future__ import annotations

import json
import sqlite3

import pytest

from profiler.errors import UserError
from profiler.results import compare


def _row(test, n_prompt, n_gen, samples, model="m.gguf", threads=2):
    return {
        "model_name": model, "test": test, "n_prompt": n_prompt, "n_gen": n_gen, "n_depth": 0, "n_threads": threads,
        "n_batch": 2048, "n_ubatch": 512, "type_k": "f16", "type_v": "f16", "flash_attn": -1,
        "avg_ts": sum(samples) / len(samples), "samples_ts": samples,
    }


def test_compare_two_result_files(tmp_path):
    a = {"schema_version": 1, "rows": [_row("pp512", 512, 0, [100, 101, 99, 100]), _row("tg128", 0, 128, [50, 51, 49, 50])]}
    b = {"schema_version": 1, "rows": [_row("pp512", 512, 0, [120, 121, 119, 120]), _row("tg128", 0, 128, [50.5, 49.5, 51, 49])]}
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    result = compare.compare(compare.load_side(str(tmp_path / "a.json")), compare.load_side(str(tmp_path / "b.json")))
    pp, tg = result
    assert pp.speedup == pytest.approx(1.2) and pp.significant and pp.verdict == "1.20x faster"
    assert tg.significant is False and tg.verdict == "not significant"


def test_llama_bench_json_and_sqlite_inputs(tmp_path):
    bench = [{"model_filename": "/x/m.gguf", "model_type": "llama", "n_prompt": 512, "n_gen": 0, "n_depth": 0,
              "n_threads": 2, "n_batch": 2048, "n_ubatch": 512, "type_k": "f16", "type_v": "f16", "flash_attn": -1,
              "avg_ts": 100.0, "samples_ts": [99.0, 100.0, 101.0]}]
    (tmp_path / "bench.json").write_text(json.dumps(bench))
    side = compare.load_side(str(tmp_path / "bench.json"))
    assert compare._test_name(side.rows[0]) == "pp512"
    db = sqlite3.connect(tmp_path / "bench.sqlite")
    db.execute("CREATE TABLE test (model_filename TEXT, n_prompt INTEGER, n_gen INTEGER, n_depth INTEGER, n_threads INTEGER,"
               " n_batch INTEGER, n_ubatch INTEGER, type_k TEXT, type_v TEXT, flash_attn INTEGER, avg_ts REAL)")
    db.execute("INSERT INTO test VALUES ('/x/m.gguf', 512, 0, 0, 2, 2048, 512, 'f16', 'f16', -1, 110.0)")
    db.commit()
    db.close()
    sql_side = compare.load_side(str(tmp_path / "bench.sqlite"))
    (result,) = compare.compare(side, sql_side)
    assert result.speedup == pytest.approx(1.1)
    assert result.significant is None and result.verdict == "no samples to test"


def test_no_matching_tests_is_a_user_error(tmp_path):
    a = compare.Side("a", [_row("pp512", 512, 0, [1.0, 2.0])])
    b = compare.Side("b", [_row("pp128", 128, 0, [1.0, 2.0])])
    with pytest.raises(UserError, match="no matching tests"):
        compare.compare(a, b)


def test_garbage_file_is_a_user_error(tmp_path):
    (tmp_path / "x.json").write_text("not json {")
    with pytest.raises(UserError, match="neither JSON, JSONL nor SQLite"):
        compare.load_side(str(tmp_path / "x.json"))
