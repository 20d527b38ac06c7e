"""The README's two set-up commands exist and CI runs the test command verbatim."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _shell_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```sh\n(.*?)```", text, flags=re.S)]


def test_ci_runs_the_readme_test_command_verbatim():
    blocks = _shell_blocks((REPO / "README.md").read_text())
    test_command = next(b for b in blocks if "pytest" in b)
    ci_lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines


def test_readme_main_command_installs_and_runs_the_default_profile():
    blocks = _shell_blocks((REPO / "README.md").read_text())
    main = blocks[0]
    assert "pip install" in main and main.endswith("profiler run")


def test_no_shell_is_ever_used_for_commands():
    """Model names and paths from a config must never reach a shell."""
    for source in (REPO / "profiler").rglob("*.py"):
        text = source.read_text()
        assert "shell=True" not in text, source
        assert "os.system(" not in text and "os.popen(" not in text, source
