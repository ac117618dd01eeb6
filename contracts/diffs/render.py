"""Every format of a diff renders the one document of `diff_build`: JSON, Markdown, HTML and PDF.

The HTML export, the portal page and the PDF share the template `contracts/diffs/_report.html`;
the PDF adds a cover (with the sha256 of the JSON content) and print CSS (running header with both
snapshot ids, page numbers, generation time).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.contrib.staticfiles import finders
from django.template.loader import render_to_string

from contracts.diffs import compute

# --------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------


def fmt_number(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        if float(value).is_integer() and abs(value) >= 1:
            return f"{int(value)}"
        text = f"{value:.4f}".rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text
    return str(value)


def fmt_signed(value: Any) -> str:
    if value is None:
        return "—"
    text = fmt_number(value)
    return f"+{text}" if value > 0 else text


def fmt_value(value: Any) -> str:
    """A config value as compact JSON (strings without quotes)."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------


def render_json(document: dict[str, Any]) -> bytes:
    """Compact JSON; reuses the canonical content bytes hashed by diff_build when it has them."""
    canonical = getattr(document, "canonical", b"")
    if canonical and len(canonical) > 2:
        tail = json.dumps(
            {"content_sha256": document["content_sha256"], "generated_at": document["generated_at"]},
            separators=(",", ":"),
        ).encode()
        return canonical[:-1] + b"," + tail[1:]
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------


# Staff-provided names and texts (snapshot configs, changelog entries, suites, golden samples) are
# written as text: CommonMark punctuation that can open or close markup is backslash-escaped, the
# characters of HTML become entities, and a line cannot start a heading, list, quote or setext
# underline. `:` is escaped so no autolink (javascript:, http:) forms.
_MD_ESCAPE = str.maketrans(
    {char: "\\" + char for char in "\\`*_{}[]()#|~!:"}
    | {"<": "&lt;", ">": "&gt;", "&": "&amp;", "\n": " ", "\r": " ", "\t": " "}
)
_BLOCK_START = re.compile(r"^(\s*)(?:([+\-=])|(\d+)([.)]))")


class Md(str):
    """Markdown that is safe as it is (built from escaped parts)."""


def md_text(value: Any, *, line_start: bool = False) -> str:
    """Any value as Markdown that renders as exactly that text: no link, emphasis, table cell break,
    HTML or (with `line_start`, for text that begins a line) list, quote or heading."""
    if isinstance(value, Md):
        return value
    text = (value if isinstance(value, str) else fmt_value(value)).translate(_MD_ESCAPE)
    if not line_start:
        return text
    return _BLOCK_START.sub(
        lambda m: m.group(1) + ("\\" + m.group(2) if m.group(2) else m.group(3) + "\\" + m.group(4)),
        text,
        count=1,
    )


def md_code(value: Any) -> Md:
    """An inline code span holding `value` verbatim, whatever backticks it contains (the fence is
    longer than its longest run); `|` escaped so a table cell does not split."""
    text = (value if isinstance(value, str) else fmt_value(value)).replace("\n", " ").replace("\r", " ")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith(("`", " ")) or text.endswith(("`", " ")) else ""
    return Md(f"{fence}{pad}{text.replace('|', chr(92) + '|')}{pad}{fence}")


def _cell(value: Any) -> str:
    return md_text(value)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _md_diff(ops: list[dict[str, str]]) -> Md:
    parts = []
    for op in ops:
        text = op["text"].replace("\n", " ")
        if op["op"] == "delete" and text.strip():
            parts.append(f"~~{md_text(text.strip())}~~ ")
        elif op["op"] == "insert" and text.strip():
            parts.append(f"**{md_text(text.strip())}** ")
        else:
            parts.append(md_text(text))
    return Md("".join(parts).strip())


