"""The architecture holds: rooms import only downward, the top level stays small, and no module
reaches into another's private names (docs/architecture.md)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "profiler"
TOP_LEVEL_MODULES = {"__init__", "__main__", "api", "atomic", "errors", "paths", "stats"}


def test_import_linter_contract_holds():
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"Contracts: \d+ kept, 0 broken", done.stdout), done.stdout
    for contract in ("Rooms import only downward", "The measuring child (run/worker.py) imports nothing of the run above it"):
        assert f"{contract} KEPT" in done.stdout, done.stdout


def test_the_top_level_holds_only_packages_and_a_few_small_modules():
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    assert modules <= TOP_LEVEL_MODULES, sorted(modules - TOP_LEVEL_MODULES)
    for name in modules - {"__init__", "__main__"}:
        lines = len((PACKAGE / f"{name}.py").read_text().splitlines())
        assert lines <= 400, f"profiler/{name}.py has {lines} lines: a top-level module stays small"


def _private_imports(root: Path) -> list[str]:
    found = []
    for source in sorted(root.rglob("*.py")):
        tree = ast.parse(source.read_text(), filename=str(source))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("profiler"):
                found += [f"{source.relative_to(REPO)}:{node.lineno} {node.module}.{alias.name}"
                          for alias in node.names if alias.name.startswith("_") and not alias.name.startswith("__")]
    return found


def test_no_module_imports_a_private_name_from_another():
    assert _private_imports(PACKAGE) == []


def test_no_test_imports_a_private_name():
    assert _private_imports(REPO / "tests") == []
