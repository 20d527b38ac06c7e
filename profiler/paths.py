"""Every folder and file the profiler finds through its environment variables, with its default.

Each is read when asked for, not at import, so a variable set later (by a test, a fleet node,
a caller of the library) is honoured. The sub-folders a room keeps inside the cache
(``models/``, ``quality/``, ``fleet/``...) belong to that room; the variables of other tools'
stores (``HF_HOME``, ``LLAMA_CACHE``, ``OLLAMA_MODELS``) belong to ``profiler.sources``.
"""

from __future__ import annotations

import os
from pathlib import Path

REPORTS_ENV = "PROFILER_REPORTS"
DB_ENV = "PROFILER_DB"
CACHE_ENV = "PROFILER_CACHE"
MODELS_ENV = "PROFILER_MODELS"

_PACKAGE = Path(__file__).resolve().parent
DB_NAME = "profiler.db"
CATALOG_NAME = "models.toml"


def reports_dir() -> Path:
    """Where run folders go: ``PROFILER_REPORTS``, else ``./reports``."""
    return Path(os.environ.get(REPORTS_ENV, "reports"))


def db_path(reports: Path | None = None) -> Path:
    """The results database: ``PROFILER_DB``, else ``profiler.db`` in ``reports`` (default ``reports_dir()``)."""
    env = os.environ.get(DB_ENV)
    if env:
        return Path(env)
    return (reports_dir() if reports is None else Path(reports)) / DB_NAME


def cache_dir() -> Path:
    """Downloads, conversions and indexes: ``PROFILER_CACHE``, else ``~/.cache/profiler``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "profiler")


def catalog_path() -> Path:
    """The model catalogue: ``PROFILER_MODELS``, else ``./models.toml``, else the one beside the
    package (a checkout)."""
    env = os.environ.get(MODELS_ENV)
    if env:
        return Path(env)
    local = Path(CATALOG_NAME)
    if local.exists():
        return local
    return _PACKAGE.parent / CATALOG_NAME


def reference_families_path() -> Path:
    """The reference families shipped with the package (``profiler density``'s default)."""
    return _PACKAGE / "analysis" / "data" / "reference_families.toml"
