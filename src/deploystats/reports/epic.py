"""The epic-closure evidence report: success criteria measured over the epic's period, against
its baseline, with every number traced to rows (DESIGN §7, epic file format)."""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from deploystats.api import Deploystats
from deploystats.config import Settings, load_yaml_model
from deploystats.errors import ConfigError
from deploystats.metrics.core import n_of
from deploystats.metrics.windows import Window
from deploystats.reports import charts, display, fmt
from deploystats.reports.common import ReportBase, week_label
from deploystats.reports.evidence import definitions, metrics_schema

OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt,
}  # fmt: skip


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Span(_Strict):
    start: dt.date = Field(alias="from")
    end: dt.date = Field(alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> Span:
        if self.end <= self.start:
            raise ValueError(f"'to' ({self.end}) must be after 'from' ({self.start})")
        return self


class Criterion(_Strict):
    id: str
    name: str
    metric: str | None = None
    target: str | None = None
    op: Literal[">=", ">", "<=", "<"] = ">="
    objective: float | None = None
    window: Literal["epic", "week"] = "epic"
    min_events: int | None = None
    note: str | None = None
    manual: bool = False
    evidence_url: str | None = None
    status: Literal["met", "missed", "at_risk", "insufficient_data"] | None = None

    @model_validator(mode="after")
    def _complete(self) -> Criterion:
        if self.manual:
            if self.status is None:
                raise ValueError("a manual criterion needs status (met or missed)")
            return self
        if self.metric is None or self.objective is None:
            raise ValueError("a measured criterion needs metric and objective")
        known = set(metrics_schema()["$defs"]["target_metrics"]["properties"])
        if self.metric not in known:
            raise ValueError(
                f"unknown metric {self.metric!r}: use a key of "
                "`deploystats metrics --format json`, e.g. success_rate"
            )
        return self


class Story(_Strict):
    id: str
    title: str
    description: str | None = None
    acceptance: list[str] = []
    criteria: list[str] = []


class SignOff(_Strict):
    role: str
    name: str | None = None
    date: dt.date | None = None


class Epic(_Strict):
    key: str = Field(pattern=r"^[A-Z][A-Z0-9_]*-\d+$")
    title: str
    target: str | None = None
    period: Span
    baseline: Span | None = None
    success_criteria: list[Criterion] = Field(min_length=1)
    stories: list[Story] = []
    sign_off: list[SignOff] = []


def load_epic(path: str | Path) -> Epic:
    """Read and check an epic file; errors name the file, the key and what is wrong."""
    path = Path(path)
    return load_yaml_model(
        path, Epic, name=f"epic file {path}", expected="a mapping with key, title, period, ..."
    )


class EpicReport(ReportBase):
    kind = "epic-closure"

    def __init__(self, ds: Deploystats, epic: Epic) -> None:
        window = ds.window(since=epic.period.start.isoformat(), until=epic.period.end.isoformat())
        super().__init__(ds, window, period=epic.key, title=f"{epic.key}: {epic.title}")
        self.epic = epic
        self.baseline = (
            ds.window(since=epic.baseline.start.isoformat(), until=epic.baseline.end.isoformat())
            if epic.baseline
            else None
        )
        week = ds.window(week=week_label(window.end - dt.timedelta(microseconds=1), window))
        # `window: week` = the ISO week holding the period's last instant, cut at its end
        self.last_week = Window(
            max(week.start, window.start), min(week.end, window.end), week.label, week.timezone
        )
        self.metrics = ds.metrics(window=window)
        self._cache: dict[tuple[str, Any, Any], dict[str, Any]] = {}
        self._read_window(window)
        self.results = [self._measure(c) for c in epic.success_criteria]
        self.evidence.extra["epic"] = epic.model_dump(mode="json", by_alias=True)

    def _target(self, criterion: Criterion) -> str:
        name = criterion.target or self.epic.target
        names = [t.name for t in self.ds.settings.targets]
        if name is None:
            if len(names) != 1:
                raise ConfigError(
                    f"epic {self.epic.key}: {criterion.id}: name a target "
                    f"(configured: {', '.join(names)})"
                )
            return names[0]
        if name not in names:
            raise ConfigError(
                f"epic {self.epic.key}: {criterion.id}: unknown target {name!r}; "
                f"configured: {', '.join(names)}"
            )
        return name

    def _values(self, target: str, window: Window) -> dict[str, Any]:
        key = (target, window.start, window.end)
        if key not in self._cache:
            self._cache[key] = self.ds.metrics(target=target, window=window)["targets"][target]
        return self._cache[key]

    def _measure(self, c: Criterion) -> dict[str, Any]:
        ev = self.evidence
        if c.manual:
            ev.item(c.id, c.name, "manual review", "see evidence", None, c.status or "manual")
            return {"criterion": c, "status": c.status, "manual": True}
        assert c.metric is not None and c.objective is not None
        target = self._target(c)
        span = self.window if c.window == "epic" else self.last_week
        values = self._values(target, span)
        value, n = values.get(c.metric), n_of(c.metric, values)
        min_events = (
            c.min_events
            if c.min_events is not None
            else int(self.ds.settings.slo_defaults.get("min_events", 20))
        )
        reasons = []
        if value is None or (n or 0) < min_events:
            status = "insufficient_data"
            reasons.append(f"n = {n or 0}, fewer than min_events = {min_events}")
            if c.metric not in values:
                reasons.append(
                    f"{c.metric} needs data this configuration does not read "
                    "(time to detect: the target's Prometheus alerts_query)"
                )
        else:
            status = "met" if OPS[c.op](float(value), c.objective) else "missed"
        if c.note:
            reasons.append(c.note)
        reason = "; ".join(reasons)
        ci = values.get("success_rate_ci") if c.metric == "success_rate" else None
        rows = self.attempt_rowset(target, span)
        ev.number(
            f"criterion.{c.id}",
            metric=c.metric,
            value=value,
            n=n,
            window=span,
            rows=rows,
            target=target,
            objective=c.objective,
            op=c.op,
            status=status,
            ci=ci,
        )
        base = None
        if self.baseline is not None:
            bvalues = self._values(target, self.baseline)
            base = {
                "value": bvalues.get(c.metric),
                "n": n_of(c.metric, bvalues),
                "ci": bvalues.get("success_rate_ci") if c.metric == "success_rate" else None,
            }
            ev.number(
                f"criterion.{c.id}.baseline",
                metric=c.metric,
                value=base["value"],
                n=base["n"],
                window=self.baseline,
                rows=self.attempt_rowset(target, self.baseline),
                target=target,
                ci=base["ci"],
            )
        ev.item(
            c.id,
            c.name,
            fmt.objective(c.metric, c.op, c.objective),
            fmt.value(c.metric, value) + fmt.interval(c.metric, ci),
            n,
            status,
        )
        return {
            "criterion": c,
            "target": target,
            "window": span,
            "value": value,
            "n": n,
            "ci": ci,
            "status": status,
            "reason": reason or (c.note or ""),
            "baseline": base,
            "min_events": min_events,
        }

    # ---------------------------------------------------------------- display
    def criteria_table(self) -> display.HTML:
        rows = []
        for r in self.results:
            c: Criterion = r["criterion"]
            if r.get("manual"):
                rows.append(
                    [
                        display.esc(c.id),
                        display.esc(c.name),
                        "manual review",
                        display.link("evidence", c.evidence_url),
                        "-",
                        display.status(r["status"] or "manual"),
                        "manual criterion",
                    ]
                )
                continue
            assert c.metric is not None and c.objective is not None
            rows.append(
                [
                    display.esc(c.id),
                    display.esc(c.name),
                    display.esc(fmt.objective(c.metric, c.op, c.objective)),
                    display.esc(fmt.value(c.metric, r["value"]) + fmt.interval(c.metric, r["ci"])),
                    display.esc(fmt.value("n", r["n"])),
                    display.status(r["status"]),
                    display.esc(f"{r['window'].label}; {r['reason']}".strip("; ")),
                ]
            )
        cols = ["ID", "criterion", "target", "actual", "n", "status", "window and notes"]
        return display.raw(display.table(cols, rows, raw=cols, numeric=["n"]))

    def deltas(self) -> display.HTML:
        if self.baseline is None:
            return display.raw(display.note("The epic file has no baseline period."))
        rows, table_rows = [], []
        for r in self.results:
            c: Criterion = r["criterion"]
            if r.get("manual") or r["baseline"] is None:
                continue
            assert c.metric is not None
            b = r["baseline"]
            delta = None if b["value"] is None or r["value"] is None else r["value"] - b["value"]
            cells = [
                c.id,
                c.metric,
                fmt.value(c.metric, b["value"]) + fmt.interval(c.metric, b["ci"]),
                fmt.value("n", b["n"]),
                fmt.value(c.metric, r["value"]) + fmt.interval(c.metric, r["ci"]),
                fmt.value("n", r["n"]),
                _delta(c.metric, delta),
            ]
            rows.append(cells)
            table_rows.append(cells)
        cols = [
            "ID",
            "metric",
            f"baseline {self.baseline.label}",
            "n (baseline)",
            f"epic {self.window.label}",
            "n (epic)",
            "change",
        ]
        self.evidence.table("Baseline to epic", cols, table_rows)
        return display.raw(display.table(cols, rows, numeric=cols[2:]))

    def charts(self) -> display.HTML:
        parts = []
        for r in self.results:
            c: Criterion = r["criterion"]
            if r.get("manual"):
                continue
            assert c.metric is not None
            scale, axis = _axis(c.metric)
            labels, values, lows, highs = [], [], [], []
            if r["baseline"] is not None and self.baseline is not None:
                b = r["baseline"]
                labels.append(f"baseline {self.baseline.label}")
                values.append(b["value"])
                lows.append((b["ci"] or [None, None])[0])
                highs.append((b["ci"] or [None, None])[1])
            labels.append(f"epic {r['window'].label}")
            values.append(r["value"])
            lows.append((r["ci"] or [None, None])[0])
            highs.append((r["ci"] or [None, None])[1])
            parts.append(
                self.figure(
                    charts.compare(
                        labels,
                        values,
                        lows=lows,
                        highs=highs,
                        objective=c.objective,
                        scale=scale,
                        axis=axis,
                        title=f"{c.id} {c.name}: {r['status'].replace('_', ' ')}",
                    )
                )
            )
        return display.raw("".join(parts))

    def stories(self) -> display.HTML:
        by_id = {r["criterion"].id: r for r in self.results}
        parts = []
        for story in self.epic.stories:
            parts.append(f"<h3>{display.esc(story.id)}: {display.esc(story.title)}</h3>")
            if story.description:
                parts.append(f"<p>{display.esc(story.description)}</p>")
            if story.acceptance:
                parts.append(
                    "<p><b>Acceptance criteria</b></p><ul>"
                    + "".join(f"<li>{display.esc(a)}</li>" for a in story.acceptance)
                    + "</ul>"
                )
            for cid in story.criteria:
                r = by_id.get(cid)
                if r is not None:
                    parts.append(
                        f"<p>{display.esc(cid)}: {display.status(r['status'] or 'manual')}"
                        f" {display.esc(r['criterion'].name)}</p>"
                    )
        if not parts:
            parts.append(display.note("The epic file lists no stories."))
        return display.raw("".join(parts))

    def definitions_table(self) -> display.HTML:
        words = definitions()
        rows = [
            [r["criterion"].id, r["criterion"].metric, words.get(r["criterion"].metric, "")]
            for r in self.results
            if not r.get("manual")
        ]
        return display.raw(display.table(["ID", "metric", "definition"], rows))

    def sign_off(self) -> display.HTML:
        if not self.epic.sign_off:
            return display.raw(display.note("No sign-off listed in the epic file."))
        rows = [
            [s.role, s.name or "", s.date.isoformat() if s.date else ""] for s in self.epic.sign_off
        ]
        return display.raw(display.table(["role", "name", "date"], rows))


def _axis(metric: str) -> tuple[float, str]:
    if fmt.is_percent(metric):
        return 100.0, f"{metric} (%)"
    if fmt.is_seconds(metric):
        return 1 / 60, f"{metric.removesuffix('_s')} (min)"
    return 1.0, metric


def _delta(metric: str, delta: float | None) -> str:
    if delta is None:
        return "-"
    if fmt.is_percent(metric):
        return f"{100 * delta:+.1f} points"
    if fmt.is_seconds(metric):
        sign = "+" if delta >= 0 else "-"
        return sign + fmt.seconds(abs(delta))
    return f"{delta:+,.2f}"


def build(
    db: str | Path | None = None,
    config: str | Path | Settings | None = None,
    epic: str | Path = "examples/epics/INFRA-472.yml",
) -> EpicReport:
    """The closure report of the epic file `epic`."""
    return EpicReport(Deploystats(db, config=config), load_epic(epic))
