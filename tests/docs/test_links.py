"""The README stays a short front page, and every reference in the documentation resolves.

Relative markdown links must point to an existing file (and, when they carry an anchor, to a
heading of that file); code paths named in backticks (`profiler/...`, `tests/...`,
`benchmarks/...`) must exist, so a moved module or test cannot leave a stale pointer behind.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README_MAX_LINES = 250
PAGES = [REPO / "README.md", REPO / "benchmarks" / "README.md", *sorted((REPO / "docs").glob("*.md"))]

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE_PATH = re.compile(r"`((?:profiler|tests|benchmarks)/[^`\s]*)`")
FENCE = re.compile(r"^```.*?^```", flags=re.S | re.M)


def prose(page: Path) -> str:
    """The page without its fenced code blocks (a comment line there is not a heading)."""
    return FENCE.sub("", page.read_text())


def relative_links(page: Path) -> list[str]:
    return [t for t in LINK.findall(prose(page)) if not re.match(r"[a-z]+:", t)]


def heading_anchors(page: Path) -> set[str]:
    """GitHub's anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+\s+(.*)$", prose(page), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def ids(pages: list[Path]) -> list[str]:
    return [str(p.relative_to(REPO)) for p in pages]


def test_the_readme_is_a_front_page_of_at_most_250_lines():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail to docs/"


def test_the_readme_links_every_page_in_docs():
    linked = {(REPO / t.split("#")[0]).resolve() for t in relative_links(REPO / "README.md")}
    unlinked = [p.name for p in (REPO / "docs").glob("*.md") if p.resolve() not in linked]
    assert not unlinked, f"docs pages the README never links: {unlinked}"


@pytest.mark.parametrize("page", PAGES, ids=ids(PAGES))
def test_every_relative_link_resolves(page):
    broken = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and anchor not in heading_anchors(file):
            broken.append(f"{target}: no heading with that anchor in {file.name}")
    assert not broken, broken


@pytest.mark.parametrize("page", PAGES, ids=ids(PAGES))
def test_every_code_path_named_exists(page):
    named = [p for p in CODE_PATH.findall(page.read_text()) if not re.search(r"[*{<]", p)]
    missing = [p for p in named if not (REPO / p.rstrip("/")).exists()]
    assert not missing, f"{page.name} names paths that do not exist: {missing}"
