"""profiler.paths: every PROFILER_* folder and file, its variable and its default, read in one place."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from profiler import paths

PACKAGE = Path(paths.__file__).resolve().parent
ALL_VARS = (paths.REPORTS_ENV, paths.DB_ENV, paths.CACHE_ENV, paths.MODELS_ENV)


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for var in ALL_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_reports_dir_default_and_override(clean_env, tmp_path):
    assert paths.reports_dir() == Path("reports")
    clean_env.setenv("PROFILER_REPORTS", str(tmp_path / "elsewhere"))
    assert paths.reports_dir() == tmp_path / "elsewhere"


def test_db_path_lives_beside_the_reports_unless_profiler_db_says(clean_env, tmp_path):
    assert paths.db_path() == Path("reports") / "profiler.db"
    assert paths.db_path(tmp_path / "runs") == tmp_path / "runs" / "profiler.db"
    clean_env.setenv("PROFILER_REPORTS", str(tmp_path / "r"))
    assert paths.db_path() == tmp_path / "r" / "profiler.db"
    clean_env.setenv("PROFILER_DB", str(tmp_path / "own.db"))
    assert paths.db_path() == tmp_path / "own.db"
    assert paths.db_path(tmp_path / "runs") == tmp_path / "own.db", "PROFILER_DB wins over any reports folder"


def test_cache_dir_default_and_override(clean_env, tmp_path):
    clean_env.setenv("HOME", str(tmp_path / "home"))
    assert paths.cache_dir() == tmp_path / "home" / ".cache" / "profiler"
    clean_env.setenv("PROFILER_CACHE", "")
    assert paths.cache_dir() == tmp_path / "home" / ".cache" / "profiler", "an empty variable means the default"
    clean_env.setenv("PROFILER_CACHE", str(tmp_path / "c"))
    assert paths.cache_dir() == tmp_path / "c"


def test_catalog_path_prefers_the_variable_then_the_working_folder_then_the_checkout(clean_env, tmp_path):
    assert paths.catalog_path() == PACKAGE.parent / "models.toml"
    (tmp_path / "models.toml").write_text("")
    assert paths.catalog_path() == Path("models.toml")
    clean_env.setenv("PROFILER_MODELS", str(tmp_path / "mine.toml"))
    assert paths.catalog_path() == tmp_path / "mine.toml"


def test_variables_are_read_when_asked_not_at_import(clean_env, tmp_path):
    first = paths.cache_dir()
    clean_env.setenv("PROFILER_CACHE", str(tmp_path / "later"))
    assert paths.cache_dir() != first and paths.cache_dir() == tmp_path / "later"


def test_no_other_module_reads_these_variables():
    names = "|".join(ALL_VARS)
    reading = re.compile(rf"environ(?:\.get\(|\[)\s*[\"']({names})[\"']")
    readers = sorted(str(f.relative_to(PACKAGE)) for f in PACKAGE.rglob("*.py")
                     if f.name != "paths.py" and reading.search(f.read_text(encoding="utf-8")))
    assert readers == [], f"resolve these through profiler.paths: {readers}"
