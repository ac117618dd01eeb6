"""Every format renders the same diff: JSON valid against the schema, Markdown, HTML and PDF."""

from __future__ import annotations

import io
import json
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest
from markdown_it import MarkdownIt
from pypdf import PdfReader

from contracts.diffs.render import render
from contracts.diffs.selectors import diff_build
from contracts.models import ChangelogEntry, ChangelogKind
from tests import factories as f
from tests.contracts.diff_support import make_result, make_samples, make_suite

pytestmark = pytest.mark.django_db

SCHEMA = json.loads((Path(__file__).resolve().parents[3] / "contracts" / "diffs" / "schema.json").read_text())


@pytest.fixture
def document(world):
    newest = f.SnapshotFactory(
        family=world.family,
        name="chat-2025-09-29",
        released_at=f.days(-10),
        config={"context_window": 16384, "tokenizer": "tok-v2", "sampling": {"temperature": 0.5}},
        price_input_per_mtok="0.50",
        latency_p50_ms=400,
    )
    world.current.price_input_per_mtok = "0.60"
    world.current.save(update_fields=["price_input_per_mtok"])
    ChangelogEntry.objects.create(
        snapshot=newest, kind=ChangelogKind.FIX, title="JSON | mode fix", body="No trailing commas."
    )
    suite = make_suite(
        "clinical-qa",
        owner=world.org,
        tolerances={"accuracy": 0.02, "p95_ms": 30},
        lower_is_better=["p95_ms"],
    )
    make_result(suite, world.current, accuracy=(0.81, {"cardiology": 0.8}), p95_ms=900)
    make_result(suite, newest, accuracy=(0.74, {"cardiology": 0.7}), p95_ms=850)
    make_samples(world.current, {"dose": "Take 200 mg every 4 hours.", "same": "Unchanged <b>text</b>."})
    make_samples(newest, {"dose": "Take 200 mg every 6 hours.", "same": "Unchanged <b>text</b>."})
    return diff_build(org=world.org, a=world.current.name, b=newest.name)


def test_json_validates_against_the_documented_schema(document):
    payload = json.loads(render(document, "json"))
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.validate(payload, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert payload["summary"]["regressions"] == 1


def test_schema_rejects_a_document_missing_its_hash(document):
    payload = json.loads(render(document, "json"))
    del payload["content_sha256"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(payload, SCHEMA, cls=jsonschema.Draft202012Validator)


def test_markdown_parses_into_headings_and_tables(document):
    text = render(document, "md").decode()
    tokens = MarkdownIt("commonmark").enable("table").enable("strikethrough").parse(text)
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert headings[0] == "Diff chat-2025-06-01 → chat-2025-09-29"
    assert {"Config changes", "Eval deltas", "Golden samples", "Changelog between the snapshots"} <= set(
        headings
    )
    assert sum(1 for t in tokens if t.type == "table_open") >= 5
    cells = [t.content for t in tokens if t.type == "inline"]
    code = [
        c.content for t in tokens if t.type == "inline" for c in t.children or [] if c.type == "code_inline"
    ]
    assert "REGRESSION" in cells and "tokenizer" in code
    assert any("JSON \\| mode fix" in c or "JSON | mode fix" in c for c in cells)
    assert document["content_sha256"] in text


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_data(self, data):
        self.text.append(data)


def test_html_renders_every_section_with_an_svg_chart_and_escaped_outputs(document):
    html = render(document, "html").decode()
    parsed = _Collector()
    parsed.feed(html)
    assert {"svg", "rect", "table", "del", "ins"} <= set(parsed.tags)
    assert not [name for name, _ in parsed.attrs if name == "style" or name.startswith("on")]
    assert "<b>text</b>" not in html and "&lt;b&gt;text&lt;/b&gt;" in html
    text = "".join(parsed.text)
    assert "chat-2025-06-01" in text and "regression" in text and document["content_sha256"] in text


def test_pdf_has_a_cover_with_the_content_hash_and_running_headers_with_page_numbers(document):
    pdf = render(document, "pdf")
    reader = PdfReader(io.BytesIO(pdf))
    pages = [page.extract_text() for page in reader.pages]
    cover = pages[0]
    assert document["content_sha256"] in cover.replace("\n", "").replace(" ", "")
    assert "chat-2025-06-01" in cover and "chat-2025-09-29" in cover
    assert len(pages) >= 2
    body = pages[1]
    assert "chat-2025-06-01 → chat-2025-09-29" in body  # running header
    assert f"Page 2 of {len(pages)}" in body
    assert f"Generated {document['generated_at']}" in body
    everything = "\n".join(pages)
    assert "clinical-qa" in everything and "regression" in everything and "Golden samples" in everything