def render_markdown(document: dict[str, Any]) -> bytes:
    a, b, summary = document["a"]["id"], document["b"]["id"], document["summary"]
    a_md, b_md = md_text(a), md_text(b)
    lines = [
        f"# Diff {a_md} → {b_md}",
        "",
        f"- Family: {md_text(document['family'])}",
        f"- Organisation: {md_text(document['organization'])}",
        f"- Direction: {md_text(document['direction'])}",
        f"- Generated: {md_text(document['generated_at'])}",
        f"- Content sha256: {md_code(document['content_sha256'])}",
        "",
        "## Summary",
        "",
    ]
    lines += _table(["Item", "Count"], [[k.replace("_", " "), str(v)] for k, v in summary.items()])

    lines += ["## Config changes", ""]
    if document["config"]:
        lines += _table(
            ["Key", "Change", a, b],
            [
                [md_code(c["path"]), c["change"], fmt_value(c["before"]), fmt_value(c["after"])]
                for c in document["config"]
            ],
        )
    else:
        lines += ["No config changes.", ""]

    lines += ["## Price, context window and latency", ""]
    if document["figures"]:
        lines += _table(
            ["Figure", "Unit", a, b, "Change"],
            [
                [
                    f["label"],
                    f["unit"],
                    fmt_number(f["before"]),
                    fmt_number(f["after"]),
                    fmt_signed(f["delta"]),
                ]
                for f in document["figures"]
            ],
        )
    else:
        lines += ["No figures known.", ""]

    lines += ["## Changelog between the snapshots", ""]
    if document["changelog"]:
        for entry in document["changelog"]:
            lines.append(
                f"- **{md_text(entry['snapshot'])}** ({md_text(entry['kind'])}): {md_text(entry['title'])}"
                f" — {md_text(entry['body'])}"
            )
        lines.append("")
    else:
        lines += ["No changelog entries between these snapshots.", ""]

    lines += ["## Eval deltas", ""]
    if not document["evals"]:
        lines += ["No eval results on either snapshot.", ""]
    for suite in document["evals"]:
        lines += [f"### {md_text(suite['name'])} ({md_code(suite['suite'])}, {md_text(suite['owner'])})", ""]
        rows = []
        for metric in suite["metrics"]:
            flag = "REGRESSION" if metric["regression"] else metric["status"]
            rows.append(
                [
                    metric["metric"],
                    "",
                    fmt_number(metric["before"]),
                    fmt_number(metric["after"]),
                    fmt_signed(metric["delta"]),
                    fmt_number(metric["tolerance"]),
                    flag,
                ]
            )
            for subset in metric["subsets"]:
                rows.append(
                    [
                        "",
                        subset["subset"],
                        fmt_number(subset["before"]),
                        fmt_number(subset["after"]),
                        fmt_signed(subset["delta"]),
                        "",
                        "REGRESSION" if subset["regression"] else subset["status"],
                    ]
                )
        lines += _table(["Metric", "Subset", a, b, "Delta", "Tolerance", "Verdict"], rows)

    lines += ["## Golden samples", ""]
    if not document["golden_samples"]:
        lines += ["No golden samples on either snapshot.", ""]
    for sample in document["golden_samples"]:
        state = "changed" if sample["changed"] else "unchanged"
        lines += [f"### {md_code(sample['prompt_id'])} ({state})", ""]
        if sample["prompt"]:
            lines += [f"> {md_text(sample['prompt'], line_start=True)}", ""]
        lines += _table(["", "Output"], [[a, sample["before"] or "—"], [b, sample["after"] or "—"]])
        if sample["changed"]:
            lines += [f"Word diff: {_md_diff(sample['diff'])}", ""]
    return ("\n".join(lines).rstrip() + "\n").encode()


# --------------------------------------------------------------------------------------------
# Chart (server-rendered SVG: presentation attributes and classes, no inline style)
# --------------------------------------------------------------------------------------------

CHART_WIDTH = 760
CHART_LABEL = 300
CHART_ROW = 20
CHART_VALUE = 60  # room for the value text beside the longest bar on either side
CHART_HALF = (CHART_WIDTH - CHART_LABEL - 2 * CHART_VALUE) // 2
FILLS = {
    compute.BETTER: "#15803d",
    compute.WORSE: "#d97706",
    compute.REGRESSION: "#b91c1c",
    compute.SAME: "#6b7280",
}


def chart(document: dict[str, Any], *, limit: int = 40) -> dict[str, Any]:
    """Geometry of a horizontal bar chart of metric gains (right = better), largest changes first."""
    rows = compute.chart_rows(document["evals"], limit=limit)
    scale = max((abs(r["gain"]) for r in rows), default=0) or 1.0
    zero = CHART_LABEL + CHART_VALUE + CHART_HALF
    bars = []
    for index, row in enumerate(rows):
        length = abs(row["gain"]) / scale * CHART_HALF
        y = 24 + index * CHART_ROW
        bars.append(
            {
                "label": row["label"],
                "status": row["status"],
                "fill": FILLS.get(row["status"], "#6b7280"),
                "x": round(zero - length if row["gain"] < 0 else zero, 1),
                "y": y,
                "width": round(max(length, 1.0), 1),
                "height": CHART_ROW - 6,
                "text_y": y + CHART_ROW - 9,
                "value": fmt_signed(row["delta"]),
                "value_x": round(zero + length + 4 if row["gain"] >= 0 else zero - length - 4, 1),
                "value_anchor": "start" if row["gain"] >= 0 else "end",
            }
        )
    return {
        "bars": bars,
        "width": CHART_WIDTH,
        "height": 24 + max(len(bars), 1) * CHART_ROW + 10,
        "zero": zero,
        "label_x": CHART_LABEL - 8,
        "total": sum(len(s["metrics"]) for s in document["evals"]),
    }


# --------------------------------------------------------------------------------------------
# HTML and PDF
# --------------------------------------------------------------------------------------------


@functools.cache
def report_css() -> str:
    """The stylesheet the portal page links, embedded into the HTML export and the PDF."""
    path = finders.find("portal/diffs.css")
    return Path(path).read_text(encoding="utf-8") if path else ""


def report_context(document: dict[str, Any]) -> dict[str, Any]:
    return {"diff": document, "chart": chart(document), "report_css": report_css()}


def render_html(document: dict[str, Any]) -> bytes:
    return render_to_string("contracts/diffs/export.html", report_context(document)).encode()


def render_pdf(document: dict[str, Any], *, progress: Callable[[int], None] | None = None) -> bytes:
    from weasyprint import HTML  # noqa: PLC0415 -- loads Pango and fonts: only PDF rendering pays for it

    def report(value: int) -> None:
        if progress is not None:
            progress(value)

    # Block layout instead of tables for the evals: WeasyPrint lays out long tables slowly.
    html = render_to_string(
        "contracts/diffs/pdf/diff.html", {**report_context(document), "print_layout": True}
    )
    report(30)
    laid_out = HTML(string=html).render()
    report(80)
    pdf = laid_out.write_pdf()
    report(95)
    return pdf


RENDERERS: dict[str, Callable[[dict[str, Any]], bytes]] = {
    "json": render_json,
    "md": render_markdown,
    "html": render_html,
    "pdf": render_pdf,
}


def render(document: dict[str, Any], fmt: str) -> bytes:
    return RENDERERS[fmt](document)
