"""The weekly SLO report: what notebooks/weekly_slo.ipynb shows, computed by the Python API.

`build()` reads everything once and records each number in the evidence; the notebook only
displays the parts. Every number comes from `Deploystats` (the same as `deploystats metrics`).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from deploystats.api import Deploystats
from deploystats.config import Settings
from deploystats.metrics.core import n_of
from deploystats.metrics.windows import Window
from deploystats.reports import charts, display, fmt
from deploystats.reports.common import ReportBase, week_label

# The per-target metrics the report shows, in reading order.
SHOWN = (
    "counted", "successes", "failures", "rolled_back", "aborted", "superseded", "not_deployed",
    "excluded", "not_counted", "success_rate", "run_success_rate", "retry_rate", "duration_n",
    "duration_p50_s", "duration_p95_s", "duration_p99_s", "queue_p50_s", "queue_p95_s",
    "pending_p50_s", "failover_share", "unknown_runner_share", "overlapping_deploys",
    "deploy_frequency_per_day", "lead_time_p50_s", "rollback_incidents", "changes",
    "change_failure_rate", "episodes", "mttr_s", "restore_median_s", "open_episodes",
    "detect_n", "detect_p50_s", "detected_share",
)  # fmt: skip
TREND_WEEKS = 4


class WeeklyReport(ReportBase):
    kind = "weekly-slo"

    def __init__(self, ds: Deploystats, window: Window, *, trend_weeks: int = TREND_WEEKS) -> None:
        super().__init__(ds, window, period=window.label, title=f"Weekly SLO report {window.label}")
        self.metrics = ds.metrics(window=window)
        self.slos = ds.slos(window=window)["slos"]
        self.targets = list(self.metrics["targets"])
        self._read_window(window)
        self.weeks: list[Window] = []
        self.trend: dict[str, list[dict[str, Any]]] = {}
        for k in range(trend_weeks, 0, -1):
            earlier = ds.window(week=week_label(window.start - timedelta(days=7 * k), window))
            self.weeks.append(earlier)
        self.weeks.append(window)
        for span in self.weeks:
            values = self.metrics if span == window else ds.metrics(window=span)
            for target in self.targets:
                self.trend.setdefault(target, []).append(values["targets"].get(target, {}))
                if span != window:
                    self._record_target(
                        target,
                        values["targets"].get(target, {}),
                        span,
                        prefix=f"trend.{span.label}",
                        shown=_TREND_KEYS,
                    )
        teams = {t.team for t in ds.settings.targets if t.team}
        self.teams = ds.metrics(window=window, group_by="team") if teams else None
        self._record()

    # ---------------------------------------------------------------- evidence
    def _record(self) -> None:
        ev = self.evidence
        for target in self.targets:
            self._record_target(target, self.metrics["targets"][target], self.window)
        for slo in self.slos:
            span = self._slo_window(slo)
            rows = None
            if slo.get("target") in self.targets:
                rows = self.attempt_rowset(slo["target"], span)
            metric = slo["metric"]
            labels = ",".join(f"{k}={v}" for k, v in sorted((slo.get("labels") or {}).items()))
            name = slo["name"] + (f"{{{labels}}}" if labels else "")
            ev.number(
                f"slo.{name}",
                metric=metric,
                value=slo.get("sli"),
                n=slo.get("n"),
                window=span,
                rows=rows,
                target=slo.get("target"),
                objective=slo["objective"],
                op=slo["op"],
                status=slo["status"],
                sli_ci=slo.get("sli_ci"),
                budget_remaining=slo.get("budget_remaining"),
                burn_rate=slo.get("burn_rate"),
            )
            ev.item(
                name,
                f"{slo.get('target')}: {metric}",
                fmt.objective(metric, slo["op"], slo["objective"]),
                fmt.value(metric, slo.get("sli")) + fmt.interval(metric, slo.get("sli_ci")),
                slo.get("n"),
                slo["status"],
            )
        keys = (
            "counted",
            "success_rate",
            "duration_p95_s",
            "rollback_incidents",
            "change_failure_rate",
            "episodes",
            "mttr_s",
            "failover_share",
        )
        ev.table(
            f"Key metrics {self.window.label}",
            ["metric", *self.targets],
            [
                [k, *(fmt.value(k, self.metrics["targets"][t].get(k)) for t in self.targets)]
                for k in keys
            ],
        )
        if self.teams:
            for team, values in self.teams["targets"].items():
                for metric in ("counted", "success_rate", "duration_p95_s", "episodes", "mttr_s"):
                    ev.number(
                        f"team.{team}.{metric}",
                        metric=metric,
                        value=values.get(metric),
                        n=n_of(metric, values),
                        window=self.window,
                        team=team,
                    )
        for target in self.targets:
            for _, row in self.episodes[target].iterrows():
                ev.note(
                    f"{target}: failure episode from run {row['run_id']} "
                    f"(attempt {row['run_attempt']}), restored in "
                    f"{fmt.value('restore_s', row['restore_s'])}",
                    row.get("html_url"),
                )
            for _, row in self.rollbacks[target].iterrows():
                urls = row.get("evidence_urls")
                first = urls[0] if isinstance(urls, list | tuple) and len(urls) else None
                ev.note(f"{target}: rollback incident answering run {row['change_run_id']}", first)
        if self.prometheus:
            self._record_prometheus()

    # ---------------------------------------------------------------- display
    def slo_table(self) -> display.HTML:
        if not self.slos:
            return display.raw(display.note("No SLOs are configured (slos: in the config file)."))
        rows = []
        for slo in self.slos:
            metric = slo["metric"]
            rows.append(
                [
                    display.esc(slo["name"]),
                    display.esc(slo.get("target") or "-"),
                    display.status(slo["status"]),
                    display.esc(
                        fmt.value(metric, slo.get("sli")) + fmt.interval(metric, slo.get("sli_ci"))
                    ),
                    display.esc(fmt.objective(metric, slo["op"], slo["objective"])),
                    display.esc(fmt.value("n", slo.get("n"))),
                    display.esc(fmt.value("budget_remaining", slo.get("budget_remaining"))),
                    display.esc(fmt.value("burn", slo.get("burn_rate"))),
                    display.esc(slo["window"]["label"]),
                    display.esc(slo.get("reason", "")),
                ]
            )
        columns = [
            "SLO",
            "target",
            "status",
            "SLI [95 % interval]",
            "objective",
            "n",
            "budget remaining",
            "burn rate",
            "SLO window",
            "note",
        ]
        return display.raw(
            display.table(
                columns, rows, raw=columns, numeric=["n", "budget remaining", "burn rate"]
            )
        )

    def team_table(self) -> display.HTML:
        if not self.teams:
            return display.raw(display.note("No target names a team: per-team roll-up not shown."))
        keys = ("counted", "success_rate", "duration_p95_s", "episodes", "mttr_s")
        rows = [
            [team, *(fmt.value(k, v.get(k)) for k in keys)]
            for team, v in self.teams["targets"].items()
        ]
        return display.raw(display.table(["team", *keys], rows, numeric=keys))

    def trend_table(self) -> display.HTML:
        blocks = []
        labels = [w.label for w in self.weeks]
        for target in self.targets:
            rows = []
            for key in _TREND_KEYS:
                rows.append([key, *(fmt.value(key, v.get(key)) for v in self.trend[target])])
            blocks.append(
                f"<h4>{display.esc(target)}</h4>"
                + display.table(["metric", *labels], rows, numeric=labels)
            )
        return display.raw("".join(blocks))

    def trend_charts(self) -> display.HTML:
        parts = []
        labels = [w.label for w in self.weeks]
        for target in self.targets:
            values = self.trend[target]
            parts.append(
                self.figure(
                    charts.trend(
                        labels,
                        [v.get("success_rate") for v in values],
                        lows=[(v.get("success_rate_ci") or [None, None])[0] for v in values],
                        highs=[(v.get("success_rate_ci") or [None, None])[1] for v in values],
                        objective=self._objective(target, "success_rate"),
                        scale=100,
                        title=f"{target}: deployment success rate per week (95 % interval)",
                        axis="success rate (%)",
                    )
                )
            )
            parts.append(
                self.figure(
                    charts.trend(
                        labels,
                        [v.get("duration_p95_s") for v in values],
                        scale=1 / 60,
                        objective=self._objective(target, "duration_p95_s"),
                        title=f"{target}: p95 deploy duration per week",
                        axis="p95 duration (min)",
                    )
                )
            )
        return display.raw("".join(parts))

    def timeline(self) -> display.HTML:
        parts = []
        for target in self.targets:
            frame = self.attempts[target]
            if frame.empty:
                parts.append(display.note(f"{target}: no deployments in {self.window.label}."))
                continue
            signals = list(self.rollbacks[target]["first_signal_at"])
            parts.append(
                self.figure(
                    charts.timeline(
                        frame, signals, f"{target}: deployment attempts {self.window.label}"
                    )
                )
            )
        return display.raw("".join(parts))

    def durations(self) -> display.HTML:
        parts = []
        for target in self.targets:
            frame = self.attempts[target]
            timed = frame[
                frame["good"] & (frame["timing_source"] == "jobs") & frame["duration_s"].notna()
            ]
            if timed.empty:
                parts.append(
                    display.note(
                        f"{target}: no timed successful deployment in {self.window.label}."
                    )
                )
                continue
            values = self.metrics["targets"][target]
            parts.append(
                self.figure(
                    charts.duration_distribution(
                        timed["duration_s"],
                        values.get("duration_p95_s"),
                        self._objective(target, "duration_p95_s"),
                        f"{target}: deploy duration distribution (n = {values.get('duration_n')})",
                    )
                )
            )
        return display.raw("".join(parts))

    def metrics_table(self) -> display.HTML:
        rows = [
            [
                key,
                *(
                    fmt.value(key, self.metrics["targets"][t].get(key))
                    + (
                        fmt.interval(key, self.metrics["targets"][t].get("success_rate_ci"))
                        if key == "success_rate"
                        else ""
                    )
                    for t in self.targets
                ),
            ]
            for key in SHOWN
            if any(key in self.metrics["targets"][t] for t in self.targets)
        ]
        return display.raw(display.table(["metric", *self.targets], rows, numeric=self.targets))

    def runners(self) -> display.HTML:
        rows = []
        for target in self.targets:
            v = self.metrics["targets"][target]
            rows.append(
                [
                    target,
                    fmt.value("failover_share", v.get("failover_share")),
                    fmt.value("unknown_runner_share", v.get("unknown_runner_share")),
                    fmt.value("counted", v.get("counted")),
                ]
            )
        parts = [
            display.table(
                ["target", "failover share", "unknown runner share", "counted"],
                rows,
                numeric=["failover share", "unknown runner share", "counted"],
            )
        ]
        parts.append(self.prometheus_html())
        return display.raw("".join(parts))

    def exclusions(self) -> display.HTML:
        rows = []
        for target in self.targets:
            frame = self.attempts[target]
            for r in frame[frame["outcome"] == "excluded"].itertuples():
                rows.append(
                    [
                        display.esc(target),
                        display.link(f"run {r.run_id} #{r.run_attempt}", r.html_url),
                        display.esc(r.excluded_reason),
                    ]
                )
        if not rows:
            return display.raw(display.note(f"No attempt was excluded in {self.window.label}."))
        cols = ["target", "attempt", "reason"]
        return display.raw(display.table(cols, rows, raw=cols))


_TREND_KEYS = (
    "counted",
    "success_rate",
    "duration_p95_s",
    "rollback_incidents",
    "episodes",
    "mttr_s",
)


def build(
    db: str | Path | None = None,
    config: str | Path | Settings | None = None,
    week: str | None = None,
) -> WeeklyReport:
    """The weekly report for an ISO week (default: the last complete one)."""
    ds = Deploystats(db, config=config)
    return WeeklyReport(ds, ds.window(week=week or None))
