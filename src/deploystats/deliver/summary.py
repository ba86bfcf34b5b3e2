"""The report summary (period, each item with status and value, notable events, where the full
report is) as plain text, Slack Block Kit, e-mail HTML, JIRA wiki markup and Atlassian Document
Format. Every renderer escapes the markup of its own target."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from deploystats.deliver.report import Report

LABELS = {
    "met": "met",
    "at_risk": "at risk",
    "missed": "MISSED",
    "insufficient_data": "insufficient data",
    "manual": "manual",
}
SLACK_ICONS = {
    "met": ":white_check_mark:",
    "at_risk": ":warning:",
    "missed": ":x:",
    "insufficient_data": ":grey_question:",
    "manual": ":memo:",
}
WIKI_ICONS = {"met": "(/)", "at_risk": "(!)", "missed": "(x)", "insufficient_data": "(?)"}
WIKI_ICONS["manual"] = "(i)"
HTML_COLOURS = {
    "met": "#1a7f37",
    "at_risk": "#9a6700",
    "missed": "#cf222e",
    "insufficient_data": "#57606a",
    "manual": "#0969da",
}
SLACK_SECTION_CHARS = 3000  # Block Kit limit of a section's text
SLACK_HEADER_CHARS = 150
COLUMNS = ("", "Objective", "Actual", "n", "Status")


def window_line(report: Report) -> str:
    """`2026-11-16 00:00 – 2026-11-23 00:00 UTC, data as of 2026-11-24 06:00` plus flags."""
    window = report.window
    text = f"{_short(window.get('start'))} – {_short(window.get('end'))} {window.get('timezone')}"
    as_of = _short(window["data_as_of"]) if window.get("data_as_of") else "never"
    text += f", data as of {as_of}"
    return text + "".join(f" [{flag}]" for flag in flags(report))


def flags(report: Report) -> list[str]:
    out = []
    if report.window.get("provisional"):
        out.append("PROVISIONAL: the window is not over")
    if report.window.get("stale"):
        out.append("STALE: the last sync ended before the window end")
    return out


def counts_line(report: Report) -> str:
    return ", ".join(f"{n} {LABELS[status]}" for status, n in report.counts().items()) or "no items"


def subject(report: Report) -> str:
    stale = "[STALE] " if report.window.get("stale") else ""
    return f"{stale}{report.title}: {counts_line(report)}"


def plain_text(report: Report) -> str:
    """The summary as plain text: Slack's notification fallback and the e-mail text part."""
    lines = [report.title, window_line(report), ""]
    for item in report.items:
        n = f", n={item.n}" if item.n is not None else ""
        lines.append(
            f"- {item.name}: {LABELS[item.status]}: {item.actual} (objective {item.objective}{n})"
        )
    if report.notable:
        lines += ["", "Notable:"]
        lines += [f"- {n.text}" + (f" {n.url}" if n.url else "") for n in report.notable]
    lines += ["", f"Full report: {report.location}"]
    return "\n".join(lines)


