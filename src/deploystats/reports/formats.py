"""Markdown and JIRA wiki markup renderings of a report, made from its evidence file only."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

_STATUS = {
    "met": "met",
    "at_risk": "at risk",
    "missed": "MISSED",
    "insufficient_data": "insufficient data",
    "manual": "manual",
}
COLUMNS = ["ID", "Criterion", "Target", "Actual", "n", "Status"]


@dataclass(frozen=True)
class _Markup:
    """How one markup language writes the few things a summary needs."""

    heading: Callable[[int, str], str]
    banner: Callable[[str], str]
    header_row: Callable[[Sequence[str]], str]
    rule: Callable[[int], str | None]  # the line under a header row, if the language has one
    row: Callable[[Sequence[str]], str]
    bullet: Callable[[str, str | None], str]


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _jira_cell(text: str) -> str:
    return (text or " ").replace("|", "\\|").replace("\n", " ").replace("{", "\\{")


MARKDOWN = _Markup(
    heading=lambda level, text: f"{'#' * level} {text}",
    banner=lambda text: f"> **{text}**",
    header_row=lambda cells: "| " + " | ".join(cells) + " |",
    rule=lambda n: "|" + "---|" * n,
    row=lambda cells: "| " + " | ".join(_md_cell(c) for c in cells) + " |",
    bullet=lambda text, url: f"- [{text}]({url})" if url else f"- {text}",
)
JIRA = _Markup(
    heading=lambda level, text: f"h{level}. {text}",
    banner=lambda text: f"{{panel:bgColor=#fdecea}}*{_jira_cell(text)}*{{panel}}",
    header_row=lambda cells: "||" + "||".join(cells) + "||",
    rule=lambda n: None,
    row=lambda cells: "|" + "|".join(_jira_cell(c) for c in cells) + "|",
    bullet=lambda text, url: f"* [{_jira_cell(text)}|{url}]" if url else f"* {_jira_cell(text)}",
)


def _banner(evidence: dict[str, Any]) -> str | None:
    window = evidence["window"]
    if window.get("stale"):
        return (
            f"STALE: the data ends at {window.get('data_as_of') or 'nothing'}, before the "
            f"window ends ({window['end']}). Sync, then render again."
        )
    if window.get("provisional"):
        return "PROVISIONAL: rollbacks and recoveries may still change these numbers."
    return None


def _table(markup: _Markup, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    rule = markup.rule(len(columns))
    lines = [markup.header_row(columns), *([rule] if rule else [])]
    return [*lines, *(markup.row(row) for row in rows), ""]


def render(evidence: dict[str, Any], markup: _Markup) -> str:
    """The summary: title, banner, window, the items table, summary tables, notable, links."""
    report, window = evidence["report"], evidence["window"]
    lines = [markup.heading(1, report["title"]), ""]
    banner = _banner(evidence)
    if banner:
        lines += [markup.banner(banner), ""]
    lines += [
        f"Window {window['label']}: {window['start']} to {window['end']} (end excluded, "
        f"{window['timezone']}); data as of {window.get('data_as_of') or 'no data'}.",
        "",
    ]
    items = [
        [i["id"], i["name"], i["objective"], i["actual"],
         "-" if i["n"] is None else f"{i['n']:,}", _STATUS.get(i["status"], i["status"])]
        for i in evidence["summary"]["items"]
    ]  # fmt: skip
    if items:
        lines += _table(markup, COLUMNS, items)
    for table in evidence.get("tables", []):
        lines += [markup.heading(2, table["title"]), ""]
        lines += _table(markup, table["columns"], table["rows"])
    notable = evidence["summary"]["notable"]
    if notable:
        lines += [markup.heading(2, "Notable"), ""]
        lines += [markup.bullet(n["text"], n.get("url")) for n in notable]
        lines.append("")
    stem = f"{report['kind']}-{report['period']}"
    lines += [
        f"Full report: {report.get('url') or stem + '.html'}. Every number, its definition, "
        f"n and the rows behind it: {stem}.json.",
        "",
    ]
    return "\n".join(lines)


def markdown(evidence: dict[str, Any]) -> str:
    return render(evidence, MARKDOWN)


def jira(evidence: dict[str, Any]) -> str:
    """JIRA wiki markup (Server/Data Center comments and descriptions): ||h|| tables."""
    return render(evidence, JIRA)
