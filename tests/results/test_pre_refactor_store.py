"""A results store and reports/ written before the refactor into rooms (git tag before-18) still open,
list, show and compare after it, with the same output (issue #18). The fixture and the old code's
outputs are in fixtures/pre_refactor/ (its README.md says how they were made); every test works on a
copy, never on the fixture."""

from __future__ import annotations

import hashlib

import pytest

from support.pre_refactor import COMMANDS, EXPECTED, FIXTURE, RUN_A, RUN_B, copy_fixture, run_in_copy


def fixture_digest() -> str:
    files = sorted(p for p in FIXTURE.rglob("*") if p.is_file())
    return hashlib.sha256(b"".join(p.relative_to(FIXTURE).as_posix().encode() + p.read_bytes() for p in files)).hexdigest()


@pytest.fixture(scope="module")
def copy(tmp_path_factory):
    before = fixture_digest()
    yield copy_fixture(tmp_path_factory.mktemp("pre_refactor"))
    assert fixture_digest() == before, "a test wrote into tests/results/fixtures/pre_refactor"


def test_history_lists_both_old_runs(copy):
    done = run_in_copy(copy, ["history"])
    assert done.returncode == 0, done.stderr
    assert RUN_A in done.stdout and RUN_B in done.stdout
    assert done.stdout.index(RUN_B) < done.stdout.index(RUN_A)  # newest first


@pytest.mark.parametrize("sides", [(RUN_A, RUN_B), (f"reports/{RUN_A}/results.json", f"reports/{RUN_B}/results.json")],
                         ids=["run ids", "results.json files"])
def test_compare_pairs_the_old_runs_tests(copy, sides):
    done = run_in_copy(copy, ["compare", *sides])
    assert done.returncode == 0, done.stderr
    assert f"{sides[1]} against {sides[0]}" in done.stdout
    assert "pp16" in done.stdout and "tg4" in done.stdout and "over 2 tests" in done.stdout


@pytest.mark.parametrize("name", list(COMMANDS))
def test_output_over_the_old_store_is_what_the_old_code_printed(copy, name):
    done = run_in_copy(copy, COMMANDS[name])
    assert done.returncode == 0, done.stderr
    assert done.stdout == (EXPECTED / name).read_text()


def test_an_html_report_of_an_old_run_is_written(copy):
    page = copy / "a.html"
    done = run_in_copy(copy, ["report", RUN_A, "--html", str(page)])
    assert done.returncode == 0, done.stderr
    assert RUN_A in page.read_text()
