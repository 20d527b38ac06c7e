"""No test module imports another (issue #18): helpers shared by tests live in tests/support/ under
public names, so a test file can be moved, renamed or run alone."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def imports_of_test_modules(source: Path, root: Path = REPO) -> list[str]:
    """``file:line module`` (file relative to root) of every import of a test_* module in ``source``."""
    tree = ast.parse(source.read_text(), filename=str(source))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [f"{source.relative_to(root)}:{node.lineno} {name}" for name in names
                  if any(part.startswith("test_") for part in name.split("."))]
    return found


def test_the_check_sees_both_forms_of_import(tmp_path):
    probe = tmp_path / "test_probe.py"
    probe.write_text("from test_runner import FakeBackend\nimport test_html_plots\nfrom support.runs import sweep_run\n")
    assert imports_of_test_modules(probe, tmp_path) == ["test_probe.py:1 test_runner", "test_probe.py:2 test_html_plots"]


def test_no_test_or_benchmark_imports_a_test_module():
    sources = sorted((REPO / "tests").rglob("*.py")) + sorted((REPO / "benchmarks").rglob("*.py"))
    assert len(sources) > 50
    assert [hit for source in sources for hit in imports_of_test_modules(source)] == []