def slack_payload(report: Report) -> dict[str, Any]:
    """An incoming-webhook message: Block Kit blocks and the plain-text `text` fallback."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(_clip(report.title, SLACK_HEADER_CHARS))},
        {"type": "context", "elements": [_mrkdwn(_slack(window_line(report)))]},
    ]
    lines = []
    for item in report.items:
        n = f", n={item.n}" if item.n is not None else ""
        lines.append(
            f"{SLACK_ICONS[item.status]} *{_slack(item.name)}* {_slack(LABELS[item.status])}: "
            f"{_slack(item.actual)} (objective {_slack(item.objective)}{_slack(n)})"
        )
    blocks += [{"type": "section", "text": _mrkdwn(text)} for text in _chunks(lines)]
    if report.notable:
        notable = [
            f"• <{_slack(n.url)}|{_slack(n.text)}>" if n.url else f"• {_slack(n.text)}"
            for n in report.notable
        ]
        blocks += [
            {"type": "section", "text": _mrkdwn(text)} for text in _chunks(["*Notable*", *notable])
        ]
    if report.url:
        link = f"<{_slack(report.url)}|Full report>"
    else:
        link = f"Full report: `{_slack(report.location)}`"
    blocks.append({"type": "context", "elements": [_mrkdwn(link)]})
    return {"text": plain_text(report), "blocks": blocks, "unfurl_links": False}


def html_body(report: Report, *, attached: Sequence[str] = ()) -> str:
    """A self-contained HTML e-mail body with inline styles (mail clients drop <style>)."""
    cell = "padding:4px 10px;border:1px solid #d0d7de;text-align:left"
    rows = []
    for item in report.items:
        colour = HTML_COLOURS[item.status]
        values = (item.name, item.objective, item.actual, "" if item.n is None else str(item.n))
        tds = "".join(f'<td style="{cell}">{html.escape(v)}</td>' for v in values)
        status = f'<td style="{cell};color:{colour};font-weight:bold">{LABELS[item.status]}</td>'
        rows.append(f"<tr>{tds}{status}</tr>")
    head = "".join(f'<th style="{cell}">{html.escape(c)}</th>' for c in COLUMNS)
    parts = [
        "<!DOCTYPE html>",
        '<html><body style="font-family:sans-serif">',
        f"<h2>{html.escape(report.title)}</h2>",
        f"<p>{html.escape(window_line(report))}</p>",
        f'<table style="border-collapse:collapse"><tr>{head}</tr>{"".join(rows)}</table>',
    ]
    if report.notable:
        items = "".join(
            f'<li><a href="{html.escape(n.url)}">{html.escape(n.text)}</a></li>'
            if n.url
            else f"<li>{html.escape(n.text)}</li>"
            for n in report.notable
        )
        parts.append(f"<h3>Notable</h3><ul>{items}</ul>")
    if report.url:
        parts.append(f'<p><a href="{html.escape(report.url)}">Full report</a></p>')
    if attached:
        parts.append(f"<p>Attached: {html.escape(', '.join(attached))}</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def wiki_comment(report: Report, *, attached: Sequence[str], marker: str) -> str:
    """A JIRA Server/Data Center comment in wiki markup: the items table and the evidence."""
    lines = [f"*{_wiki(report.title)}*", _wiki(window_line(report)), ""]
    lines.append("||" + "||".join(c or "Criterion" for c in COLUMNS) + "||")
    for item in report.items:
        cells = (
            f"{_wiki(item.id)} {_wiki(item.name)}",
            _wiki(item.objective),
            _wiki(item.actual),
            "" if item.n is None else str(item.n),
            f"{WIKI_ICONS[item.status]} {_wiki(LABELS[item.status])}",
        )
        lines.append("|" + "|".join(c or " " for c in cells) + "|")
    if report.notable:
        lines += ["", "Notable:"]
        lines += [
            f"* [{_wiki(n.text)}|{n.url}]" if n.url else f"* {_wiki(n.text)}"
            for n in report.notable
        ]
    lines += ["", "Evidence: " + ", ".join(f"[^{name}]" for name in attached)]
    if report.url:
        lines.append(f"[Full report|{report.url}]")
    lines += ["", f"{{{{{marker}}}}}"]
    return "\n".join(lines)


def adf_comment(report: Report, *, attached: Sequence[str], marker: str) -> dict[str, Any]:
    """The same comment as an Atlassian Document Format document (JIRA Cloud, API v3)."""
    header = [_adf_cell("tableHeader", c or "Criterion") for c in COLUMNS]
    rows = [{"type": "tableRow", "content": header}]
    for item in report.items:
        cells = (
            f"{item.id} {item.name}",
            item.objective,
            item.actual,
            "" if item.n is None else str(item.n),
            LABELS[item.status],
        )
        rows.append({"type": "tableRow", "content": [_adf_cell("tableCell", c) for c in cells]})
    content: list[dict[str, Any]] = [
        _paragraph(_text(report.title, strong=True)),
        _paragraph(_text(window_line(report))),
        {"type": "table", "attrs": {"isNumberColumnEnabled": False, "layout": "default"}},
    ]
    content[-1]["content"] = rows
    if report.notable:
        content.append(_paragraph(_text("Notable:")))
        entries = [
            {"type": "listItem", "content": [_paragraph(_text(n.text, link=n.url))]}
            for n in report.notable
        ]
        content.append({"type": "bulletList", "content": entries})
    content.append(_paragraph(_text("Evidence attached: " + ", ".join(attached))))
    if report.url:
        content.append(_paragraph(_text("Full report", link=report.url)))
    content.append(_paragraph(_text(marker, code=True)))
    return {"type": "doc", "version": 1, "content": content}


def _short(value: Any) -> str:
    if not value:
        return "?"
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return str(value)


def _chunks(lines: list[str]) -> list[str]:
    """Lines joined into texts of at most SLACK_SECTION_CHARS (a longer line is clipped)."""
    chunks: list[str] = []
    for line in (_clip(line, SLACK_SECTION_CHARS) for line in lines):
        if chunks and len(chunks[-1]) + 1 + len(line) <= SLACK_SECTION_CHARS:
            chunks[-1] += "\n" + line
        else:
            chunks.append(line)
    return chunks


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def _slack(text: str) -> str:
    """Slack mrkdwn escapes exactly &, < and >."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_WIKI_SPECIAL = re.compile(r"([\\|\[\]{}*_^~+!#-])")


def _wiki(text: str) -> str:
    return _WIKI_SPECIAL.sub(r"\\\1", text)


def _text(
    text: str, *, strong: bool = False, code: bool = False, link: str | None = None
) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "text", "text": text or "-"}
    marks: list[dict[str, Any]] = []
    if strong:
        marks.append({"type": "strong"})
    if code:
        marks.append({"type": "code"})
    if link:
        marks.append({"type": "link", "attrs": {"href": link}})
    if marks:
        node["marks"] = marks
    return node


def _paragraph(*nodes: dict[str, Any]) -> dict[str, Any]:
    return {"type": "paragraph", "content": list(nodes)}


def _adf_cell(kind: str, text: str) -> dict[str, Any]:
    return {"type": kind, "attrs": {}, "content": [_paragraph(_text(text or "-"))]}
