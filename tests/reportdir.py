"""Report folders as the report renderer writes them (`reports/<kind>/<period>/<stem>.<ext>`),
with realistic content, for the delivery tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

WEEKLY_ITEMS: list[dict[str, Any]] = [
    {
        "id": "deploy-success",
        "name": "deploy-success",
        "objective": ">= 95 %",
        "actual": "97.9 % [89.1, 99.6]",
        "n": 48,
        "status": "met",
    },
    {
        "id": "deploy-p95",
        "name": "deploy-p95",
        "objective": "<= 10 min",
        "actual": "7.2 min",
        "n": 47,
        "status": "met",
    },
    {
        "id": "deploy-fast",
        "name": "deploy-fast",
        "objective": ">= 95 %",
        "actual": "93.6 % [82.8, 97.8]",
        "n": 47,
        "status": "at_risk",
    },
    {
        "id": "runner-availability",
        "name": "runner-availability",
        "objective": ">= 99.5 %",
        "actual": "98.7 %",
        "n": None,
        "status": "missed",
    },
]
NOTABLE = [
    {
        "text": "Rollback of acme/platform run 9876543210 (deploy failed health check) <24 h>",
        "url": "https://github.com/acme/platform/actions/runs/9876543210",
    },
    {"text": "Runner dell-r640-01 down 2 h 10 min on Tuesday", "url": None},
]


def write_report(
    reports: Path,
    *,
    kind: str = "weekly-slo",
    period: str = "2026-W47",
    title: str | None = None,
    generated_at: str = "2026-11-24T06:00:00+00:00",
    base_url: str | None = None,
    items: list[dict[str, Any]] | None = None,
    notable: list[dict[str, Any]] | None = None,
    stale: bool = False,
    sidecar_rows: int = 0,
    html_note: str = "",
    html_padding: int = 0,
) -> Path:
    """Write `reports/<kind>/<period>/` and return the folder. `html_note` changes the HTML
    (a re-rendered report); `html_padding` adds that many bytes to it; `sidecar_rows` > 0
    writes `<stem>.rows.parquet`."""
    stem = f"{kind}-{period}"
    folder = reports / kind / period
    folder.mkdir(parents=True, exist_ok=True)
    items = WEEKLY_ITEMS if items is None else items
    notable = NOTABLE if notable is None else notable
    title = title or (
        f"Weekly SLO report {period}" if kind == "weekly-slo" else f"Epic closure {period}"
    )
    files = [f"{stem}.{ext}" for ext in ("ipynb", "html", "md", "jira.txt", "json")]
    if sidecar_rows:
        files.append(f"{stem}.rows.parquet")
        table = pa.table(
            {
                "repo": ["acme/platform"] * sidecar_rows,
                "run_id": list(range(9_000_000_000, 9_000_000_000 + sidecar_rows)),
                "run_attempt": [1] * sidecar_rows,
            }
        )
        pq.write_table(table, folder / f"{stem}.rows.parquet")
    rows = "".join(
        f"<tr><td>{i['name']}</td><td>{i['objective'].replace('>', '&gt;').replace('<', '&lt;')}"
        f"</td><td>{i['actual']}</td><td>{i['status']}</td></tr>"
        for i in items
    )
    html = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><h1>{title}</h1><table>{rows}</table><p>{html_note}</p>"
        f"<!-- {'x' * html_padding} --></body></html>\n"
    )
    (folder / f"{stem}.html").write_text(html, encoding="utf-8")
    (folder / f"{stem}.ipynb").write_text(
        json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}),
        encoding="utf-8",
    )
    markdown = [f"# {title}", "", "| SLO | objective | actual | status |", "|---|---|---|---|"]
    markdown += [
        f"| {i['name']} | {i['objective']} | {i['actual']} | {i['status']} |" for i in items
    ]
    (folder / f"{stem}.md").write_text("\n".join(markdown) + "\n", encoding="utf-8")
    wiki = ["h1. " + title, "||SLO||objective||actual||status||"]
    wiki += [f"|{i['name']}|{i['objective']}|{i['actual']}|{i['status']}|" for i in items]
    (folder / f"{stem}.jira.txt").write_text("\n".join(wiki) + "\n", encoding="utf-8")
    evidence = {
        "report": {
            "kind": kind,
            "period": period,
            "title": title,
            "generated_at": generated_at,
            "files": files,
            "url": f"{base_url}/{kind}/{period}/{stem}.html" if base_url else None,
        },
        "window": {
            "start": "2026-11-16T00:00:00+00:00",
            "end": "2026-11-23T00:00:00+00:00",
            "timezone": "UTC",
            "data_as_of": "2026-11-24T05:58:00+00:00",
            "provisional": False,
            "stale": stale,
        },
        "summary": {"items": items, "notable": notable},
        "metrics": {"production": {"success_rate": 0.979, "duration_p95_s": 432.5}},
        "digests": {"sql": "0" * 64, "config": "1" * 64, "data": "2" * 64},
    }
    (folder / f"{stem}.json").write_text(json.dumps(evidence, indent=2), encoding="utf-8")
    return folder
