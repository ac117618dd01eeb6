"""The manual cites only what the repository holds: every relative link and every path in backticks
that looks like a file of the repository exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "gateway" / "README.md"]
LINK = re.compile(r"\]\((?!https?://|#|mailto:)([^)#\s]+)")
PATH = re.compile(r"`((?:contracts|notifications|portal|templates|static|tests|docs|gateway)/[\w./-]+)`")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_cited_file_exists(document):
    text = document.read_text()
    missing = []
    for target in LINK.findall(text):
        if not (document.parent / target).resolve().exists():
            missing.append(target)
    for path in PATH.findall(text):
        path = path.rstrip(".")
        if "<" in path or "*" in path:
            continue
        if not (ROOT / path).exists():
            missing.append(path)
    assert missing == []


def test_readme_is_a_front_door_not_a_manual():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250
