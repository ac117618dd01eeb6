"""The Markdown diff export writes what staff typed (snapshot configs, changelog entries, suite and
sample names, outputs) as text in every cell and line (issue #15, item 8): rendered by a CommonMark
renderer it forms no link, image, HTML, emphasis, heading, list or extra table cell."""

from __future__ import annotations

import copy
from html.parser import HTMLParser

import pytest
from markdown_it import MarkdownIt

from contracts.diffs.render import md_code, md_text, render
from tests.contracts.diffs.test_diff_formats import document  # noqa: F401 -- the shared diff fixture

pytestmark = pytest.mark.django_db

HOSTILE = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "[click](javascript:alert(1))",
    "![x](http://evil.example/p.png)",
    "<http://evil.example>",
    "javascript:alert(1)",
    "**bold** _em_ `code` ~~gone~~",
    "a | b | c",
    "# heading",
    "- item",
    "1. first",
    "> quote",
    "&lt;escaped&gt; &amp;",
    "back\\slash`tick``s",
]
ALLOWED_TAGS = {"h1", "h2", "h3", "p", "ul", "li", "table", "thead", "tbody", "tr", "th", "td", "code",
                "strong", "s", "blockquote", "hr"}  # fmt: skip
STRUCTURAL_KEYS = {"op", "change", "status", "kind", "direction"}


class Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: set[str] = set()
        self.attrs: list = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attrs += attrs

    def handle_data(self, data):
        self.text.append(data)


def poison(value, payload: str, key: str = ""):
    if isinstance(value, dict):
        return {k: poison(v, payload, k) for k, v in value.items()}
    if isinstance(value, list):
        return [poison(v, payload, key) for v in value]
    if isinstance(value, str) and key not in STRUCTURAL_KEYS:
        return payload
    return value


def rendered(markdown: str) -> Collector:
    html = MarkdownIt("commonmark").enable("table").enable("strikethrough").render(markdown)
    collector = Collector()
    collector.feed(html)
    return collector


@pytest.mark.parametrize("payload", HOSTILE)
def test_every_staff_text_in_the_markdown_export_stays_text(document, payload):  # noqa: F811
    hostile = poison(copy.deepcopy(document), payload)
    markdown = render(hostile, "md").decode()
    html = rendered(markdown)
    assert html.tags <= ALLOWED_TAGS, html.tags - ALLOWED_TAGS
    assert not [name for name, _ in html.attrs if name in ("href", "src", "onerror")]
    assert payload in "".join(html.text)  # shown as typed, not swallowed
    # Every line of a table has as many cell separators as its header: no typed "|" split a cell.
    table: list[int] = []
    for line in [*markdown.splitlines(), ""]:
        if line.startswith("|"):
            table.append(unescaped_pipes(line))
        elif table:
            assert len(set(table)) == 1, table
            table = []


def unescaped_pipes(line: str) -> int:
    count, escaped = 0, False
    for char in line:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "|":
            count += 1
    return count


@pytest.mark.parametrize("payload", HOSTILE)
def test_md_text_and_md_code_render_back_to_the_typed_text(payload):
    text = rendered(md_text(payload, line_start=True))
    assert "".join(text.text).strip() == payload.strip() and text.tags == {"p"}
    code = rendered(md_code(payload))
    assert "".join(code.text).replace("\\|", "|").strip() == payload.strip() and code.tags == {"p", "code"}
