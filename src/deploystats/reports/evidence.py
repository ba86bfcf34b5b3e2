"""The evidence file: every number a report shows, traced to the rows behind it (DESIGN §7).

Each number carries its definition, n, window and the id of a row set; each row set lists the
row keys ((repo, run_id, run_attempt) with updated_at, or series and time range) and the
SHA-256 the database computed over them, so anyone can recompute a number from the keys and
see whether the data changed since. Row sets above 1,000 rows go to a Parquet sidecar.
The file's schema is docs/evidence.schema.json.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from importlib import metadata, resources
from typing import Any

import pandas as pd

from deploystats.config import Settings
from deploystats.metrics.windows import Window

SCHEMA_ID = "urn:deploystats:evidence.schema.json"
INLINE_ROWS = 1000


@cache
def metrics_schema() -> dict[str, Any]:
    text = (resources.files("deploystats") / "schemas" / "metrics.schema.json").read_text()
    return dict(json.loads(text))


@cache
def definitions() -> dict[str, str]:
    """Metric name -> its definition, from the metrics JSON contract (one source of words)."""
    defs = metrics_schema()["$defs"]
    words = {k: v.get("description", "") for k, v in defs["target_metrics"]["properties"].items()}
    series = defs["prometheus"]["additionalProperties"]["oneOf"]
    for kind in series:
        for key, prop in kind["properties"].items():
            if key == "series":
                for name, inner in prop["items"]["properties"].items():
                    words.setdefault(name, inner.get("description", ""))
            else:
                words.setdefault(key, prop.get("description", ""))
    words["fast_share"] = (
        "Successful attempts timed by their deploy jobs with duration_s <= threshold_s / "
        "successful attempts timed by their deploy jobs. Unit: fraction 0..1."
    )
    return words


@cache
def sql_digest() -> str:
    """SHA-256 over the metric engine's source, where every SQL definition lives."""
    package = resources.files("deploystats") / "metrics"
    digest = hashlib.sha256()
    for name in sorted(p.name for p in package.iterdir() if p.name.endswith(".py")):
        digest.update(name.encode())
        digest.update((package / name).read_bytes())
    return digest.hexdigest()


def config_digest(settings: Settings) -> str:
    """SHA-256 over the canonical JSON of the effective configuration (env var names only)."""
    canonical = json.dumps(settings.model_dump(mode="json"), sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "python_executable": sys.executable}
    for package in ("deploystats", "duckdb", "pandas", "plotly", "papermill", "nbconvert"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def window_dict(window: Window) -> dict[str, str]:
    return {
        "start": window.start.isoformat(),
        "end": window.end.isoformat(),
        "label": window.label,
        "timezone": window.timezone,
    }


def _jsonable(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, float) and v != v:  # NaN
        return None
    if isinstance(v, pd.Timestamp | datetime):
        return v.isoformat()
    if hasattr(v, "item"):  # numpy scalar
        return _jsonable(v.item())
    return v


@dataclass
class Evidence:
    """Collects numbers and their row sets while a report is built; written by `write`."""

    kind: str
    period: str
    title: str
    window: dict[str, Any]
    settings: Settings
    numbers: list[dict[str, Any]] = field(default_factory=list)
    rowsets: dict[str, dict[str, Any]] = field(default_factory=dict)
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    items: list[dict[str, Any]] = field(default_factory=list)
    notable: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    figures: int = 0

    def number(
        self,
        id: str,
        *,
        metric: str,
        value: Any,
        window: Window,
        n: int | None = None,
        rows: str | None = None,
        target: str | None = None,
        definition: str | None = None,
        **extra: Any,
    ) -> Any:
        """Record one number shown in the report; returns the value."""
        self.numbers.append(
            {
                "id": id,
                "metric": metric,
                "target": target,
                "value": _jsonable(value),
                "n": None if n is None else int(n),
                "window": window_dict(window),
                "definition": definition or definitions().get(metric, ""),
                "rows": rows,
                **{k: _jsonable(v) for k, v in extra.items()},
            }
        )
        return value

    def rows(
        self, id: str, frame: pd.DataFrame, *, digest: str, kind: str, window: Window, **about: Any
    ) -> str:
        """Record a row set (keys of the rows behind numbers) once; returns its id."""
        if id not in self.rowsets:
            self.rowsets[id] = {
                "kind": kind,
                "window": window_dict(window),
                "count": len(frame),
                "digest": digest,
                "columns": [str(c) for c in frame.columns],
                **about,
            }
            self.frames[id] = frame
        return id

    def item(
        self, id: str, name: str, objective: str, actual: str, n: int | None, status: str
    ) -> None:
        """A line of the summary (Slack, e-mail, JIRA comment, Markdown)."""
        self.items.append(
            {
                "id": id,
                "name": name,
                "objective": objective,
                "actual": actual,
                "n": n,
                "status": status,
            }
        )

    def table(self, title: str, columns: list[str], rows: list[list[Any]]) -> None:
        """A summary table (display strings) for the Markdown and JIRA renderings."""
        tables = self.extra.setdefault("tables", [])
        tables.append(
            {"title": title, "columns": columns, "rows": [[str(c) for c in row] for row in rows]}
        )

    def note(self, text: str, url: str | None = None) -> None:
        self.notable.append({"text": text, "url": url})

    def to_dict(self, stem: str, files: list[str], generated_at: datetime) -> dict[str, Any]:
        base = (self.settings.reports.get("base_url") or "").rstrip("/")
        url = f"{base}/{self.kind}/{self.period}/{stem}.html" if base else None
        rowsets = {}
        for id, about in self.rowsets.items():
            frame = self.frames[id]
            entry = dict(about)
            if len(frame) > INLINE_ROWS:
                entry["parquet"] = f"{stem}.{_safe(id)}.parquet"
            else:
                entry["data"] = [
                    [_jsonable(v) for v in row] for row in frame.itertuples(index=False)
                ]
            rowsets[id] = entry
        return {
            "$schema": SCHEMA_ID,
            "report": {
                "kind": self.kind,
                "period": self.period,
                "title": self.title,
                "generated_at": generated_at.isoformat(),
                "files": files,
                "url": url,
                "figures": self.figures,
            },
            "window": self.window,
            "summary": {"items": self.items, "notable": self.notable},
            "numbers": self.numbers,
            "rowsets": rowsets,
            "digests": {
                "sql": sql_digest(),
                "config": config_digest(self.settings),
                "data": data_digest(self.rowsets),
            },
            "versions": versions(),
            **self.extra,
        }

    def sidecars(self, stem: str) -> dict[str, pd.DataFrame]:
        return {
            f"{stem}.{_safe(id)}.parquet": frame
            for id, frame in self.frames.items()
            if len(frame) > INLINE_ROWS
        }


def data_digest(rowsets: dict[str, dict[str, Any]]) -> str:
    """SHA-256 over the row sets' own digests, in id order: one fingerprint of all data read."""
    digest = hashlib.sha256()
    for id in sorted(rowsets):
        digest.update(f"{id}={rowsets[id]['digest']}\n".encode())
    return digest.hexdigest()


def _safe(id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in id)
