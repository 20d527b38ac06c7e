"""`profiler run` writes the same row fields, in the same column order, as before the refactor into
rooms (issue #18): -o json/jsonl/csv/md, the saved results.json/csv/md and the SQLite store.

row_fields_golden.json beside this file was written by the code at git tag before-18; how to write
it again is in tests/support/row_fields.py. Only names and order are compared, never values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.row_fields import capture

GOLDEN = json.loads((Path(__file__).parent / "row_fields_golden.json").read_text())


@pytest.fixture(scope="module")
def fields(tmp_path_factory) -> dict:
    return capture(tmp_path_factory.mktemp("row_fields"))


def test_the_golden_lists_are_the_full_set():
    """A golden file that lost a list would make its comparison vanish with it."""
    expected = {"json_row_fields", "jsonl_row_fields", "csv_columns", "md_columns", "saved_json_run_keys",
                "saved_json_row_fields", "saved_csv_columns", "saved_md_columns", "store_columns",
                "store_migrations", "store_row_fields"}
    assert set(GOLDEN) - {"_note"} == expected
    assert len(GOLDEN["json_row_fields"]) > 100 and "avg_ts" in GOLDEN["csv_columns"] and "t/s" in GOLDEN["md_columns"]


@pytest.mark.parametrize("name", ["json_row_fields", "jsonl_row_fields", "saved_json_row_fields", "store_row_fields"])
def test_row_fields_and_their_order_are_unchanged(fields, name):
    assert set(fields[name]) == set(GOLDEN[name]), (sorted(set(fields[name]) - set(GOLDEN[name])),
                                                    sorted(set(GOLDEN[name]) - set(fields[name])))
    assert fields[name] == GOLDEN[name]


@pytest.mark.parametrize("name", ["csv_columns", "md_columns", "saved_csv_columns", "saved_md_columns",
                                  "saved_json_run_keys"])
def test_file_columns_and_their_order_are_unchanged(fields, name):
    assert fields[name] == GOLDEN[name]


def test_the_store_has_the_same_tables_columns_and_migrations(fields):
    assert fields["store_columns"] == GOLDEN["store_columns"]
    assert fields["store_migrations"] == GOLDEN["store_migrations"]
