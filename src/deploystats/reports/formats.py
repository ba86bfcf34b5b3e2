"""Markdown and JIRA wiki markup renderings of a report, made from its evidence file only."""

from __future__ import annotations

from typing import Any

_STATUS = {
    "met": "met",
    "at_risk": "at risk",
    "missed": "MISSED",
    "insufficient_data": "insufficient data",
    "manual": "manual",
}


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


def _rows(evidence: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    columns = ["ID", "Criterion", "Target", "Actual", "n", "Status"]
    rows = [
        [
            i["id"],
            i["name"],
            i["objective"],
            i["actual"],
            "-" if i["n"] is None else f"{i['n']:,}",
            _STATUS.get(i["status"], i["status"]),
        ]
        for i in evidence["summary"]["items"]
    ]
    return columns, rows


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(evidence: dict[str, Any]) -> str:
    report, window = evidence["report"], evidence["window"]
    lines = [f"# {report['title']}", ""]
    banner = _banner(evidence)
    if banner:
        lines += [f"> **{banner}**", ""]
    lines += [
        f"Window {window['label']}: {window['start']} to {window['end']} (end excluded, "
        f"{window['timezone']}); data as of {window.get('data_as_of') or 'no data'}.",
        "",
    ]
    columns, rows = _rows(evidence)
    if rows:
        lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
        lines.append("")
    for table in evidence.get("tables", []):
        lines += [f"## {table['title']}", ""]
        lines += ["| " + " | ".join(table["columns"]) + " |", "|" + "---|" * len(table["columns"])]
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table["rows"]]
        lines.append("")
    notable = evidence["summary"]["notable"]
    if notable:
        lines += ["## Notable", ""]
        lines += [
            f"- [{n['text']}]({n['url']})" if n.get("url") else f"- {n['text']}" for n in notable
        ]
        lines.append("")
    where = report.get("url") or f"{report['kind']}-{report['period']}.html"
    lines += [
        f"Full report: {where}. Every number, its definition, n and the rows behind it: "
        f"{report['kind']}-{report['period']}.json.",
        "",
    ]
    return "\n".join(lines)


def _jira_cell(text: str) -> str:
    return (text or " ").replace("|", "\\|").replace("\n", " ").replace("{", "\\{")


def jira(evidence: dict[str, Any]) -> str:
    """JIRA wiki markup (Server/Data Center comments and descriptions): ||h|| tables."""
    report, window = evidence["report"], evidence["window"]
    lines = [f"h1. {report['title']}", ""]
    banner = _banner(evidence)
    if banner:
        lines += [f"{{panel:bgColor=#fdecea}}*{_jira_cell(banner)}*{{panel}}", ""]
    lines += [
        f"Window {window['label']}: {window['start']} to {window['end']} (end excluded, "
        f"{window['timezone']}); data as of {window.get('data_as_of') or 'no data'}.",
        "",
    ]
    columns, rows = _rows(evidence)
    if rows:
        lines.append("||" + "||".join(columns) + "||")
        lines += ["|" + "|".join(_jira_cell(c) for c in row) + "|" for row in rows]
        lines.append("")
    for table in evidence.get("tables", []):
        lines += [f"h2. {table['title']}", ""]
        lines.append("||" + "||".join(table["columns"]) + "||")
        lines += ["|" + "|".join(_jira_cell(c) for c in row) + "|" for row in table["rows"]]
        lines.append("")
    notable = evidence["summary"]["notable"]
    if notable:
        lines += ["h2. Notable", ""]
        lines += [
            f"* [{_jira_cell(n['text'])}|{n['url']}]"
            if n.get("url")
            else f"* {_jira_cell(n['text'])}"
            for n in notable
        ]
        lines.append("")
    where = report.get("url") or f"{report['kind']}-{report['period']}.html"
    lines += [f"Full report: {where}. Evidence: {report['kind']}-{report['period']}.json.", ""]
    return "\n".join(lines)
